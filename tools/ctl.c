/*
 * ctl.c - see ctl.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "hist.h"
#include "http.h"
#include "metrics.h"

/* --- JSON ------------------------------------------------------------------ */

#define JSON_MAX_DEPTH 64

struct jp {
    struct json *j;
    const char *s;
    size_t len, pos;
};

static void jp_blank(struct jp *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int jp_new(struct jp *p, enum json_type type, int start)
{
    struct json *j = p->j;
    if (j->ntok == j->cap) {
        int ncap = j->cap ? j->cap * 2 : 256;
        struct json_tok *t = realloc(j->tok, (size_t)ncap * sizeof(*t));
        if (!t)
            return -1;
        j->tok = t;
        j->cap = ncap;
    }
    j->tok[j->ntok] = (struct json_tok){ type, start, start, 0 };
    return j->ntok++;
}

static int jp_value(struct jp *p, int depth);

static int jp_string(struct jp *p)
{
    size_t start = ++p->pos;   /* after the quote */
    while (p->pos < p->len && p->s[p->pos] != '"') {
        if ((unsigned char)p->s[p->pos] < 0x20)
            return -1;
        if (p->s[p->pos] == '\\')
            p->pos++;
        p->pos++;
    }
    if (p->pos >= p->len)
        return -1;
    int t = jp_new(p, JSON_STRING, (int)start);
    if (t < 0)
        return -1;
    p->j->tok[t].end = (int)p->pos++;
    p->j->tok[t].next = t + 1;
    return t;
}

static int jp_container(struct jp *p, int depth, enum json_type type)
{
    char close = type == JSON_OBJECT ? '}' : ']';
    int t = jp_new(p, type, (int)p->pos++);
    if (t < 0 || depth > JSON_MAX_DEPTH)
        return -1;
    jp_blank(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            jp_blank(p);
            if (type == JSON_OBJECT) {
                if (p->pos >= p->len || p->s[p->pos] != '"' || jp_string(p) < 0)
                    return -1;
                jp_blank(p);
                if (p->pos >= p->len || p->s[p->pos] != ':')
                    return -1;
                p->pos++;
            }
            if (jp_value(p, depth + 1) < 0)
                return -1;
            jp_blank(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return -1;
        }
    }
    p->j->tok[t].end = (int)p->pos;
    p->j->tok[t].next = p->j->ntok;
    return t;
}

static int jp_value(struct jp *p, int depth)
{
    jp_blank(p);
    if (p->pos >= p->len)
        return -1;
    char ch = p->s[p->pos];
    if (ch == '{')
        return jp_container(p, depth, JSON_OBJECT);
    if (ch == '[')
        return jp_container(p, depth, JSON_ARRAY);
    if (ch == '"')
        return jp_string(p);
    size_t start = p->pos;
    enum json_type type;
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        type = JSON_NUMBER;
        while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]))
            p->pos++;
    } else {
        static const char *const lit[] = { "true", "false", "null" };
        type = JSON_LITERAL;
        size_t i;
        for (i = 0; i < 3; i++) {
            size_t n = strlen(lit[i]);
            if (p->len - p->pos >= n && memcmp(p->s + p->pos, lit[i], n) == 0) {
                p->pos += n;
                break;
            }
        }
        if (i == 3)
            return -1;
    }
    int t = jp_new(p, type, (int)start);
    if (t < 0)
        return -1;
    p->j->tok[t].end = (int)p->pos;
    p->j->tok[t].next = t + 1;
    return t;
}

int json_parse(struct json *j, const char *src, size_t len)
{
    struct jp p = { j, src, len, 0 };

    memset(j, 0, sizeof(*j));
    j->src = src;
    if (len > (size_t)1 << 30 || jp_value(&p, 0) < 0)
        return -1;
    jp_blank(&p);
    return p.pos == len ? 0 : -1;
}

void json_free(struct json *j)
{
    free(j->tok);
    memset(j, 0, sizeof(*j));
}

int json_get(const struct json *j, int obj, const char *key)
{
    if (obj < 0 || obj >= j->ntok || j->tok[obj].type != JSON_OBJECT)
        return -1;
    size_t klen = strlen(key);
    for (int k = obj + 1; k < j->tok[obj].next; ) {
        const struct json_tok *kt = &j->tok[k];
        int v = k + 1;
        if ((size_t)(kt->end - kt->start) == klen &&
            memcmp(j->src + kt->start, key, klen) == 0)
            return v;
        k = j->tok[v].next;
    }
    return -1;
}

