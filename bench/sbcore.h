/*
 * sbcore.h - the pure part of stampbench: reply verification, timestamp
 * parsing, the latency histogram.  No I/O, so tests/unit/test_bench_sbcore.c
 * can hold it to exact bytes.
 *
 * Verification is strict by construction: a timestamp is parsed into an
 * instant and then re-rendered with the server's own formatter
 * (clock_fmt_ctime / clock_fmt_iso); the reply is accepted only if the bytes
 * are identical, which checks widths, padding, weekday and month names at
 * once instead of trusting a lenient parser.
 */
#ifndef STAMPD_SBCORE_H
#define STAMPD_SBCORE_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "hist.h"
#include "sbuf.h"

#define SB_HIST_SUB_BITS 7u   /* under 1% bucket width */
#define SB_HIST_BUCKETS  (((64u - SB_HIST_SUB_BITS) + 1u) << SB_HIST_SUB_BITS)

enum sb_mode { SB_STAMP = 0, SB_ECHO, SB_LINE };

/* Verdicts, in the order the checks run; SB_OK is 0. */
enum sb_verdict {
    SB_OK = 0,
    SB_BAD_TERM,     /* terminator differs from the request's */
    SB_BAD_LAYOUT,   /* "[" 24 bytes "] " frame missing or wrong length */
    SB_BAD_STAMP,    /* the 24 bytes are not a valid timestamp */
    SB_BAD_PAYLOAD,  /* payload bytes differ */
    SB_STALE,        /* timestamp outside [send - resolution, receive] */
    SB_BAD_EXPECT,   /* line mode: reply differs from --expect */
    SB_VERDICTS
};

const char *sb_verdict_name(enum sb_verdict v);

/* Which format a 24-byte stamp is in: TIME_ISO8601 when it looks like
 * "YYYY-MM-DDT", else TIME_CTIME. */
enum time_format sb_detect_format(const char *ts);

/* Parse a 24-byte timestamp of format f into milliseconds since the epoch
 * (ctime: local time, whole seconds).  0, or -1 when the bytes are not
 * exactly what the server's formatter would write for that instant. */
int sb_parse_stamp(const char *ts, enum time_format f, int64_t *ms);

/* Stamps repeat for a whole second (or ms), so parsing is cached: the last
 * two distinct stamps seen and their instants. */
struct sb_stamp_cache {
    char ts[2][CLOCK_CTIME_LEN];
    int64_t ms[2];
    int n;      /* entries filled, 0..2 */
    int next;   /* entry to replace */
};
int sb_parse_cached(struct sb_stamp_cache *c, const char *ts,
                    enum time_format f, int64_t *ms);

/* The protocol's freshness bound: send - resolution <= stamp <= receive,
 * all wall-clock nanoseconds; the stamp is the start of its resolution
 * interval. */
int sb_fresh(int64_t stamp_ms, enum time_format f, int64_t send_ns,
             int64_t recv_ns);

/* Write request payload number `seq` (len bytes) into dst: the sequence
 * number in 8 hex digits (truncated to len), then 'a'..'z' filler.  Distinct
 * payloads per request let a reply for the wrong request be detected. */
void sb_payload(char *dst, size_t len, uint32_t seq);

struct sb_expect {
    enum sb_mode mode;
    enum time_format fmt;  /* stamp mode */
    int crlf;              /* the request's terminator */
    const char *payload;   /* stamp/echo: the request's payload */
    size_t payload_len;
    const char *expect;    /* line mode: exact reply, or NULL for any line */
    size_t expect_len;
    int64_t send_ns;       /* wall clock, for freshness */
    int64_t recv_ns;
};

/* Check one reply line (bytes up to and including its LF).  The caller
 * resolves the stamp format first (sb_detect_format on the first reply). */
enum sb_verdict sb_check(const struct sb_expect *e, const char *line,
                         size_t len, struct sb_stamp_cache *cache);

/* Latency histogram in nanoseconds. */
struct sb_hist {
    uint64_t count;
    uint64_t max;
    uint64_t min;
    double sum;
    uint64_t b[SB_HIST_BUCKETS];
};

void sb_hist_reset(struct sb_hist *h);
static inline void sb_hist_add(struct sb_hist *h, uint64_t v)
{
    h->b[hist_index(v, SB_HIST_SUB_BITS)]++;
    h->count++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
    if (v < h->min)
        h->min = v;
}
void sb_hist_merge(struct sb_hist *into, const struct sb_hist *from);
/* into = the samples of `cur` not in `prev`, where prev is an earlier copy
 * of the same growing histogram (an interval's samples from two cumulative
 * snapshots).  Buckets, count and sum are exact; min and max are the bounds
 * of the lowest and highest non-empty buckets, the exact extremes of an
 * interval not being kept. */
void sb_hist_sub(struct sb_hist *into, const struct sb_hist *cur,
                 const struct sb_hist *prev);
/* The value at quantile q (0..1): the upper bound of the bucket holding the
 * ceil(q * count)-th sample, clamped to the maximum seen; 0 when empty. */
uint64_t sb_hist_quantile(const struct sb_hist *h, double q);

/* The histogram as a JSON object, so that runs of several processes can be
 * merged (bench/suite.py merge_latency):
 *   {"unit":"ns","sub_bits":7,"count":N,"min":A,"max":B,"sum":S,
 *    "buckets":[[lower,upper,count],...]}
 * with the non-empty buckets in increasing order, bounds inclusive.  The
 * quantile rule of sb_hist_quantile applies to the merged buckets. */
void sb_hist_json(struct sbuf *b, const struct sb_hist *h);

/* --interval: one line for the interval that ended `t` seconds into the
 * measured time and lasted `secs`, from its own samples `h` (sb_hist_sub):
 *   "#interval t=T requests=N rate=R errors=E p50_us=A p99_us=B\n"
 * errors counting failures and mismatches so far (cumulative). */
void sb_interval_line(struct sbuf *b, double t, double secs, uint64_t requests,
                      uint64_t errors, const struct sb_hist *h);

/* The percentile distribution in HdrHistogram's text format (what wrk2
 * --latency prints and HdrHistogram's plotter reads): a header line
 * "Value Percentile TotalCount 1/(1-Percentile)", one line per reporting
 * level, `ticks` levels per halving of the distance to 100%, values in
 * nanoseconds divided by `scale` (1e6: milliseconds, as wrk2), then the
 * "#[Mean ...]" footer.  An empty histogram gives the header and the
 * footer only. */
void sb_hist_hdr_text(struct sbuf *b, const struct sb_hist *h, double scale,
                      int ticks);

#endif
