/*
 * metrics.h - rendering the stats table as the admin port's pages (pure:
 * everything it shows comes in through struct metrics_input, so the unit
 * tests render a fixed table and compare with golden text).
 *
 * Counters of a worker that died stay in its slot and its successor keeps
 * counting there, so every _total series and every total in /stats is
 * monotonic.  Gauges of a slot without a process (pid 0, between a death
 * and the respawn) read 0: the kernel closed that worker's connections.
 */
#ifndef STAMPD_METRICS_H
#define STAMPD_METRICS_H

#include <stdint.h>
#include <sys/types.h>

#include "opts.h"
#include "sbuf.h"
#include "stats.h"

/* The histogram's le bounds in /metrics: every power of two from 2^FIRST
 * to 2^LAST nanoseconds, minus one.  Latencies are whole nanoseconds and
 * 2^k - 1 is the inclusive upper end of a log-linear bucket (hist_upper),
 * so each cumulative count is exact, not interpolated.  2^32 - 1 is also
 * STATS_LAT_MAX_NS, where recording clamps. */
#define METRICS_LE_FIRST_SHIFT 8    /* 255 ns */
#define METRICS_LE_LAST_SHIFT 32    /* 4.294967295 s */

/* Process figures in the Prometheus convention; rss < 0 when unknown. */
struct proc_info {
    pid_t pid;            /* 0: no process (a slot between respawns) */
    int64_t rss_bytes;
    int64_t open_fds;
    double start_time_s;  /* Unix time */
    double cpu_seconds;   /* user + system */
};

struct metrics_input {
    const struct stats_table *t;
    const struct opts *o;
    const char *version;
    const char *poller;
    int64_t now_unix_ms;
    int draining;
    struct proc_info master;
    const struct proc_info *workers; /* t->nworkers entries */
};

/* Prometheus text exposition format 0.0.4. */
void metrics_render_prometheus(struct sbuf *b, const struct metrics_input *in);
/* One JSON object: totals, per worker, config, uptime, version. */
void metrics_render_json(struct sbuf *b, const struct metrics_input *in);

/* The value at quantile q (0 < q <= 1) of a log-linear histogram of n
 * buckets: the inclusive upper bound of the bucket holding the
 * ceil(q * count)-th smallest value (HDR's "highest equivalent value", so
 * an estimate errs high by at most one bucket width).  0 if empty. */
uint64_t metrics_quantile(const uint64_t *bucket, unsigned n,
                          unsigned sub_bits, double q);

/* Add every figure of s (counters, gauges, latency buckets and sum) to
 * tot; pid and start time are left alone. */
void metrics_slot_add(struct stats_slot *tot, const struct stats_slot *s);

/* "12.000345678": ns as exact decimal seconds, trailing zeros dropped. */
void metrics_fmt_seconds(char *out, size_t len, uint64_t ns);

#endif
