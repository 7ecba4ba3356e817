/*
 * test_ctl.c - stampctl's pure half (tools/ctl.c): the JSON reader, the
 * HTTP response split, reading a /stats page as metrics.c renders it, and
 * the `top` screen computed from two fixed snapshots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "ctl.h"
#include "hist.h"
#include "metrics.h"

static void test_json_reader(void **state)
{
    (void)state;
    static const char doc[] =
        " {\"a\": 1, \"b\": [10, {\"c\": \"x\\\"y\"}, [], {}], \"big\": 18446744073709551615,"
        " \"t\": true, \"f\": false, \"n\": null, \"d\": -1.5e3} ";
    struct json j;

    assert_int_equal(json_parse(&j, doc, sizeof(doc) - 1), 0);
    assert_int_equal(json_u64(&j, json_get(&j, 0, "a")), 1);
    int b = json_get(&j, 0, "b");
    assert_int_equal(json_u64(&j, json_at(&j, b, 0)), 10);
    char s[16];
    json_str(&j, json_get(&j, json_at(&j, b, 1), "c"), s, sizeof(s), "?");
    assert_string_equal(s, "x\\\"y");
    assert_int_equal(j.tok[json_at(&j, b, 2)].type, JSON_ARRAY);
    assert_int_equal(j.tok[json_at(&j, b, 3)].type, JSON_OBJECT);
    assert_int_equal(json_at(&j, b, 4), -1);
    assert_true(json_u64(&j, json_get(&j, 0, "big")) == UINT64_MAX);
    assert_true(json_true(&j, json_get(&j, 0, "t")));
    assert_false(json_true(&j, json_get(&j, 0, "f")));
    assert_true(json_num(&j, json_get(&j, 0, "d"), 0) == -1500.0);
    assert_int_equal(json_get(&j, 0, "missing"), -1);
    /* A key inside a nested value is not a member of the outer object. */
    assert_int_equal(json_get(&j, 0, "c"), -1);
    json_free(&j);

    static const char *const bad[] = {
        "", "{", "{\"a\" 1}", "[1,]", "[1 2]", "{\"a\":1}}", "nul", "\"open",
        "{\"a\":1,}", "[\"\x01\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(json_parse(&j, bad[i], strlen(bad[i])), -1);
        json_free(&j);
    }
    /* Nesting is bounded. */
    char deep[200];
    memset(deep, '[', sizeof(deep));
    assert_int_equal(json_parse(&j, deep, sizeof(deep)), -1);
    json_free(&j);
}

