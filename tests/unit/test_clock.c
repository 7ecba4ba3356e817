/*
 * test_clock.c - the cached clock and its formatters (src/clock.c), checked
 * against libc's asctime_r() and strftime() for many instants and time
 * zones (DST changes included), plus the cache's update rules and the
 * fixed-width clamping at the ends of the year range.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"
#include "clock.h"
#include "clock_edge.h"

#define T_1970 ((time_t)0)
#define T_10000 ((time_t)253402300800)   /* 10000-01-01T00:00:00Z */

static const char *const zones[] = {
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
    "Asia/Kolkata",
};

static void set_tz(const char *tz)
{
    assert_int_equal(setenv("TZ", tz, 1), 0);
    tzset();
}

/* The width promise: exactly len bytes, NUL-terminated, no LF anywhere. */
static void assert_shape(const char *s, size_t len)
{
    assert_int_equal(strlen(s), len);
    assert_null(memchr(s, '\n', len));
}

static void expect_ctime(time_t t)
{
    struct tm tm;
    char want[64], got[CLOCK_CTIME_LEN + 1];

    assert_non_null(localtime_r(&t, &tm));
    assert_non_null(asctime_r(&tm, want));
    /* asctime's 24 bytes and its LF; years 1000..9999 keep that width. */
    assert_int_equal(strlen(want), 25);
    assert_int_equal(want[24], '\n');
    want[24] = '\0';
    memset(got, 'X', sizeof(got));
    clock_fmt_ctime(&tm, got);
    assert_shape(got, CLOCK_CTIME_LEN);
    if (strcmp(got, want) != 0)
        fail_msg("t=%lld TZ=%s: got '%s', asctime '%s'", (long long)t,
                 getenv("TZ"), got, want);
}

static void expect_utc(time_t t, int ms)
{
    struct tm tm;
    char want[64], got[CLOCK_HTTP_LEN + 1];
    size_t n;

    assert_non_null(gmtime_r(&t, &tm));
    n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
    assert_int_equal(n, 19);
    snprintf(want + n, sizeof(want) - n, ".%03dZ", ms);
    memset(got, 'X', sizeof(got));
    clock_fmt_iso(&tm, ms, got);
    assert_shape(got, CLOCK_ISO_LEN);
    if (strcmp(got, want) != 0)
        fail_msg("t=%lld: iso got '%s', strftime '%s'", (long long)t, got, want);

    n = strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_int_equal(n, 29);
    memset(got, 'X', sizeof(got));
    clock_fmt_http(&tm, got);
    assert_shape(got, CLOCK_HTTP_LEN);
    if (strcmp(got, want) != 0)
        fail_msg("t=%lld: http got '%s', strftime '%s'", (long long)t, got, want);
}

/* --- fixed instants, spelled out --------------------------------------- */

static void fmt_all(time_t t, int ms, char *ct, char *iso, char *http)
{
    struct tm loc, utc;

    assert_non_null(localtime_r(&t, &loc));
    assert_non_null(gmtime_r(&t, &utc));
    clock_fmt_ctime(&loc, ct);
    clock_fmt_iso(&utc, ms, iso);
    clock_fmt_http(&utc, http);
}

