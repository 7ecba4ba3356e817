/*
 * metrics.c - the admin pages (see metrics.h).
 *
 * Both pages are expanded from the X-macro lists in stats.h, so a row added
 * there shows up in /metrics, in /stats and in stampctl without touching
 * this file.  Rows of one metric family must be adjacent in the list: a
 * family's HELP/TYPE header is written when the metric name changes.
 *
 * Slots are copied with relaxed loads before rendering, so each figure is
 * one untorn value; the page as a whole is not an atomic snapshot (a
 * counter may advance between two rows), which scrapers tolerate.
 */
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "reply.h"

/* A slot copied out of shared memory; gauges are 0 while no process owns
 * the slot. */
static void slot_copy(const struct stats_slot *s, struct stats_slot *out)
{
    memset(out, 0, sizeof(*out));
    out->pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
    out->started_unix_ms = __atomic_load_n(&s->started_unix_ms, __ATOMIC_RELAXED);
#define COPY(f, m, ln, lv, h) out->f = STAT_GET(s, f);
    STATS_COUNTERS(COPY)
    if (out->pid > 0) {
        STATS_GAUGES(COPY)
    }
#undef COPY
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++)
        out->lat_bucket[i] = STAT_GET(s, lat_bucket[i]);
    out->lat_sum_ns = STAT_GET(s, lat_sum_ns);
}

void metrics_slot_add(struct stats_slot *tot, const struct stats_slot *s)
{
#define SUM(f, m, ln, lv, h) tot->f += s->f;
    STATS_COUNTERS(SUM)
    STATS_GAUGES(SUM)
#undef SUM
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++)
        tot->lat_bucket[i] += s->lat_bucket[i];
    tot->lat_sum_ns += s->lat_sum_ns;
}

static uint64_t lat_count(const struct stats_slot *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++)
        n += s->lat_bucket[i];
    return n;
}

uint64_t metrics_quantile(const uint64_t *bucket, unsigned n,
                          unsigned sub_bits, double q)
{
    uint64_t count = 0, seen = 0;

    for (unsigned i = 0; i < n; i++)
        count += bucket[i];
    if (count == 0)
        return 0;
    /* The rank of the value wanted, 1-based: ceil(q * count) >= 1. */
    double r = q * (double)count;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < n; i++) {
        seen += bucket[i];
        if (seen >= rank)
            return hist_upper(i, sub_bits);
    }
    return hist_upper(n - 1, sub_bits);
}

void metrics_fmt_seconds(char *out, size_t len, uint64_t ns)
{
    unsigned long long s = ns / 1000000000u, frac = ns % 1000000000u;
    if (frac == 0) {
        snprintf(out, len, "%llu", s);
        return;
    }
    int digits = 9;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(out, len, "%llu.%0*llu", s, digits, frac);
}

static uint64_t uptime_ns(const struct metrics_input *in)
{
    int64_t ms = in->now_unix_ms - in->t->start_unix_ms;
    return ms > 0 ? (uint64_t)ms * 1000000u : 0;
}

/* --- Prometheus text format 0.0.4 ----------------------------------------- */

static void family(struct sbuf *b, const char *name, const char *type,
                   const char *help)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_hist(struct sbuf *b, unsigned w, const struct stats_slot *s)
{
    char le[32], sum[32];
    uint64_t cum = 0;
    unsigned i = 0;

    for (unsigned k = METRICS_LE_FIRST_SHIFT; k <= METRICS_LE_LAST_SHIFT; k++) {
        uint64_t bound = ((uint64_t)1 << k) - 1;
        unsigned last = hist_index(bound, STATS_LAT_SUB_BITS);
        for (; i <= last && i < STATS_LAT_BUCKETS; i++)
            cum += s->lat_bucket[i];
        metrics_fmt_seconds(le, sizeof(le), bound);
        sbuf_printf(b,
                    "stampd_request_duration_seconds_bucket{worker=\"%u\","
                    "le=\"%s\"} %llu\n", w, le, (unsigned long long)cum);
    }
    for (; i < STATS_LAT_BUCKETS; i++)
        cum += s->lat_bucket[i];
    metrics_fmt_seconds(sum, sizeof(sum), s->lat_sum_ns);
    sbuf_printf(b,
                "stampd_request_duration_seconds_bucket{worker=\"%u\",le=\"+Inf\"} %llu\n"
                "stampd_request_duration_seconds_sum{worker=\"%u\"} %s\n"
                "stampd_request_duration_seconds_count{worker=\"%u\"} %llu\n",
                w, (unsigned long long)cum, w, sum, w, (unsigned long long)cum);
}

/* One process_* family: the master, then each live worker.  `field`
 * selects the figure; unknown figures (< 0) are left out. */
enum proc_field { PF_RSS, PF_FDS, PF_START, PF_CPU };

