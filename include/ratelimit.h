/*
 * ratelimit.h - a log-line limiter: at most `burst` lines per window
 * (1 s: "at most N lines per second per worker"), then one summary line
 * "N similar lines suppressed" once the window has ended.  Pure: the time
 * is passed in (a monotonic clock in milliseconds), nothing is logged here.
 *
 * Fixed windows: a window opens at the first line after the previous one
 * ended and lasts window_ms, so a flood shows as `burst` lines, then a
 * summary per window it lasts.  Typical use, one limiter per worker (or per
 * kind of line):
 *
 *     uint64_t dropped;
 *     char sum[RATELIMIT_SUMMARY_MAX];
 *     if (ratelimit_allow(&rl, now_ms, &dropped)) {
 *         if (dropped && ratelimit_format(sum, sizeof(sum), dropped) > 0)
 *             log_info("%s", sum);
 *         log_info("client %s: line too long", addr);
 *     }
 *
 * and, from a timer (at least once per window while lines are dropped, so
 * the summary is not held back until the next line), ratelimit_flush().
 * Not thread-safe: one limiter per thread or process.
 */
#ifndef STAMPD_RATELIMIT_H
#define STAMPD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WINDOW_MS 1000
/* Longest summary line ratelimit_format() writes, NUL included. */
#define RATELIMIT_SUMMARY_MAX 48

struct ratelimit {
    uint32_t burst;          /* lines let through per window; 0: none */
    uint32_t window_ms;
    uint32_t passed;         /* lines let through in this window */
    int open;                /* a window has begun */
    uint64_t start_ms;       /* when this window opened */
    uint64_t suppressed;     /* lines dropped in this window */
};

/* `burst` lines per `window_ms` (window_ms 0 means RATELIMIT_WINDOW_MS). */
void ratelimit_init(struct ratelimit *rl, uint32_t burst, uint32_t window_ms);

/* A line is about to be logged at now_ms: 1 to log it, 0 to drop it (it is
 * counted).  *summary gets the count dropped in a window that has ended
 * and was not yet reported (0 if none); the caller logs it first.  A
 * summary only comes with a line that opens a new window, which is let
 * through whenever burst > 0, so the summary precedes the line it is
 * reported with. */
int ratelimit_allow(struct ratelimit *rl, uint64_t now_ms, uint64_t *summary);

/* The count dropped in a window that has ended by now_ms (0 if none, or if
 * the window is still open); it is reported once, here or by the next
 * ratelimit_allow(). */
uint64_t ratelimit_flush(struct ratelimit *rl, uint64_t now_ms);

/* Milliseconds from now_ms until the open window ends (0: none is open or
 * it has ended): when a timer should call ratelimit_flush(). */
uint64_t ratelimit_due(const struct ratelimit *rl, uint64_t now_ms);

/* "N similar lines suppressed" into buf (>= RATELIMIT_SUMMARY_MAX bytes
 * makes it whole); returns its length as snprintf() does. */
int ratelimit_format(char *buf, size_t size, uint64_t count);

#endif