static void test_known_instants(void **state)
{
    (void)state;
    char ct[CLOCK_CTIME_LEN + 1], iso[CLOCK_ISO_LEN + 1], http[CLOCK_HTTP_LEN + 1];

    set_tz("UTC");
    fmt_all(T_1970, 0, ct, iso, http);
    assert_string_equal(ct, "Thu Jan  1 00:00:00 1970");
    assert_string_equal(iso, "1970-01-01T00:00:00.000Z");
    assert_string_equal(http, "Thu, 01 Jan 1970 00:00:00 GMT");

    /* The protocol's examples; the day of month is space-padded in ctime,
     * zero-padded in ISO and HTTP. */
    fmt_all(1473114552, 345, ct, iso, http);
    assert_string_equal(ct, "Mon Sep  5 22:29:12 2016");
    assert_string_equal(iso, "2016-09-05T22:29:12.345Z");
    assert_string_equal(http, "Mon, 05 Sep 2016 22:29:12 GMT");
    fmt_all(1473976152, 7, ct, iso, http);
    assert_string_equal(ct, "Thu Sep 15 21:49:12 2016");
    assert_string_equal(iso, "2016-09-15T21:49:12.007Z");

    /* Past the 32-bit time_t range. */
    fmt_all((time_t)INT32_MAX, 999, ct, iso, http);
    assert_string_equal(ct, "Tue Jan 19 03:14:07 2038");
    fmt_all((time_t)INT32_MAX + 1, 0, ct, iso, http);
    assert_string_equal(ct, "Tue Jan 19 03:14:08 2038");
    assert_string_equal(iso, "2038-01-19T03:14:08.000Z");
    assert_string_equal(http, "Tue, 19 Jan 2038 03:14:08 GMT");
    fmt_all((time_t)UINT32_MAX + 1, 0, ct, iso, http);
    assert_string_equal(ct, "Sun Feb  7 06:28:16 2106");

    /* The last second that fits. */
    fmt_all(T_10000 - 1, 999, ct, iso, http);
    assert_string_equal(ct, "Fri Dec 31 23:59:59 9999");
    assert_string_equal(iso, "9999-12-31T23:59:59.999Z");
    assert_string_equal(http, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Leap day. */
    fmt_all(951782400, 0, ct, iso, http);
    assert_string_equal(ct, "Tue Feb 29 00:00:00 2000");

    /* Local time in other zones. */
    set_tz("Asia/Kolkata");
    fmt_all(1473114552, 0, ct, iso, http);
    assert_string_equal(ct, "Tue Sep  6 03:59:12 2016");
    assert_string_equal(iso, "2016-09-05T22:29:12.000Z");  /* ISO stays UTC */
    set_tz("Europe/Berlin");
    fmt_all(1711846799, 0, ct, iso, http);   /* 2024-03-31 00:59:59Z */
    assert_string_equal(ct, "Sun Mar 31 01:59:59 2024");
    fmt_all(1711846800, 0, ct, iso, http);   /* the clocks jump an hour */
    assert_string_equal(ct, "Sun Mar 31 03:00:00 2024");
    set_tz("Australia/Lord_Howe");           /* a 30-minute DST shift */
    fmt_all(1712415599, 0, ct, iso, http);   /* 2024-04-06 14:59:59Z */
    assert_string_equal(ct, "Sun Apr  7 01:59:59 2024");
    fmt_all(1712415600, 0, ct, iso, http);
    assert_string_equal(ct, "Sun Apr  7 01:30:00 2024");
    set_tz("UTC");
}

/* --- against libc ---------------------------------------------------------- */

static void test_random_instants(void **state)
{
    (void)state;
    enum { N = 100000 };
    const uint64_t span = (uint64_t)(T_10000 - 1);
    uint64_t seed = 0xc10c4ull;

    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        set_tz(zones[z]);
        for (int i = 0; i < N; i++) {
            uint64_t x = unit_rand(&seed);
            time_t t;
            /* Half uniform over 1970..9999, half near now (where DST rules
             * are dense and real), some before 1970 back to year 1000. */
            switch (i % 4) {
            case 0:
            case 1:
                t = (time_t)(x % span);
                break;
            case 2:
                t = (time_t)(1000000000 + x % 1500000000);
                break;
            default:
                t = -(time_t)(x % 30610224000ull);   /* down to 1000-01-01 */
                break;
            }
            /* A zone's offset may push the last UTC instants past 9999. */
            if (t > T_10000 - 2 * 86400)
                t = T_10000 - 2 * 86400;
            expect_ctime(t);
            if (z == 0)
                expect_utc(t, (int)(x >> 40) % 1000);
        }
    }
    set_tz("UTC");
}

/* Find each second at which the UTC offset changes in [from, to), then
 * check the formatting at and around it. */
static int check_transitions(time_t from, time_t to)
{
    struct tm a, b;
    int found = 0;

    for (time_t t = from; t < to; t += 1800) {
        time_t lo = t, hi = t + 1800;
        assert_non_null(localtime_r(&lo, &a));
        assert_non_null(localtime_r(&hi, &b));
        if (a.tm_gmtoff == b.tm_gmtoff)
            continue;
        /* Bisect to the first second with the new offset. */
        while (hi - lo > 1) {
            time_t mid = lo + (hi - lo) / 2;
            struct tm m;
            assert_non_null(localtime_r(&mid, &m));
            if (m.tm_gmtoff == a.tm_gmtoff)
                lo = mid;
            else
                hi = mid;
        }
        for (time_t d = -3; d <= 3; d++)
            expect_ctime(hi + d);
        for (time_t d = -7200; d <= 7200; d += 599)
            expect_ctime(hi + d);
        found++;
    }
    return found;
}