static int proc_value(const struct proc_info *p, enum proc_field f, char *out,
                      size_t len)
{
    if (p->pid <= 0)
        return 0;
    switch (f) {
    case PF_RSS:
        if (p->rss_bytes < 0)
            return 0;
        snprintf(out, len, "%lld", (long long)p->rss_bytes);
        return 1;
    case PF_FDS:
        if (p->open_fds < 0)
            return 0;
        snprintf(out, len, "%lld", (long long)p->open_fds);
        return 1;
    case PF_START:
        if (p->start_time_s <= 0)
            return 0;
        snprintf(out, len, "%.2f", p->start_time_s);
        return 1;
    case PF_CPU:
        if (p->start_time_s <= 0)  /* /proc/PID/stat was not readable */
            return 0;
        snprintf(out, len, "%.2f", p->cpu_seconds);
        return 1;
    }
    return 0;
}

static void prom_process(struct sbuf *b, const struct metrics_input *in,
                         const char *name, const char *type, const char *help,
                         enum proc_field f)
{
    char v[48];

    family(b, name, type, help);
    if (proc_value(&in->master, f, v, sizeof(v)))
        sbuf_printf(b, "%s{process=\"master\"} %s\n", name, v);
    for (unsigned w = 0; w < in->t->nworkers; w++)
        if (proc_value(&in->workers[w], f, v, sizeof(v)))
            sbuf_printf(b, "%s{process=\"worker\",worker=\"%u\"} %s\n", name, w, v);
}

void metrics_render_prometheus(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;
    unsigned nw = t->nworkers;
    struct stats_slot s;
    char up[32];

    family(b, "stampd_build_info", "gauge",
           "Version and poller backend of the running server (always 1)");
    sbuf_puts(b, "stampd_build_info{version=\"");
    sbuf_puts(b, in->version);
    sbuf_puts(b, "\",poller=\"");
    sbuf_puts(b, in->poller);
    sbuf_puts(b, "\"} 1\n");
    family(b, "stampd_uptime_seconds", "gauge", "Seconds since the master started");
    metrics_fmt_seconds(up, sizeof(up), uptime_ns(in));
    sbuf_printf(b, "stampd_uptime_seconds %s\n", up);
    family(b, "stampd_draining", "gauge",
           "1 during a graceful stop (/healthz answers 503), else 0");
    sbuf_printf(b, "stampd_draining %d\n", in->draining ? 1 : 0);
    family(b, "stampd_workers", "gauge", "Worker processes configured (--workers)");
    sbuf_printf(b, "stampd_workers %u\n", nw);
    family(b, "stampd_worker_up", "gauge",
           "1 while the worker slot has a running process, 0 between a death and its respawn");
    for (unsigned w = 0; w < nw; w++)
        sbuf_printf(b, "stampd_worker_up{worker=\"%u\"} %d\n", w,
                    __atomic_load_n(&t->slot[w].pid, __ATOMIC_RELAXED) > 0);

    const char *prev = "";
#define ROW(f, m, ln, lv, h, suffix, type)                                     \
    if (strcmp(prev, m) != 0) {                                                \
        sbuf_printf(b, "# HELP stampd_%s%s %s\n# TYPE stampd_%s%s %s\n", m,    \
                    suffix, h, m, suffix, type);                               \
        prev = m;                                                              \
    }                                                                          \
    for (unsigned w = 0; w < nw; w++) {                                        \
        const char *lname = ln, *lval = lv;                                    \
        slot_copy(&t->slot[w], &s);                                            \
        sbuf_printf(b, "stampd_%s%s{worker=\"%u\"", m, suffix, w);             \
        if (lname)                                                             \
            sbuf_printf(b, ",%s=\"%s\"", lname, lval);                         \
        sbuf_printf(b, "} %llu\n", (unsigned long long)s.f);                   \
    }
#define COUNTER(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "_total", "counter")
#define GAUGE(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "", "gauge")
    STATS_COUNTERS(COUNTER)
    STATS_GAUGES(GAUGE)
#undef COUNTER
#undef GAUGE
#undef ROW

    family(b, "stampd_request_duration_seconds", "histogram",
           "Request handling time inside the server, from the read to the reply queued");
    for (unsigned w = 0; w < nw; w++) {
        slot_copy(&t->slot[w], &s);
        prom_hist(b, w, &s);
    }

    prom_process(b, in, "process_resident_memory_bytes", "gauge",
                 "Resident memory size in bytes", PF_RSS);
    prom_process(b, in, "process_open_fds", "gauge",
                 "Number of open file descriptors", PF_FDS);
    prom_process(b, in, "process_start_time_seconds", "gauge",
                 "Start time of the process since unix epoch in seconds", PF_START);
    prom_process(b, in, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds", PF_CPU);
}

/* --- /stats: JSON ------------------------------------------------------------ */

/* One option of the effective configuration (opts_visit). */
static void json_option(void *ctx, const char *key, enum opts_kind kind,
                        const char *const *items, int n)
{
    struct sbuf *b = ctx;
    int quoted = kind == OPTS_STRING || kind == OPTS_LIST;

    if (b->len > 0 && b->buf[b->len - 1] != '{')
        sbuf_puts(b, ",");
    sbuf_printf(b, "\"%s\":", key);
    if (kind == OPTS_LIST)
        sbuf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        sbuf_puts(b, i ? "," : "");
        if (quoted)
            sbuf_puts(b, "\"");
        if (quoted)
            sbuf_json_str(b, items[i]);
        else
            sbuf_puts(b, items[i]);
        if (quoted)
            sbuf_puts(b, "\"");
    }
    if (kind == OPTS_LIST)
        sbuf_puts(b, "]");
}

