/*
 * worker.c - one single-threaded reactor: the event loop, accepting,
 * timers, signals and the graceful stop.  What happens on a connection is
 * conn.c's business.
 *
 * One loop iteration:
 *   wait (timeout: the nearest timer)
 *   -> update the cached clock once
 *   -> dispatch every event (accepts; reads, whose replies are sent at
 *      once; writes of rings that held back-pressured output)
 *   -> expire timers from the heads of the timeout queues
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clientlog.h"
#include "compat.h"
#include "conn.h"
#include "fault.h"
#include "log.h"
#include "opchannel.h"
#include "operator.h"
#include "udp.h"
#include "worker.h"

#define MAX_EVENTS 512
#define ACCEPT_BUDGET 64        /* accepts per listener per wakeup */
#define ACCEPT_PAUSE_MS 100     /* after EMFILE/ENFILE */
#define READ_BUFFER (64 * 1024)
#define LINGER_MS 2000
#define DRAIN_QUIET_MS 100

struct loop {
    struct worker w;
    struct listener *ls;
    int nls;
    int sigpipe[2];
    int64_t accept_resume_at;   /* 0 unless accepting is paused */
    int64_t drain_deadline;
    long long emfile_log;
};

static volatile sig_atomic_t stop_requested;
static int signal_fd = -1;

static void on_stop_signal(int sig)
{
    int saved = errno;
    (void)sig;
    stop_requested = 1;
    if (signal_fd >= 0)
        (void)write(signal_fd, "x", 1);
    errno = saved;
}

static int setup_signals(struct loop *l)
{
    if (compat_pipe(l->sigpipe) != 0)
        return -errno;
    signal_fd = l->sigpipe[1];

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = log_reopen_on_signal;  /* --log-file rotated */
    sigaction(SIGUSR1, &sa, NULL);
    /* What only the master acts on, should a process-group kill bring it. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);

    /* The master may have blocked signals around fork(). */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
}

/* --- accepting ----------------------------------------------------------- */

/* An open stream (TCP or unix) listener: one that accept() applies to. */
static int stream_open(const struct listener *ls)
{
    return ls->fd >= 0 && ls->kind != LISTEN_UDP;
}

static void listeners_interest(struct loop *l, unsigned mask)
{
    for (int i = 0; i < l->nls; i++) {
        if (!stream_open(&l->ls[i]))
            continue;
        (void)poller_mod(l->w.poller, l->ls[i].fd, mask ? 0 : POLLER_READ,
                         mask, TAG_LISTENER | (uint64_t)i);
    }
}

static void pause_accepting(struct loop *l, int err)
{
    struct worker *w = &l->w;
    STAT_INC(w->st, accept_pauses);
    log_ratelimited(LOG_WARN, &l->emfile_log, 10000,
                    "accept: %s; pausing accepts for %d ms", strerror(err),
                    ACCEPT_PAUSE_MS);
    listeners_interest(l, 0);
    l->accept_resume_at = w->clock.mono_ms + ACCEPT_PAUSE_MS;
}

/* Accept up to `budget` connections; returns 1 if the queue ran dry. */
static int accept_some(struct loop *l, struct listener *ls, int budget)
{
    struct worker *w = &l->w;

    for (int i = 0; i < budget; i++) {
        int fd = compat_accept(ls->fd);
        if (fd < 0) {
            switch (-fd) {
            case EAGAIN:
                return 1;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                pause_accepting(l, -fd);
                return 0;
            default:
                STAT_INC(w->st, accept_errors);
                log_ratelimited(LOG_WARN, &l->emfile_log, 10000, "accept: %s",
                                strerror(-fd));
                return 0;
            }
        }
        if (w->active >= w->o->max_conns)
            conn_refuse(w, fd, (int)(ls - l->ls));
        else
            (void)conn_open(w, fd, (int)(ls - l->ls));
    }
    return 0;
}

/* --- graceful stop ------------------------------------------------------- */

