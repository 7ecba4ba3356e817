/*
 * ratelimit.c - fixed-window log-line limiter (see ratelimit.h).  Pure.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, uint32_t burst, uint32_t window_ms)
{
    rl->burst = burst;
    rl->window_ms = window_ms ? window_ms : RATELIMIT_WINDOW_MS;
    rl->passed = 0;
    rl->open = 0;
    rl->start_ms = 0;
    rl->suppressed = 0;
}

/* A clock that went backwards (it must not, being monotonic) keeps the
 * window open rather than wrapping the subtraction. */
static int window_over(const struct ratelimit *rl, uint64_t now_ms)
{
    return rl->open && now_ms >= rl->start_ms &&
           now_ms - rl->start_ms >= rl->window_ms;
}

/* Close an ended window; returns what it dropped (reported once). */
static uint64_t close_window(struct ratelimit *rl)
{
    uint64_t n = rl->suppressed;
    rl->open = 0;
    rl->passed = 0;
    rl->suppressed = 0;
    return n;
}

int ratelimit_allow(struct ratelimit *rl, uint64_t now_ms, uint64_t *summary)
{
    *summary = window_over(rl, now_ms) ? close_window(rl) : 0;
    if (!rl->open) {
        rl->open = 1;
        rl->start_ms = now_ms;
    }
    if (rl->passed < rl->burst) {
        rl->passed++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}

uint64_t ratelimit_flush(struct ratelimit *rl, uint64_t now_ms)
{
    return window_over(rl, now_ms) ? close_window(rl) : 0;
}

uint64_t ratelimit_due(const struct ratelimit *rl, uint64_t now_ms)
{
    if (!rl->open || window_over(rl, now_ms))
        return 0;
    if (now_ms < rl->start_ms)
        return rl->window_ms;
    return rl->window_ms - (now_ms - rl->start_ms);
}

int ratelimit_format(char *buf, size_t size, uint64_t count)
{
    return snprintf(buf, size, "%" PRIu64 " similar line%s suppressed", count,
                    count == 1 ? "" : "s");
}