static void test_dst_changes(void **state)
{
    (void)state;
    const time_t y2024 = 1704067200, y2025 = 1735689600;

    set_tz("UTC");
    assert_int_equal(check_transitions(y2024, y2025), 0);
    set_tz("Asia/Kolkata");
    assert_int_equal(check_transitions(y2024, y2025), 0);
    /* Two changes a year where DST is observed (Lord Howe's by 30 min). */
    for (size_t z = 1; z <= 3; z++) {
        set_tz(zones[z]);
        assert_int_equal(check_transitions(y2024, y2025), 2);
        /* And the years around 2038 and far ahead, where the zone file's
         * POSIX rule takes over. */
        assert_int_equal(check_transitions(2145916800, 2177452800), 2); /* 2038 */
        assert_int_equal(check_transitions(4102444800, 4133980800), 2); /* 2100 */
        assert_true(check_transitions(0, 86400 * 366 * 30) >= 1);
    }
    set_tz("UTC");
}

/* --- the clamps --------------------------------------------------------- */

static void test_out_of_range_years(void **state)
{
    (void)state;
    char ct[CLOCK_CTIME_LEN + 1], iso[CLOCK_ISO_LEN + 1], http[CLOCK_HTTP_LEN + 1];
    struct tm tm;
    static const time_t late[] = {
        T_10000, T_10000 + 1, T_10000 + 86400 * 400, (time_t)1 << 40,
        (time_t)67767976233316800ll,  /* near the end of a 32-bit tm_year */
    };

    set_tz("UTC");
    for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
        fmt_all(late[i], 123, ct, iso, http);
        assert_string_equal(ct, "Fri Dec 31 23:59:59 9999");
        assert_string_equal(iso, "9999-12-31T23:59:59.999Z");
        assert_string_equal(http, "Fri, 31 Dec 9999 23:59:59 GMT");
    }
    /* Years 10000+ given directly, up to the largest tm_year. */
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = 1;
    for (int y = 10000 - 1900; y < INT_MAX / 2; y = y * 2 + 1) {
        tm.tm_year = y;
        clock_fmt_ctime(&tm, ct);
        assert_string_equal(ct, "Fri Dec 31 23:59:59 9999");
    }
    tm.tm_year = INT_MAX;
    clock_fmt_ctime(&tm, ct);
    assert_string_equal(ct, "Fri Dec 31 23:59:59 9999");
    clock_fmt_iso(&tm, 5, iso);
    assert_string_equal(iso, "9999-12-31T23:59:59.999Z");
    clock_fmt_http(&tm, http);
    assert_string_equal(http, "Fri, 31 Dec 9999 23:59:59 GMT");

    /* Negative years: the first instant of year 0, never a minus sign. */
    int neg[] = { -1901, -1900 - 44, -10000, INT_MIN };
    for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
        tm.tm_year = neg[i];
        clock_fmt_ctime(&tm, ct);
        assert_string_equal(ct, "Sat Jan  1 00:00:00 0000");
        clock_fmt_iso(&tm, 999, iso);
        assert_string_equal(iso, "0000-01-01T00:00:00.000Z");
        clock_fmt_http(&tm, http);
        assert_string_equal(http, "Sat, 01 Jan 0000 00:00:00 GMT");
    }
    /* The same through gmtime for an instant in year -1; year 0 itself is
     * shown as it is. */
    fmt_all((time_t)-62167219200ll - 1, 1, ct, iso, http);
    assert_string_equal(ct, "Sat Jan  1 00:00:00 0000");
    assert_string_equal(iso, "0000-01-01T00:00:00.000Z");
    fmt_all((time_t)-62167219200ll, 1, ct, iso, http);
    assert_string_equal(ct, "Sat Jan  1 00:00:00 0000");
    assert_string_equal(iso, "0000-01-01T00:00:00.001Z");
    fmt_all((time_t)-62167219200ll + 86400 * 366 - 1, 2, ct, iso, http);
    assert_string_equal(ct, "Sun Dec 31 23:59:59 0000");

    /* Years below 1000 keep four digits. */
    fmt_all((time_t)-62135596800ll, 0, ct, iso, http);   /* 0001-01-01 */
    assert_string_equal(ct, "Mon Jan  1 00:00:00 0001");
    assert_string_equal(iso, "0001-01-01T00:00:00.000Z");
    assert_string_equal(http, "Mon, 01 Jan 0001 00:00:00 GMT");

    /* A leap second as strftime shows it; an out-of-range ms is 000. */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = 2016 - 1900;
    tm.tm_mon = 11;
    tm.tm_mday = 31;
    tm.tm_hour = 23;
    tm.tm_min = 59;
    tm.tm_sec = 60;
    tm.tm_wday = 6;
    clock_fmt_ctime(&tm, ct);
    assert_string_equal(ct, "Sat Dec 31 23:59:60 2016");
    clock_fmt_iso(&tm, 1000, iso);
    assert_string_equal(iso, "2016-12-31T23:59:60.000Z");
    clock_fmt_iso(&tm, -1, iso);
    assert_string_equal(iso, "2016-12-31T23:59:60.000Z");
}