/* Stop listening on one TCP or unix listener (drain only). */
static void close_listener(struct loop *l, struct listener *ls)
{
    (void)poller_del(l->w.poller, ls->fd, l->accept_resume_at ? 0 : POLLER_READ);
    close(ls->fd);
    ls->fd = -1;
}

/* Stream listeners still open: a draining worker waits for none. */
static int streams_open(const struct loop *l)
{
    int n = 0;
    for (int i = 0; i < l->nls; i++)
        n += stream_open(&l->ls[i]);
    return n;
}

static void begin_drain(struct loop *l)
{
    struct worker *w = &l->w;

    w->draining = 1;
    l->drain_deadline = w->clock.mono_ms +
                        (int64_t)w->o->shutdown_timeout * 1000;
    /* Serve what is already queued, then stop listening.  The queue is
     * bounded by the backlog; the round cap only guards against a listener
     * that keeps failing.  A listener whose accepts are paused by
     * descriptor exhaustion stays open: its queued clients are accepted as
     * the connections being drained free descriptors, and it is closed
     * when its queue runs dry (or at the drain deadline). */
    for (int i = 0; i < l->nls; i++) {
        struct listener *ls = &l->ls[i];
        if (ls->fd < 0)
            continue;
        if (ls->kind == LISTEN_UDP) {
            /* Datagrams already queued are answered, then the socket goes. */
            udp_event(ls->udp, POLLER_READ, w->o, &w->clock, w->st);
            close(ls->fd);
            ls->fd = -1;
            continue;
        }
        for (int round = 0; round < 1024; round++)
            if (accept_some(l, ls, ACCEPT_BUDGET) || l->accept_resume_at)
                break;
        if (!l->accept_resume_at)
            close_listener(l, ls);
    }
    operator_drain(w);
    w->idle_q.timeout_ms = DRAIN_QUIET_MS;
    log_info("draining %u connection%s", w->active, w->active == 1 ? "" : "s");
}

static void cut_everything(struct loop *l)
{
    struct worker *w = &l->w;
    unsigned n = 0;

    for (int fd = 0; fd < w->nconns; fd++) {
        struct conn *c = &w->conns[fd];
        if (!(c->flags & CF_OPEN))
            continue;
        if (!(c->flags & CF_REFUSED)) {
            n++;
            STAT_INC(w->st, err_shutdown_cut);
        }
        conn_close(w, c, CLOSE_SHUTDOWN);
    }
    /* Clients still queued behind a paused listener are not served. */
    for (int i = 0; i < l->nls; i++) {
        if (stream_open(&l->ls[i])) {
            close_listener(l, &l->ls[i]);
            w->cut = 1;
            log_warn("shutdown timeout: stopped listening on %s with accepts "
                     "still paused", l->ls[i].addr->text);
        }
    }
    if (n) {
        w->cut = 1;
        log_warn("shutdown timeout: closed %u connection%s that had not drained",
                 n, n == 1 ? "" : "s");
    }
}

/* --- timers ------------------------------------------------------------- */

static void expire_timers(struct loop *l)
{
    struct worker *w = &l->w;
    int64_t now = w->clock.mono_ms;
    struct tlink *t;

    while ((t = tq_expired(&w->linger_q, now)))
        conn_linger_expired(w, tq_entry(t, struct conn, timer));
    while ((t = tq_expired(&w->line_q, now)))
        conn_line_expired(w, tq_entry(t, struct conn, timer));
    /* A draining worker re-queues busy connections at `now`, which stops
     * this loop: they are behind every member stamped earlier. */
    while ((t = tq_expired(&w->idle_q, now)))
        conn_idle_expired(w, tq_entry(t, struct conn, idle));
    operator_expire(w);

    if (l->accept_resume_at && now >= l->accept_resume_at) {
        l->accept_resume_at = 0;
        listeners_interest(l, POLLER_READ);
        /* Draining, a listener with nothing queued any more would never
         * become readable: try each now, and close those that ran dry. */
        for (int i = 0; w->draining && i < l->nls && !l->accept_resume_at; i++) {
            struct listener *ls = &l->ls[i];
            if (stream_open(ls) && accept_some(l, ls, ACCEPT_BUDGET))
                close_listener(l, ls);
        }
    }
}

