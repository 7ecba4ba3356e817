/*
 * test_metrics.c - the admin pages (src/metrics.c) rendered from a fixed
 * stats table and compared with golden text, and the histogram arithmetic
 * behind stampd_request_duration_seconds.
 *
 * The golden files live in tests/unit/golden/ (run from the repository
 * root, as `make unit` does).  After a deliberate change to the pages,
 * regenerate them with STAMPD_UPDATE_GOLDEN=1 and review the diff.
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

#include "hist.h"
#include "metrics.h"
#include "opts.h"
#include "stats.h"

#define GOLDEN_DIR "tests/unit/golden/"

static struct stats_table *table_new(unsigned n)
{
    struct stats_table *t = calloc(1, sizeof(*t) + n * sizeof(struct stats_slot));
    assert_non_null(t);
    t->nworkers = n;
    return t;
}

/* A field's value in the fixed table: from its name, not its place in the
 * list, so that a row added to stats.h adds lines to the golden pages but
 * changes no other figure. */
static uint64_t fill_value(const char *field, unsigned worker)
{
    uint64_t h = 5381;
    for (; *field; field++)
        h = h * 33 + (unsigned char)*field;
    return (h % 9000 + 1000) * (worker + 1);
}

/* A fixed table: worker 0 alive, worker 1 dead (pid 0) with counters kept
 * and stale gauges that must read 0. */
static struct stats_table *fixed_table(void)
{
    struct stats_table *t = table_new(2);

    t->start_unix_ms = 1700000000000;
    for (unsigned w = 0; w < 2; w++) {
        struct stats_slot *s = &t->slot[w];
#define FILL(f, m, ln, lv, h) s->f = fill_value(#f, w);
        STATS_COUNTERS(FILL)
        STATS_GAUGES(FILL)
#undef FILL
        /* Latencies 100 ns, 255 ns, 256 ns, 1 ms, and one clamped. */
        stats_latency_record(s, 100, 1);
        stats_latency_record(s, 255, 2);
        stats_latency_record(s, 256, 3);
        stats_latency_record(s, 1000000, 4 + w);
        stats_latency_record(s, 10000000000ull, 1);
    }
    /* Listener 0 (the one --listen): figures in both slots; its last
     * client from worker 1 (later), its last enforced client from 0. */
    for (unsigned w = 0; w < 2; w++) {
        struct stats_listener *l = &t->slot[w].lst[0];
#define LFILL(f, m, h) l->f = fill_value(m, w);
        STATS_LISTENER_COUNTERS(LFILL)
        STATS_LISTENER_GAUGES(LFILL)
#undef LFILL
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(5555) };
    a.sin_addr.s_addr = htonl(0x7f000003);
    stats_client_store(&t->slot[0].lst[0].last_client, (struct sockaddr *)&a, 10);
    a.sin_addr.s_addr = htonl(0xc0000207);  /* 192.0.2.7 */
    stats_client_store(&t->slot[1].lst[0].last_client, (struct sockaddr *)&a, 20);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(4000) };
    a6.sin6_addr.s6_addr[15] = 1;           /* ::1 */
    stats_client_store(&t->slot[0].lst[0].last_enforced, (struct sockaddr *)&a6, 30);
    t->slot[0].pid = 4242;
    t->slot[0].started_unix_ms = 1700000000100;
    t->slot[1].pid = 0;
    return t;
}

static void fixed_opts(struct opts *o)
{
    char err[128];
    char *argv[] = { "stampd", "--listen", "127.0.0.1:8009", "--admin",
                     "127.0.0.1:8010", "--workers", "2", "--max-conns", "100",
                     NULL };
    assert_int_equal(opts_parse(o, 9, argv, 2, err, sizeof(err)), OPTS_OK);
}

static void fixed_input(struct metrics_input *in, struct stats_table *t,
                        struct opts *o, struct proc_info *workers)
{
    memset(in, 0, sizeof(*in));
    in->t = t;
    in->o = o;
    in->version = "9.8.7";
    in->poller = "epoll";
    in->now_unix_ms = 1700000012345;
    in->master = (struct proc_info){ 4241, 4096000, 12, 1699999999.5, 0.25 };
    workers[0] = (struct proc_info){ 4242, 2048000, 9, 1700000000.1, 1.5 };
    workers[1] = (struct proc_info){ 0, -1, -1, 0, 0 };
    in->workers = workers;
    static const int64_t max_fds[2] = { 1048576, -1 };
    in->master_max_fds = 1024;
    in->workers_max_fds = max_fds;
    /* Worker 0 serves; worker 1 died 1.5 s ago (not ready, still live). */
    static const struct worker_health health[2] = { { 120, 0, 0 }, { -1, 1500, 1 } };
    in->health = health;
    in->ready_state = STATS_READY;
    in->clock = (struct clock_state){ 1, 1, 0.0125, 0.000250, -0.000001234 };
}

