/*
 * reactor.h - what every event loop of stampd shares (the worker's,
 * worker.c; the master's, master.c, with the admin port, admin.c, inside
 * it; and the fuzzers that drive the worker's), so that the three loops
 * follow one set of rules:
 *
 *  - Signals reach a loop through a self-pipe: a handler sets its flags
 *    and calls reactor_signal_wake(); the loop registers the read end under
 *    TAG_SIGNAL (tags.h) and drains it when it turns, then acts on the
 *    flags.  Nothing but flag stores and the wake-up runs in a handler.
 *  - Accepting pauses on descriptor or memory exhaustion (EMFILE, ENFILE,
 *    ENOBUFS, ENOMEM): the listener's read interest is removed for
 *    ACCEPT_PAUSE_MS instead of spinning on a level-triggered listener that
 *    stays readable; each pause is counted and logged at most every 10 s.
 *  - A loop sleeps until its nearest timer (reactor_timer_*), rounded up a
 *    millisecond so that it never wakes just before a deadline and spins.
 *  - Interest changes are recorded only when the poller took them
 *    (reactor_interest); a connection whose change failed is closed and
 *    counted by its owner, because its registration no longer says what
 *    the code believes.
 *
 * The clock a loop reads once per wake-up (and a worker's wall clock once
 * more per read) is clock.h's; the tags are tags.h's.
 */
#ifndef STAMPD_REACTOR_H
#define STAMPD_REACTOR_H

#include <stdint.h>
#include <sys/socket.h>

#include "poller.h"
#include "tags.h"

/* --- signals --------------------------------------------------------------- */

struct reactor_signals {
    int rd, wr;                /* the self-pipe, -1 when closed */
};

/* Open the self-pipe (both ends non-blocking, close-on-exec) and make it
 * the one reactor_signal_wake() writes to.  0 or -errno. */
int reactor_signals_open(struct reactor_signals *s);
/* Install `handler` for each signal of the 0-terminated `sigs` (SIG_IGN
 * and SIG_DFL too), with sa_flags `flags` and nothing blocked. */
void reactor_signals_handle(void (*handler)(int), int flags, const int *sigs);
/* Async-signal-safe: one byte into the current self-pipe, if any. */
void reactor_signal_wake(void);
/* Read everything the pipe holds (the loop turns once for any number). */
void reactor_signals_drain(const struct reactor_signals *s);
/* Close both ends; the wake-up goes nowhere after this (also right in a
 * forked child that drops its parent's pipe). */
void reactor_signals_close(struct reactor_signals *s);

/* --- accepting ------------------------------------------------------------- */

#define ACCEPT_PAUSE_MS 100    /* after EMFILE, ENFILE, ENOBUFS or ENOMEM */

struct accept_gate {
    int64_t resume_at;         /* CLOCK_MONOTONIC ms; 0 unless paused */
    long long log_at;          /* rate limit of the log lines */
    const char *who;           /* names the listener(s) in log lines */
    uint64_t *pauses;          /* counted with a relaxed store, or NULL */
    uint64_t *errors;          /* other accept failures, or NULL */
};

/* reactor_accept()'s results other than a descriptor. */
enum {
    ACCEPT_DRY = -1,           /* the queue is empty */
    ACCEPT_PAUSED = -2,        /* descriptors or memory ran out: paused */
    ACCEPT_FAILED = -3,        /* another error (counted, logged) */
    ACCEPT_AGAIN = -4,         /* transient (EINTR, ECONNABORTED, EPROTO):
                                * the next call may succeed */
};

/* Accept one connection on lfd: a non-blocking, close-on-exec fd, or one
 * of the results above.  On ACCEPT_PAUSED the gate is paused until now_ms +
 * ACCEPT_PAUSE_MS: the caller removes its listeners' read interest and
 * restores it when reactor_accept_resume() says so.  On ACCEPT_FAILED the
 * caller stops accepting on lfd for this turn. */
int reactor_accept(struct accept_gate *g, int lfd, int64_t now_ms);
/* The same, with the peer's address into *peer (compat_accept_peer). */
int reactor_accept_peer(struct accept_gate *g, int lfd, int64_t now_ms,
                        struct sockaddr_storage *peer);
/* 1 once, when a pause has ended by now_ms (the gate is open again). */
int reactor_accept_resume(struct accept_gate *g, int64_t now_ms);

static inline int reactor_accept_paused(const struct accept_gate *g)
{
    return g->resume_at != 0;
}

/* --- timers ---------------------------------------------------------------- */

/* A loop's nearest timer, in milliseconds from now: start from -1 (none)
 * and fold in each timer. */
/* A timer due in `in_ms` (< 0: none). */
static inline void reactor_timer_in(int64_t *t, int64_t in_ms)
{
    if (in_ms >= 0 && (*t < 0 || in_ms < *t))
        *t = in_ms;
}

/* A timer due at monotonic `at_ms` (0: none); one already due counts 0. */
static inline void reactor_timer_at(int64_t *t, int64_t at_ms, int64_t now_ms)
{
    if (at_ms)
        reactor_timer_in(t, at_ms > now_ms ? at_ms - now_ms : 0);
}

/* The poller timeout for the nearest timer t: t + 1 (the poller rounds
 * down, and waking a millisecond early would spin once more without
 * expiring anything), at most cap_ms; cap_ms when there is none. */
static inline int reactor_wait_ms(int64_t t, int cap_ms)
{
    return t < 0 || t >= cap_ms ? cap_ms : (int)t + 1;
}

/* --- interest -------------------------------------------------------------- */

/* Change fd's registered interest from *mask to want (tagged `tag`).
 * *mask takes the new value only when the poller accepted it.  0, or the
 * poller's negative errno: the caller closes the connection and counts it
 * (a listener-like socket drops what it held and carries on). */
int reactor_interest(poller_t *p, int fd, unsigned *mask, unsigned want,
                     uint64_t tag);

#endif
