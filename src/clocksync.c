/*
 * clocksync.c - clock discipline reader and evaluation (see clocksync.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

#include "clocksync.h"
#include "fault.h"

void clocksync_from_timex(struct clocksync_state *out, int rc,
                          const struct timex *tx)
{
    memset(out, 0, sizeof(*out));
    out->valid = true;
    out->kernel_state = rc;
    out->status = tx->status;
    out->synchronized = !(tx->status & STA_UNSYNC) && rc != TIME_ERROR;
    out->max_error_seconds = (double)tx->maxerror / 1e6;
    out->estimated_error_seconds = (double)tx->esterror / 1e6;
    out->offset_seconds = (double)tx->offset /
                          ((tx->status & STA_NANO) ? 1e9 : 1e6);
}

int clocksync_read(struct clocksync_state *out, clocksync_adjtimex_fn fn)
{
    struct timex tx;
    memset(&tx, 0, sizeof(tx));     /* modes 0: read only */
    int rc = (fn ? fn : fault_adjtimex)(&tx);
    if (rc == -1) {
        int e = errno;
        memset(out, 0, sizeof(*out));
        out->error = e;
        return -e;
    }
    clocksync_from_timex(out, rc, &tx);
    return 0;
}

static enum clocksync_log say(char *line, size_t size, enum clocksync_log lvl,
                              const char *what, const struct clocksync_state *s)
{
    snprintf(line, size, "%s (maximum error %.6f s, estimated error %.6f s, "
             "offset %.6f s)", what, s->max_error_seconds,
             s->estimated_error_seconds, s->offset_seconds);
    return lvl;
}

enum clocksync_log clocksync_evaluate(const struct clocksync_state *prev,
                                      const struct clocksync_state *now,
                                      double max_error_limit,
                                      char *line, size_t size)
{
    bool was_read = prev && prev->valid;
    if (size)
        line[0] = '\0';
    if (!now->valid) {
        if (prev && !prev->valid)
            return CLOCKSYNC_LOG_NONE;
        snprintf(line, size, "cannot read the clock discipline state: %s",
                 strerror(now->error));
        return CLOCKSYNC_LOG_WARNING;
    }
    bool was_synced = was_read && prev->synchronized;
    if (!now->synchronized)
        return was_read && !was_synced ? CLOCKSYNC_LOG_NONE
               : say(line, size, CLOCKSYNC_LOG_WARNING, "clock unsynchronised",
                     now);
    /* Synchronised now: a previous bad state ends, or the limit is crossed. */
    bool was_over = was_synced && prev->max_error_seconds > max_error_limit;
    bool over = now->max_error_seconds > max_error_limit;
    if (over && (!was_synced || !was_over)) {
        char what[96];
        snprintf(what, sizeof(what), "clock maximum error exceeds the limit "
                 "of %.6f s", max_error_limit);
        return say(line, size, CLOCKSYNC_LOG_WARNING, what, now);
    }
    if (was_read && !was_synced)
        return say(line, size, CLOCKSYNC_LOG_INFO, "clock synchronised again",
                   now);
    if (was_over && !over)
        return say(line, size, CLOCKSYNC_LOG_INFO,
                   "clock maximum error back within the limit", now);
    return CLOCKSYNC_LOG_NONE;
}
