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

/* The families that are not rows of stats.h: one entry each, read by both
 * renderers, so /metrics and /stats cannot name a figure differently.
 * `name` is the JSON key; /metrics prefixes it with "stampd_", except the
 * process_* families, whose JSON key drops the "process_" (they sit in the
 * "master" object and in each worker's). */
enum fam {
    F_BUILD_INFO, F_UPTIME, F_DRAINING, F_LIVE, F_READY, F_HEARTBEAT,
    F_CLOCK_SYNC, F_CLOCK_MAX_ERR, F_CLOCK_EST_ERR, F_CLOCK_OFFSET,
    F_WORKERS, F_WORKER_UP, F_MAX_CONNS, F_REQ_DUR, F_REPLY_DUR,
    F_RSS, F_FDS, F_MAX_FDS, F_START, F_CPU,
};
#define PROC_PREFIX "process_"
static const struct fam_def {
    const char *name, *type, *help;
} fams[] = {
    [F_BUILD_INFO] = { "build_info", "gauge",
        "Version and poller backend of the running server (always 1)" },
    [F_UPTIME] = { "uptime_seconds", "gauge", "Seconds since the master started" },
    [F_DRAINING] = { "draining", "gauge",
        "1 during a graceful stop or upgrade (/readyz answers 503), else 0" },
    [F_LIVE] = { "live", "gauge",
        "1 when /healthz answers 200 (every worker's loop turns), else 0" },
    [F_READY] = { "ready", "gauge",
        "1 when /readyz answers 200 (every worker serves, not draining), else 0" },
    [F_HEARTBEAT] = { "worker_heartbeat_age_seconds", "gauge",
        "Seconds since the worker's event loop last turned (it turns at least twice a second)" },
    [F_CLOCK_SYNC] = { "clock_synchronized", "gauge",
        "1 when the kernel says the system clock is synchronised (adjtimex), else 0" },
    [F_CLOCK_MAX_ERR] = { "clock_max_error_seconds", "gauge",
        "The kernel's maximum error bound of the system clock (adjtimex maxerror)" },
    [F_CLOCK_EST_ERR] = { "clock_estimated_error_seconds", "gauge",
        "The kernel's estimated error of the system clock (adjtimex esterror)" },
    [F_CLOCK_OFFSET] = { "clock_offset_seconds", "gauge",
        "The clock offset the kernel is correcting (adjtimex offset)" },
    [F_WORKERS] = { "workers", "gauge", "Worker processes configured (--workers)" },
    [F_WORKER_UP] = { "worker_up", "gauge",
        "1 while the worker slot has a running process, 0 between a death and its respawn" },
    [F_MAX_CONNS] = { "max_connections", "gauge",
        "Connections a worker accepts at most (--max-conns), the limit of stampd_connections_active" },
    [F_REQ_DUR] = { "request_duration_seconds", "histogram",
        "Time from the wake-up that read a request to the end of that batch "
        "of events, its reply sent or queued (the server's own step; see "
        "stampd_reply_duration_seconds for replies that waited)" },
    [F_REPLY_DUR] = { "reply_duration_seconds", "histogram",
        "Time from the wake-up that read a request to the kernel accepting "
        "the last byte of its reply (what a client feels that the server "
        "controls; a reply held for a slow reader counts until the wake-up "
        "that drained it)" },
    [F_RSS] = { PROC_PREFIX "resident_memory_bytes", "gauge", "Resident memory size in bytes" },
    [F_FDS] = { PROC_PREFIX "open_fds", "gauge", "Number of open file descriptors" },
    [F_MAX_FDS] = { PROC_PREFIX "max_fds", "gauge",
        "Maximum number of open file descriptors (the soft RLIMIT_NOFILE)" },
    [F_START] = { PROC_PREFIX "start_time_seconds", "gauge",
        "Start time of the process since unix epoch in seconds" },
    [F_CPU] = { PROC_PREFIX "cpu_seconds_total", "counter",
        "Total user and system CPU time spent in seconds" },
};

static int fam_is_proc(enum fam f)
{
    return strncmp(fams[f].name, PROC_PREFIX, sizeof(PROC_PREFIX) - 1) == 0;
}

/* The /stats key of a family. */
static const char *jkey(enum fam f)
{
    return fams[f].name + (fam_is_proc(f) ? sizeof(PROC_PREFIX) - 1 : 0);
}

