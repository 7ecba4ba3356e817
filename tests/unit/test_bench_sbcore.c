/*
 * test_bench_sbcore.c - stampbench's reply verification and histogram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sbcore.h"

/* 2016-09-05 22:29:12 UTC */
#define T0 1473114552LL

static void setup_utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_parse_ctime(void **state)
{
    (void)state;
    int64_t ms;
    setup_utc();
    assert_int_equal(sb_parse_stamp("Mon Sep  5 22:29:12 2016", TIME_CTIME, &ms), 0);
    assert_int_equal(ms, T0 * 1000);
    /* Wrong weekday, zero-padded day, bad month, lower case. */
    assert_int_equal(sb_parse_stamp("Tue Sep  5 22:29:12 2016", TIME_CTIME, &ms), -1);
    assert_int_equal(sb_parse_stamp("Mon Sep 05 22:29:12 2016", TIME_CTIME, &ms), -1);
    assert_int_equal(sb_parse_stamp("Mon Sen  5 22:29:12 2016", TIME_CTIME, &ms), -1);
    assert_int_equal(sb_parse_stamp("mon Sep  5 22:29:12 2016", TIME_CTIME, &ms), -1);
    /* Out of range fields must not be normalised into a valid time. */
    assert_int_equal(sb_parse_stamp("Mon Sep  5 22:29:60 2016", TIME_CTIME, &ms), -1);
    assert_int_equal(sb_parse_stamp("Mon Sep 31 22:29:12 2016", TIME_CTIME, &ms), -1);
    assert_int_equal(sb_parse_stamp("Sat Oct 15 01:02:03 2016", TIME_CTIME, &ms), 0);
}

static void test_parse_iso(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(sb_parse_stamp("2016-09-05T22:29:12.345Z", TIME_ISO8601, &ms), 0);
    assert_int_equal(ms, T0 * 1000 + 345);
    assert_int_equal(sb_parse_stamp("2016-09-05T22:29:12.345+", TIME_ISO8601, &ms), -1);
    assert_int_equal(sb_parse_stamp("2016-13-05T22:29:12.345Z", TIME_ISO8601, &ms), -1);
    assert_int_equal(sb_parse_stamp("2016-09-05 22:29:12.345Z", TIME_ISO8601, &ms), -1);
    assert_int_equal(sb_detect_format("2016-09-05T22:29:12.345Z"), TIME_ISO8601);
    assert_int_equal(sb_detect_format("Mon Sep  5 22:29:12 2016"), TIME_CTIME);
}

static void test_fresh(void **state)
{
    (void)state;
    int64_t s = T0 * 1000000000LL;
    /* ctime: stamp second t, sent at S, received at R. */
    assert_true(sb_fresh(T0 * 1000, TIME_CTIME, s + 999999999, s + 1000000000));
    assert_false(sb_fresh(T0 * 1000, TIME_CTIME, s + 1000000001, s + 1100000000));
    assert_true(sb_fresh(T0 * 1000, TIME_CTIME, s - 5, s));
    assert_false(sb_fresh(T0 * 1000, TIME_CTIME, s - 10, s - 1));
    /* iso8601: millisecond resolution. */
    assert_true(sb_fresh(T0 * 1000 + 5, TIME_ISO8601, s + 5999999, s + 6000000));
    assert_false(sb_fresh(T0 * 1000 + 5, TIME_ISO8601, s + 6000001, s + 7000000));
}

static void test_payload(void **state)
{
    (void)state;
    char buf[40];
    sb_payload(buf, 12, 0x1234abcd);
    assert_memory_equal(buf, "1234abcdabcd", 12);
    sb_payload(buf, 3, 0xfedcba98);
    assert_memory_equal(buf, "fed", 3);
    sb_payload(buf, 36, 0);
    assert_memory_equal(buf + 8, "abcdefghijklmnopqrstuvwxyzab", 28);
}

