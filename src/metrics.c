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
#include <stddef.h>
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
    for (unsigned i = 0; i < STATS_SLO_BUCKETS; i++) {
        out->lat_slo[i] = STAT_GET(s, lat_slo[i]);
        out->reply_slo[i] = STAT_GET(s, reply_slo[i]);
    }
    out->reply_sum_ns = STAT_GET(s, reply_sum_ns);
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
    for (unsigned i = 0; i < STATS_SLO_BUCKETS; i++) {
        tot->lat_slo[i] += s->lat_slo[i];
        tot->reply_slo[i] += s->reply_slo[i];
    }
    tot->reply_sum_ns += s->reply_sum_ns;
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

/* --- health ------------------------------------------------------------------ */

int metrics_live(const struct metrics_input *in, char *why, size_t len)
{
    for (unsigned w = 0; in->health && w < in->t->nworkers; w++) {
        const struct worker_health *h = &in->health[w];
        if (h->heartbeat_age_ms >= METRICS_STALL_MS) {
            snprintf(why, len, "worker %u stalled: no loop turn for %.1fs", w,
                     (double)h->heartbeat_age_ms / 1000);
            return 0;
        }
        if (h->recent_deaths >= STATS_CRASHLOOP_DEATHS) {
            snprintf(why, len, "worker %u crash-looping: %u deaths in %us", w,
                     h->recent_deaths, (unsigned)(STATS_CRASHLOOP_WINDOW_MS / 1000));
            return 0;
        }
        if (h->heartbeat_age_ms < 0 && h->down_ms >= METRICS_STALL_MS) {
            snprintf(why, len, "worker %u not serving for %.1fs", w,
                     (double)h->down_ms / 1000);
            return 0;
        }
    }
    snprintf(why, len, "ok");
    return 1;
}

int metrics_clock_warning(const struct clock_state *c, uint64_t limit_us,
                          char *why, size_t len)
{
    if (!c->known)
        return 0;
    if (!c->synchronized) {
        snprintf(why, len, "clock unsynchronised (maximum error %.6fs)",
                 c->max_error_s);
        return 1;
    }
    if (c->max_error_s * 1e6 > (double)limit_us) {
        snprintf(why, len, "clock maximum error %.6fs above --clock-max-error %.6fs",
                 c->max_error_s, (double)limit_us / 1e6);
        return 1;
    }
    return 0;
}

int metrics_ready(const struct metrics_input *in, char *why, size_t len)
{
    static const char *const state[] = {
        [STATS_STARTING] = "starting", [STATS_UPGRADING] = "upgrading",
        [STATS_DRAINING] = "draining",
    };
    int st = in->draining ? STATS_DRAINING : in->ready_state;
    /* A stop or handover first: it explains everything else. */
    if (st == STATS_DRAINING || st == STATS_UPGRADING) {
        snprintf(why, len, "%s", state[st]);
        return 0;
    }
    if (!metrics_live(in, why, len))
        return 0;
    if (st != STATS_READY) {
        snprintf(why, len, "%s", st == STATS_STARTING ? state[st] : "not ready");
        return 0;
    }
    for (unsigned w = 0; in->health && w < in->t->nworkers; w++)
        if (in->health[w].heartbeat_age_ms < 0) {
            snprintf(why, len, "worker %u not serving", w);
            return 0;
        }
    if (in->o && in->o->require_synced_clock &&
        metrics_clock_warning(&in->clock, in->o->clock_max_error_us, why, len))
        return 0;
    snprintf(why, len, "ok");
    return 1;
}

/* --- Prometheus text format 0.0.4 ----------------------------------------- */

static void family(struct sbuf *b, const char *name, const char *type,
                   const char *help)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram series on the SLO bounds: cumulative counts per le. */
