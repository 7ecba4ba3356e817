/*
 * clocksync.h - the kernel's clock discipline state (what NTP/chrony
 * maintain through adjtimex(2)): is the clock synchronised, and how far off
 * may it be.  A timestamp service reports it (metrics, /stats) and warns
 * when it goes bad.
 *
 * Reading: clocksync_read() calls adjtimex() with modes = 0 (read only, no
 * privilege needed) through a function the caller may replace (unit tests
 * pass a fake); by default through fault_adjtimex() (fault.h), which is the
 * real adjtimex() except in a FAULT_INJECTION build, where
 * STAMPD_FAULT_ADJTIMEX_FILE can feed chosen results.
 *
 * Meaning of the kernel's answer (adjtimex(2), RFC 5905 / the NTP kernel
 * model): the clock is synchronised when STA_UNSYNC is clear and the
 * return value is not TIME_ERROR; maxerror is the worst-case error the
 * kernel admits (it grows by 500 us per second without NTP updates and
 * stops at 16 s, which is what an unsynchronised clock reports); esterror
 * the estimated error; offset the last offset NTP applied (ns with
 * STA_NANO, else us).
 *
 * Evaluation is pure: clocksync_evaluate() compares two readings against
 * the --clock-max-error threshold and says whether to log, at which level,
 * and what.
 */
#ifndef STAMPD_CLOCKSYNC_H
#define STAMPD_CLOCKSYNC_H

#include <stdbool.h>
#include <stddef.h>

struct timex;

struct clocksync_state {
    bool valid;                     /* the read worked; else all zero */
    bool synchronized;
    double max_error_seconds;
    double estimated_error_seconds;
    double offset_seconds;
    int kernel_state;               /* adjtimex() result: TIME_OK .. TIME_ERROR */
    int status;                     /* STA_* bits */
    int error;                      /* errno of a failed read, else 0 */
};

/* adjtimex() or a stand-in: fills tx (modes 0 on entry), returns the clock
 * state or -1 with errno set. */
typedef int (*clocksync_adjtimex_fn)(struct timex *tx);

/* Read the state through fn (NULL: the kernel, via fault_adjtimex()).
 * Returns 0, or -errno with out->valid false and out->error set. */
int clocksync_read(struct clocksync_state *out, clocksync_adjtimex_fn fn);

/* Convert one adjtimex() answer (pure; what clocksync_read() uses). */
void clocksync_from_timex(struct clocksync_state *out, int rc,
                          const struct timex *tx);

enum clocksync_log {
    CLOCKSYNC_LOG_NONE = 0,
    CLOCKSYNC_LOG_WARNING,   /* became unsynchronised, error over the limit,
                                or the state cannot be read */
    CLOCKSYNC_LOG_INFO,      /* back to normal */
};

#define CLOCKSYNC_LINE_MAX 160

/* What changed from prev (NULL: this is the first reading) to now, given
 * the maximum error allowed (--clock-max-error, seconds):
 *  - WARNING "clock unsynchronised (...)" when now is unsynchronised and
 *    prev was synchronised (or is NULL, or unreadable);
 *  - WARNING "clock maximum error exceeds the limit of Y s (...)" when
 *    the maximum error goes from <= limit to > limit on a synchronised
 *    clock (or is over it when the clock becomes synchronised);
 *  - WARNING "cannot read the clock discipline state: ..." when a read
 *    first fails;
 *  - INFO "clock synchronised again (...)" / "clock maximum error back
 *    within the limit (...)" on the way back;
 * where (...) is "(maximum error X s, estimated error X s, offset X s)".
 *  - NONE otherwise (a state that stays bad is reported once).
 * The line (without a trailing newline) goes to line[0..size). */
enum clocksync_log clocksync_evaluate(const struct clocksync_state *prev,
                                      const struct clocksync_state *now,
                                      double max_error_limit,
                                      char *line, size_t size);

#endif