static int64_t min_timeout(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int next_timeout(const struct loop *l)
{
    const struct worker *w = &l->w;
    int64_t now = w->clock.mono_ms, t;

    t = tq_next_ms(&w->idle_q, now);
    t = min_timeout(t, tq_next_ms(&w->line_q, now));
    t = min_timeout(t, tq_next_ms(&w->linger_q, now));
    t = min_timeout(t, operator_next_ms(w, now));
    if (l->accept_resume_at)
        t = min_timeout(t, l->accept_resume_at > now ? l->accept_resume_at - now : 0);
    if (w->draining)
        t = min_timeout(t, l->drain_deadline > now ? l->drain_deadline - now : 0);
    /* +1: the poller rounds down, and waking a millisecond early would
     * spin once more without expiring anything. */
    /* Turn at least every STATS_HEARTBEAT_MS so that the heartbeat shows a
     * live loop even when nothing happens. */
    t = min_timeout(t, STATS_HEARTBEAT_MS);
    return (int)(t > STATS_HEARTBEAT_MS ? STATS_HEARTBEAT_MS : t + 1);
}

/* --- set-up -------------------------------------------------------------- */

_Static_assert(STATS_MAX_UDP >= OPTS_MAX_ADDRS,
               "every --udp address needs a drop-count slot");

static int worker_init(struct loop *l, const struct worker_cfg *cfg)
{
    struct worker *w = &l->w;
    const struct opts *o = cfg->o;
    struct rlimit rl;
    int nudp = 0;

    memset(l, 0, sizeof(*l));
    l->sigpipe[0] = l->sigpipe[1] = -1;
    w->cfg = cfg;
    w->o = o;
    w->st = cfg->st;
    l->ls = cfg->ls;
    l->nls = cfg->nls;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (1u << 24))
        rl.rlim_cur = 1u << 20;
    w->nconns = (int)rl.rlim_cur;
    /* Zeroed pages are touched only when their fd is used. */
    w->conns = calloc((size_t)w->nconns, sizeof(*w->conns));
    w->rbuf_size = READ_BUFFER;
    w->rbuf = malloc(w->rbuf_size);
    w->stage_cap = conn_stage_size(o);
    w->stage = malloc(w->stage_cap);
    conn_limits(w);
    if (!w->conns || !w->rbuf || !w->stage)
        return -ENOMEM;

    tq_init(&w->idle_q, (int64_t)o->idle_timeout * 1000);
    tq_init(&w->line_q, (int64_t)o->line_timeout * 1000);
    tq_init(&w->linger_q, LINGER_MS);
    clock_update(&w->clock);

    w->poller = poller_create(1024);
    if (!w->poller)
        return -errno;
    int rc = setup_signals(l);
    if (rc < 0)
        return rc;
    rc = poller_add(w->poller, l->sigpipe[0], POLLER_READ, TAG_SIGNAL);
    if (rc < 0)
        return rc;
    if (opchan_wanted(o) && (rc = operator_init(w)) < 0)
        return rc;
    for (int i = 0; i < l->nls; i++) {
        struct listener *ls = &l->ls[i];
        rc = poller_add(w->poller, ls->fd, POLLER_READ,
                        TAG_LISTENER | (uint64_t)i);
        if (rc < 0)
            return rc;
        if (ls->kind == LISTEN_UDP) {
            if (!(ls->udp = udp_create(ls->fd, w->poller, TAG_LISTENER | (uint64_t)i)))
                return -ENOMEM;
            udp_set_listener(ls->udp, ls->addr);
            /* A socket shared by every worker (no balancing SO_REUSEPORT)
             * has one drop total: worker 0 alone counts it. */
            if (nudp < STATS_MAX_UDP && (!ls->shared || cfg->id == 0))
                udp_track_drops(ls->udp, &w->st->udp_drops_seen[nudp]);
            nudp++;
        }
    }
    return 0;
}