/* The /metrics name of a family, into out. */
static const char *pname(enum fam f, char *out, size_t len)
{
    snprintf(out, len, "%s%s", fam_is_proc(f) ? "" : "stampd_", fams[f].name);
    return out;
}

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
    for (unsigned j = 0; j < STATS_MAX_LISTENERS; j++) {
        const struct stats_listener *l = &s->lst[j];
        struct stats_listener *o = &out->lst[j];
#define LCOPY(f, m, h) o->f = STAT_GET(l, f);
        STATS_LISTENER_COUNTERS(LCOPY)
        if (out->pid > 0) {
            STATS_LISTENER_GAUGES(LCOPY)
        }
#undef LCOPY
    }
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

/* --- listeners --------------------------------------------------------------- */

int metrics_listener_at(const struct opts *o, int j, struct metrics_listener *l)
{
    if (j < 0)
        return 0;
    if (j < o->nlisten) {
        *l = (struct metrics_listener){ &o->listen[j], "line" };
        return 1;
    }
    j -= o->nlisten;
    if (j < o->nhttp) {
        *l = (struct metrics_listener){ &o->http[j], "http" };
        return 1;
    }
    j -= o->nhttp;
    if (j < o->nudp) {
        *l = (struct metrics_listener){ &o->udp[j], "udp" };
        return 1;
    }
    return 0;
}

void metrics_listener_sum(const struct stats_table *t, unsigned j,
                          struct stats_listener *sum,
                          struct sockaddr_storage *client,
                          struct sockaddr_storage *enforced)
{
    int64_t client_at = 0, enforced_at = 0;