/* --- the cache ---------------------------------------------------------- */

static void set_at(struct clock_cache *c, time_t sec, long nsec, long mono_ns)
{
    struct timespec wall = { sec, nsec };
    struct timespec mono = { 100, mono_ns };
    clock_set(c, &wall, &mono);
}

static void test_cache(void **state)
{
    (void)state;
    struct clock_cache c;
    char ct[CLOCK_PREFIX_LEN + 1], http[CLOCK_HTTP_LEN + 1];

    memset(&c, 0, sizeof(c));
    set_tz("UTC");
    set_at(&c, 1473114552, 345678901, 999999999);
    assert_int_equal(c.valid, 1);
    assert_int_equal(c.mono_ms, 100999);
    assert_int_equal(c.sec, 1473114552);
    assert_int_equal(c.ms, 345);
    assert_string_equal(c.ctime_prefix, "[Mon Sep  5 22:29:12 2016] ");
    assert_string_equal(c.iso_prefix, "[2016-09-05T22:29:12.345Z] ");
    assert_string_equal(c.http_date, "Mon, 05 Sep 2016 22:29:12 GMT");
    assert_int_equal(strlen(c.ctime_prefix), CLOCK_PREFIX_LEN);
    assert_int_equal(strlen(c.iso_prefix), CLOCK_PREFIX_LEN);
    assert_string_equal(clock_prefix(&c, TIME_CTIME), c.ctime_prefix);
    assert_string_equal(clock_prefix(&c, TIME_ISO8601), c.iso_prefix);

    /* Within the second the ctime string and HTTP date are not rebuilt:
     * change the zone under it and they must still show the old one. */
    set_tz("Asia/Kolkata");
    memcpy(ct, c.ctime_prefix, sizeof(ct));
    memcpy(http, c.http_date, sizeof(http));
    for (long ms = 346; ms <= 999; ms++) {
        char want[64];
        set_at(&c, 1473114552, ms * 1000000 + 999999, 0);
        snprintf(want, sizeof(want), "[2016-09-05T22:29:12.%03ldZ] ", ms);
        assert_string_equal(c.iso_prefix, want);   /* every millisecond */
        assert_string_equal(c.ctime_prefix, ct);
        assert_string_equal(c.http_date, http);
        assert_int_equal(c.ms, ms);
    }
    /* The same millisecond again changes nothing. */
    set_at(&c, 1473114552, 999000000, 0);
    assert_string_equal(c.iso_prefix, "[2016-09-05T22:29:12.999Z] ");
    assert_int_equal(c.mono_ms, 100000);

    /* The next second rebuilds everything, in the zone now set. */
    set_at(&c, 1473114553, 0, 0);
    assert_string_equal(c.ctime_prefix, "[Tue Sep  6 03:59:13 2016] ");
    assert_string_equal(c.iso_prefix, "[2016-09-05T22:29:13.000Z] ");
    assert_string_equal(c.http_date, "Mon, 05 Sep 2016 22:29:13 GMT");
    assert_int_equal(c.ms, 0);

    /* A step backwards (the wall clock was set) rebuilds as well. */
    set_at(&c, 1473114500, 1000000, 0);
    assert_string_equal(c.ctime_prefix, "[Tue Sep  6 03:58:20 2016] ");
    assert_string_equal(c.iso_prefix, "[2016-09-05T22:28:20.001Z] ");

    /* A new second with the same millisecond digits still rebuilds the
     * seconds of the ISO string. */
    set_at(&c, 1473114501, 1000000, 0);
    assert_string_equal(c.iso_prefix, "[2016-09-05T22:28:21.001Z] ");

    /* A zeroed cache builds on its first call, even at the epoch. */
    memset(&c, 0, sizeof(c));
    set_tz("UTC");
    set_at(&c, 0, 0, 0);
    assert_string_equal(c.ctime_prefix, "[Thu Jan  1 00:00:00 1970] ");
    assert_string_equal(c.iso_prefix, "[1970-01-01T00:00:00.000Z] ");
}

