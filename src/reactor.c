/*
 * reactor.c - the event-loop rules every loop shares (see reactor.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "reactor.h"

/* --- signals --------------------------------------------------------------- */

/* The write end the handlers wake: one loop per process. */
static volatile int wake_fd = -1;

int reactor_signals_open(struct reactor_signals *s)
{
    int fds[2];

    s->rd = s->wr = -1;
    if (compat_pipe(fds) != 0)
        return -errno;
    s->rd = fds[0];
    s->wr = fds[1];
    wake_fd = s->wr;
    return 0;
}

void reactor_signals_handle(void (*handler)(int), int flags, const int *sigs)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    for (; *sigs; sigs++)
        sigaction(*sigs, &sa, NULL);
}

void reactor_signal_wake(void)
{
    int saved = errno;
    int fd = wake_fd;
    if (fd >= 0)
        (void)!write(fd, "x", 1);
    errno = saved;
}

void reactor_signals_drain(const struct reactor_signals *s)
{
    char buf[64];
    while (read(s->rd, buf, sizeof(buf)) > 0)
        ;
}

void reactor_signals_close(struct reactor_signals *s)
{
    if (wake_fd == s->wr)
        wake_fd = -1;
    if (s->rd >= 0)
        close(s->rd);
    if (s->wr >= 0)
        close(s->wr);
    s->rd = s->wr = -1;
}

/* --- accepting ------------------------------------------------------------- */

static void count(uint64_t *c)
{
    if (c)
        __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

int reactor_accept(struct accept_gate *g, int lfd, int64_t now_ms)
{
    return reactor_accept_peer(g, lfd, now_ms, NULL);
}

int reactor_accept_peer(struct accept_gate *g, int lfd, int64_t now_ms,
                        struct sockaddr_storage *peer)
{
    int fd = compat_accept_peer(lfd, peer);
    if (fd >= 0)
        return fd;
    switch (-fd) {
    case EAGAIN:
        return ACCEPT_DRY;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
        return ACCEPT_AGAIN;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        count(g->pauses);
        log_ratelimited(LOG_WARN, &g->log_at, 10000,
                        "%s: %s; pausing accepts for %d ms", g->who,
                        strerror(-fd), ACCEPT_PAUSE_MS);
        g->resume_at = now_ms + ACCEPT_PAUSE_MS;
        return ACCEPT_PAUSED;
    default:
        count(g->errors);
        log_ratelimited(LOG_WARN, &g->log_at, 10000, "%s: %s", g->who,
                        strerror(-fd));
        return ACCEPT_FAILED;
    }
}

int reactor_accept_resume(struct accept_gate *g, int64_t now_ms)
{
    if (!g->resume_at || now_ms < g->resume_at)
        return 0;
    g->resume_at = 0;
    return 1;
}

/* --- interest -------------------------------------------------------------- */

int reactor_interest(poller_t *p, int fd, unsigned *mask, unsigned want,
                     uint64_t tag)
{
    if (*mask == want)
        return 0;
    int rc = poller_mod(p, fd, *mask, want, tag);
    if (rc == 0)
        *mask = want;
    return rc;
}