    memset(sum, 0, sizeof(*sum));
    memset(client, 0, sizeof(*client));
    memset(enforced, 0, sizeof(*enforced));
    for (unsigned w = 0; w < t->nworkers && j < STATS_MAX_LISTENERS; w++) {
        const struct stats_listener *l = &t->slot[w].lst[j];
        struct sockaddr_storage ss;
        int64_t at;
#define LSUM(f, m, h) sum->f += STAT_GET(l, f);
        STATS_LISTENER_COUNTERS(LSUM)
        if (__atomic_load_n(&t->slot[w].pid, __ATOMIC_RELAXED) > 0) {
            STATS_LISTENER_GAUGES(LSUM)
        }
#undef LSUM
        /* The latest over the workers (their monotonic clocks are one). */
        stats_client_load(&l->last_client, &ss, &at);
        if (ss.ss_family && at >= client_at) {
            *client = ss;
            client_at = at;
        }
        stats_client_load(&l->last_enforced, &ss, &at);
        if (ss.ss_family && at >= enforced_at) {
            *enforced = ss;
            enforced_at = at;
        }
    }
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

/* The HELP and TYPE lines of f; its /metrics name into name. */
static void fam_head(struct sbuf *b, enum fam f, char *name, size_t len)
{
    family(b, pname(f, name, len), fams[f].type, fams[f].help);
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

/* A process figure (f one of F_RSS .. F_CPU) as text; 0 when unknown. */
static int proc_value(const struct proc_info *p, enum fam f, char *out,
                      size_t len)
{
    if (p->pid <= 0)
        return 0;
    switch (f) {
    case F_RSS:
        if (p->rss_bytes < 0)
            return 0;
        snprintf(out, len, "%lld", (long long)p->rss_bytes);
        return 1;
    case F_FDS:
        if (p->open_fds < 0)
            return 0;
        snprintf(out, len, "%lld", (long long)p->open_fds);
        return 1;
    case F_START:
        if (p->start_time_s <= 0)
            return 0;
        snprintf(out, len, "%.2f", p->start_time_s);
        return 1;
    case F_CPU:
        if (p->start_time_s <= 0)  /* /proc/PID/stat was not readable */
            return 0;
        snprintf(out, len, "%.2f", p->cpu_seconds);
        return 1;
    default:
        return 0;
    }
}

/* One process_* family: the master, then each live worker.  Unknown
 * figures are left out. */
static void prom_process(struct sbuf *b, const struct metrics_input *in,
                         enum fam f)
{
    char v[48], name[64];

    fam_head(b, f, name, sizeof(name));
    if (proc_value(&in->master, f, v, sizeof(v)))
        sbuf_printf(b, "%s{process=\"master\"} %s\n", name, v);
    for (unsigned w = 0; w < in->t->nworkers; w++)
        if (proc_value(&in->workers[w], f, v, sizeof(v)))
            sbuf_printf(b, "%s{process=\"worker\",worker=\"%u\"} %s\n", name, w, v);
}

static void prom_health(struct sbuf *b, const struct metrics_input *in)
{
    char why[160], name[64];

    fam_head(b, F_LIVE, name, sizeof(name));
    sbuf_printf(b, "%s %d\n", name, metrics_live(in, why, sizeof(why)));
    fam_head(b, F_READY, name, sizeof(name));
    sbuf_printf(b, "%s %d\n", name, metrics_ready(in, why, sizeof(why)));
    if (!in->health)
        return;
    fam_head(b, F_HEARTBEAT, name, sizeof(name));
    for (unsigned w = 0; w < in->t->nworkers; w++)
        if (in->health[w].heartbeat_age_ms >= 0)
            sbuf_printf(b, "%s{worker=\"%u\"} %.3f\n", name, w,
                        (double)in->health[w].heartbeat_age_ms / 1000);
}

/* The clock families' values as text (F_CLOCK_SYNC .. F_CLOCK_OFFSET). */
static void clock_value(const struct clock_state *c, enum fam f, char *out,
                        size_t len)
{
    switch (f) {
    case F_CLOCK_SYNC:
        snprintf(out, len, "%d", c->synchronized ? 1 : 0);
        break;
    case F_CLOCK_MAX_ERR:
        snprintf(out, len, "%.6f", c->max_error_s);
        break;
    case F_CLOCK_EST_ERR:
        snprintf(out, len, "%.6f", c->est_error_s);
        break;
    default:
        snprintf(out, len, "%.9f", c->offset_s);
        break;
    }
}

static void prom_clock(struct sbuf *b, const struct clock_state *c)
{
    char name[64], v[48];

    if (!c->known)
        return;
    for (enum fam f = F_CLOCK_SYNC; f <= F_CLOCK_OFFSET; f++) {
        fam_head(b, f, name, sizeof(name));
        clock_value(c, f, v, sizeof(v));
        sbuf_printf(b, "%s %s\n", name, v);
    }
}

static void prom_max_fds(struct sbuf *b, const struct metrics_input *in)
{
    char name[64];

    fam_head(b, F_MAX_FDS, name, sizeof(name));
    if (in->master.pid > 0 && in->master_max_fds >= 0)
        sbuf_printf(b, "%s{process=\"master\"} %lld\n", name,
                    (long long)in->master_max_fds);
    for (unsigned w = 0; in->workers_max_fds && w < in->t->nworkers; w++)
        if (in->workers[w].pid > 0 && in->workers_max_fds[w] >= 0)
            sbuf_printf(b, "%s{process=\"worker\",worker=\"%u\"} %lld\n", name, w,
                        (long long)in->workers_max_fds[w]);
}

/* The admin port's own counters (the master's loop serves it), in the
 * stats table's header: one table for both pages.  `name` is the /stats
 * key (top level, no labels); /metrics prefixes "stampd_". */
static const struct {
    size_t off;
    const char *name, *help;
} admin_rows[] = {
    { offsetof(struct stats_table, admin_accept_pauses), "admin_accept_pauses_total",
      "Times the admin port paused accepting because descriptors ran out" },
    { offsetof(struct stats_table, admin_accept_errors), "admin_accept_errors_total",
      "Admin port accept() failures other than EAGAIN" },
    { offsetof(struct stats_table, admin_poller_errors), "admin_poller_errors_total",
      "Admin connections closed because the poller refused an interest change" },
};
#define NADMIN_ROWS (sizeof(admin_rows) / sizeof(admin_rows[0]))

static uint64_t admin_value(const struct stats_table *t, size_t i)
{
    const uint64_t *v = (const uint64_t *)((const char *)t + admin_rows[i].off);
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void prom_admin(struct sbuf *b, const struct stats_table *t)
{
    char name[64];

    for (size_t i = 0; i < NADMIN_ROWS; i++) {
        snprintf(name, sizeof(name), "stampd_%s", admin_rows[i].name);
        family(b, name, "counter", admin_rows[i].help);
        sbuf_printf(b, "%s %llu\n", name, (unsigned long long)admin_value(t, i));
    }
}

/* Every row of stats.h, one family per metric, a series per worker. */
static void prom_rows(struct sbuf *b, const struct stats_table *t)
{
    unsigned nw = t->nworkers;
    struct stats_slot s;
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
}

/* A label value: backslash, double quote and newline escaped. */
static void prom_label_value(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sbuf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_append(b, s, 1);
    }
}

/* The listeners' figures (summed over workers), labelled by the
 * listener's address and kind; no client addresses (unbounded). */
static void prom_listeners(struct sbuf *b, const struct metrics_input *in)
{
    struct metrics_listener ml[STATS_MAX_LISTENERS];
    struct stats_listener sum[STATS_MAX_LISTENERS];
    struct sockaddr_storage c, e;
    int n = 0;

    for (; in->o && n < STATS_MAX_LISTENERS &&
           metrics_listener_at(in->o, n, &ml[n]); n++)
        metrics_listener_sum(in->t, (unsigned)n, &sum[n], &c, &e);
    if (!n)
        return;
#define LFAM(f, m, h, suffix, type)                                            \
    sbuf_printf(b, "# HELP stampd_%s%s %s\n# TYPE stampd_%s%s %s\n", m,       \
                suffix, h, m, suffix, type);                                   \
    for (int j = 0; j < n; j++) {                                              \
        sbuf_printf(b, "stampd_%s%s{listener=\"", m, suffix);                  \
        prom_label_value(b, ml[j].a->text);                                    \
        sbuf_printf(b, "\",kind=\"%s\"} %llu\n", ml[j].kind,                   \
                    (unsigned long long)sum[j].f);                             \
    }
#define LCOUNTER(f, m, h) LFAM(f, m, h, "_total", "counter")
#define LGAUGE(f, m, h) LFAM(f, m, h, "", "gauge")
    STATS_LISTENER_COUNTERS(LCOUNTER)
    STATS_LISTENER_GAUGES(LGAUGE)
#undef LCOUNTER
#undef LGAUGE
#undef LFAM
}

void metrics_render_prometheus(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;
    unsigned nw = t->nworkers;
    struct stats_slot s;
    char up[32], name[64];

    fam_head(b, F_BUILD_INFO, name, sizeof(name));
    sbuf_printf(b, "%s{version=\"", name);
    sbuf_puts(b, in->version);
    sbuf_puts(b, "\",poller=\"");
    sbuf_puts(b, in->poller);
    sbuf_puts(b, "\"} 1\n");
    fam_head(b, F_UPTIME, name, sizeof(name));
    metrics_fmt_seconds(up, sizeof(up), uptime_ns(in));
    sbuf_printf(b, "%s %s\n", name, up);
    fam_head(b, F_DRAINING, name, sizeof(name));
    sbuf_printf(b, "%s %d\n", name, in->draining ? 1 : 0);
    prom_health(b, in);
    prom_clock(b, &in->clock);
    fam_head(b, F_WORKERS, name, sizeof(name));
    sbuf_printf(b, "%s %u\n", name, nw);
    fam_head(b, F_WORKER_UP, name, sizeof(name));
    for (unsigned w = 0; w < nw; w++)
        sbuf_printf(b, "%s{worker=\"%u\"} %d\n", name, w,
                    __atomic_load_n(&t->slot[w].pid, __ATOMIC_RELAXED) > 0);
    prom_admin(b, t);
    prom_rows(b, t);
    prom_listeners(b, in);
    fam_head(b, F_MAX_CONNS, name, sizeof(name));
    for (unsigned w = 0; w < nw; w++)
        sbuf_printf(b, "%s{worker=\"%u\"} %u\n", name, w,
                    in->o ? in->o->max_conns : 0);

    fam_head(b, F_REQ_DUR, name, sizeof(name));
    for (unsigned w = 0; w < nw; w++) {
        slot_copy(&t->slot[w], &s);
        prom_hist(b, name, w, s.lat_slo, s.lat_sum_ns);
    }
    fam_head(b, F_REPLY_DUR, name, sizeof(name));
    for (unsigned w = 0; w < nw; w++) {
        slot_copy(&t->slot[w], &s);
        prom_hist(b, name, w, s.reply_slo, s.reply_sum_ns);
    }

    prom_process(b, in, F_RSS);
    prom_process(b, in, F_FDS);
    prom_max_fds(b, in);
    prom_process(b, in, F_START);
    prom_process(b, in, F_CPU);
}

/* --- /stats: JSON ------------------------------------------------------------
 * Every key is a /metrics family's name without "stampd_" (process_*
 * families without "process_", inside "master" and each worker), every
 * label one level of nested keys; the worker label is the "workers"
 * array.  Durations are seconds, sizes bytes, counts exact integers. */

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
    sbuf_puts(b, ",\"config\":{");
    opts_visit(o, json_option, b);
    sbuf_puts(b, "}");
}

/* ,"<key of f>": */
static void json_key(struct sbuf *b, enum fam f)
{
    sbuf_printf(b, ",\"%s\":", jkey(f));
}

/* Unix milliseconds as exact decimal seconds. */
static void json_unix_ms(struct sbuf *b, enum fam f, int64_t ms)
{
    json_key(b, f);
    sbuf_printf(b, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* A process's figures; start_ms > 0: its start time from the stats table
 * (exact to the millisecond) instead of /proc's. */
static void json_proc(struct sbuf *b, const struct proc_info *p, int64_t max_fds,
                      int64_t start_ms)
{
    static const enum fam figs[] = { F_RSS, F_FDS, F_START, F_CPU };
    char v[48];

    if (max_fds >= 0) {
        json_key(b, F_MAX_FDS);
        sbuf_printf(b, "%lld", (long long)max_fds);
    }
    for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
        if (figs[i] == F_START && start_ms > 0) {
            json_unix_ms(b, F_START, start_ms);
        } else if (proc_value(p, figs[i], v, sizeof(v))) {
            json_key(b, figs[i]);
            sbuf_puts(b, v);
        }
    }
}

/* One row of stats.h: rows of a labelled metric share one object, which
 * the caller closes when the metric changes. */
static void json_row(struct sbuf *b, const char **prev, const char *m,
                     const char *suffix, const char *lv, uint64_t v)
{
    if (*prev && strcmp(*prev, m) == 0) {
        sbuf_puts(b, ",");
    } else {
        sbuf_printf(b, ",\"%s%s\":%s", m, suffix, lv ? "{" : "");
        *prev = m;
    }
    if (lv)
        sbuf_printf(b, "\"%s\":", lv);
    sbuf_printf(b, "%llu", (unsigned long long)v);
}

/* Every row of stats.h of slot s. */
static void json_rows(struct sbuf *b, const struct stats_slot *s)
{
    const char *prev = NULL;
    int open = 0;

#define ROW(f, m, ln, lv, h, suffix)                                           \
    {                                                                          \
        const char *lval = lv;                                                 \
        if (open && strcmp(prev, m) != 0) {                                    \
            sbuf_puts(b, "}");                                                 \
            open = 0;                                                          \
        }                                                                      \
        json_row(b, &prev, m, suffix, lval, s->f);                             \
        open = lval != NULL;                                                   \
    }
#define COUNTER(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "_total")
#define GAUGE(f, m, ln, lv, h) ROW(f, m, ln, lv, h, "")
    STATS_COUNTERS(COUNTER)
    STATS_GAUGES(GAUGE)
#undef COUNTER
#undef GAUGE
#undef ROW
    if (open)
        sbuf_puts(b, "}");
}

/* "key":<ns as exact seconds> after sep. */
static void json_seconds(struct sbuf *b, const char *sep, const char *key,
                         uint64_t ns)
{
    char v[32];
    metrics_fmt_seconds(v, sizeof(v), ns);
    sbuf_printf(b, "%s\"%s\":%s", sep, key, v);
}

/* The bound of the SLO bucket holding quantile q, or null in +Inf. */
static void json_slo_quantile(struct sbuf *b, const char *key,
                              const uint64_t *slo, uint64_t count, double q)
{
    uint64_t rank = (uint64_t)(q * (double)count), seen = 0;
    if ((double)rank < q * (double)count)
        rank++;
    for (unsigned i = 0; i < STATS_SLO_BOUNDS && count; i++) {
        seen += slo[i];
        if (seen >= rank) {
            json_seconds(b, ",", key, stats_slo_bound_ns(i));
            return;
        }
    }
    sbuf_printf(b, ",\"%s\":%s", key, count ? "null" : "0");
}

static const struct { const char *key; double q; } quantiles[] = {
    { "p50", 0.5 }, { "p99", 0.99 }, { "p999", 0.999 },
};

/* A histogram: count, exact sum, p50/p99/p999, the cumulative counts on
 * the SLO bounds ("buckets", [le, count] as /metrics has them; the +Inf
 * bucket is "count").  `fine` (the log-linear histogram of stats.h, or
 * NULL) gives finer percentiles and "log_buckets": [upper bound, count] of
 * each non-empty bucket, not cumulative, for percentiles over an interval. */
static void json_hist(struct sbuf *b, enum fam f, const uint64_t *slo,
                      uint64_t sum_ns, const uint64_t *fine)
{
    uint64_t count = 0, cum = 0;
    char le[32];
    const char *sep = "";

    for (unsigned i = 0; i < STATS_SLO_BUCKETS; i++)
        count += slo[i];
    json_key(b, f);
    sbuf_printf(b, "{\"count\":%llu", (unsigned long long)count);
    json_seconds(b, ",", "sum", sum_ns);
    for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++) {
        if (fine)
            json_seconds(b, ",", quantiles[k].key,
                         metrics_quantile(fine, STATS_LAT_BUCKETS,
                                          STATS_LAT_SUB_BITS, quantiles[k].q));
        else
            json_slo_quantile(b, quantiles[k].key, slo, count, quantiles[k].q);
    }
    sbuf_puts(b, ",\"buckets\":[");
    for (unsigned i = 0; i < STATS_SLO_BOUNDS; i++) {
        cum += slo[i];
        metrics_fmt_seconds(le, sizeof(le), stats_slo_bound_ns(i));
        sbuf_printf(b, "%s[%s,%llu]", i ? "," : "", le, (unsigned long long)cum);
    }
    sbuf_puts(b, "]");
    if (fine) {
        sbuf_puts(b, ",\"log_buckets\":[");
        for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++) {
            if (!fine[i])
                continue;
            metrics_fmt_seconds(le, sizeof(le), hist_upper(i, STATS_LAT_SUB_BITS));
            sbuf_printf(b, "%s[%s,%llu]", sep, le, (unsigned long long)fine[i]);
            sep = ",";
        }
        sbuf_puts(b, "]");
    }
    sbuf_puts(b, "}");
}

