/*
 * clock.c - the per-loop cached clock (see clock.h).
 *
 * clock_update() costs two vDSO clock_gettime() calls per loop wakeup; the
 * strings are rebuilt only when their resolution ticks over.  localtime_r()
 * (the only libc call that may look at TZ files) runs at most once a second.
 */
#include <limits.h>
#include <string.h>

#include "clock.h"

/* The UTC instants where clock_fmt_iso() stops clamping: its millisecond
 * digits are live only in [0000-01-01T00:00:00Z, 10000-01-01T00:00:00Z). */
#define ISO_FIRST_SEC ((time_t)-62167219200LL)
#define ISO_END_SEC   ((time_t)253402300800LL)

static const char day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char mon_names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

static void put3(char *p, int v)
{
    p[0] = (char)('0' + v / 100 % 10);
    put2(p + 1, v % 100);
}

static void put4(char *p, int v)
{
    put2(p, v / 100);
    put2(p + 2, v % 100);
}

/* The fields a fixed-width format can show.  Out-of-range years become the
 * nearest representable instant, so the width never changes and no stray
 * byte (asctime's LF, a minus sign, a fifth digit) can appear. */
struct fields {
    int year, mon, mday, hour, min, sec, wday;
};

static void clamp(const struct tm *tm, struct fields *f)
{
    long year = (long)tm->tm_year + 1900;

    if (year > 9999) {
        *f = (struct fields){ 9999, 11, 31, 23, 59, 59, 5 }; /* a Friday */
        return;
    }
    if (year < 0) {
        *f = (struct fields){ 0, 0, 1, 0, 0, 0, 6 }; /* 1 Jan 0000, Saturday */
        return;
    }
    f->year = (int)year;
    f->mon = tm->tm_mon >= 0 && tm->tm_mon < 12 ? tm->tm_mon : 0;
    f->mday = tm->tm_mday >= 1 && tm->tm_mday <= 31 ? tm->tm_mday : 1;
    f->hour = tm->tm_hour >= 0 && tm->tm_hour < 24 ? tm->tm_hour : 0;
    f->min = tm->tm_min >= 0 && tm->tm_min < 60 ? tm->tm_min : 0;
    /* 60 is a leap second, which strftime also shows. */
    f->sec = tm->tm_sec >= 0 && tm->tm_sec <= 60 ? tm->tm_sec : 0;
    f->wday = tm->tm_wday >= 0 && tm->tm_wday < 7 ? tm->tm_wday : 0;
}

/* "22:29:12" (8 bytes), common to all three formats. */
static void put_hms(char *p, const struct fields *f)
{
    put2(p, f->hour);
    p[2] = ':';
    put2(p + 3, f->min);
    p[5] = ':';
    put2(p + 6, f->sec);
}

/* "Mon Sep  5 22:29:12 2016": asctime()'s layout, day space-padded. */
void clock_fmt_ctime(const struct tm *tm, char out[CLOCK_CTIME_LEN + 1])
{
    struct fields f;

    clamp(tm, &f);
    memcpy(out, day_names[f.wday], 3);
    out[3] = ' ';
    memcpy(out + 4, mon_names[f.mon], 3);
    out[7] = ' ';
    out[8] = f.mday < 10 ? ' ' : (char)('0' + f.mday / 10);
    out[9] = (char)('0' + f.mday % 10);
    out[10] = ' ';
    put_hms(out + 11, &f);
    out[19] = ' ';
    put4(out + 20, f.year);
    out[24] = '\0';
}

/* "2016-09-05T22:29:12.345Z" */
void clock_fmt_iso(const struct tm *utc, int ms, char out[CLOCK_ISO_LEN + 1])
{
    struct fields f;

    clamp(utc, &f);
    if ((long)utc->tm_year + 1900 > 9999)
        ms = 999;
    else if ((long)utc->tm_year + 1900 < 0 || ms < 0 || ms > 999)
        ms = 0;
    put4(out, f.year);
    out[4] = '-';
    put2(out + 5, f.mon + 1);
    out[7] = '-';
    put2(out + 8, f.mday);
    out[10] = 'T';
    put_hms(out + 11, &f);
    out[19] = '.';
    put3(out + 20, ms);
    out[23] = 'Z';
    out[24] = '\0';
}