static void json_config(struct sbuf *b, const struct opts *o)
{
    sbuf_puts(b, "\"config\":{");
    opts_visit(o, json_option, b);
    sbuf_puts(b, "}");
}

static void json_proc(struct sbuf *b, const struct proc_info *p)
{
    if (p->rss_bytes >= 0)
        sbuf_printf(b, ",\"rss_bytes\":%lld", (long long)p->rss_bytes);
    if (p->open_fds >= 0)
        sbuf_printf(b, ",\"open_fds\":%lld", (long long)p->open_fds);
    if (p->start_time_s > 0)
        sbuf_printf(b, ",\"start_time_seconds\":%.2f,\"cpu_seconds\":%.2f",
                    p->start_time_s, p->cpu_seconds);
}

/* The figures of one slot (or the totals): every X-macro field under its
 * own name, then the latency summary.  `buckets`: also the non-zero
 * histogram buckets as [index, count] pairs, for tools that compute
 * percentiles over an interval (stampctl top). */
static void json_figures(struct sbuf *b, const struct stats_slot *s, int buckets)
{
    const char *sep = "";
#define FIELD(f, m, ln, lv, h) \
    sbuf_printf(b, "%s\"%s\":%llu", sep, #f, (unsigned long long)s->f); sep = ",";
    STATS_COUNTERS(FIELD)
    STATS_GAUGES(FIELD)
#undef FIELD
    double epw = s->loop_iterations
                     ? (double)s->loop_events / (double)s->loop_iterations : 0;
    sbuf_printf(b,
                ",\"events_per_wakeup\":%.3f,\"latency_count\":%llu,"
                "\"latency_sum_ns\":%llu,\"latency_p50_ns\":%llu,"
                "\"latency_p99_ns\":%llu,\"latency_p999_ns\":%llu",
                epw, (unsigned long long)lat_count(s),
                (unsigned long long)s->lat_sum_ns,
                (unsigned long long)metrics_quantile(s->lat_bucket, STATS_LAT_BUCKETS,
                                                     STATS_LAT_SUB_BITS, 0.5),
                (unsigned long long)metrics_quantile(s->lat_bucket, STATS_LAT_BUCKETS,
                                                     STATS_LAT_SUB_BITS, 0.99),
                (unsigned long long)metrics_quantile(s->lat_bucket, STATS_LAT_BUCKETS,
                                                     STATS_LAT_SUB_BITS, 0.999));
    if (!buckets)
        return;
    sbuf_printf(b, ",\"latency_sub_bits\":%d,\"latency_buckets\":[",
                STATS_LAT_SUB_BITS);
    sep = "";
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
        if (!s->lat_bucket[i])
            continue;
        sbuf_printf(b, "%s[%u,%llu]", sep, i, (unsigned long long)s->lat_bucket[i]);
        sep = ",";
    }
    sbuf_puts(b, "]");
}

void metrics_render_json(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;
    struct stats_slot s, tot;
    char up[32];

    memset(&tot, 0, sizeof(tot));
    metrics_fmt_seconds(up, sizeof(up), uptime_ns(in));
    sbuf_puts(b, "{\"version\":\"");
    sbuf_json_str(b, in->version);
    sbuf_puts(b, "\",\"poller\":\"");
    sbuf_json_str(b, in->poller);
    sbuf_printf(b, "\",\"pid\":%d,\"uptime_seconds\":%s,\"start_unix_ms\":%lld,"
                "\"draining\":%s,",
                (int)in->master.pid, up, (long long)t->start_unix_ms,
                in->draining ? "true" : "false");
    json_config(b, in->o);

    sbuf_printf(b, ",\"master\":{\"pid\":%d", (int)in->master.pid);
    json_proc(b, &in->master);
    sbuf_puts(b, "},\"workers\":[");
    for (unsigned w = 0; w < t->nworkers; w++) {
        slot_copy(&t->slot[w], &s);
        metrics_slot_add(&tot, &s);
        tot.pid += s.pid > 0;  /* the totals' pid: workers up */
        sbuf_printf(b, "%s{\"worker\":%u,\"pid\":%lld,\"up\":%s", w ? "," : "",
                    w, (long long)s.pid, s.pid > 0 ? "true" : "false");
        if (s.pid > 0) {
            sbuf_printf(b, ",\"started_unix_ms\":%lld", (long long)s.started_unix_ms);
            json_proc(b, &in->workers[w]);
        }
        sbuf_puts(b, ",");
        json_figures(b, &s, 1);
        sbuf_puts(b, "}");
    }
    sbuf_printf(b, "],\"totals\":{\"workers_up\":%lld,", (long long)tot.pid);
    json_figures(b, &tot, 0);
    sbuf_puts(b, "}}\n");
}
