/*
 * clock.h - the per-loop cached clock.
 *
 * Each event loop calls clock_update() once per wakeup, right after the
 * poller returns (as nginx does after epoll_wait); everything handled in that
 * iteration uses the cached values, with one exception: a worker checks the
 * wall clock again after each client read, and rebuilds the cache only when
 * the shown second (or millisecond, for ISO stamps) changed, because a busy
 * iteration can cross a second boundary between the wakeup and a read
 * (clock_refresh()).  For ISO stamps that check is a read of the clock (one
 * vDSO call); for ctime stamps, where the second-boundary alarm runs
 * (clock_edge.h), it is one load of clock_edge_near, and the clock is read
 * only in the last CLOCK_EDGE_LEAD_MS of a second.  The formatted strings
 * are rebuilt only when their resolution ticks over: the ctime string and
 * the HTTP date once a second, the ISO string's milliseconds once a
 * millisecond (the rest of it once a second).  Never ctime() per reply.
 *
 * Freshness: the wall clock is read after the read that returned the
 * request, so the stamp is never older than the request; it is read before
 * the reply is written, so it is never newer than the reply.
 *
 * Wall time (CLOCK_REALTIME) is only for display; all timeouts run on
 * mono_ms (CLOCK_MONOTONIC) so that clock steps do not stretch or cut them.
 */
#ifndef STAMPD_CLOCK_H
#define STAMPD_CLOCK_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

/* Sample literals size the buffers. */
#define CLOCK_CTIME_LEN (sizeof("Mon Sep  5 22:29:12 2016") - 1)      /* 24 */
#define CLOCK_ISO_LEN   (sizeof("2016-09-05T22:29:12.345Z") - 1)      /* 24 */
#define CLOCK_HTTP_LEN  (sizeof("Mon, 05 Sep 2016 22:29:12 GMT") - 1) /* 29 */
#define CLOCK_PREFIX_LEN (CLOCK_CTIME_LEN + 3)                        /* "[" ts "] " */

enum time_format { TIME_CTIME = 0, TIME_ISO8601 };

struct clock_cache {
    int64_t mono_ms;   /* CLOCK_MONOTONIC, milliseconds */
    int64_t mono_ns;   /* the same instant in nanoseconds (latency stamps) */
    time_t sec;        /* wall clock, seconds */
    int ms;            /* wall clock, milliseconds within sec */
    char ctime_prefix[CLOCK_PREFIX_LEN + 1]; /* "[Mon Sep  5 22:29:12 2016] " */
    char iso_prefix[CLOCK_PREFIX_LEN + 1];   /* "[2016-09-05T22:29:12.345Z] " */
    char http_date[CLOCK_HTTP_LEN + 1];      /* IMF-fixdate, GMT */
    int valid;         /* strings have been built at least once */
    int edge;          /* the second-boundary alarm runs (clock_edge.h) */
    int64_t wall_mono_ns; /* wall minus monotonic clock at the last update */
};

/* The second-boundary alarm sets clock_edge_near this long before every
 * second boundary; clock_refresh() clears it once the clock shows a time
 * outside that window. */
#define CLOCK_EDGE_LEAD_MS 50
extern volatile sig_atomic_t clock_edge_near;

/* Pure: is the wall time t within CLOCK_EDGE_LEAD_MS of its next second? */
static inline int clock_edge_within(const struct timespec *t)
{
    return t->tv_nsec >= 1000000000L - CLOCK_EDGE_LEAD_MS * 1000000L;
}

/* Read both clocks and refresh what changed. */
void clock_update(struct clock_cache *c);

/* After a read, within a loop turn: one read of the wall clock, and
 * clock_update() only when the shown second (or, for ISO stamps in format
 * f, millisecond) changed since the cache was built.  A read may hold
 * bytes sent after the wake-up: a busy turn that crosses a second boundary
 * would otherwise stamp them with the previous second, older than the
 * request.  With c->edge and ctime stamps the clock is read only while
 * clock_edge_near is set. */
void clock_refresh(struct clock_cache *c, enum time_format f);

/* The pure part of clock_update(): take the given instants. */
void clock_set(struct clock_cache *c, const struct timespec *wall,
               const struct timespec *mono);

/* The stamp prefix for a format (27 bytes, NUL-terminated). */
static inline const char *clock_prefix(const struct clock_cache *c,
                                       enum time_format f)
{
    return f == TIME_ISO8601 ? c->iso_prefix : c->ctime_prefix;
}

/* Formatting, pure.  Each writes exactly the documented length plus a NUL
 * and never a newline.  Years past 9999 are clamped to the last second of
 * 9999 and years before 0 to the first of year 0, so the width never
 * changes (asctime() would overflow or fail there). */
void clock_fmt_ctime(const struct tm *tm, char out[CLOCK_CTIME_LEN + 1]);
void clock_fmt_iso(const struct tm *utc, int ms, char out[CLOCK_ISO_LEN + 1]);
void clock_fmt_http(const struct tm *utc, char out[CLOCK_HTTP_LEN + 1]);

int time_format_parse(const char *s); /* "ctime" / "iso8601"; -1 if unknown */

/* Direct reads, for code outside a loop's cached clock (the master's
 * supervision, log lines, start-up).  A loop reads clock_update() once per
 * wakeup instead. */
int64_t clock_mono_ms(void);   /* CLOCK_MONOTONIC, milliseconds */
int64_t clock_mono_ns(void);   /* CLOCK_MONOTONIC, nanoseconds */
int64_t clock_wall_ms(void);   /* CLOCK_REALTIME, milliseconds since the epoch */

#endif
