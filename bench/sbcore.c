/*
 * sbcore.c - reply verification and the latency histogram of stampbench.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "sbcore.h"

static const char *const verdict_names[SB_VERDICTS] = {
    [SB_OK] = "ok",
    [SB_BAD_TERM] = "terminator",
    [SB_BAD_LAYOUT] = "layout",
    [SB_BAD_STAMP] = "timestamp",
    [SB_BAD_PAYLOAD] = "payload",
    [SB_STALE] = "stale",
    [SB_BAD_EXPECT] = "expect",
};

const char *sb_verdict_name(enum sb_verdict v)
{
    return (unsigned)v < SB_VERDICTS ? verdict_names[v] : "?";
}

enum time_format sb_detect_format(const char *ts)
{
    return ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' ? TIME_ISO8601
                                                         : TIME_CTIME;
}

/* Digits at s[0..n-1] as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int month_index(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(months + 3 * i, s, 3) == 0)
            return i;
    return -1;
}

int sb_parse_stamp(const char *ts, enum time_format f, int64_t *ms)
{
    struct tm tm;
    char again[CLOCK_CTIME_LEN + 1];
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (f == TIME_ISO8601) {
        /* 2016-09-05T22:29:12.345Z */
        int milli = digits(ts + 20, 3);
        tm.tm_year = digits(ts, 4) - 1900;
        tm.tm_mon = digits(ts + 5, 2) - 1;
        tm.tm_mday = digits(ts + 8, 2);
        tm.tm_hour = digits(ts + 11, 2);
        tm.tm_min = digits(ts + 14, 2);
        tm.tm_sec = digits(ts + 17, 2);
        if (milli < 0 || tm.tm_year < -1900 || tm.tm_mon < 0 ||
            tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
            tm.tm_sec < 0)
            return -1;
        t = timegm(&tm);
        if (!gmtime_r(&t, &tm))
            return -1;
        clock_fmt_iso(&tm, milli, again);
        if (memcmp(again, ts, CLOCK_ISO_LEN) != 0)
            return -1;
        *ms = (int64_t)t * 1000 + milli;
        return 0;
    }
    /* Mon Sep  5 22:29:12 2016 */
    char day[3] = { ts[8] == ' ' ? '0' : ts[8], ts[9], 0 };
    tm.tm_mon = month_index(ts + 4);
    tm.tm_mday = digits(day, 2);
    tm.tm_hour = digits(ts + 11, 2);
    tm.tm_min = digits(ts + 14, 2);
    tm.tm_sec = digits(ts + 17, 2);
    tm.tm_year = digits(ts + 20, 4) - 1900;
    tm.tm_isdst = -1;
    if (tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
        tm.tm_sec < 0 || tm.tm_year < -1900)
        return -1;
    t = mktime(&tm);
    if (t == (time_t)-1 || !localtime_r(&t, &tm))
        return -1;
    clock_fmt_ctime(&tm, again);
    if (memcmp(again, ts, CLOCK_CTIME_LEN) != 0)
        return -1;
    *ms = (int64_t)t * 1000;
    return 0;
}

int sb_parse_cached(struct sb_stamp_cache *c, const char *ts,
                    enum time_format f, int64_t *ms)
{
    for (int i = 0; i < c->n; i++) {
        if (memcmp(c->ts[i], ts, CLOCK_CTIME_LEN) == 0) {
            *ms = c->ms[i];
            return 0;
        }
    }
    if (sb_parse_stamp(ts, f, ms) != 0)
        return -1;
    memcpy(c->ts[c->next], ts, CLOCK_CTIME_LEN);
    c->ms[c->next] = *ms;
    c->next ^= 1;
    if (c->n < 2)
        c->n++;
    return 0;
}

int sb_fresh(int64_t stamp_ms, enum time_format f, int64_t send_ns,
             int64_t recv_ns)
{
    int64_t res_ns = f == TIME_ISO8601 ? 1000000 : 1000000000;
    int64_t stamp_ns = stamp_ms * 1000000;
    return stamp_ns >= send_ns - res_ns && stamp_ns <= recv_ns;
}

void sb_payload(char *dst, size_t len, uint32_t seq)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++)
        dst[i] = i < 8 ? hex[(seq >> (28 - 4 * i)) & 15]
                       : (char)('a' + (i - 8) % 26);
}

enum sb_verdict sb_check(const struct sb_expect *e, const char *line,
                         size_t len, struct sb_stamp_cache *cache)
{
    size_t term = len >= 2 && line[len - 2] == '\r' ? 2 : 1;
    size_t body = len - term;   /* the caller passes a line ending in LF */
    int64_t ms;

    if (e->mode == SB_LINE) {
        if (e->expect && (body != e->expect_len ||
                          memcmp(line, e->expect, body) != 0))
            return SB_BAD_EXPECT;
        return SB_OK;
    }
    if ((term == 2) != (e->crlf != 0))
        return SB_BAD_TERM;
    if (e->mode == SB_STAMP) {
        if (body < CLOCK_PREFIX_LEN || line[0] != '[' ||
            line[CLOCK_CTIME_LEN + 1] != ']' ||
            line[CLOCK_CTIME_LEN + 2] != ' ')
            return SB_BAD_LAYOUT;
        if (sb_parse_cached(cache, line + 1, e->fmt, &ms) != 0)
            return SB_BAD_STAMP;
        line += CLOCK_PREFIX_LEN;
        body -= CLOCK_PREFIX_LEN;
    }
    if (body != e->payload_len || memcmp(line, e->payload, body) != 0)
        return SB_BAD_PAYLOAD;
    if (e->mode == SB_STAMP && !sb_fresh(ms, e->fmt, e->send_ns, e->recv_ns))
        return SB_STALE;
    return SB_OK;
}