static void test_check(void **state)
{
    (void)state;
    struct sb_stamp_cache cache = { 0 };
    int64_t s = T0 * 1000000000LL;
    struct sb_expect e = { .mode = SB_STAMP, .fmt = TIME_CTIME, .crlf = 0,
                           .payload = "hi", .payload_len = 2,
                           .send_ns = s + 10, .recv_ns = s + 20 };
    setup_utc();
#define CHECK(str) sb_check(&e, str, strlen(str), &cache)
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi\n"), SB_OK);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi\r\n"), SB_BAD_TERM);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] ho\n"), SB_BAD_PAYLOAD);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi!\n"), SB_BAD_PAYLOAD);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016]hi\n"), SB_BAD_LAYOUT);
    assert_int_equal(CHECK("hi\n"), SB_BAD_LAYOUT);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:1x 2016] hi\n"), SB_BAD_STAMP);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:14 2016] hi\n"), SB_STALE);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:10 2016] hi\n"), SB_STALE);
    /* The cache answers repeats and still rejects the stale one. */
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi\n"), SB_OK);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:10 2016] hi\n"), SB_STALE);
    e.crlf = 1;
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi\r\n"), SB_OK);
    assert_int_equal(CHECK("[Mon Sep  5 22:29:12 2016] hi\n"), SB_BAD_TERM);
    e.mode = SB_ECHO;
    assert_int_equal(CHECK("hi\r\n"), SB_OK);
    assert_int_equal(CHECK("hi \r\n"), SB_BAD_PAYLOAD);
    e.mode = SB_LINE;
    e.expect = "+PONG";
    e.expect_len = 5;
    assert_int_equal(CHECK("+PONG\r\n"), SB_OK);
    assert_int_equal(CHECK("+PONG\n"), SB_OK);
    assert_int_equal(CHECK("-ERR\r\n"), SB_BAD_EXPECT);
    e.expect = NULL;
    assert_int_equal(CHECK("VERSION 1.6.18\r\n"), SB_OK);
#undef CHECK
}

static void test_hist(void **state)
{
    (void)state;
    static struct sb_hist h, g;
    sb_hist_reset(&h);
    sb_hist_reset(&g);
    assert_int_equal(sb_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        sb_hist_add(v <= 50000 ? &h : &g, v * 1000);
    sb_hist_merge(&h, &g);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.max, 100000000);
    assert_int_equal(h.min, 1000);
    /* Within 1% (sub_bits 7) of the exact quantiles, never below them. */
    uint64_t p50 = sb_hist_quantile(&h, 0.5), p99 = sb_hist_quantile(&h, 0.99);
    assert_true(p50 >= 50000000 && p50 <= 50500000);
    assert_true(p99 >= 99000000 && p99 <= 99990000);
    assert_int_equal(sb_hist_quantile(&h, 1.0), 100000000);
}

/* An interval's samples from two cumulative snapshots: the p99 of the
 * second second alone, not of both. */
static void test_hist_sub_interval(void **state)
{
    (void)state;
    static struct sb_hist h, first, iv;
    sb_hist_reset(&h);
    for (uint64_t v = 1; v <= 1000; v++)
        sb_hist_add(&h, 1000000);             /* first second: 1 ms each */
    first = h;
    for (uint64_t v = 1; v <= 1000; v++)
        sb_hist_add(&h, v * 100000);           /* second: 0.1 .. 100 ms */
    sb_hist_sub(&iv, &h, &first);
    assert_int_equal(iv.count, 1000);
    uint64_t p99 = sb_hist_quantile(&iv, 0.99);
    assert_true(p99 >= 99000000 && p99 <= 100000000);
    assert_true(iv.min <= 100000 && iv.min >= 99000);
    assert_int_equal(iv.max, 100000000);  /* clamped to the whole's max */
    /* Nothing new: empty, and its quantiles are 0. */
    sb_hist_sub(&iv, &h, &h);
    assert_int_equal(iv.count, 0);
    assert_int_equal(sb_hist_quantile(&iv, 0.99), 0);

    struct sbuf b = { 0 };
    sb_hist_sub(&iv, &h, &first);
    sb_interval_line(&b, 2.0, 1.0, 1000, 3, &iv);
    assert_false(sbuf_failed(&b));
    static const char head[] = "#interval t=2.0 requests=1000 rate=1000.0 "
                               "errors=3 p50_us=";
    assert_int_equal(strncmp(b.buf, head, sizeof(head) - 1), 0);
    assert_non_null(strstr(b.buf, " p99_us="));
    assert_int_equal(b.buf[b.len - 1], '\n');
    sbuf_free(&b);
}

/* The p99 of several processes is the p99 of all their requests, which the
 * merged buckets give and the largest per-process p99 does not. */
