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

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "hist.h"

/* Request-handling latency (from the loop's wake-up that found the request
 * to the end of that batch of events: replies sent or queued), in
 * nanoseconds, in a
 * log-linear histogram with 4 sub-buckets per power of two (25% buckets);
 * values are clamped to LAT_MAX_NS (about 4.3 s).  Fixed memory: 124
 * counters per worker.  /stats and stampctl compute percentiles from it. */
#define STATS_LAT_SUB_BITS 2
#define STATS_LAT_MAX_NS 0xffffffffull
#define STATS_LAT_BUCKETS 124  /* hist_index(STATS_LAT_MAX_NS, 2) + 1 */
/* The same latencies, and the reply latencies (read to the kernel taking
 * the reply), also counted on the SLO-friendly bounds /metrics exposes:
 * bucket i holds values <= stats_slo_bound_ns(i) (and above the previous
 * bound); the last bucket holds the rest (+Inf).  1-2.5-5 steps from 1 us
 * to 5 s, so that le="0.001" (1 ms) and le="0.1" exist. */
#define STATS_SLO_BOUNDS 21
#define STATS_SLO_BUCKETS (STATS_SLO_BOUNDS + 1)
static inline uint64_t stats_slo_bound_ns(unsigned i)
{
    static const uint64_t bound[STATS_SLO_BOUNDS] = {
        1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
        1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
        250000000, 500000000, 1000000000, 2500000000ull, 5000000000ull,
    };
    return bound[i];
}
#define STATS_MAX_UDP 16       /* UDP listeners per worker (OPTS_MAX_ADDRS) */
/* A serving worker's loop turns at least this often, idle or not, and
 * writes its heartbeat each turn: supervision and /healthz read it. */
#define STATS_HEARTBEAT_MS 500
/* A slot whose worker died (crashed, was killed, or exited while the
 * server was not stopping) STATS_CRASHLOOP_DEATHS times within the last
 * STATS_CRASHLOOP_WINDOW_MS is crash-looping (see respawns_recent). */
#define STATS_CRASHLOOP_DEATHS 3
#define STATS_CRASHLOOP_WINDOW_MS 30000

/* stats_table.ready_state: what the master is doing (written by the master
 * only).  /readyz is 200 only in STATS_READY. */
enum stats_ready_state {
    STATS_STARTING = 0,   /* not every worker has served yet */
    STATS_READY,          /* every worker has served at least once */
    STATS_UPGRADING,      /* serving; a new master (upgrade or reload) is
                           * starting and will take over once it serves */
    STATS_DRAINING,       /* graceful stop, or handed over to a new master:
                           * the workers finish what they hold and exit */
};

/* Why a connection was closed: R(X, NAME, label).  Each reason is one
 * closed_<label> counter below (connections_closed{reason="<label>"}) and
 * one CLOSE_<NAME> of enum close_reason (conn.h).
 *   eof       the client's EOF, or Connection: close
 *   reset     a socket error or reset
 *   timeout   idle or line timeout
 *   limit     max-line, 413, 431
 *   protocol  400, 501, 505, a bad PROXY header
 *   shutdown  closed by a graceful stop
 *   memory    shed to bring the worker back under --max-buffered
 *   crash     open when its worker died (counted by the master) */
#define STATS_CLOSE_REASONS(R, X) \
    R(X, EOF, eof) R(X, RESET, reset) R(X, TIMEOUT, timeout) R(X, LIMIT, limit) \
    R(X, PROTOCOL, protocol) R(X, SHUTDOWN, shutdown) R(X, MEMORY, memory) \
    R(X, CRASH, crash)