/* The least input a renderer takes: one worker, no health or clock. */
static void minimal_input(struct metrics_input *in, struct stats_table *t,
                          struct opts *o, struct proc_info *w)
{
    memset(in, 0, sizeof(*in));
    in->t = t;
    in->o = o;
    in->version = "x";
    in->poller = "epoll";
    in->master = w[0];
    in->workers = w;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

static void check_golden(const char *name, const struct sbuf *b)
{
    char path[256];
    size_t len = 0;

    snprintf(path, sizeof(path), GOLDEN_DIR "%s", name);
    if (getenv("STAMPD_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b->buf, 1, b->len, f), b->len);
        fclose(f);
    }
    char *want = slurp(path, &len);
    if (!want)
        fail_msg("missing golden file %s (run from the repository root)", path);
    if (len != b->len || memcmp(want, b->buf, len) != 0) {
        size_t i = 0;
        while (i < len && i < b->len && want[i] == b->buf[i])
            i++;
        fail_msg("%s differs at byte %zu: want ...%.60s... got ...%.60s...\n"
                 "after a deliberate change (a row added to stats.h, a new "
                 "figure) regenerate with STAMPD_UPDATE_GOLDEN=1 %s and "
                 "review the diff", path, i, want + i, b->buf + i,
                 "build/tests/test_metrics");
    }
}

/* Render the fixed table with `render`, compare with golden file `name`;
 * the page stays in *b for more checks. */
static void render_fixed(struct sbuf *b, const char *name,
                         void (*render)(struct sbuf *, const struct metrics_input *))
{
    struct stats_table *t = fixed_table();
    struct opts o;
    struct proc_info w[2];
    struct metrics_input in;

    fixed_opts(&o);
    fixed_input(&in, t, &o, w);
    render(b, &in);
    assert_false(sbuf_failed(b));
    check_golden(name, b);
    free(t);
}

static void test_prometheus_golden(void **state)
{
    (void)state;
    struct sbuf b = { 0 };

    render_fixed(&b, "metrics.prom", metrics_render_prometheus);
    /* The dead worker's gauges read 0, its counters stay. */
    char line[128];
    assert_non_null(strstr(b.buf, "stampd_connections_active{worker=\"1\"} 0\n"));
    snprintf(line, sizeof(line),
             "stampd_connections_accepted_total{worker=\"1\"} %llu\n",
             (unsigned long long)fill_value("conns_accepted", 1));
    assert_non_null(strstr(b.buf, line));
    assert_non_null(strstr(b.buf, "stampd_worker_up{worker=\"1\"} 0\n"));
    assert_null(strstr(b.buf, "process=\"worker\",worker=\"1\""));
    sbuf_free(&b);
}

static void test_json_golden(void **state)
{
    (void)state;
    struct sbuf b = { 0 };

    render_fixed(&b, "stats.json", metrics_render_json);
    /* Totals keep the dead worker's counters, not its gauges. */
    const char *tot = strstr(b.buf, "\"totals\":{");
    char want[128];
    assert_non_null(tot);
    snprintf(want, sizeof(want), "\"totals\":{\"worker_up\":1,\"max_connections\":200,"
             "\"connections_accepted_total\":%llu,",
             (unsigned long long)(fill_value("conns_accepted", 0) +
                                  fill_value("conns_accepted", 1)));
    assert_ptr_equal(strstr(b.buf, want), tot);
    snprintf(want, sizeof(want), ",\"connections_active\":%llu,",
             (unsigned long long)fill_value("conns_active", 0));
    assert_non_null(strstr(tot, want));
    sbuf_free(&b);
}

/* The cumulative count printed for le="<bound>" of worker w. */
static uint64_t le_count(const char *page, unsigned w, const char *bound)
{
    char key[160];
    snprintf(key, sizeof(key),
             "stampd_request_duration_seconds_bucket{worker=\"%u\",le=\"%s\"} ",
             w, bound);
    const char *p = strstr(page, key);
    if (!p)
        fail_msg("no line %s", key);
    return strtoull(p + strlen(key), NULL, 10);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct stats_table *t = table_new(1);
    struct opts o;
    struct proc_info w[1] = { { 0, -1, -1, 0, 0 } };
    struct metrics_input in;
    struct sbuf b = { 0 };
    struct stats_slot *s = &t->slot[0];

    /* Each observation lands exactly on one side of an SLO bound. */
    stats_latency_record(s, 0, 1);
    stats_latency_record(s, 1000, 1);            /* <= 1 us */
    stats_latency_record(s, 1001, 1);            /* > 1 us, <= 2.5 us */
    stats_latency_record(s, 1000000, 2);         /* <= 1 ms */
    stats_latency_record(s, 1000001, 1);         /* <= 2.5 ms */
    stats_latency_record(s, 5000000000ull, 1);   /* the last bound */
    stats_latency_record(s, 1ull << 40, 1);      /* above every bound */
    stats_reply_latency_record(s, 2500, 3);      /* <= 2.5 us */
    stats_reply_latency_record(s, 2501, 1);      /* <= 5 us */

    fixed_opts(&o);
    minimal_input(&in, t, &o, w);
    metrics_render_prometheus(&b, &in);
    assert_int_equal(le_count(b.buf, 0, "0.000001"), 2);
    assert_int_equal(le_count(b.buf, 0, "0.0000025"), 3);
    assert_int_equal(le_count(b.buf, 0, "0.001"), 5);
    assert_int_equal(le_count(b.buf, 0, "0.0025"), 6);
    assert_int_equal(le_count(b.buf, 0, "2.5"), 6);
    assert_int_equal(le_count(b.buf, 0, "5"), 7);
    assert_int_equal(le_count(b.buf, 0, "+Inf"), 8);
    assert_non_null(strstr(b.buf, "stampd_request_duration_seconds_count{worker=\"0\"} 8\n"));
    /* The sum is exact: 1000 + 1001 + 2*1e6 + 1000001 + 5e9 + 2^40 ns. */
    assert_non_null(strstr(b.buf,
        "stampd_request_duration_seconds_sum{worker=\"0\"} 1104.514629778\n"));
    assert_non_null(strstr(b.buf,
        "stampd_reply_duration_seconds_bucket{worker=\"0\",le=\"0.0000025\"} 3\n"));
    assert_non_null(strstr(b.buf,
        "stampd_reply_duration_seconds_bucket{worker=\"0\",le=\"0.000005\"} 4\n"));
    assert_non_null(strstr(b.buf, "stampd_reply_duration_seconds_count{worker=\"0\"} 4\n"));
    assert_non_null(strstr(b.buf, "stampd_reply_duration_seconds_sum{worker=\"0\"} 0.000010001\n"));
    /* One series per bound, plus +Inf, for each of the two histograms. */
    unsigned n = 0;
    for (const char *p = b.buf; (p = strstr(p, "_bucket{worker=\"0\"")); p++)
        n++;
    assert_int_equal(n, 2 * (STATS_SLO_BOUNDS + 1));
    sbuf_free(&b);
    free(t);
}

/* The SLO bounds increase, and a value sits in the first bucket whose
 * bound is >= it. */
/* Listeners past STATS_MAX_LISTENERS: /stats lists them without figures,
 * /metrics leaves them out; the order is --listen, --http, --udp. */
static void test_listeners_past_the_table(void **state)
{
    (void)state;
    enum { NL = STATS_MAX_LISTENERS };  /* --listen; then one --http, one --udp */
    static char addrs[NL + 2][32];
    char *argv[2 * (NL + 2) + 2];
    int argc = 0;
    struct stats_table *t = table_new(1);
    struct opts o;
    char err[128];
    struct proc_info w[1] = { { 0, -1, -1, 0, 0 } };
    struct metrics_input in;
    struct sbuf b = { 0 };
    struct metrics_listener ml;

    argv[argc++] = "stampd";
    for (int i = 0; i < NL + 2; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", 9000 + i);
        argv[argc++] = i < NL ? "--listen" : i == NL ? "--http" : "--udp";
        argv[argc++] = addrs[i];
    }
    argv[argc] = NULL;
    assert_int_equal(opts_parse(&o, argc, argv, 1, err, sizeof(err)), OPTS_OK);
    assert_true(metrics_listener_at(&o, NL, &ml));
    assert_string_equal(ml.kind, "http");
    assert_string_equal(ml.a->text, addrs[NL]);
    assert_true(metrics_listener_at(&o, NL + 1, &ml));
    assert_string_equal(ml.kind, "udp");
    assert_false(metrics_listener_at(&o, NL + 2, &ml));
    t->slot[0].pid = 1;
    t->slot[0].lst[NL - 1].accepted = 7;
    minimal_input(&in, t, &o, w);
    metrics_render_json(&b, &in);
    assert_non_null(strstr(b.buf, "{\"listener\":\"127.0.0.1:9015\",\"kind\":\"line\","
                                  "\"flags\":[],\"listener_connections_accepted_total\":7,"));
    assert_non_null(strstr(b.buf, "{\"listener\":\"127.0.0.1:9016\",\"kind\":\"http\","
                                  "\"flags\":[]}"));
    sbuf_reset(&b);
    metrics_render_prometheus(&b, &in);
    sbuf_puts(&b, "");
    assert_non_null(strstr(b.buf, "stampd_listener_connections_accepted_total"
                                  "{listener=\"127.0.0.1:9015\",kind=\"line\"} 7\n"));
    assert_null(strstr(b.buf, "127.0.0.1:9016"));
    sbuf_free(&b);
    free(t);
}

static void test_slo_index(void **state)
{
    (void)state;
    for (unsigned i = 0; i < STATS_SLO_BOUNDS; i++) {
        uint64_t bound = stats_slo_bound_ns(i);
        if (i)
            assert_true(bound > stats_slo_bound_ns(i - 1));
        assert_int_equal(stats_slo_index(bound), i);
        assert_int_equal(stats_slo_index(bound + 1), i + 1);
    }
    assert_int_equal(stats_slo_index(0), 0);
    assert_int_equal(stats_slo_index(UINT64_MAX), STATS_SLO_BOUNDS);
}

/* Liveness and readiness from what the admin port observed. */
static void test_health(void **state)
{
    (void)state;
    struct stats_table *t = table_new(2);
    struct opts o;
    struct worker_health h[2] = { { 100, 0, 0 }, { 400, 0, 1 } };
    struct metrics_input in;
    char why[160];

    fixed_opts(&o);
    memset(&in, 0, sizeof(in));
    in.t = t;
    in.o = &o;
    in.health = h;
    assert_true(metrics_live(&in, why, sizeof(why)));
    assert_false(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "starting");  /* until the master says ready */
    in.ready_state = STATS_UPGRADING;
    assert_false(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "upgrading");
    in.ready_state = STATS_READY;
    assert_true(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "ok");

    h[1].heartbeat_age_ms = METRICS_STALL_MS;  /* stopped or hung */
    assert_false(metrics_live(&in, why, sizeof(why)));
    assert_string_equal(why, "worker 1 stalled: no loop turn for 2.0s");
    assert_false(metrics_ready(&in, why, sizeof(why)));

    h[1] = (struct worker_health){ 10, 0, STATS_CRASHLOOP_DEATHS };
    assert_false(metrics_live(&in, why, sizeof(why)));
    assert_string_equal(why, "worker 1 crash-looping: 3 deaths in 30s");

    /* Between a death and its respawn: not ready at once, not live after
     * METRICS_STALL_MS. */
    h[1] = (struct worker_health){ -1, 100, 1 };
    assert_true(metrics_live(&in, why, sizeof(why)));
    assert_false(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "worker 1 not serving");
    h[1].down_ms = 2500;
    assert_false(metrics_live(&in, why, sizeof(why)));
    assert_string_equal(why, "worker 1 not serving for 2.5s");

    h[1] = (struct worker_health){ 10, 0, 0 };
    in.draining = 1;
    assert_true(metrics_live(&in, why, sizeof(why)));
    assert_false(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "draining");
    in.draining = 0;

    /* The clock counts for readiness only with --require-synced-clock. */
    in.clock = (struct clock_state){ 1, 0, 16.0, 16.0, 0 };
    assert_true(metrics_ready(&in, why, sizeof(why)));
    o.require_synced_clock = 1;
    assert_false(metrics_ready(&in, why, sizeof(why)));
    assert_string_equal(why, "clock unsynchronised (maximum error 16.000000s)");
    in.clock.known = 0;  /* unreadable: no opinion */
    assert_true(metrics_ready(&in, why, sizeof(why)));
    free(t);
}

static void test_clock_warning(void **state)
{
    (void)state;
    char why[160];
    struct clock_state c = { 1, 1, 0.05, 0.001, 0 };

    assert_false(metrics_clock_warning(&c, 100000, why, sizeof(why)));
    c.max_error_s = 0.1;  /* at the limit is fine */
    assert_false(metrics_clock_warning(&c, 100000, why, sizeof(why)));
    c.max_error_s = 0.100001;
    assert_true(metrics_clock_warning(&c, 100000, why, sizeof(why)));
    assert_string_equal(why,
        "clock maximum error 0.100001s above --clock-max-error 0.100000s");
    c.synchronized = 0;
    assert_true(metrics_clock_warning(&c, 100000, why, sizeof(why)));
    c.known = 0;
    assert_false(metrics_clock_warning(&c, 100000, why, sizeof(why)));
}

/* hist.h: buckets tile the integers. */
static void test_hist_arithmetic(void **state)
{
    (void)state;
    for (unsigned sub = 2; sub <= 7; sub += 5) {
        unsigned last = hist_index(UINT64_MAX, sub);
        assert_int_equal(hist_lower(0, sub), 0);
        assert_int_equal(hist_upper(last, sub), UINT64_MAX);
        for (unsigned i = 0; i <= last; i++) {
            assert_int_equal(hist_index(hist_lower(i, sub), sub), i);
            assert_int_equal(hist_index(hist_upper(i, sub), sub), i);
            if (i < last)
                assert_int_equal(hist_upper(i, sub) + 1, hist_lower(i + 1, sub));
        }
    }
    assert_int_equal(hist_index(STATS_LAT_MAX_NS, STATS_LAT_SUB_BITS) + 1,
                     STATS_LAT_BUCKETS);
    /* 25% resolution with sub_bits 2: width <= lower / 4. */
    for (unsigned i = 4; i < STATS_LAT_BUCKETS; i++) {
        uint64_t lo = hist_lower(i, 2), hi = hist_upper(i, 2);
        assert_true((hi - lo + 1) * 4 <= lo);
    }
}

static void test_quantile(void **state)
{
    (void)state;
    uint64_t b[STATS_LAT_BUCKETS] = { 0 };

    assert_int_equal(metrics_quantile(b, STATS_LAT_BUCKETS, 2, 0.5), 0);
    /* 99 fast requests (1000 ns) and one slow (1 ms). */
    b[hist_index(1000, 2)] = 99;
    b[hist_index(1000000, 2)] = 1;
    uint64_t fast = hist_upper(hist_index(1000, 2), 2);
    uint64_t slow = hist_upper(hist_index(1000000, 2), 2);
    assert_int_equal(fast, 1023);
    assert_int_equal(metrics_quantile(b, STATS_LAT_BUCKETS, 2, 0.5), fast);
    assert_int_equal(metrics_quantile(b, STATS_LAT_BUCKETS, 2, 0.99), fast);
    assert_int_equal(metrics_quantile(b, STATS_LAT_BUCKETS, 2, 0.991), slow);
    assert_int_equal(metrics_quantile(b, STATS_LAT_BUCKETS, 2, 1.0), slow);
    assert_true(slow >= 1000000 && slow < 1250000);
}

static void test_fmt_seconds(void **state)
{
    (void)state;
    char s[32];
    metrics_fmt_seconds(s, sizeof(s), 0);
    assert_string_equal(s, "0");
    metrics_fmt_seconds(s, sizeof(s), 255);
    assert_string_equal(s, "0.000000255");
    metrics_fmt_seconds(s, sizeof(s), 1500000000);
    assert_string_equal(s, "1.5");
    metrics_fmt_seconds(s, sizeof(s), 4294967295ull);
    assert_string_equal(s, "4.294967295");
    metrics_fmt_seconds(s, sizeof(s), 12000000000ull);
    assert_string_equal(s, "12");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_golden),
        cmocka_unit_test(test_json_golden),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_listeners_past_the_table),
        cmocka_unit_test(test_slo_index),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_clock_warning),
        cmocka_unit_test(test_hist_arithmetic),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_fmt_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
