/*
 * poller_kqueue.c - the BSD/macOS backend of poller.h (kqueue(2)).
 *
 * An fd's interest is one or two kevents, (fd, EVFILT_READ) and
 * (fd, EVFILT_WRITE), each carrying the caller's 64-bit tag in udata.
 * Changes are applied at once (one kevent() call per poller_mod, like
 * ae_kqueue.c), so errors reach the caller that caused them; EV_RECEIPT
 * makes the kernel answer every change, so one failing filter neither hides
 * the other's result nor leaves a half-applied change behind.
 *
 * Mapping kqueue's reports onto epoll's (poller.h contracts):
 *  - EVFILT_READ -> READ; with EV_EOF and a socket error in fflags (a reset)
 *    -> READ|WRITE, as epoll reports EPOLLERR.  EV_EOF without an error is
 *    the peer's FIN or a pipe's last writer gone: READ, and read() says 0.
 *  - EVFILT_WRITE -> WRITE; with EV_EOF (the peer can take no more: reset,
 *    or a pipe's reader gone) -> READ|WRITE, as epoll's EPOLLERR/EPOLLHUP.
 *  - A read and a write filter that are both ready come as two events for
 *    the same fd (allowed by poller.h).
 * Closing an fd removes its kevents (kqueue(2)), so poller_del before
 * close() is not needed.  A kqueue is not inherited across fork(): each
 * process creates its own poller after forking.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "poller.h"
#include "poller_backend.h"

/* The tag travels in udata; 32-bit BSDs would need a side table. */
_Static_assert(sizeof(void *) >= sizeof(uint64_t),
               "poller_kqueue: udata cannot carry the 64-bit tag here");

/* NetBSD before 10 declares udata as intptr_t, everyone else as void *. */
#if defined(__NetBSD__) && defined(__NetBSD_Version__) && \
    __NetBSD_Version__ < 999001500
#define TAG_TO_UDATA(t) ((intptr_t)(t))
#else
#define TAG_TO_UDATA(t) ((void *)(uintptr_t)(t))
#endif

/* POLLER_KQUEUE_NO_RECEIPT: test knob for the path without EV_RECEIPT. */
#if defined(EV_RECEIPT) && !defined(POLLER_KQUEUE_NO_RECEIPT)
#define KQ_RECEIPT EV_RECEIPT
#else
#define KQ_RECEIPT 0
#endif

struct poller {
    int kq;
    pid_t owner;                /* the process that created kq */
    int cap;                    /* size of evs */
    struct kevent *evs;
};

poller_t *poller_create(int size_hint)
{
    poller_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cap = poller_batch(size_hint);
    p->evs = calloc((size_t)p->cap, sizeof(*p->evs));
    p->kq = kqueue();
    /* kqueue() has no close-on-exec flag before FreeBSD 14's kqueuex(). */
    if (!p->evs || p->kq == -1 || fcntl(p->kq, F_SETFD, FD_CLOEXEC) == -1)
        return poller_create_failed(p, p->evs, p->kq);
    p->owner = getpid();
    return p;
}

void poller_destroy(poller_t *p)
{
    if (!p)
        return;
    /* A kqueue is not inherited by fork() (kqueue(2)): in a child the
     * number may already name another descriptor, so only its creator
     * closes it; a child just frees the memory. */
    if (p->owner == getpid())
        close(p->kq);
    free(p->evs);
    free(p);
}

/* Apply n changes; res[i] gets change i's errno (0: done).  Returns the
 * first error, 0 if none, or -1 with errno when kevent() itself failed. */
static int apply(poller_t *p, const struct kevent *ch, int n, int *res)
{
    int first = 0;
#if KQ_RECEIPT
    /* One call: every change answered by an EV_ERROR receipt (data 0 on
     * success), and a failing one does not stop the others. */
    struct kevent out[2];
    int got = kevent(p->kq, ch, n, out, n, NULL);
    if (got == -1)
        return -1;
    for (int i = 0; i < n; i++)
        res[i] = EIO;           /* unanswered: should not happen */
    for (int i = 0; i < got; i++)
        for (int j = 0; j < n; j++)
            if (out[i].filter == ch[j].filter)
                res[j] = (out[i].flags & EV_ERROR) ? (int)out[i].data : 0;
#else
    /* No EV_RECEIPT (OpenBSD and NetBSD before 10 may lack it): one call
     * per change, each failing on its own. */
    for (int i = 0; i < n; i++)
        res[i] = kevent(p->kq, &ch[i], 1, NULL, 0, NULL) == -1 ? errno : 0;
#endif
    for (int i = 0; i < n && !first; i++)
        first = res[i];
    return first;
}

int poller_mod(poller_t *p, int fd, unsigned old_mask, unsigned new_mask,
               uint64_t data)
{
    static const short filters[2] = { EVFILT_READ, EVFILT_WRITE };
    static const unsigned bits[2] = { POLLER_READ, POLLER_WRITE };
    struct kevent ch[2];
    int n = 0, res[2];

    if (old_mask == new_mask)
        return 0;
    /* Every wanted filter is (re-)added, so both carry the new tag, as one
     * EPOLL_CTL_MOD would; unwanted ones that were registered go. */
    for (int i = 0; i < 2; i++) {
        if (new_mask & bits[i])
            EV_SET(&ch[n++], (uintptr_t)fd, filters[i], EV_ADD | KQ_RECEIPT,
                   0, 0, TAG_TO_UDATA(data));
        else if (old_mask & bits[i])
            EV_SET(&ch[n++], (uintptr_t)fd, filters[i],
                   EV_DELETE | KQ_RECEIPT, 0, 0, TAG_TO_UDATA(0));
    }
    int err = apply(p, ch, n, res);
    if (err <= 0)
        return err == 0 ? 0 : -errno;
    /* Undo what did take, so a failure leaves old_mask registered.  Filters
     * newly added are deleted; a delete that succeeded cannot be restored
     * with its old tag, so it stays done (it only happens together with a
     * failed add, i.e. on a descriptor that is going away). */
    for (int i = 0; i < n; i++) {
        unsigned bit = ch[i].filter == EVFILT_READ ? POLLER_READ : POLLER_WRITE;
        if (res[i] == 0 && (new_mask & bit) && !(old_mask & bit)) {
            struct kevent undo;
            EV_SET(&undo, (uintptr_t)fd, ch[i].filter, EV_DELETE, 0, 0,
                   TAG_TO_UDATA(0));
            (void)kevent(p->kq, &undo, 1, NULL, 0, NULL);
        }
    }
    return -err;
}

int poller_wait(poller_t *p, struct poller_event *events, int max,
                int timeout_ms)
{
    struct timespec ts, *tp = NULL;
    int n;

    if (max > p->cap)
        max = p->cap;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    n = kevent(p->kq, NULL, 0, p->evs, max, tp);
    if (n == -1)
        return -errno;
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &p->evs[i];
        unsigned mask;

        if (e->filter == EVFILT_READ)
            mask = POLLER_READ | (e->flags & EV_EOF && e->fflags ? POLLER_WRITE : 0);
        else
            mask = POLLER_WRITE | (e->flags & EV_EOF ? POLLER_READ : 0);
        events[i].data = (uint64_t)(uintptr_t)e->udata;
        events[i].mask = mask;
    }
    return n;
}

int poller_block_signal(poller_t *p, int sig)
{
    (void)p;
    (void)sig;
    return -ENOTSUP;
}

const char *poller_backend(void)
{
    return "kqueue";
}