int json_at(const struct json *j, int arr, int i)
{
    if (arr < 0 || arr >= j->ntok || j->tok[arr].type != JSON_ARRAY || i < 0)
        return -1;
    int k = arr + 1;
    for (; k < j->tok[arr].next && i > 0; i--)
        k = j->tok[k].next;
    return k < j->tok[arr].next ? k : -1;
}

double json_num(const struct json *j, int tok, double dflt)
{
    if (tok < 0 || j->tok[tok].type != JSON_NUMBER)
        return dflt;
    char buf[64];
    int n = j->tok[tok].end - j->tok[tok].start;
    if (n <= 0 || n >= (int)sizeof(buf))
        return dflt;
    memcpy(buf, j->src + j->tok[tok].start, (size_t)n);
    buf[n] = '\0';
    return strtod(buf, NULL);
}

uint64_t json_u64(const struct json *j, int tok)
{
    if (tok < 0 || j->tok[tok].type != JSON_NUMBER)
        return 0;
    /* Counters exceed a double's 53 bits long before they overflow. */
    uint64_t v = 0;
    for (int i = j->tok[tok].start; i < j->tok[tok].end; i++) {
        char ch = j->src[i];
        if (ch < '0' || ch > '9')
            return i == j->tok[tok].start ? 0 : v;
        v = v * 10 + (uint64_t)(ch - '0');
    }
    return v;
}

void json_str(const struct json *j, int tok, char *out, size_t len,
              const char *dflt)
{
    if (tok < 0 || j->tok[tok].type != JSON_STRING) {
        snprintf(out, len, "%s", dflt);
        return;
    }
    snprintf(out, len, "%.*s", j->tok[tok].end - j->tok[tok].start,
             j->src + j->tok[tok].start);
}

int json_true(const struct json *j, int tok)
{
    return tok >= 0 && j->tok[tok].type == JSON_LITERAL &&
           j->src[j->tok[tok].start] == 't';
}

/* --- HTTP ---------------------------------------------------------------- */

int ctl_http_split(const char *buf, size_t len, int *status, const char **body,
                   size_t *body_len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    int code = end ? http_status_code(buf, len) : -1;
    if (code < 0)
        return -1;
    *status = code;
    *body = end + 4;
    *body_len = len - (size_t)(*body - buf);
    /* Content-Length, when given, tells a truncated body from a whole one. */
    for (const char *p = buf; p < end; ) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        static const char cl[] = "content-length:";
        if ((size_t)(eol - p) > sizeof(cl) - 1 &&
            strncasecmp(p, cl, sizeof(cl) - 1) == 0) {
            unsigned long long want = strtoull(p + sizeof(cl) - 1, NULL, 10);
            if (*body_len < want)
                return -1;
            *body_len = (size_t)want;
        }
        p = eol + 2;
    }
    return 0;
}

/* --- /stats ------------------------------------------------------------------- */

/* A number of seconds as nanoseconds, rounded. */
static uint64_t json_ns(const struct json *j, int tok)
{
    double v = json_num(j, tok, 0);
    return v > 0 ? (uint64_t)(v * 1e9 + 0.5) : 0;
}

/* A 0/1 figure (or a JSON boolean): 1 when set. */
static int json_flag(const struct json *j, int tok)
{
    return json_true(j, tok) || json_num(j, tok, 0) != 0;
}

/* Every row of stats.h from a worker's object (or the totals): the key is
 * the metric name (counters with "_total"), a label one nested key. */
static void read_rows(const struct json *j, int o, struct stats_slot *s)
{
    char key[64];
#define GET(f, m, ln, lv, h, suffix)                                           \
    {                                                                          \
        const char *lval = lv;                                                 \
        snprintf(key, sizeof(key), "%s%s", m, suffix);                         \
        int v = json_get(j, o, key);                                           \
        s->f = json_u64(j, lval ? json_get(j, v, lval) : v);                   \
    }
#define COUNTER(f, m, ln, lv, h) GET(f, m, ln, lv, h, "_total")
#define GAUGE(f, m, ln, lv, h) GET(f, m, ln, lv, h, "")
    STATS_COUNTERS(COUNTER)
    STATS_GAUGES(GAUGE)
#undef COUNTER
#undef GAUGE
#undef GET
}