/* The figures of one slot (or the totals): every row of stats.h, then the
 * two histograms. */
static void json_figures(struct sbuf *b, const struct stats_slot *s)
{
    json_rows(b, s);
    json_hist(b, F_REQ_DUR, s->lat_slo, s->lat_sum_ns, s->lat_bucket);
    json_hist(b, F_REPLY_DUR, s->reply_slo, s->reply_sum_ns, NULL);
}

/* A boolean family as 0 or 1, as /metrics has it. */
static void json_flag(struct sbuf *b, enum fam f, int v)
{
    json_key(b, f);
    sbuf_puts(b, v ? "1" : "0");
}

/* live and ready (with "live_reason" / "ready_reason" when 0), the clock. */
static void json_health(struct sbuf *b, const struct metrics_input *in)
{
    char why[160], v[48];
    int live = metrics_live(in, why, sizeof(why));

    json_flag(b, F_LIVE, live);
    if (!live) {
        sbuf_puts(b, ",\"live_reason\":\"");
        sbuf_json_str(b, why);
        sbuf_puts(b, "\"");
    }
    int ready = metrics_ready(in, why, sizeof(why));
    json_flag(b, F_READY, ready);
    if (!ready) {
        sbuf_puts(b, ",\"ready_reason\":\"");
        sbuf_json_str(b, why);
        sbuf_puts(b, "\"");
    }
    if (!in->clock.known)
        return;
    for (enum fam f = F_CLOCK_SYNC; f <= F_CLOCK_OFFSET; f++) {
        json_key(b, f);
        clock_value(&in->clock, f, v, sizeof(v));
        sbuf_puts(b, v);
    }
}

