/*
 * conn.h - a client connection inside one worker (the worker's state is
 * worker_state.h's).  Internal to the worker (worker.c, conn.c).
 *
 * Connections live in an fd-indexed table (the lwan idea): the slot for fd N
 * is conns[N], so lookup is an index and an idle connection costs one small
 * struct and nothing else (no input buffer, no output ring).
 *
 * Poller tags: a connection is tagged with its slot's generation and its
 * fd (tag_conn(), tags.h).  The generation changes every time a slot is
 * reused, so an event queued for a connection that was closed earlier in
 * the same batch (and whose fd may already belong to a new connection) is
 * recognised and dropped.
 *
 * The send path (conn.c): the replies of one read are built in the worker's
 * staging buffer and leave in one send() right after the read; only bytes
 * the kernel refuses are copied into the connection's ring `out`, and while
 * the ring holds bytes every later reply is appended behind them and the
 * ring is flushed on writability (send, or sendmsg with two iovecs when it
 * wraps).  So a connection whose client keeps up never owns an output buffer.
 *
 * Life of a connection:
 *   open ------ read, framed, replies staged and sent (the rest to `out`)
 *    |  \------ PAUSED: unsent output above --max-output, reading stopped,
 *    |          the rest of the read kept in `in` until the ring drains
 *    |          below half
 *    |-- memory: the worker holds more than --max-buffered in rings and
 *    |          input buffers: a connection holding output is not read
 *    |          (PAUSED until its ring drains); past 1/8 more, the largest
 *    |          holders are dropped with "ERR out of memory"
 *    |-- EOF: the client half-closed; answer everything, flush, close
 *    |-- CLOSING: an error; owed replies + "ERR ..." are queued, input is
 *    |           read and discarded; once flushed: shutdown(SHUT_WR) and
 *    `-- LINGER: discard input for at most 2 s so the client reads the ERR
 *                line instead of a reset, then close.
 */
#ifndef STAMPD_CONN_H
#define STAMPD_CONN_H

#include <stdint.h>

#include "clock.h"
#include "http.h"
#include "line.h"
#include "poller.h"
#include "ring.h"
#include "stats.h"
#include "tq.h"
#include "tags.h"
#include "worker_state.h"

enum conn_flag {
    CF_OPEN      = 1u << 0,  /* slot in use */
    CF_PAUSED    = 1u << 1,  /* reading stopped by back-pressure */
    CF_EOF       = 1u << 2,  /* client half-closed; close once flushed */
    CF_CLOSING   = 1u << 3,  /* error line queued; discard input */
    CF_LINGER    = 1u << 4,  /* SHUT_WR done; waiting for the client's close */
    CF_REFUSED   = 1u << 5,  /* over --max-conns: not counted as active */
    CF_BROKEN    = 1u << 6,  /* a send failed mid-batch: close, `reason` says why */
    CF_CHUNK     = 1u << 8,  /* ,chunk listener: every read is one request */
    CF_PROXY     = 1u << 9,  /* ,proxy listener: header not yet complete */
    CF_PEER      = 1u << 10, /* the PROXY source is in w->peers[fd] */
    CF_OPERATOR  = 1u << 11, /* lines are held for the operator (operator.h) */
    CF_OWED      = 1u << 12, /* replies wait in the ring, timed in worker.owed */
    CF_TIMER     = 1u << 13, /* its timer link is queued (line_q or linger_q) */
};

/* Why a connection was closed; indexes the closed_* counters. */
/* Why a connection was closed: the reasons of stats.h, each counted in
 * its closed_<label> counter. */
#define CONN_CLOSE_ENUM(X, name, label) CLOSE_##name,
enum close_reason { STATS_CLOSE_REASONS(CONN_CLOSE_ENUM, _) };
#undef CONN_CLOSE_ENUM

struct conn {
    /* Everything an event reads, in one cache line: the table is indexed
     * by descriptor and 64-byte aligned, so at thousands of connections
     * an event's slot is one cache miss.  The timer links, touched only
     * while a timeout runs, are in a table of their own (conn_timers). */
    uint32_t gen;
    int32_t fd;
    uint16_t flags;
    uint8_t kind;          /* enum listener_kind */
    uint8_t mask;          /* registered poller interest */
    uint8_t reason;        /* enum close_reason, set when closing starts */
    uint8_t lidx;          /* index of its listener in worker_cfg.ls */
    uint16_t peer_port;    /* CF_PEER: the PROXY source port (network order;
                            * its address is in worker.peers[fd]) */
    struct ring out;       /* replies not yet accepted by the kernel */
    struct line_buf in;    /* an unfinished line, or input held while paused */
    struct http_conn *http;/* LISTEN_HTTP only: parser state (http.h) */
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct conn) == 64, "a connection slot is one cache line");

/* A connection's places in the worker's timer queues, in worker.timers
 * (indexed by descriptor like the connection table). */
struct conn_timers {
    struct tlink idle;     /* in worker.idle_q while open (and timed) */
    struct tlink timer;    /* worker.line_q (partial line) or linger_q;
                            * queued exactly while CF_TIMER is set */
};

/* The connection whose timer link (idle or timer, per `member`) is t. */
#define CONN_OF_TIMER(w, t, member) \
    (&(w)->conns[tq_entry(t, struct conn_timers, member) - (w)->timers])

static inline uint64_t conn_tag(const struct conn *c)
{
    return tag_conn(c->gen, c->fd);
}

/* Take over a socket accepted on listener w->cfg->ls[lidx] (its kind and
 * ,chunk / ,proxy flags apply).  Returns the connection or NULL (the fd is
 * closed then). */
struct conn *conn_open(struct worker *w, int fd, int lidx);
/* Answer a connection over --max-conns (line: "ERR too many connections",
 * HTTP: 503 with Connection: close) and let it linger. */
void conn_refuse(struct worker *w, int fd, int lidx);
/* Dispatch a poller event for a connection. */
void conn_event(struct worker *w, struct conn *c, unsigned mask);
/* The staging buffer's size for these options: room for a batch of
 * replies, and always for the largest single reply. */
size_t conn_stage_size(const struct opts *o);
/* Set w's output limits (ring_limit, resume_below) from w->o. */
void conn_limits(struct worker *w);
/* The loop's batch of events is done: record its requests in the latency
 * histogram, each with the time from the wake-up to now. */
void conn_batch_done(struct worker *w);
/* For operator.c, which answers held lines outside the framer: queue
 * bytes behind c's owed output (LINE_OK, LINE_PAUSE over --max-output,
 * LINE_FAIL without room), then send them, resume c if it was paused and
 * may read again, or finish its close (conn_kick; c may be closed on
 * return). */
int conn_put(struct worker *w, struct conn *c, const char *bytes, size_t len);
void conn_kick(struct worker *w, struct conn *c);
/* A drain starts with --idle-timeout 0: queue every open connection in
 * the idle queue, which now times 100 ms of quiet. */
void conn_drain_queue(struct worker *w);
/* Timer expiries. */
void conn_idle_expired(struct worker *w, struct conn *c);
void conn_line_expired(struct worker *w, struct conn *c);
void conn_linger_expired(struct worker *w, struct conn *c);
/* Close now, counting `reason`. */
void conn_close(struct worker *w, struct conn *c, enum close_reason reason);
/* True when a draining worker may close c: nothing owed, nothing held,
 * no unread input in the kernel. */
int conn_quiet(const struct conn *c);

#endif