static void read_figures(const struct json *j, int o, struct stats_slot *s)
{
    read_rows(j, o, s);
    int h = json_get(j, o, "request_duration_seconds");
    s->lat_sum_ns = json_ns(j, json_get(j, h, "sum"));
    /* [upper bound in seconds, count]: the bound names its bucket. */
    int bk = json_get(j, h, "log_buckets");
    for (int i = 0; ; i++) {
        int pair = json_at(j, bk, i);
        if (pair < 0)
            break;
        uint64_t ns = json_ns(j, json_at(j, pair, 0));
        unsigned idx = hist_index(ns < STATS_LAT_MAX_NS ? ns : STATS_LAT_MAX_NS,
                                  STATS_LAT_SUB_BITS);
        s->lat_bucket[idx] = json_u64(j, json_at(j, pair, 1));
    }
}

static struct ctl_listener *add_listener(struct ctl_snap *s, const char *kind,
                                         const char *addr)
{
    if (s->nlisteners == CTL_MAX_LISTENERS)
        return NULL;
    struct ctl_listener *l = &s->l[s->nlisteners++];
    memset(l, 0, sizeof(*l));
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    snprintf(l->kind, sizeof(l->kind), "%s",
             strcmp(kind, "line") == 0 && strncmp(addr, "unix:", 5) == 0
                 ? "unix" : kind);
    return l;
}

/* One entry of the page's "listeners". */
static void read_listener(const struct json *j, int e, struct ctl_snap *s)
{
    char kind[8], addr[ADDR_TEXT_MAX + 16], flag[16];

    json_str(j, json_get(j, e, "kind"), kind, sizeof(kind), "?");
    json_str(j, json_get(j, e, "listener"), addr, sizeof(addr), "?");
    int flags = json_get(j, e, "flags");
    for (int f = 0; json_at(j, flags, f) >= 0; f++) {
        json_str(j, json_at(j, flags, f), flag, sizeof(flag), "?");
        size_t n = strlen(addr);
        snprintf(addr + n, sizeof(addr) - n, ",%s", flag);
    }
    struct ctl_listener *l = add_listener(s, kind, addr);
    int acc = json_get(j, e, "listener_connections_accepted_total");
    if (!l || acc < 0)
        return;
    l->has_figures = 1;
    l->accepted = json_u64(j, acc);
    l->active = json_u64(j, json_get(j, e, "listener_connections_active"));
    l->requests = json_u64(j, json_get(j, e, "listener_requests_total"));
    l->enforcements = json_u64(j, json_get(j, e, "listener_enforcements_total"));
    json_str(j, json_get(j, e, "last_client"), l->last_client,
             sizeof(l->last_client), "");
    json_str(j, json_get(j, e, "last_enforced_client"), l->last_enforced,
             sizeof(l->last_enforced), "");
}

/* Every listener of the page, in the order line (TCP and unix), http,
 * udp, then the admin port. */
static void read_listeners(const struct json *j, int page, struct ctl_snap *s)
{
    int ls = json_get(j, page, "listeners");
    for (int i = 0; json_at(j, ls, i) >= 0; i++)
        read_listener(j, json_at(j, ls, i), s);
    char text[ADDR_TEXT_MAX];
    json_str(j, json_get(j, json_get(j, page, "config"), "admin"), text,
             sizeof(text), "off");
    if (strcmp(text, "off") != 0)
        add_listener(s, "admin", text);
}