static void json_worker(struct sbuf *b, const struct metrics_input *in,
                        unsigned w, const struct stats_slot *s)
{
    sbuf_printf(b, "%s{\"worker\":%u,\"pid\":%lld", w ? "," : "", w,
                (long long)s->pid);
    json_flag(b, F_WORKER_UP, s->pid > 0);
    if (in->health && in->health[w].heartbeat_age_ms >= 0) {
        json_key(b, F_HEARTBEAT);
        sbuf_printf(b, "%.3f", (double)in->health[w].heartbeat_age_ms / 1000);
    }
    if (in->o) {
        json_key(b, F_MAX_CONNS);
        sbuf_printf(b, "%u", in->o->max_conns);
    }
    if (s->pid > 0)
        json_proc(b, &in->workers[w],
                  in->workers_max_fds ? in->workers_max_fds[w] : -1,
                  s->started_unix_ms);
    json_figures(b, s);
    sbuf_puts(b, "}");
}

/* ,"key":"ADDRESS" or null. */
static void json_client(struct sbuf *b, const char *key,
                        const struct sockaddr_storage *ss)
{
    char text[ADDR_PEER_MAX];

    if (!ss->ss_family) {
        sbuf_printf(b, ",\"%s\":null", key);
        return;
    }
    addr_peer_text(text, sizeof(text), (const struct sockaddr *)ss);
    sbuf_printf(b, ",\"%s\":\"", key);
    sbuf_json_str(b, text);
    sbuf_puts(b, "\"");
}