#define STATS_CLOSE_ROW(X, name, label) \
    X(closed_##label, "connections_closed", "reason", #label, "Connections closed, by reason")

#define STATS_COUNTERS(X) \
    X(conns_accepted,   "connections_accepted", NULL, NULL, "Connections accepted") \
    X(conns_refused,    "connections_refused", NULL, NULL, "Connections refused by --max-conns") \
    STATS_CLOSE_REASONS(STATS_CLOSE_ROW, X) \
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
    X(err_bad_proxy,    "enforcements", "action", "bad_proxy_header", "Limit enforcements, by action") \
    X(backpressure_pauses, "backpressure_pauses", NULL, NULL, "Times a connection stopped being read because of --max-output") \
    X(budget_pauses,    "budget_pauses", NULL, NULL, "Times a connection holding output stopped being read because the worker was over --max-buffered") \
    X(accept_pauses,    "accept_pauses", NULL, NULL, "Times accepting paused because descriptors ran out (EMFILE/ENFILE)") \
    X(accept_errors,    "accept_errors", NULL, NULL, "accept() failures other than EAGAIN") \
    X(poller_errors,    "poller_errors", NULL, NULL, "Interest changes the poller refused (the connection was closed as reset; UDP: the held replies dropped)") \
    X(udp_drops,        "udp_drops", NULL, NULL, "UDP datagrams dropped (failed sends, receive-queue overflows)") \
    X(loop_iterations,  "loop_iterations", NULL, NULL, "Event loop iterations") \
    X(loop_events,      "loop_events", NULL, NULL, "Events returned by the poller") \
    X(writes,           "writes", NULL, NULL, "send()/sendmsg() calls on client sockets") \
    X(worker_restarts,  "worker_restarts", NULL, NULL, "Times this worker slot was re-forked after a death") \
    X(worker_hangs,     "worker_hangs", NULL, NULL, "Times the master killed this slot's worker for not running its loop for --worker-timeout")

#define STATS_GAUGES(X) \
    X(conns_active,     "connections_active", NULL, NULL, "Connections open now (accepted and not yet closed)") \
    X(ring_bytes,       "ring_bytes", NULL, NULL, "Bytes allocated for output rings now") \
    X(input_bytes,      "input_bytes", NULL, NULL, "Bytes allocated for unfinished input now")

/* Per-listener figures.  Listener j is the j-th of the configuration's
 * listeners in the order --listen, --http, --udp (each in the order
 * given), the same in every worker; the first STATS_MAX_LISTENERS have an
 * entry in every slot, later ones count in the worker figures only.
 * X(field, metric, help), metric as above (a counter gets "_total"); the
 * series carry the labels listener="ADDRESS" and kind="line|http|udp".
 *   accepted      connection opened (not refused by --max-conns)
 *   requests      requests answered on it (TCP, unix, UDP datagrams)
 *   enforcements  the enforcements that name a client in the log: line too
 *                 long, line or idle timeout, too many connections, bad
 *                 PROXY header, an HTTP 4xx, over --max-buffered */
#define STATS_MAX_LISTENERS 16
#define STATS_LISTENER_COUNTERS(X) \
    X(accepted, "listener_connections_accepted", "Connections accepted, by listener") \
    X(requests, "listener_requests", "Requests answered, by listener") \
    X(enforcements, "listener_enforcements", "Enforcements against a client (line too long, timeouts, too many connections, bad PROXY header, HTTP 4xx, over --max-buffered), by listener")
#define STATS_LISTENER_GAUGES(X) \
    X(active, "listener_connections_active", "Connections open now, by listener")

/* A client's address in shared memory.  One writer (the slot's worker);
 * `seq` is odd while it writes, so a reader retries instead of taking a
 * half-written address.  Ports are in host order; IPv4 addresses are kept
 * IPv4-mapped; family AF_UNIX is a unix-socket client; 0: none yet. */
struct stats_client {
    uint64_t seq;
    uint64_t fam_port;   /* family << 16 | port */
    uint64_t addr[2];    /* the 16 bytes of the IPv6 address */
    int64_t at_ms;       /* CLOCK_MONOTONIC ms when it was written */
};

struct stats_listener {
#define STATS_LFIELD(f, m, h) uint64_t f;
    STATS_LISTENER_COUNTERS(STATS_LFIELD)
    STATS_LISTENER_GAUGES(STATS_LFIELD)
#undef STATS_LFIELD
    struct stats_client last_client;   /* of the last connection accepted;
                                        * ,proxy: the last PROXY source;
                                        * UDP: a batch's last datagram */
    struct stats_client last_enforced; /* of the last enforcement */
};

struct stats_slot {
#define STATS_FIELD(f, m, ln, lv, h) uint64_t f;
    STATS_COUNTERS(STATS_FIELD)
    STATS_GAUGES(STATS_FIELD)
#undef STATS_FIELD
    uint64_t lat_bucket[STATS_LAT_BUCKETS]; /* requests per latency bucket */
    uint64_t lat_sum_ns;    /* sum of the recorded latencies */
    uint64_t lat_slo[STATS_SLO_BUCKETS];   /* the same, on the SLO bounds */
    uint64_t reply_slo[STATS_SLO_BUCKETS]; /* read to reply accepted by the kernel */
    uint64_t reply_sum_ns;
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
    /* Written by the master: deaths of this slot's workers within the last
     * STATS_CRASHLOOP_WINDOW_MS (crashes, kills, unexpected exits; not
     * graceful stops).  >= STATS_CRASHLOOP_DEATHS: crash-looping. */
    uint32_t respawns_recent;
    uint32_t hung;          /* master: 1 while a SIGKILL for a stalled
                             * heartbeat is on its way, until the reap */
    int64_t started_unix_ms;/* when the current process started */
    struct stats_listener lst[STATS_MAX_LISTENERS];
} __attribute__((aligned(64)));

struct stats_table {
    int64_t start_unix_ms;  /* master start */
    uint32_t nworkers;
    uint32_t draining;      /* set by the master at a graceful stop, and
                             * when it hands over to a new master */
    uint32_t ready_state;   /* enum stats_ready_state, written by the master */
    uint32_t pad_;
    /* The admin port's, in the master (admin.c; single writer). */
    uint64_t admin_accept_pauses; /* accepting paused: descriptors ran out */
    uint64_t admin_accept_errors; /* other accept() failures */
    uint64_t admin_poller_errors; /* connections closed: interest refused */
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
/* The same on listener lidx's entry of slot s (nothing past the table). */
#define STAT_LISTENER_ADD(s, lidx, f, n)                                       \
    do {                                                                       \
        if ((unsigned)(lidx) < STATS_MAX_LISTENERS)                            \
            STAT_ADD(&(s)->lst[lidx], f, n);                                   \
    } while (0)
#define STAT_LISTENER_SUB(s, lidx, f, n)                                       \
    do {                                                                       \
        if ((unsigned)(lidx) < STATS_MAX_LISTENERS)                            \
            STAT_SUB(&(s)->lst[lidx], f, n);                                   \
    } while (0)

/* Listener lidx's entry of slot s, NULL past STATS_MAX_LISTENERS. */
static inline struct stats_listener *stats_listener(struct stats_slot *s,
                                                    unsigned lidx)
{
    return lidx < STATS_MAX_LISTENERS ? &s->lst[lidx] : NULL;
}

/* A stored address back into a sockaddr. */
static inline void stats_client_decode(uint64_t fam_port, const uint64_t a[2],
                                       struct sockaddr_storage *ss)
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint8_t b[16];
    int family = (int)(fam_port >> 16);
    uint16_t port = htons((uint16_t)(fam_port & 0xffff));

    memset(ss, 0, sizeof(*ss));
    memcpy(b, a, 16);
    if (family == AF_INET && memcmp(b, v4mapped, 12) == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = port;
        memcpy(&in->sin_addr, b + 12, 4);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = port;
        memcpy(&in6->sin6_addr, b, 16);
    } else if (family == AF_UNIX) {
        ss->ss_family = AF_UNIX;
    }
}

/* Write sa (AF_INET, AF_INET6 or AF_UNIX; anything else is ignored) as
 * c's address, seen at monotonic time now_ms. */
static inline void stats_client_store(struct stats_client *c,
                                      const struct sockaddr *sa,
                                      int64_t now_ms)
{
    static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    uint8_t b[16] = { 0 };
    uint16_t port = 0;
    uint64_t a[2];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        memcpy(b, v4mapped, 12);
        memcpy(b + 12, &in->sin_addr, 4);
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        memcpy(b, &in6->sin6_addr, 16);
        port = ntohs(in6->sin6_port);
    } else if (sa->sa_family != AF_UNIX) {
        return;
    }
    memcpy(a, b, 16);
    /* The one writer: odd while writing (stats_client_load retries). */
    uint64_t seq = c->seq;
    __atomic_store_n(&c->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&c->fam_port, (uint64_t)sa->sa_family << 16 | port,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&c->addr[0], a[0], __ATOMIC_RELAXED);
    __atomic_store_n(&c->addr[1], a[1], __ATOMIC_RELAXED);
    __atomic_store_n(&c->at_ms, now_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&c->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Read c into *ss (zeroed, ss_family 0 when there is none yet, or when it
 * was being written on each of a few tries) and *at_ms. */
static inline void stats_client_load(const struct stats_client *c,
                                     struct sockaddr_storage *ss,
                                     int64_t *at_ms)
{
    for (int tries = 0; tries < 8; tries++) {
        uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        uint64_t fp = __atomic_load_n(&c->fam_port, __ATOMIC_RELAXED);
        uint64_t a[2] = { __atomic_load_n(&c->addr[0], __ATOMIC_RELAXED),
                          __atomic_load_n(&c->addr[1], __ATOMIC_RELAXED) };
        int64_t at = __atomic_load_n(&c->at_ms, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((seq & 1) || __atomic_load_n(&c->seq, __ATOMIC_RELAXED) != seq)
            continue;
        stats_client_decode(fp, a, ss);
        *at_ms = at;
        return;
    }
    memset(ss, 0, sizeof(*ss));
    *at_ms = 0;
}

/* The SLO bucket of a latency of ns nanoseconds. */
static inline unsigned stats_slo_index(uint64_t ns)
{
    unsigned i = 0;
    while (i < STATS_SLO_BOUNDS && ns > stats_slo_bound_ns(i))
        i++;
    return i;
}

/* Record `n` requests handled in one batch that took `ns` (from the read
 * to the replies queued): each request is counted with the batch's
 * latency, so the histogram's count equals the requests answered. */
static inline void stats_latency_record(struct stats_slot *s, uint64_t ns,
                                        uint64_t n)
{
    unsigned i = hist_index(ns < STATS_LAT_MAX_NS ? ns : STATS_LAT_MAX_NS,
                            STATS_LAT_SUB_BITS);
    STAT_ADD(s, lat_bucket[i], n);
    STAT_ADD(s, lat_sum_ns, ns * n);
    STAT_ADD(s, lat_slo[stats_slo_index(ns)], n);
}

/* Record `n` replies that the kernel accepted (send/writev returned their
 * last byte) `ns` after the read that brought their requests.  The send
 * path calls it once per write that completes replies: replies written at
 * once count with that write's latency; replies that waited in the output
 * ring count when the write that drains them returns, with the time since
 * the read of the oldest of them. */
static inline void stats_reply_latency_record(struct stats_slot *s, uint64_t ns,
                                              uint64_t n)
{
    STAT_ADD(s, reply_slo[stats_slo_index(ns)], n);
    STAT_ADD(s, reply_sum_ns, ns * n);
}

/* The worker's loop turned at monotonic time now_ms. */
static inline void stats_heartbeat(struct stats_slot *s, int64_t now_ms)
{
    __atomic_store_n(&s->heartbeat_ms, now_ms, __ATOMIC_RELAXED);
}

/* Whether slot s is crash-looping now. */
static inline int stats_slot_crash_looping(const struct stats_slot *s)
{
    return __atomic_load_n(&s->respawns_recent, __ATOMIC_RELAXED) >=
           STATS_CRASHLOOP_DEATHS;
}

/* Map a zeroed table for n workers in shared memory (MAP_SHARED, inherited
 * by fork).  NULL + errno. */
struct stats_table *stats_table_create(unsigned nworkers);

/* Zero a slot's gauges and heartbeat (before re-forking into it). */
void stats_slot_reset_gauges(struct stats_slot *s);

#endif
