/*
 * stats.h - every statistic is listed once, here, and expanded into the
 * per-worker struct, the admin port's /metrics and /stats, and the
 * close-reason names (the memcached THREAD_STATS_FIELDS idea).
 *
 * The master maps one table in shared memory before forking; worker i owns
 * slot i and is its only writer.  Writers use relaxed atomic stores of
 * (value + 1) (no locked instruction, no syscall), readers relaxed loads, so
 * a reader may see a figure a few increments old but never a torn one.  A
 * respawned worker keeps counting in its predecessor's slot, so counters
 * never go backwards; the master resets the gauges before the fork.
 *
 * X(field, metric, label_name, label_value, help)
 *   metric: the Prometheus name without the "stampd_" prefix and "_total"
 *   suffix; rows sharing a metric differ by one label.
 */
#ifndef STAMPD_STATS_H
#define STAMPD_STATS_H

#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

/* Request-handling latency (read to reply queued), nanoseconds, in a
 * log-linear histogram with 4 sub-buckets per power of two (25% buckets);
 * values are clamped to LAT_MAX_NS (about 4.3 s).  Fixed memory: 124
 * counters per worker. */
#define STATS_LAT_SUB_BITS 2
#define STATS_LAT_MAX_NS 0xffffffffull
#define STATS_LAT_BUCKETS 124  /* hist_index(STATS_LAT_MAX_NS, 2) + 1 */
#define STATS_MAX_UDP 16       /* UDP listeners per worker (OPTS_MAX_ADDRS) */
/* A serving worker's loop turns at least this often, idle or not, and
 * writes its heartbeat each turn: supervision and /healthz read it. */
#define STATS_HEARTBEAT_MS 500

#define STATS_COUNTERS(X) \
    X(conns_accepted,   "connections_accepted", NULL, NULL, "Connections accepted") \
    X(conns_refused,    "connections_refused", NULL, NULL, "Connections refused by --max-conns") \
    X(closed_eof,       "connections_closed", "reason", "eof", "Connections closed, by reason") \
    X(closed_reset,     "connections_closed", "reason", "reset", "Connections closed, by reason") \
    X(closed_timeout,   "connections_closed", "reason", "timeout", "Connections closed, by reason") \
    X(closed_limit,     "connections_closed", "reason", "limit", "Connections closed, by reason") \
    X(closed_protocol,  "connections_closed", "reason", "protocol", "Connections closed, by reason") \
    X(closed_shutdown,  "connections_closed", "reason", "shutdown", "Connections closed, by reason") \
    X(closed_memory,    "connections_closed", "reason", "memory", "Connections closed, by reason") \
    X(requests_line,    "requests", "protocol", "line", "Requests answered, by protocol") \
    X(requests_http,    "requests", "protocol", "http", "Requests answered, by protocol") \
    X(requests_udp,     "requests", "protocol", "udp", "Requests answered, by protocol") \
    X(bytes_in,         "bytes_received", NULL, NULL, "Bytes read from clients") \
    X(bytes_out,        "bytes_sent", NULL, NULL, "Bytes written to clients") \
    X(err_line_too_long,"enforcements", "action", "line_too_long", "Limit enforcements, by action") \
    X(err_line_timeout, "enforcements", "action", "line_timeout", "Limit enforcements, by action") \
    X(err_idle_timeout, "enforcements", "action", "idle_timeout", "Limit enforcements, by action") \
    X(err_max_conns,    "enforcements", "action", "max_conns", "Limit enforcements, by action") \
    X(err_shutdown_cut, "enforcements", "action", "shutdown_cut", "Limit enforcements, by action") \
    X(err_nomem,        "enforcements", "action", "out_of_memory", "Limit enforcements, by action") \
    X(err_max_buffered, "enforcements", "action", "max_buffered", "Limit enforcements, by action") \
    X(backpressure_pauses, "backpressure_pauses", NULL, NULL, "Times a connection stopped being read because of --max-output") \
    X(budget_pauses,    "budget_pauses", NULL, NULL, "Times a connection holding output stopped being read because the worker was over --max-buffered") \
    X(accept_pauses,    "accept_pauses", NULL, NULL, "Times accepting paused because descriptors ran out (EMFILE/ENFILE)") \
    X(accept_errors,    "accept_errors", NULL, NULL, "accept() failures other than EAGAIN") \
    X(udp_drops,        "udp_drops", NULL, NULL, "UDP datagrams dropped (failed sends, receive-queue overflows)") \
    X(loop_iterations,  "loop_iterations", NULL, NULL, "Event loop iterations") \
    X(loop_events,      "loop_events", NULL, NULL, "Events returned by the poller") \
    X(writes,           "writes", NULL, NULL, "send()/sendmsg() calls on client sockets") \
    X(worker_restarts,  "worker_restarts", NULL, NULL, "Times this worker slot was re-forked after a death")