static void prom_hist(struct sbuf *b, const char *name, unsigned w,
                      const uint64_t *slo, uint64_t sum_ns)
{
    char le[32], sum[32];
    uint64_t cum = 0;

    for (unsigned i = 0; i < STATS_SLO_BOUNDS; i++) {
        cum += slo[i];
        metrics_fmt_seconds(le, sizeof(le), stats_slo_bound_ns(i));
        sbuf_printf(b, "%s_bucket{worker=\"%u\",le=\"%s\"} %llu\n", name, w, le,
                    (unsigned long long)cum);
    }
    cum += slo[STATS_SLO_BOUNDS];
    metrics_fmt_seconds(sum, sizeof(sum), sum_ns);
    sbuf_printf(b,
                "%s_bucket{worker=\"%u\",le=\"+Inf\"} %llu\n"
                "%s_sum{worker=\"%u\"} %s\n"
                "%s_count{worker=\"%u\"} %llu\n",
                name, w, (unsigned long long)cum, name, w, sum, name, w,
                (unsigned long long)cum);
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

static void prom_health(struct sbuf *b, const struct metrics_input *in)
{
    char why[160];

    family(b, "stampd_live", "gauge",
           "1 when /healthz answers 200 (every worker's loop turns), else 0");
    sbuf_printf(b, "stampd_live %d\n", metrics_live(in, why, sizeof(why)));
    family(b, "stampd_ready", "gauge",
           "1 when /readyz answers 200 (every worker serves, not draining), else 0");
    sbuf_printf(b, "stampd_ready %d\n", metrics_ready(in, why, sizeof(why)));
    if (!in->health)
        return;
    family(b, "stampd_worker_heartbeat_age_seconds", "gauge",
           "Seconds since the worker's event loop last turned (it turns at least twice a second)");
    for (unsigned w = 0; w < in->t->nworkers; w++)
        if (in->health[w].heartbeat_age_ms >= 0)
            sbuf_printf(b, "stampd_worker_heartbeat_age_seconds{worker=\"%u\"} %.3f\n",
                        w, (double)in->health[w].heartbeat_age_ms / 1000);
}

static void prom_clock(struct sbuf *b, const struct clock_state *c)
{
    if (!c->known)
        return;
    family(b, "stampd_clock_synchronized", "gauge",
           "1 when the kernel says the system clock is synchronised (adjtimex), else 0");
    sbuf_printf(b, "stampd_clock_synchronized %d\n", c->synchronized ? 1 : 0);
    family(b, "stampd_clock_max_error_seconds", "gauge",
           "The kernel's maximum error bound of the system clock (adjtimex maxerror)");
    sbuf_printf(b, "stampd_clock_max_error_seconds %.6f\n", c->max_error_s);
    family(b, "stampd_clock_estimated_error_seconds", "gauge",
           "The kernel's estimated error of the system clock (adjtimex esterror)");
    sbuf_printf(b, "stampd_clock_estimated_error_seconds %.6f\n", c->est_error_s);
    family(b, "stampd_clock_offset_seconds", "gauge",
           "The clock offset the kernel is correcting (adjtimex offset)");
    sbuf_printf(b, "stampd_clock_offset_seconds %.9f\n", c->offset_s);
}

static void prom_max_fds(struct sbuf *b, const struct metrics_input *in)
{
    const char *name = "process_max_fds";

    family(b, name, "gauge",
           "Maximum number of open file descriptors (the soft RLIMIT_NOFILE)");
    if (in->master.pid > 0 && in->master_max_fds >= 0)
        sbuf_printf(b, "%s{process=\"master\"} %lld\n", name,
                    (long long)in->master_max_fds);
    for (unsigned w = 0; in->workers_max_fds && w < in->t->nworkers; w++)
        if (in->workers[w].pid > 0 && in->workers_max_fds[w] >= 0)
            sbuf_printf(b, "%s{process=\"worker\",worker=\"%u\"} %lld\n", name, w,
                        (long long)in->workers_max_fds[w]);
}

/* The admin port's own counters (the master's loop serves it). */
static void prom_admin(struct sbuf *b, const struct stats_table *t)
{
    static const struct {
        size_t off;
        const char *name, *help;
    } rows[] = {
        { offsetof(struct stats_table, admin_accept_pauses),
          "stampd_admin_accept_pauses_total",
          "Times the admin port paused accepting because descriptors ran out" },
        { offsetof(struct stats_table, admin_accept_errors),
          "stampd_admin_accept_errors_total",
          "Admin port accept() failures other than EAGAIN" },
        { offsetof(struct stats_table, admin_poller_errors),
          "stampd_admin_poller_errors_total",
          "Admin connections closed because the poller refused an interest change" },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const uint64_t *v = (const uint64_t *)((const char *)t + rows[i].off);
        family(b, rows[i].name, "counter", rows[i].help);
        sbuf_printf(b, "%s %llu\n", rows[i].name,
                    (unsigned long long)__atomic_load_n(v, __ATOMIC_RELAXED));
    }
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
           "1 during a graceful stop or upgrade (/readyz answers 503), else 0");
    sbuf_printf(b, "stampd_draining %d\n", in->draining ? 1 : 0);
    prom_health(b, in);
    prom_clock(b, &in->clock);
    family(b, "stampd_workers", "gauge", "Worker processes configured (--workers)");
    sbuf_printf(b, "stampd_workers %u\n", nw);
    family(b, "stampd_worker_up", "gauge",
           "1 while the worker slot has a running process, 0 between a death and its respawn");
    for (unsigned w = 0; w < nw; w++)
        sbuf_printf(b, "stampd_worker_up{worker=\"%u\"} %d\n", w,
                    __atomic_load_n(&t->slot[w].pid, __ATOMIC_RELAXED) > 0);
    prom_admin(b, t);

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

    family(b, "stampd_max_connections", "gauge",
           "Connections a worker accepts at most (--max-conns), the limit of stampd_connections_active");
    for (unsigned w = 0; w < nw; w++)
        sbuf_printf(b, "stampd_max_connections{worker=\"%u\"} %u\n", w,
                    in->o ? in->o->max_conns : 0);

    family(b, "stampd_request_duration_seconds", "histogram",
           "Time from the wake-up that read a request to the end of that batch "
           "of events, its reply sent or queued (the server's own step; see "
           "stampd_reply_duration_seconds for replies that waited)");
    for (unsigned w = 0; w < nw; w++) {
        slot_copy(&t->slot[w], &s);
        prom_hist(b, "stampd_request_duration_seconds", w, s.lat_slo, s.lat_sum_ns);
    }
    family(b, "stampd_reply_duration_seconds", "histogram",
           "Time from the wake-up that read a request to the kernel accepting "
           "the last byte of its reply (what a client feels that the server "
           "controls; a reply held for a slow reader counts until the wake-up "
           "that drained it)");
    for (unsigned w = 0; w < nw; w++) {
        slot_copy(&t->slot[w], &s);
        prom_hist(b, "stampd_reply_duration_seconds", w, s.reply_slo, s.reply_sum_ns);
    }

    prom_process(b, in, "process_resident_memory_bytes", "gauge",
                 "Resident memory size in bytes", PF_RSS);
    prom_process(b, in, "process_open_fds", "gauge",
                 "Number of open file descriptors", PF_FDS);
    prom_max_fds(b, in);
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

static void json_proc(struct sbuf *b, const struct proc_info *p, int64_t max_fds)
{
    if (max_fds >= 0)
        sbuf_printf(b, ",\"max_fds\":%lld", (long long)max_fds);
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

/* "live", "ready" (with the reason when not) and the clock. */
static void json_health(struct sbuf *b, const struct metrics_input *in)
{
    char why[160];
    int live = metrics_live(in, why, sizeof(why));

    sbuf_printf(b, ",\"live\":%s", live ? "true" : "false");
    if (!live) {
        sbuf_puts(b, ",\"live_reason\":\"");
        sbuf_json_str(b, why);
        sbuf_puts(b, "\"");
    }
    int ready = metrics_ready(in, why, sizeof(why));
    sbuf_printf(b, ",\"ready\":%s", ready ? "true" : "false");
    if (!ready) {
        sbuf_puts(b, ",\"ready_reason\":\"");
        sbuf_json_str(b, why);
        sbuf_puts(b, "\"");
    }
    const struct clock_state *c = &in->clock;
    if (c->known)
        sbuf_printf(b, ",\"clock\":{\"synchronized\":%s,\"max_error_seconds\":%.6f,"
                    "\"estimated_error_seconds\":%.6f,\"offset_seconds\":%.9f}",
                    c->synchronized ? "true" : "false", c->max_error_s,
                    c->est_error_s, c->offset_s);
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
    json_health(b, in);

    sbuf_printf(b, ",\"master\":{\"pid\":%d,\"admin_accept_pauses\":%llu,"
                "\"admin_accept_errors\":%llu,\"admin_poller_errors\":%llu",
                (int)in->master.pid,
                (unsigned long long)STAT_GET(t, admin_accept_pauses),
                (unsigned long long)STAT_GET(t, admin_accept_errors),
                (unsigned long long)STAT_GET(t, admin_poller_errors));
    json_proc(b, &in->master, in->master_max_fds);
    sbuf_puts(b, "},\"workers\":[");
    for (unsigned w = 0; w < t->nworkers; w++) {
        slot_copy(&t->slot[w], &s);
        metrics_slot_add(&tot, &s);
        tot.pid += s.pid > 0;  /* the totals' pid: workers up */
        sbuf_printf(b, "%s{\"worker\":%u,\"pid\":%lld,\"up\":%s", w ? "," : "",
                    w, (long long)s.pid, s.pid > 0 ? "true" : "false");
        if (in->health && in->health[w].heartbeat_age_ms >= 0)
            sbuf_printf(b, ",\"heartbeat_age_seconds\":%.3f",
                        (double)in->health[w].heartbeat_age_ms / 1000);
        if (in->o)
            sbuf_printf(b, ",\"max_connections\":%u", in->o->max_conns);
        if (s.pid > 0) {
            sbuf_printf(b, ",\"started_unix_ms\":%lld", (long long)s.started_unix_ms);
            json_proc(b, &in->workers[w],
                      in->workers_max_fds ? in->workers_max_fds[w] : -1);
        }
        sbuf_puts(b, ",");
        json_figures(b, &s, 1);
        sbuf_puts(b, "}");
    }
    sbuf_printf(b, "],\"totals\":{\"workers_up\":%lld,", (long long)tot.pid);
    json_figures(b, &tot, 0);
    sbuf_puts(b, "}}\n");
}
