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

/* Health (see metrics_live / metrics_ready). */
#define METRICS_STALL_MS 2000          /* loop silent this long: not live */

/* What the admin port observed of a worker slot. */
struct worker_health {
    int64_t heartbeat_age_ms;  /* since the loop last turned; -1: not serving */
    int64_t down_ms;           /* how long it has not been serving (0: serving) */
    unsigned recent_deaths;    /* the master's respawns_recent (stats.h) */
};

/* The kernel's clock discipline state (adjtimex), as last read. */
struct clock_state {
    int known;                 /* 0: not read (the page leaves it out) */
    int synchronized;          /* STA_UNSYNC clear and not TIME_ERROR */
    double max_error_s;
    double est_error_s;
    double offset_s;
};

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
    int ready_state;      /* enum stats_ready_state */
    struct proc_info master;
    const struct proc_info *workers; /* t->nworkers entries */
    /* Soft RLIMIT_NOFILE of the master and of each worker (t->nworkers
     * entries, NULL: unknown); -1 when unknown. */
    int64_t master_max_fds;
    const int64_t *workers_max_fds;
    const struct worker_health *health; /* t->nworkers entries */
    struct clock_state clock;
};

/* Liveness: 1, or 0 with a one-line reason when a worker's loop has not
 * turned for METRICS_STALL_MS, a slot has had no serving process that
 * long, or a slot is crash-looping (STATS_CRASHLOOP_DEATHS deaths within
 * STATS_CRASHLOOP_WINDOW_MS, counted by the master). */
int metrics_live(const struct metrics_input *in, char *why, size_t len);
/* Readiness: 1 only when live, every worker serves, the master says
 * STATS_READY (not starting, upgrading or draining) and, with --require-synced-clock, the clock is synchronised
 * within --clock-max-error; else 0 and the reason. */
int metrics_ready(const struct metrics_input *in, char *why, size_t len);
/* 1 with a reason when the clock is unsynchronised or its maximum error
 * exceeds limit_us; 0 when it is fine (or unknown). */
int metrics_clock_warning(const struct clock_state *c, uint64_t limit_us,
                          char *why, size_t len);

/* Prometheus text exposition format 0.0.4. */
void metrics_render_prometheus(struct sbuf *b, const struct metrics_input *in);
/* One JSON object holding the same figures under the same names: a key is
 * the metric's name without "stampd_" (process_* without "process_", in
 * "master" and each worker), a label a level of nested keys; "workers" and
 * "listeners" are arrays, "totals" the workers' figures summed; seconds,
 * bytes, exact counts (docs/monitoring.md gives the schema). */
void metrics_render_json(struct sbuf *b, const struct metrics_input *in);

/* The value at quantile q (0 < q <= 1) of a log-linear histogram of n
 * buckets: the inclusive upper bound of the bucket holding the
 * ceil(q * count)-th smallest value (HDR's "highest equivalent value", so
 * an estimate errs high by at most one bucket width).  0 if empty. */
uint64_t metrics_quantile(const uint64_t *bucket, unsigned n,
                          unsigned sub_bits, double q);

/* A listener of the configuration: listener j in the order of stats.h's
 * per-listener figures (--listen, --http, --udp). */
struct metrics_listener {
    const struct addr *a;   /* its address and ,proxy / ,chunk flags */
    const char *kind;       /* "line", "http" or "udp" */
};
/* 1 and *l for listener j of o; 0 when there is no listener j. */
int metrics_listener_at(const struct opts *o, int j, struct metrics_listener *l);

/* Listener j's figures summed over the workers (gauges of slots without
 * a process read 0), and the most recent last client and last enforced
 * client of any worker (ss_family 0: none).  All zero for j at or past
 * STATS_MAX_LISTENERS. */
void metrics_listener_sum(const struct stats_table *t, unsigned j,
                          struct stats_listener *sum,
                          struct sockaddr_storage *client,
                          struct sockaddr_storage *enforced);

/* Add every figure of s (counters, gauges, latency buckets and sum) to
 * tot; pid, start time and the per-listener figures are left alone. */
void metrics_slot_add(struct stats_slot *tot, const struct stats_slot *s);

/* "12.000345678": ns as exact decimal seconds, trailing zeros dropped. */
void metrics_fmt_seconds(char *out, size_t len, uint64_t ns);

#endif