int ctl_snap_parse(struct ctl_snap *s, const char *body, size_t len, char *err,
                   size_t errlen)
{
    struct json j = { 0 };

    memset(s, 0, sizeof(*s));
    if (json_parse(&j, body, len) != 0) {
        json_free(&j);
        snprintf(err, errlen, "malformed JSON from /stats");
        return -1;
    }
    int ws = json_get(&j, 0, "workers");
    if (ws < 0 || j.tok[ws].type != JSON_ARRAY) {
        json_free(&j);
        snprintf(err, errlen, "/stats has no \"workers\" array");
        return -1;
    }
    int bi = json_get(&j, 0, "build_info");
    json_str(&j, json_get(&j, bi, "version"), s->version, sizeof(s->version), "?");
    json_str(&j, json_get(&j, bi, "poller"), s->poller, sizeof(s->poller), "?");
    s->pid = (int64_t)json_u64(&j, json_get(&j, 0, "pid"));
    s->uptime_s = json_num(&j, json_get(&j, 0, "uptime_seconds"), 0);
    s->draining = json_flag(&j, json_get(&j, 0, "draining"));
    int sync = json_get(&j, 0, "clock_synchronized");
    s->clock_known = sync >= 0;
    if (s->clock_known) {
        s->clock_synced = json_flag(&j, sync);
        s->clock_max_error_s = json_num(&j, json_get(&j, 0, "clock_max_error_seconds"), 0);
        s->clock_est_error_s = json_num(&j, json_get(&j, 0, "clock_estimated_error_seconds"), 0);
        s->clock_offset_s = json_num(&j, json_get(&j, 0, "clock_offset_seconds"), 0);
    }
    int cfg = json_get(&j, 0, "config");
    s->max_conns = (int64_t)json_u64(&j, json_get(&j, cfg, "max_conns"));
    read_listeners(&j, 0, s);
    for (int i = 0; i < CTL_MAX_WORKERS; i++) {
        int w = json_at(&j, ws, i);
        if (w < 0)
            break;
        struct ctl_worker *cw = &s->w[i];
        read_figures(&j, w, &cw->s);
        cw->s.pid = (int64_t)json_u64(&j, json_get(&j, w, "pid"));
        cw->up = json_flag(&j, json_get(&j, w, "worker_up"));
        int rss = json_get(&j, w, "resident_memory_bytes");
        cw->rss_bytes = rss < 0 ? -1 : (int64_t)json_u64(&j, rss);
        s->nworkers = i + 1;
    }
    json_free(&j);
    return 0;
}

/* --- rendering --------------------------------------------------------------- */

void ctl_fmt_ns(char *out, size_t len, uint64_t ns)
{
    if (ns < 1000)
        snprintf(out, len, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(out, len, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(out, len, "%.1fms", (double)ns / 1e6);
    else
        snprintf(out, len, "%.2fs", (double)ns / 1e9);
}

void ctl_fmt_uptime(char *out, size_t len, double s)
{
    unsigned long long t = (unsigned long long)s;
    if (s < 60)
        snprintf(out, len, "%.1fs", s);
    else if (t < 3600)
        snprintf(out, len, "%llum%02llus", t / 60, t % 60);
    else if (t < 86400)
        snprintf(out, len, "%lluh%02llum%02llus", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, len, "%llud%02lluh%02llum", t / 86400, t / 3600 % 24,
                 t / 60 % 60);
}

static void sum_workers(const struct ctl_snap *s, struct stats_slot *tot)
{
    memset(tot, 0, sizeof(*tot));
    for (int i = 0; i < s->nworkers; i++)
        metrics_slot_add(tot, &s->w[i].s);
}

static void fmt_quantile(char *out, size_t len, const uint64_t *bucket, double q)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++)
        n += bucket[i];
    if (n == 0)
        snprintf(out, len, "-");
    else
        ctl_fmt_ns(out, len, metrics_quantile(bucket, STATS_LAT_BUCKETS,
                                              STATS_LAT_SUB_BITS, q));
}

static void title(struct sbuf *b, const struct ctl_snap *s)
{
    char up[32];
    int live = 0;
    for (int i = 0; i < s->nworkers; i++)
        live += s->w[i].up;
    ctl_fmt_uptime(up, sizeof(up), s->uptime_s);
    sbuf_printf(b, "stampd %s (%s)  master pid %lld  up %s  %d/%d workers up  %s\n",
                s->version, s->poller, (long long)s->pid, up, live, s->nworkers,
                s->draining ? "DRAINING" : "serving");
}

static uint64_t requests(const struct stats_slot *s)
{
    return s->requests_line + s->requests_http + s->requests_udp;
}

/* What `errs` counts in the tables: every enforcement that answers ERR or
 * an HTTP error, plus resets and lost datagrams (idle timeouts are the
 * server working as configured, not errors). */
static uint64_t errors(const struct stats_slot *s)
{
    return s->err_line_too_long + s->err_line_timeout + s->err_max_conns +
           s->err_nomem + s->closed_protocol + s->closed_reset + s->udp_drops +
           s->accept_errors;
}

/* A signed duration in seconds as ctl_fmt_ns() writes it. */
static void fmt_seconds(char *out, size_t len, double s)
{
    double a = s < 0 ? -s : s;

    out[0] = '\0';
    if (s < 0 && len > 1) {
        out[0] = '-';
        out++;
        len--;
    }
    ctl_fmt_ns(out, len, (uint64_t)(a * 1e9 + 0.5));
}

