/*
 * metrics.h - rendering the stats table as the admin port's pages (pure:
 * everything it shows comes in through struct metrics_input, so the unit
 * tests render a fixed table and compare with golden text).
 */
#ifndef STAMPD_METRICS_H
#define STAMPD_METRICS_H

#include <stdint.h>
#include <sys/types.h>

#include "opts.h"
#include "sbuf.h"
#include "stats.h"

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

#endif
