/*
 * poller.h - the readiness interface every event loop in stampd uses.
 *
 * One backend is compiled in, chosen at build time: poller_epoll.c on Linux,
 * poller_kqueue.c where <sys/event.h> exists.  A backend only translates the
 * kernel's notion of readiness into POLLER_READ / POLLER_WRITE bits; policy
 * (what to do on readiness) lives in the caller.
 *
 * Contracts shared by all backends:
 *  - Registrations are level-triggered: an fd that stays readable is reported
 *    on every poller_wait() until it is drained or its interest removed.
 *  - An error or hang-up condition is reported as POLLER_READ|POLLER_WRITE
 *    (restricted to what was registered is NOT done), so whichever handler
 *    runs first observes it through read()/write() returning the error.
 *  - The caller owns the registered mask and passes it back (old_mask): the
 *    kqueue backend needs it to know which filters to add or delete, and it
 *    lets the epoll backend pick ADD/MOD/DEL without keeping its own table.
 *  - One fd may appear in more than one event of a batch (kqueue reports
 *    its read and write filters separately); handlers must cope.
 *  - `data` is returned verbatim in the event; callers tag it with an fd
 *    generation so that events for a closed-and-reused fd can be recognised.
 *  - Functions return 0 (or a count) on success and a negative errno value on
 *    failure; they never exit or log.
 */
#ifndef STAMPD_POLLER_H
#define STAMPD_POLLER_H

#include <stdint.h>

#define POLLER_READ  1u
#define POLLER_WRITE 2u

struct poller_event {
    uint64_t data;
    unsigned mask; /* POLLER_READ | POLLER_WRITE */
};

typedef struct poller poller_t;

/* size_hint: expected number of fds (a hint, not a limit).  NULL + errno. */
poller_t *poller_create(int size_hint);
/* Release p.  Also right in a forked child that must drop its parent's
 * poller: an epoll fd is inherited and closed, a kqueue is not inherited
 * (kqueue(2)) and only freed. */
void poller_destroy(poller_t *p);

/* Change fd's interest from old_mask to new_mask (either may be 0: from 0
 * this registers, to 0 this unregisters).  No syscall if nothing changes. */
int poller_mod(poller_t *p, int fd, unsigned old_mask, unsigned new_mask,
               uint64_t data);
/* Register fd with a non-zero mask: a change from no interest. */
static inline int poller_add(poller_t *p, int fd, unsigned mask, uint64_t data)
{
    return poller_mod(p, fd, 0, mask, data);
}
/* Remove fd (registered with old_mask): a change to no interest.  Closing
 * an fd also removes it on both backends, so callers that close need not
 * call this first. */
static inline int poller_del(poller_t *p, int fd, unsigned old_mask)
{
    return poller_mod(p, fd, old_mask, 0, 0);
}
/* Wait up to timeout_ms (-1: forever) and fill at most max events.
 * Returns the count (0 on timeout) or -EINTR when a signal interrupted. */
int poller_wait(poller_t *p, struct poller_event *events, int max,
                int timeout_ms);
/* Keep signal sig blocked while p waits (it is delivered as the wait
 * returns), so that a periodic signal does not wake an idle loop.  0, or
 * -ENOTSUP where the backend cannot (kqueue: the signal interrupts the
 * wait as any other does). */
int poller_block_signal(poller_t *p, int sig);
/* "epoll" or "kqueue", for logs and the admin page. */
const char *poller_backend(void);

#endif