void ctl_fmt_clock(char *out, size_t len, const struct ctl_snap *s)
{
    char maxe[32], este[32], off[32];

    if (!s->clock_known) {
        if (len)
            out[0] = '\0';
        return;
    }
    fmt_seconds(maxe, sizeof(maxe), s->clock_max_error_s);
    fmt_seconds(este, sizeof(este), s->clock_est_error_s);
    fmt_seconds(off, sizeof(off), s->clock_offset_s);
    snprintf(out, len, "clock %s, max error %s, estimated %s, offset %s",
             s->clock_synced ? "synchronised" : "UNSYNCHRONISED", maxe, este, off);
}

void ctl_render_stats(struct sbuf *b, const struct ctl_snap *s)
{
    char clk[160];
    struct stats_slot tot;
    const char *prev = "";

    sum_workers(s, &tot);
    title(b, s);
    ctl_fmt_clock(clk, sizeof(clk), s);
    if (clk[0])
        sbuf_printf(b, "%s\n", clk);
    sbuf_puts(b, "\nlisteners:\n");
    sbuf_printf(b, "  %-6s %-24s %6s %9s %10s %8s  %-22s %s\n", "kind",
                "address", "conns", "accepted", "requests", "enforced",
                "last client", "last enforced");
    for (int i = 0; i < s->nlisteners; i++) {
        const struct ctl_listener *l = &s->l[i];
        if (!l->has_figures) {
            sbuf_printf(b, "  %-6s %s\n", l->kind, l->addr);
            continue;
        }
        sbuf_printf(b, "  %-6s %-24s %6llu %9llu %10llu %8llu  %-22s %s\n",
                    l->kind, l->addr, (unsigned long long)l->active,
                    (unsigned long long)l->accepted,
                    (unsigned long long)l->requests,
                    (unsigned long long)l->enforcements,
                    *l->last_client ? l->last_client : "-",
                    *l->last_enforced ? l->last_enforced : "-");
    }
    if (!s->nlisteners)
        sbuf_puts(b, "  (none)\n");
    sbuf_puts(b, "\ntotals:\n");
    /* One line per metric family; labelled rows side by side. */
#define ROW(f, m, ln, lv, h)                                                   \
    if (strcmp(prev, m) != 0) {                                                \
        sbuf_printf(b, "%s  %-22s", *prev ? "\n" : "", m);                     \
        prev = m;                                                              \
    }                                                                          \
    {                                                                          \
        const char *lval = lv;                                                 \
        if (lval)                                                              \
            sbuf_printf(b, " %s=%llu", lval, (unsigned long long)tot.f);       \
        else                                                                   \
            sbuf_printf(b, " %llu", (unsigned long long)tot.f);                \
    }
    STATS_COUNTERS(ROW)
    STATS_GAUGES(ROW)
#undef ROW
    char p50[16], p99[16], p999[16];
    fmt_quantile(p50, sizeof(p50), tot.lat_bucket, 0.5);
    fmt_quantile(p99, sizeof(p99), tot.lat_bucket, 0.99);
    fmt_quantile(p999, sizeof(p999), tot.lat_bucket, 0.999);
    sbuf_printf(b, "\n  %-22s p50=%s p99=%s p99.9=%s\n", "latency", p50, p99, p999);
    sbuf_printf(b, "  %-22s %.2f\n\n", "events_per_wakeup",
                tot.loop_iterations
                    ? (double)tot.loop_events / (double)tot.loop_iterations : 0.0);
    sbuf_printf(b, "%6s %8s %7s %10s %12s %12s %8s %8s %6s %8s\n", "worker",
                "pid", "conns", "requests", "bytes_in", "bytes_out", "p50",
                "p99", "errs", "restarts");
    for (int i = 0; i < s->nworkers; i++) {
        const struct stats_slot *w = &s->w[i].s;
        char pid[16];
        if (s->w[i].up)
            snprintf(pid, sizeof(pid), "%lld", (long long)w->pid);
        else
            snprintf(pid, sizeof(pid), "down");
        fmt_quantile(p50, sizeof(p50), w->lat_bucket, 0.5);
        fmt_quantile(p99, sizeof(p99), w->lat_bucket, 0.99);
        sbuf_printf(b, "%6d %8s %7llu %10llu %12llu %12llu %8s %8s %6llu %8llu\n",
                    i, pid, (unsigned long long)w->conns_active,
                    (unsigned long long)requests(w),
                    (unsigned long long)w->bytes_in,
                    (unsigned long long)w->bytes_out, p50, p99,
                    (unsigned long long)errors(w),
                    (unsigned long long)w->worker_restarts);
    }
}