/* Past year 9999 the cached strings keep their width too. */
static void test_cache_far_future(void **state)
{
    (void)state;
    struct clock_cache c;

    memset(&c, 0, sizeof(c));
    set_tz("Europe/Berlin");
    set_at(&c, T_10000 + 5, 42000000, 0);
    assert_string_equal(c.ctime_prefix, "[Fri Dec 31 23:59:59 9999] ");
    assert_string_equal(c.iso_prefix, "[9999-12-31T23:59:59.999Z] ");
    set_at(&c, T_10000 + 5, 43000000, 0);
    /* The millisecond path must not un-clamp the ISO string. */
    assert_string_equal(c.iso_prefix, "[9999-12-31T23:59:59.999Z] ");
    set_at(&c, (time_t)-62167219200ll - 1, 5000000, 0);    /* year -1 */
    assert_string_equal(c.iso_prefix, "[0000-01-01T00:00:00.000Z] ");
    set_at(&c, (time_t)-62167219200ll - 1, 6000000, 0);
    assert_string_equal(c.iso_prefix, "[0000-01-01T00:00:00.000Z] ");
    /* Year 0 itself is shown, milliseconds and all. */
    set_at(&c, (time_t)-62167219200ll, 7000000, 0);
    assert_string_equal(c.iso_prefix, "[0000-01-01T00:00:00.007Z] ");
    set_at(&c, (time_t)-62167219200ll, 8000000, 0);
    assert_string_equal(c.iso_prefix, "[0000-01-01T00:00:00.008Z] ");
    set_at(&c, T_10000 - 1, 8000000, 0);
    set_at(&c, T_10000 - 1, 9000000, 0);
    assert_string_equal(c.iso_prefix, "[9999-12-31T23:59:59.009Z] ");

    /* Beyond what struct tm can hold, localtime_r()/gmtime_r() fail: the
     * strings still take the nearest end of the range, not 1900. */
    set_at(&c, (time_t)1 << 62, 1000000, 0);
    assert_string_equal(c.ctime_prefix, "[Fri Dec 31 23:59:59 9999] ");
    assert_string_equal(c.iso_prefix, "[9999-12-31T23:59:59.999Z] ");
    assert_string_equal(c.http_date, "Fri, 31 Dec 9999 23:59:59 GMT");
    set_at(&c, -((time_t)1 << 62), 1000000, 0);
    assert_string_equal(c.ctime_prefix, "[Sat Jan  1 00:00:00 0000] ");
    assert_string_equal(c.iso_prefix, "[0000-01-01T00:00:00.000Z] ");
    set_tz("UTC");
}

/* clock_update() reads the real clocks. */
static void test_update(void **state)
{
    (void)state;
    struct clock_cache c;
    struct timespec before, after;

    memset(&c, 0, sizeof(c));
    clock_gettime(CLOCK_REALTIME, &before);
    clock_update(&c);
    clock_gettime(CLOCK_REALTIME, &after);
    assert_int_equal(c.valid, 1);
    assert_true(c.sec >= before.tv_sec && c.sec <= after.tv_sec);
    assert_in_range(c.ms, 0, 999);
    assert_true(c.mono_ms > 0);
    assert_int_equal(strlen(c.ctime_prefix), CLOCK_PREFIX_LEN);
    assert_int_equal(c.iso_prefix[0], '[');
    assert_int_equal(c.iso_prefix[25], ']');
}