static void test_http_split(void **state)
{
    (void)state;
    static const char ok[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\ndraining\n";
    const char *body;
    size_t n;
    int status;

    assert_int_equal(ctl_http_split(ok, sizeof(ok) - 1, &status, &body, &n), 0);
    assert_int_equal(status, 503);
    assert_int_equal(n, 9);
    assert_memory_equal(body, "draining\n", 9);
    /* Truncated: fewer bytes than Content-Length. */
    assert_int_equal(ctl_http_split(ok, sizeof(ok) - 3, &status, &body, &n), -1);
    assert_int_equal(ctl_http_split("HTTP/1.1 2x0 OK\r\n\r\n", 19, &status,
                                    &body, &n), -1);
    assert_int_equal(ctl_http_split("garbage", 7, &status, &body, &n), -1);
}

/* A /stats page rendered by metrics.c reads back field for field. */
static void test_snap_round_trip(void **state)
{
    (void)state;
    struct stats_table *t = calloc(1, sizeof(*t) + 2 * sizeof(struct stats_slot));
    static struct ctl_snap snap;
    struct opts o;
    char err[128];
    char *argv[] = { "stampd", "--listen", "127.0.0.1:8009", "--listen",
                     "unix:/tmp/stampd.sock", "--http", "[::1]:8080", "--udp",
                     "127.0.0.1:8009", NULL };
    struct proc_info w[2] = { { 11, 1000, 5, 1.0, 0.5 }, { 0, -1, -1, 0, 0 } };
    struct metrics_input in = { 0 };
    struct sbuf b = { 0 };

    assert_non_null(t);
    assert_int_equal(opts_parse(&o, 9, argv, 2, err, sizeof(err)), OPTS_OK);
    t->nworkers = 2;
    t->slot[0].pid = 11;
    t->slot[0].requests_line = 12345678901234ull;
    t->slot[0].conns_active = 7;
    t->slot[1].bytes_out = 99;
    t->slot[1].conns_active = 5;  /* dead slot: reads 0 */
    stats_latency_record(&t->slot[0], 3000, 5);
    /* The TCP line listener: figures in both slots, a client in each. */
    t->slot[0].lst[0].accepted = 3;
    t->slot[1].lst[0].accepted = 4;
    t->slot[0].lst[0].requests = 10;
    t->slot[0].lst[0].active = 2;
    t->slot[1].lst[0].active = 9;  /* dead slot: reads 0 */
    t->slot[1].lst[0].enforcements = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(4000) };
    a.sin_addr.s_addr = htonl(0x7f000003);
    stats_client_store(&t->slot[1].lst[0].last_client, (struct sockaddr *)&a, 5);
    stats_client_store(&t->slot[1].lst[0].last_enforced, (struct sockaddr *)&a, 5);
    a.sin_addr.s_addr = htonl(0x7f000002);
    stats_client_store(&t->slot[0].lst[0].last_client, (struct sockaddr *)&a, 4);
    in.t = t;
    in.o = &o;
    in.version = "1.2.3";
    in.poller = "epoll";
    in.now_unix_ms = 5000;
    in.master = (struct proc_info){ 10, 2000, 4, 1.0, 0.1 };
    in.workers = w;
    metrics_render_json(&b, &in);
    assert_int_equal(ctl_snap_parse(&snap, b.buf, b.len, err, sizeof(err)), 0);
    assert_string_equal(snap.version, "1.2.3");
    assert_int_equal(snap.pid, 10);
    assert_int_equal(snap.nworkers, 2);
    assert_true(snap.w[0].up && !snap.w[1].up);
    assert_true(snap.w[0].s.requests_line == 12345678901234ull);
    assert_int_equal(snap.w[0].s.conns_active, 7);
    assert_int_equal(snap.w[1].s.conns_active, 0);
    assert_int_equal(snap.w[1].s.bytes_out, 99);
    assert_int_equal(snap.w[0].s.lat_bucket[hist_index(3000, STATS_LAT_SUB_BITS)], 5);
    assert_int_equal(snap.w[0].rss_bytes, 1000);
    assert_int_equal(snap.max_conns, 10000);
    /* Every listener kind, the admin port last. */
    static const char *const want[][2] = {
        { "line", "127.0.0.1:8009" }, { "unix", "unix:/tmp/stampd.sock" },
        { "http", "[::1]:8080" }, { "udp", "127.0.0.1:8009" },
        { "admin", "127.0.0.1:8010" },
    };
    assert_int_equal(snap.nlisteners, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(snap.l[i].kind, want[i][0]);
        assert_string_equal(snap.l[i].addr, want[i][1]);
    }
    assert_true(snap.l[0].has_figures && !snap.l[4].has_figures);
    assert_int_equal(snap.l[0].accepted, 7);
    assert_int_equal(snap.l[0].requests, 10);
    assert_int_equal(snap.l[0].active, 2);
    assert_int_equal(snap.l[0].enforcements, 1);
    assert_string_equal(snap.l[0].last_client, "127.0.0.3:4000");  /* the later */
    assert_string_equal(snap.l[0].last_enforced, "127.0.0.3:4000");
    assert_string_equal(snap.l[1].last_client, "");
    struct sbuf text = { 0 };
    ctl_render_stats(&text, &snap);
    sbuf_puts(&text, "");
    assert_non_null(strstr(text.buf,
        "\nlisteners:\n"
        "  kind   address                   conns  accepted   requests enforced  last client            last enforced\n"
        "  line   127.0.0.1:8009                2         7         10        1  127.0.0.3:4000         127.0.0.3:4000\n"
        "  unix   unix:/tmp/stampd.sock         0         0          0        0  -                      -\n"
        "  http   [::1]:8080                    0         0          0        0  -                      -\n"
        "  udp    127.0.0.1:8009                0         0          0        0  -                      -\n"
        "  admin  127.0.0.1:8010\n\ntotals:\n"));
    sbuf_free(&text);
    assert_int_equal(ctl_snap_parse(&snap, "{}", 2, err, sizeof(err)), -1);
    sbuf_free(&b);
    free(t);
}