static void test_hist_merge_quantiles(void **state)
{
    (void)state;
    static struct sb_hist fast, slow, all;
    sb_hist_reset(&fast);
    sb_hist_reset(&slow);
    sb_hist_reset(&all);
    for (int i = 0; i < 1000; i++) {
        sb_hist_add(&fast, 100);              /* 100 ns: its own bucket */
        sb_hist_add(&all, 100);
    }
    for (int i = 0; i < 10; i++) {
        sb_hist_add(&slow, 5000000);          /* 5 ms */
        sb_hist_add(&all, 5000000);
    }
    assert_int_equal(sb_hist_quantile(&fast, 0.99), 100);
    assert_int_equal(sb_hist_quantile(&slow, 0.99), 5000000);
    static struct sb_hist merged;
    sb_hist_reset(&merged);
    sb_hist_merge(&merged, &slow);
    sb_hist_merge(&merged, &fast);
    assert_memory_equal(&merged, &all, sizeof(all));
    /* rank ceil(0.99 * 1010) = 1000: the last fast request. */
    assert_int_equal(sb_hist_quantile(&merged, 0.99), 100);
    /* rank 1001: the first slow one, reported as its bucket's upper bound
     * (5 ms falls in [4980736, 5013503] at sub_bits 7), clamped to max. */
    assert_int_equal(sb_hist_quantile(&merged, 0.991), 5000000);
    assert_int_equal(merged.min, 100);
    assert_int_equal(merged.max, 5000000);
    /* Edge ranks: q 0 is the first sample, q 1 the last. */
    assert_int_equal(sb_hist_quantile(&merged, 0), 100);
    assert_int_equal(sb_hist_quantile(&merged, 1), 5000000);
    /* Merging an empty histogram changes nothing. */
    static struct sb_hist empty;
    sb_hist_reset(&empty);
    sb_hist_merge(&merged, &empty);
    assert_memory_equal(&merged, &all, sizeof(all));
}

static void test_hist_json(void **state)
{
    (void)state;
    static struct sb_hist h;
    struct sbuf b = { 0 };
    sb_hist_reset(&h);
    sb_hist_json(&b, &h);
    sbuf_puts(&b, "");
    assert_string_equal(b.buf, "{\"unit\":\"ns\",\"sub_bits\":7,\"count\":0,"
                        "\"min\":0,\"max\":0,\"sum\":0,\"buckets\":[]}");
    sbuf_reset(&b);
    sb_hist_add(&h, 5);
    sb_hist_add(&h, 5);
    sb_hist_add(&h, 1000);      /* bucket [1000, 1007]: 8-wide at 2^9 */
    sb_hist_json(&b, &h);
    sbuf_puts(&b, "");
    assert_string_equal(b.buf, "{\"unit\":\"ns\",\"sub_bits\":7,\"count\":3,"
                        "\"min\":5,\"max\":1000,\"sum\":1010,"
                        "\"buckets\":[[5,5,2],[1000,1003,1]]}");
    sbuf_free(&b);
}

static void test_hist_hdr_text(void **state)
{
    (void)state;
    static struct sb_hist h;
    struct sbuf b = { 0 };
    sb_hist_reset(&h);
    sb_hist_hdr_text(&b, &h, 1e6, 5);
    sbuf_puts(&b, "");
    assert_string_equal(b.buf,
        "       Value   Percentile   TotalCount 1/(1-Percentile)\n\n"
        "#[Mean    =        0.000, StdDeviation   =        0.000]\n"
        "#[Max     =        0.000, Total count    =            0]\n"
        "#[Buckets =           58, SubBuckets     =          128]\n");
    /* 1..100 us, one request each. */
    for (uint64_t v = 1; v <= 100; v++)
        sb_hist_add(&h, v * 1000);
    sbuf_reset(&b);
    sb_hist_hdr_text(&b, &h, 1e3, 1);
    sbuf_puts(&b, "");
    /* ticks 1: 0%, 50%, 75%, 87.5%, ... until the rank reaches the last
     * sample, then 100%.  Values in us (scale 1e3), bucket upper bounds
     * clamped to the max; TotalCount is the samples up to that value. */
    assert_string_equal(b.buf,
        "       Value   Percentile   TotalCount 1/(1-Percentile)\n\n"
        "       1.003     0.000000            1         1.00\n"
        "      50.175     0.500000           50         2.00\n"
        "      75.263     0.750000           75         4.00\n"
        "      88.063     0.875000           88         8.00\n"
        "      94.207     0.937500           94        16.00\n"
        "      97.279     0.968750           97        32.00\n"
        "      99.327     0.984375           99        64.00\n"
        "     100.000     0.992188          100       128.00\n"
        "     100.000     1.000000          100          inf\n"
        "#[Mean    =       50.500, StdDeviation   =       28.863]\n"
        "#[Max     =      100.000, Total count    =          100]\n"
        "#[Buckets =           58, SubBuckets     =          128]\n");
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ctime), cmocka_unit_test(test_parse_iso),
        cmocka_unit_test(test_fresh),       cmocka_unit_test(test_payload),
        cmocka_unit_test(test_check),       cmocka_unit_test(test_hist),
        cmocka_unit_test(test_hist_merge_quantiles),
        cmocka_unit_test(test_hist_sub_interval),
        cmocka_unit_test(test_hist_json),
        cmocka_unit_test(test_hist_hdr_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