static void worker_free(struct loop *l)
{
    struct worker *w = &l->w;
    for (int i = 0; i < l->nls; i++) {
        udp_destroy(l->ls[i].udp);
        l->ls[i].udp = NULL;
    }
    operator_free(w);
    if (w->poller)
        poller_destroy(w->poller);
    for (int i = 0; i < 2; i++)
        if (l->sigpipe[i] >= 0)
            close(l->sigpipe[i]);
    signal_fd = -1;
    free(w->conns);
    free(w->rbuf);
    free(w->stage);
    free(w->peers);
    free(w->owed);
}

/* --- the loop ------------------------------------------------------------ */

static void dispatch(struct loop *l, const struct poller_event *ev)
{
    struct worker *w = &l->w;

    if (ev->data & TAG_LISTENER) {
        struct listener *ls = &l->ls[ev->data & 0xffff];
        if (ls->kind == LISTEN_UDP) {
            if (ls->fd >= 0)
                udp_event(ls->udp, ev->mask, w->o, &w->clock, w->st);
            return;
        }
        if (ls->fd >= 0 && !l->accept_resume_at &&
            accept_some(l, ls, ACCEPT_BUDGET) && w->draining)
            close_listener(l, ls); /* its queue is served */
        return;
    }
    if (ev->data == TAG_OPERATOR) {
        operator_event(w);
        return;
    }
    if (ev->data == TAG_SIGNAL) {
        char buf[64];
        while (read(l->sigpipe[0], buf, sizeof(buf)) > 0)
            ;
        return;
    }
    int fd = (int)(uint32_t)ev->data;
    uint32_t gen = (uint32_t)(ev->data >> 32);
    if (fd < 0 || fd >= w->nconns)
        return;
    struct conn *c = &w->conns[fd];
    if (!(c->flags & CF_OPEN) || c->gen != gen)
        return; /* closed earlier in this batch */
    conn_event(w, c, ev->mask);
}

int worker_main(const struct worker_cfg *cfg)
{
    static struct loop l;
    struct worker *w = &l.w;
    struct poller_event events[MAX_EVENTS];

    int rc = worker_init(&l, cfg);
    if (rc < 0) {
        log_error("cannot start: %s", strerror(-rc));
        worker_free(&l);
        return 1;
    }
    fault_worker_ready();
    stats_heartbeat(w->st, w->clock.mono_ms);  /* serving from here on */
    log_debug("serving (pid %d)", (int)getpid());

    for (;;) {
        int n = poller_wait(w->poller, events, MAX_EVENTS, next_timeout(&l));
        clock_update(&w->clock);
        stats_heartbeat(w->st, w->clock.mono_ms);
        if (n < 0 && n != -EINTR) {
            log_error("poller_wait: %s", strerror(-n));
            w->cut = 1;
            break;
        }
        STAT_INC(w->st, loop_iterations);
        if (n > 0)
            STAT_ADD(w->st, loop_events, n);
        w->wake_ns = w->clock.mono_ns;
        for (int i = 0; i < n; i++)
            dispatch(&l, &events[i]);
        if (w->batch_reqs)
            conn_batch_done(w);
        expire_timers(&l);
        clientlog_tick(w->clock.mono_ms);

        if (stop_requested && !w->draining)
            begin_drain(&l);
        if (w->draining) {
            if (w->clock.mono_ms >= l.drain_deadline)
                cut_everything(&l);
            if (w->active == 0 && w->refused_lingering == 0 && !streams_open(&l))
                break;
        }
    }
    rc = w->cut ? 1 : 0;
    log_debug("stopped (%s)", rc ? "connections cut" : "drained");
    worker_free(&l);
    return rc;
}