#define STATS_GAUGES(X) \
    X(conns_active,     "connections_active", NULL, NULL, "Connections open now (accepted and not yet closed)") \
    X(ring_bytes,       "ring_bytes", NULL, NULL, "Bytes allocated for output rings now") \
    X(input_bytes,      "input_bytes", NULL, NULL, "Bytes allocated for unfinished input now")

struct stats_slot {
#define STATS_FIELD(f, m, ln, lv, h) uint64_t f;
    STATS_COUNTERS(STATS_FIELD)
    STATS_GAUGES(STATS_FIELD)
#undef STATS_FIELD
    uint64_t lat_bucket[STATS_LAT_BUCKETS]; /* requests per latency bucket */
    uint64_t lat_sum_ns;    /* sum of the recorded latencies */
    /* For each UDP listener of the slot, how much of its socket's kernel
     * drop total has been counted into udp_drops.  The master creates the
     * socket (total 0) and keeps it across worker restarts, so this lives
     * here rather than in the worker: drops before a worker's start-up or
     * between a death and its respawn are counted once, not lost. */
    uint32_t udp_drops_seen[STATS_MAX_UDP];
    int64_t pid;            /* current process in this slot, 0 if none */
    /* CLOCK_MONOTONIC milliseconds of the current process's last loop turn;
     * 0 until its loop serves (reset before every fork). */
    int64_t heartbeat_ms;
    int64_t started_unix_ms;/* when the current process started */
} __attribute__((aligned(64)));

struct stats_table {
    int64_t start_unix_ms;  /* master start */
    uint32_t nworkers;
    uint32_t draining;      /* set by the master at a graceful stop */
    struct stats_slot slot[];
};

/* Single-writer updates: a plain load, a relaxed store. */
#define STAT_ADD(s, f, n) \
    __atomic_store_n(&(s)->f, (s)->f + (uint64_t)(n), __ATOMIC_RELAXED)
#define STAT_INC(s, f) STAT_ADD(s, f, 1)
#define STAT_SUB(s, f, n) \
    __atomic_store_n(&(s)->f, (s)->f - (uint64_t)(n), __ATOMIC_RELAXED)
#define STAT_DEC(s, f) STAT_SUB(s, f, 1)
#define STAT_SET(s, f, v) __atomic_store_n(&(s)->f, (uint64_t)(v), __ATOMIC_RELAXED)
#define STAT_GET(s, f) __atomic_load_n(&(s)->f, __ATOMIC_RELAXED)

/* Record `n` requests handled in one batch that took `ns`: each request is
 * counted with the batch's latency, so the histogram's count equals the
 * requests answered. */
static inline void stats_latency_record(struct stats_slot *s, uint64_t ns,
                                        uint64_t n)
{
    unsigned i = hist_index(ns < STATS_LAT_MAX_NS ? ns : STATS_LAT_MAX_NS,
                            STATS_LAT_SUB_BITS);
    STAT_ADD(s, lat_bucket[i], n);
    STAT_ADD(s, lat_sum_ns, ns * n);
}

/* The worker's loop turned at monotonic time now_ms. */
static inline void stats_heartbeat(struct stats_slot *s, int64_t now_ms)
{
    __atomic_store_n(&s->heartbeat_ms, now_ms, __ATOMIC_RELAXED);
}

/* Map a zeroed table for n workers in shared memory (MAP_SHARED, inherited
 * by fork).  NULL + errno. */
struct stats_table *stats_table_create(unsigned nworkers);

/* Zero a slot's gauges and heartbeat (before re-forking into it). */
void stats_slot_reset_gauges(struct stats_slot *s);

#endif