/* "listeners": each listener of the configuration with its figures summed
 * over the workers and its last clients; those past STATS_MAX_LISTENERS
 * without figures. */
static void json_listeners(struct sbuf *b, const struct metrics_input *in)
{
    struct metrics_listener ml;
    struct stats_listener sum;
    struct sockaddr_storage c, e;

    sbuf_puts(b, ",\"listeners\":[");
    for (int j = 0; in->o && metrics_listener_at(in->o, j, &ml); j++) {
        sbuf_puts(b, j ? ",{\"listener\":\"" : "{\"listener\":\"");
        sbuf_json_str(b, ml.a->text);
        sbuf_printf(b, "\",\"kind\":\"%s\",\"flags\":[", ml.kind);
        for (unsigned f = 0, k = 0; f < ADDR_NFLAGS; f++)
            if (ml.a->flags & (1u << f))
                sbuf_printf(b, "%s\"%s\"", k++ ? "," : "", addr_flag_name(1u << f));
        sbuf_puts(b, "]");
        if (j < STATS_MAX_LISTENERS) {
            metrics_listener_sum(in->t, (unsigned)j, &sum, &c, &e);
#define LCOUNTER(f, m, h) sbuf_printf(b, ",\"%s_total\":%llu", m, (unsigned long long)sum.f);
#define LGAUGE(f, m, h) sbuf_printf(b, ",\"%s\":%llu", m, (unsigned long long)sum.f);
            STATS_LISTENER_COUNTERS(LCOUNTER)
            STATS_LISTENER_GAUGES(LGAUGE)
#undef LCOUNTER
#undef LGAUGE
            json_client(b, "last_client", &c);
            json_client(b, "last_enforced_client", &e);
        }
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "]");
}