/* IMF-fixdate (RFC 9110 5.6.7): "Mon, 05 Sep 2016 22:29:12 GMT" */
void clock_fmt_http(const struct tm *utc, char out[CLOCK_HTTP_LEN + 1])
{
    struct fields f;

    clamp(utc, &f);
    memcpy(out, day_names[f.wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, f.mday);
    out[7] = ' ';
    memcpy(out + 8, mon_names[f.mon], 3);
    out[11] = ' ';
    put4(out + 12, f.year);
    out[16] = ' ';
    put_hms(out + 17, &f);
    memcpy(out + 25, " GMT", 4);
    out[29] = '\0';
}

int time_format_parse(const char *s)
{
    if (strcmp(s, "ctime") == 0)
        return TIME_CTIME;
    if (strcmp(s, "iso8601") == 0)
        return TIME_ISO8601;
    return -1;
}

/* localtime_r()/gmtime_r() fail (EOVERFLOW) only when the year does not fit
 * an int: hand clamp() a year past the right end instead of the zeroed
 * struct's 1900. */
static void tm_overflow(struct tm *tm, time_t t)
{
    memset(tm, 0, sizeof(*tm));
    tm->tm_year = t > 0 ? INT_MAX : INT_MIN;
}

static void bracket(char *dst, const char *ts)
{
    dst[0] = '[';
    memcpy(dst + 1, ts, CLOCK_CTIME_LEN);
    dst[CLOCK_CTIME_LEN + 1] = ']';
    dst[CLOCK_CTIME_LEN + 2] = ' ';
    dst[CLOCK_PREFIX_LEN] = '\0';
}

void clock_set(struct clock_cache *c, const struct timespec *wall,
               const struct timespec *mono)
{
    int ms = (int)(wall->tv_nsec / 1000000);

    c->mono_ns = (int64_t)mono->tv_sec * 1000000000 + mono->tv_nsec;
    c->mono_ms = c->mono_ns / 1000000;
    c->wall_mono_ns = (int64_t)wall->tv_sec * 1000000000 + wall->tv_nsec -
                      c->mono_ns;
    if (!c->valid || wall->tv_sec != c->sec) {
        struct tm local, utc;
        char buf[CLOCK_ISO_LEN + 1];

        if (!localtime_r(&wall->tv_sec, &local))
            tm_overflow(&local, wall->tv_sec);
        if (!gmtime_r(&wall->tv_sec, &utc))
            tm_overflow(&utc, wall->tv_sec);
        clock_fmt_ctime(&local, buf);
        bracket(c->ctime_prefix, buf);
        clock_fmt_iso(&utc, ms, buf);
        bracket(c->iso_prefix, buf);
        clock_fmt_http(&utc, c->http_date);
        c->sec = wall->tv_sec;
        c->ms = ms;
        c->valid = 1;
    } else if (ms != c->ms) {
        /* Same second: only the three millisecond digits move.  Offset 1
         * for the bracket, 20 into the ISO string.  A clamped instant keeps
         * the digits clock_fmt_iso() gave it. */
        if (wall->tv_sec >= ISO_FIRST_SEC && wall->tv_sec < ISO_END_SEC)
            put3(c->iso_prefix + 1 + 20, ms);
        c->ms = ms;
    }
}

void clock_update(struct clock_cache *c)
{
    struct timespec wall, mono;

    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_set(c, &wall, &mono);
}

/* Set by the second-boundary alarm (clock_edge.c), and at start: until the
 * alarm has run once, every check reads the clock. */
volatile sig_atomic_t clock_edge_near = 1;

void clock_refresh(struct clock_cache *c, enum time_format f)
{
    struct timespec wall;

    if (c->edge && f == TIME_CTIME) {
        if (!clock_edge_near)
            return;
        /* Cleared before the read: an alarm that comes in between sets it
         * again, and a read inside the window sets it back. */
        clock_edge_near = 0;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        clock_gettime(CLOCK_REALTIME, &wall);
        if (clock_edge_within(&wall))
            clock_edge_near = 1;
    } else {
        clock_gettime(CLOCK_REALTIME, &wall);
    }
    if (wall.tv_sec != c->sec ||
        (f == TIME_ISO8601 && wall.tv_nsec / 1000000 != c->ms))
        clock_update(c);
}

static int64_t read_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ns(void)
{
    return read_ns(CLOCK_MONOTONIC);
}

int64_t clock_mono_ms(void)
{
    return read_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t clock_wall_ms(void)
{
    return read_ns(CLOCK_REALTIME) / 1000000;
}