/* a - b for counters that only grow; a worker slot never goes backwards,
 * but a restarted server would, so clamp instead of wrapping. */
static uint64_t delta(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static void top_row(struct sbuf *b, const char *name, const char *pid,
                    const struct stats_slot *p, const struct stats_slot *c,
                    double dt)
{
    uint64_t d[STATS_LAT_BUCKETS];
    char p50[16], p99[16];

    for (unsigned k = 0; k < STATS_LAT_BUCKETS; k++)
        d[k] = delta(c->lat_bucket[k], p->lat_bucket[k]);
    fmt_quantile(p50, sizeof(p50), d, 0.5);
    fmt_quantile(p99, sizeof(p99), d, 0.99);
    sbuf_printf(b, "%6s %8s %7llu %10.0f %8.2f %8.2f %8s %8s %6llu %6llu\n",
                name, pid, (unsigned long long)c->conns_active,
                (double)delta(requests(c), requests(p)) / dt,
                (double)delta(c->bytes_in, p->bytes_in) / 1e6 / dt,
                (double)delta(c->bytes_out, p->bytes_out) / 1e6 / dt, p50, p99,
                (unsigned long long)delta(c->backpressure_pauses,
                                          p->backpressure_pauses),
                (unsigned long long)delta(errors(c), errors(p)));
}

/* A line per listener: open connections, requests/s and enforcements in
 * the interval, the last client.  Listener i of both snapshots is the
 * same one (the configuration does not change while stampd runs). */
static void top_listeners(struct sbuf *b, const struct ctl_snap *prev,
                          const struct ctl_snap *cur, double dt)
{
    sbuf_printf(b, "%-6s %-24s %6s %8s %6s  %s\n", "kind", "listener", "conns",
                "req/s", "enf", "last client");
    for (int i = 0; i < cur->nlisteners; i++) {
        const struct ctl_listener *c = &cur->l[i];
        static const struct ctl_listener none;
        const struct ctl_listener *p = i < prev->nlisteners ? &prev->l[i] : &none;
        if (!c->has_figures) {
            sbuf_printf(b, "%-6s %s\n", c->kind, c->addr);
            continue;
        }
        sbuf_printf(b, "%-6s %-24s %6llu %8.0f %6llu  %s\n", c->kind, c->addr,
                    (unsigned long long)c->active,
                    (double)delta(c->requests, p->requests) / dt,
                    (unsigned long long)delta(c->enforcements, p->enforcements),
                    *c->last_client ? c->last_client : "-");
    }
    if (!cur->nlisteners)
        sbuf_puts(b, "(no listeners)\n");
}

void ctl_render_top(struct sbuf *b, const struct ctl_snap *prev,
                    const struct ctl_snap *cur, double dt_s, const char *clock)
{
    struct stats_slot pt, ct;
    static const struct stats_slot zero;

    if (dt_s <= 0)
        dt_s = 1e-9;
    char clk[160];

    title(b, cur);
    sbuf_printf(b, "%s%sinterval %.1fs; pauses and errs are counts in the interval\n",
                clock, *clock ? "  " : "", dt_s);
    sbuf_printf(b, "%6s %8s %7s %10s %8s %8s %8s %8s %6s %6s\n", "worker", "pid",
                "conns", "req/s", "MB/s in", "MB/s out", "p50", "p99",
                "pauses", "errs");
    for (int i = 0; i < cur->nworkers; i++) {
        char pid[16];
        if (cur->w[i].up)
            snprintf(pid, sizeof(pid), "%lld", (long long)cur->w[i].s.pid);
        else
            snprintf(pid, sizeof(pid), "down");
        char name[16];
        snprintf(name, sizeof(name), "%d", i);
        top_row(b, name, pid, i < prev->nworkers ? &prev->w[i].s : &zero,
                &cur->w[i].s, dt_s);
    }
    sum_workers(prev, &pt);
    sum_workers(cur, &ct);
    top_row(b, "total", "", &pt, &ct, dt_s);
    sbuf_printf(b, "req/s by protocol  line %.0f  http %.0f  udp %.0f\n",
                (double)delta(ct.requests_line, pt.requests_line) / dt_s,
                (double)delta(ct.requests_http, pt.requests_http) / dt_s,
                (double)delta(ct.requests_udp, pt.requests_udp) / dt_s);
    top_listeners(b, prev, cur, dt_s);
    ctl_fmt_clock(clk, sizeof(clk), cur);
    if (clk[0])
        sbuf_printf(b, "%s\n", clk);
}