void metrics_render_json(struct sbuf *b, const struct metrics_input *in)
{
    const struct stats_table *t = in->t;
    struct stats_slot s, tot;
    char up[32];
    uint64_t nup = 0;

    memset(&tot, 0, sizeof(tot));
    sbuf_printf(b, "{\"%s\":{\"version\":\"", jkey(F_BUILD_INFO));
    sbuf_json_str(b, in->version);
    sbuf_puts(b, "\",\"poller\":\"");
    sbuf_json_str(b, in->poller);
    sbuf_printf(b, "\"},\"pid\":%d", (int)in->master.pid);
    metrics_fmt_seconds(up, sizeof(up), uptime_ns(in));
    json_key(b, F_UPTIME);
    sbuf_puts(b, up);
    json_flag(b, F_DRAINING, in->draining);
    json_health(b, in);
    json_config(b, in->o);

    for (size_t i = 0; i < NADMIN_ROWS; i++)
        sbuf_printf(b, ",\"%s\":%llu", admin_rows[i].name,
                    (unsigned long long)admin_value(t, i));
    sbuf_printf(b, ",\"master\":{\"pid\":%d", (int)in->master.pid);
    json_proc(b, &in->master, in->master_max_fds, t->start_unix_ms);
    sbuf_printf(b, "},\"%s\":[", jkey(F_WORKERS));
    for (unsigned w = 0; w < t->nworkers; w++) {
        slot_copy(&t->slot[w], &s);
        metrics_slot_add(&tot, &s);
        nup += s.pid > 0;
        json_worker(b, in, w, &s);
    }
    sbuf_puts(b, "]");
    json_listeners(b, in);
    sbuf_puts(b, ",\"totals\":{");
    sbuf_printf(b, "\"%s\":%llu", jkey(F_WORKER_UP), (unsigned long long)nup);
    if (in->o) {
        json_key(b, F_MAX_CONNS);
        sbuf_printf(b, "%llu", (unsigned long long)in->o->max_conns * t->nworkers);
    }
    json_figures(b, &tot);
    sbuf_puts(b, "}}\n");
}