void sb_hist_reset(struct sb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void sb_hist_merge(struct sb_hist *into, const struct sb_hist *from)
{
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    if (from->min < into->min)
        into->min = from->min;
}

void sb_hist_sub(struct sb_hist *into, const struct sb_hist *cur,
                 const struct sb_hist *prev)
{
    int lo = -1, hi = -1;
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
        into->b[i] = cur->b[i] - prev->b[i];
        if (into->b[i]) {
            if (lo < 0)
                lo = (int)i;
            hi = (int)i;
        }
    }
    into->count = cur->count - prev->count;
    into->sum = cur->sum - prev->sum;
    into->min = lo < 0 ? UINT64_MAX : hist_lower((unsigned)lo, SB_HIST_SUB_BITS);
    into->max = hi < 0 ? 0 : hist_upper((unsigned)hi, SB_HIST_SUB_BITS);
    /* Never wider than the whole histogram's extremes. */
    if (into->max > cur->max)
        into->max = cur->max;
    if (lo >= 0 && into->min < cur->min)
        into->min = cur->min;
}

void sb_interval_line(struct sbuf *b, double t, double secs, uint64_t requests,
                      uint64_t errors, const struct sb_hist *h)
{
    sbuf_printf(b, "#interval t=%.1f requests=%llu rate=%.1f errors=%llu "
                "p50_us=%.1f p99_us=%.1f\n", t, (unsigned long long)requests,
                secs > 0 ? (double)requests / secs : 0.0,
                (unsigned long long)errors, sb_hist_quantile(h, 0.5) / 1e3,
                sb_hist_quantile(h, 0.99) / 1e3);
}

uint64_t sb_hist_quantile(const struct sb_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    uint64_t seen = 0;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i, SB_HIST_SUB_BITS);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

void sb_hist_json(struct sbuf *b, const struct sb_hist *h)
{
    const char *sep = "";
    sbuf_printf(b, "{\"unit\":\"ns\",\"sub_bits\":%u,\"count\":%llu,"
                "\"min\":%llu,\"max\":%llu,\"sum\":%.0f,\"buckets\":[",
                SB_HIST_SUB_BITS, (unsigned long long)h->count,
                (unsigned long long)(h->count ? h->min : 0),
                (unsigned long long)h->max, h->sum);
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        sbuf_printf(b, "%s[%llu,%llu,%llu]", sep,
                    (unsigned long long)hist_lower(i, SB_HIST_SUB_BITS),
                    (unsigned long long)hist_upper(i, SB_HIST_SUB_BITS),
                    (unsigned long long)h->b[i]);
        sep = ",";
    }
    sbuf_puts(b, "]}");
}

/* Samples in buckets 0..i, for the TotalCount column. */
static uint64_t count_through(const struct sb_hist *h, uint64_t value)
{
    unsigned last = hist_index(value, SB_HIST_SUB_BITS);
    uint64_t n = 0;
    for (unsigned i = 0; i <= last; i++)
        n += h->b[i];
    return n;
}

static double hist_stddev(const struct sb_hist *h)
{
    /* From bucket midpoints, as HdrHistogram computes it from its own
     * (equivalent-value) buckets: no per-sample squares are kept. */
    double mean = h->sum / (double)h->count, acc = 0;
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        double mid = ((double)hist_lower(i, SB_HIST_SUB_BITS) +
                      (double)hist_upper(i, SB_HIST_SUB_BITS)) / 2;
        acc += (mid - mean) * (mid - mean) * (double)h->b[i];
    }
    return sqrt(acc / (double)h->count);
}

static void hdr_line(struct sbuf *b, const struct sb_hist *h, double scale,
                     double q)
{
    uint64_t v = sb_hist_quantile(h, q);
    sbuf_printf(b, "%12.3f %12f %12llu ", (double)v / scale, q,
                (unsigned long long)count_through(h, v));
    if (q < 1)
        sbuf_printf(b, "%12.2f\n", 1 / (1 - q));
    else
        sbuf_printf(b, "%12s\n", "inf");
}

void sb_hist_hdr_text(struct sbuf *b, const struct sb_hist *h, double scale,
                      int ticks)
{
    sbuf_printf(b, "%12s %12s %12s %12s\n\n", "Value", "Percentile",
                "TotalCount", "1/(1-Percentile)");
    if (h->count) {
        /* Levels as HdrHistogram's percentile iterator steps: `ticks` per
         * halving of the distance to 100%, until a level's rank is the
         * last sample (nothing finer can be told apart); then 100%. */
        double pct = 0;
        for (int lines = 0; lines < 10000; lines++) {
            hdr_line(b, h, scale, pct / 100);
            if ((uint64_t)ceil(pct / 100 * (double)h->count) >= h->count)
                break;
            double halvings = floor(log2(100 / (100 - pct))) + 1;
            pct += 100 / ((double)ticks * pow(2, halvings));
        }
        hdr_line(b, h, scale, 1.0);
    }
    double mean = h->count ? h->sum / (double)h->count : 0;
    sbuf_printf(b, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n"
                "#[Max     = %12.3f, Total count    = %12llu]\n"
                "#[Buckets = %12u, SubBuckets     = %12u]\n",
                mean / scale, h->count ? hist_stddev(h) / scale : 0.0,
                (double)h->max / scale, (unsigned long long)h->count,
                SB_HIST_BUCKETS >> SB_HIST_SUB_BITS, 1u << SB_HIST_SUB_BITS);
}