static void test_top_screen(void **state)
{
    (void)state;
    static struct ctl_snap a, b;
    struct sbuf out = { 0 };

    a.nworkers = b.nworkers = 2;
    snprintf(b.version, sizeof(b.version), "0.1.0");
    snprintf(b.poller, sizeof(b.poller), "epoll");
    b.pid = 100;
    b.uptime_s = 3725;
    for (int i = 0; i < 2; i++) {
        a.w[i].up = b.w[i].up = 1;
        a.w[i].s.pid = b.w[i].s.pid = 101 + i;
    }
    /* Worker 0 over 2 s: 2000 requests (1000/s), 4 MB in, 8 MB out, 1950
     * fast (1 us) and 50 slow (1 ms) in the interval; one pause, three
     * errors.  Worker 1 idle. */
    a.w[0].s.requests_line = 500;
    b.w[0].s.requests_line = 2500;
    b.w[0].s.bytes_in = 4000000;
    b.w[0].s.bytes_out = 8000000;
    a.w[0].s.lat_bucket[hist_index(1000, 2)] = 77;
    b.w[0].s.lat_bucket[hist_index(1000, 2)] = 77 + 1950;
    b.w[0].s.lat_bucket[hist_index(1000000, 2)] = 50;
    b.w[0].s.conns_active = 3;
    b.w[0].s.backpressure_pauses = 1;
    b.w[0].s.err_line_too_long = 2;
    b.w[0].s.closed_reset = 1;
    a.nlisteners = b.nlisteners = 3;
    snprintf(b.l[0].kind, sizeof(b.l[0].kind), "line");
    snprintf(b.l[0].addr, sizeof(b.l[0].addr), "127.0.0.1:8009,proxy");
    snprintf(b.l[1].kind, sizeof(b.l[1].kind), "http");
    snprintf(b.l[1].addr, sizeof(b.l[1].addr), "127.0.0.1:8080");
    snprintf(b.l[2].kind, sizeof(b.l[2].kind), "admin");
    snprintf(b.l[2].addr, sizeof(b.l[2].addr), "127.0.0.1:8010");
    /* The line listener served the 2000 requests, with two enforcements. */
    a.l[0].has_figures = b.l[0].has_figures = b.l[1].has_figures = 1;
    a.l[0].requests = 500;
    b.l[0].requests = 2500;
    a.l[0].enforcements = 1;
    b.l[0].enforcements = 3;
    b.l[0].active = 3;
    snprintf(b.l[0].last_client, sizeof(b.l[0].last_client), "127.0.0.3:5000");
    ctl_render_top(&out, &a, &b, 2.0, "2026-01-02 03:04:05");
    static const char want[] =
        "stampd 0.1.0 (epoll)  master pid 100  up 1h02m05s  2/2 workers up  serving\n"
        "2026-01-02 03:04:05  interval 2.0s; pauses and errs are counts in the interval\n"
        "worker      pid   conns      req/s  MB/s in MB/s out      p50      p99 pauses   errs\n"
        "     0      101       3       1000     2.00     4.00    1.0us    1.0ms      1      3\n"
        "     1      102       0          0     0.00     0.00        -        -      0      0\n"
        " total                3       1000     2.00     4.00    1.0us    1.0ms      1      3\n"
        "req/s by protocol  line 1000  http 0  udp 0\n"
        "kind   listener                  conns    req/s    enf  last client\n"
        "line   127.0.0.1:8009,proxy          3     1000      2  127.0.0.3:5000\n"
        "http   127.0.0.1:8080                0        0      0  -\n"
        "admin  127.0.0.1:8010\n";
    assert_string_equal(out.buf, want);
    sbuf_free(&out);
}

static void test_formats(void **state)
{
    (void)state;
    char s[32];
    ctl_fmt_ns(s, sizeof(s), 850);
    assert_string_equal(s, "850ns");
    ctl_fmt_ns(s, sizeof(s), 12345);
    assert_string_equal(s, "12.3us");
    ctl_fmt_ns(s, sizeof(s), 4100000);
    assert_string_equal(s, "4.1ms");
    ctl_fmt_ns(s, sizeof(s), 1200000000);
    assert_string_equal(s, "1.20s");
    ctl_fmt_uptime(s, sizeof(s), 12.34);
    assert_string_equal(s, "12.3s");
    ctl_fmt_uptime(s, sizeof(s), 3 * 86400 + 4 * 3600 + 5 * 60 + 6);
    assert_string_equal(s, "3d04h05m");
}

/* The clock line comes from /stats's clock_* keys, and says nothing when
 * there are none. */
static void test_clock_line(void **state)
{
    (void)state;
    static struct ctl_snap snap;
    char err[128], line[160];
    static const char with[] =
        "{\"build_info\":{\"version\":\"1\",\"poller\":\"epoll\"},\"pid\":7,"
        "\"workers\":[],\"clock_synchronized\":1,\"clock_max_error_seconds\":0.0125,"
        "\"clock_estimated_error_seconds\":0.00025,"
        "\"clock_offset_seconds\":-0.000001234}";
    static const char unsynced[] =
        "{\"build_info\":{\"version\":\"1\",\"poller\":\"epoll\"},\"pid\":7,"
        "\"workers\":[],\"clock_synchronized\":0,\"clock_max_error_seconds\":16,"
        "\"clock_estimated_error_seconds\":16,\"clock_offset_seconds\":0}";
    static const char without[] =
        "{\"build_info\":{\"version\":\"1\",\"poller\":\"epoll\"},\"pid\":7,"
        "\"workers\":[]}";

    assert_int_equal(ctl_snap_parse(&snap, with, sizeof(with) - 1, err, sizeof(err)), 0);
    ctl_fmt_clock(line, sizeof(line), &snap);
    assert_string_equal(line, "clock synchronised, max error 12.5ms, estimated 250.0us, "
                              "offset -1.2us");
    assert_int_equal(ctl_snap_parse(&snap, unsynced, sizeof(unsynced) - 1, err,
                                    sizeof(err)), 0);
    ctl_fmt_clock(line, sizeof(line), &snap);
    assert_string_equal(line, "clock UNSYNCHRONISED, max error 16.00s, estimated 16.00s, "
                              "offset 0ns");
    assert_int_equal(ctl_snap_parse(&snap, without, sizeof(without) - 1, err,
                                    sizeof(err)), 0);
    ctl_fmt_clock(line, sizeof(line), &snap);
    assert_string_equal(line, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_http_split),
        cmocka_unit_test(test_snap_round_trip),
        cmocka_unit_test(test_top_screen),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_clock_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