/* The alarm's window: the last CLOCK_EDGE_LEAD_MS of every second. */
static void test_edge_window(void **state)
{
    (void)state;
    const long lead = CLOCK_EDGE_LEAD_MS * 1000000L;
    struct timespec t = { 1000, 0 };

    assert_false(clock_edge_within(&t));
    t.tv_nsec = 1000000000L - lead - 1;
    assert_false(clock_edge_within(&t));
    t.tv_nsec = 1000000000L - lead;
    assert_true(clock_edge_within(&t));
    t.tv_nsec = 999999999;
    assert_true(clock_edge_within(&t));
}

/* With the alarm in charge, a check costs nothing while the flag is
 * clear, and reads the clock (and clears the flag outside the window)
 * while it is set. */
static void test_refresh_follows_the_flag(void **state)
{
    (void)state;
    struct clock_cache c;
    struct timespec now;

    memset(&c, 0, sizeof(c));
    clock_update(&c);
    c.edge = 1;
    time_t current = c.sec;
    c.sec = current - 5;                    /* a stale cache */
    clock_edge_near = 0;
    clock_refresh(&c, TIME_CTIME);
    assert_int_equal(c.sec, current - 5);   /* not looked at */
    clock_refresh(&c, TIME_ISO8601);        /* ISO stamps always read */
    assert_true(c.sec >= current);
    c.sec = current - 5;
    clock_edge_near = 1;
    clock_refresh(&c, TIME_CTIME);
    clock_gettime(CLOCK_REALTIME, &now);
    assert_true(c.sec >= current && c.sec <= now.tv_sec);
    /* Cleared, unless the read fell inside the window: it did not if the
     * time after it is in the same second and outside the window. */
    if (now.tv_sec == c.sec && !clock_edge_within(&now))
        assert_int_equal(clock_edge_near, 0);
}

/* Over real clocks and the real alarm, across at least one second
 * boundary: after each clock_refresh() the cached second is neither older
 * than the clock before the call nor newer than after it. */
static void test_refresh_tracks_the_second(void **state)
{
    (void)state;
    struct clock_cache c;
    struct timespec start, before, after;
    long crossings = 0;
    long long crossed_ns = 0;

    memset(&c, 0, sizeof(c));
    clock_update(&c);
    assert_int_equal(clock_edge_start(&c), 0);
    assert_int_equal(c.edge, 1);
    clock_gettime(CLOCK_MONOTONIC, &start);
    time_t last = c.sec;
    for (long i = 0; i < 50000000; i++) {
        clock_gettime(CLOCK_REALTIME, &before);
        clock_refresh(&c, TIME_CTIME);
        clock_gettime(CLOCK_REALTIME, &after);
        assert_true(c.sec >= before.tv_sec);
        assert_true(c.sec <= after.tv_sec);
        clock_gettime(CLOCK_MONOTONIC, &after);
        long long ns = (after.tv_sec - start.tv_sec) * 1000000000LL +
                       (after.tv_nsec - start.tv_nsec);
        if (c.sec != last) {
            crossings++;
            last = c.sec;
            crossed_ns = ns;
        }
        /* 100 ms past the crossing, or 3 s in all */
        if ((crossings > 0 && ns - crossed_ns > 100000000LL) ||
            ns > 3000000000LL)
            break;
    }
    assert_true(crossings > 0);
}

static void test_time_format_parse(void **state)
{
    (void)state;
    assert_int_equal(time_format_parse("ctime"), TIME_CTIME);
    assert_int_equal(time_format_parse("iso8601"), TIME_ISO8601);
    assert_int_equal(time_format_parse("ISO8601"), -1);
    assert_int_equal(time_format_parse("iso"), -1);
    assert_int_equal(time_format_parse(""), -1);
    assert_int_equal(time_format_parse("ctime "), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_instants),
        cmocka_unit_test(test_random_instants),
        cmocka_unit_test(test_dst_changes),
        cmocka_unit_test(test_out_of_range_years),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_far_future),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_edge_window),
        cmocka_unit_test(test_refresh_follows_the_flag),
        cmocka_unit_test(test_refresh_tracks_the_second),
        cmocka_unit_test(test_time_format_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
