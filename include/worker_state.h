/*
 * worker_state.h - the state of one worker process: its event loop
 * (worker.c) and its connections (conn.c, conn_client.c) share it.  Not
 * for the master: worker.h is the worker's interface to it.
 *
 * One loop turn (worker_turn()):
 *   wait (timeout: the nearest timer)
 *   -> update the cached clock once (conn.c refreshes the wall clock after
 *      each read, see clock.h)
 *   -> dispatch every event (worker_dispatch(): accepts; reads, whose
 *      replies are sent at once; writes of rings that held back-pressured
 *      output; UDP batches; the signal pipe)
 *   -> time the batch's requests, expire timers from the heads of the
 *      timeout queues, resume accepting after a pause
 */
#ifndef STAMPD_WORKER_STATE_H
#define STAMPD_WORKER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "opts.h"
#include "poller.h"
#include "reactor.h"
#include "stats.h"
#include "tq.h"
#include "worker.h"

struct conn;
struct conn_timers;
struct conn_peer;

struct worker {
    const struct worker_cfg *cfg;
    const struct opts *o;
    struct stats_slot *st;
    poller_t *poller;
    struct clock_cache clock;

    struct conn *conns;    /* indexed by fd: an anonymous mapping */
    struct conn_timers *timers; /* indexed by fd, like conns */
    int nconns;            /* table size (RLIMIT_NOFILE) */
    unsigned active;       /* counted connections (not refused) */
    unsigned refused_lingering;

    struct tqueue idle_q;  /* every open connection, by last activity */
    struct tqueue line_q;  /* connections holding a partial line */
    struct tqueue linger_q;/* half-closed after an error, draining input */

    char *rbuf;            /* the one read buffer */
    size_t rbuf_size;
    /* The staging buffer: replies of the connection being served, built
     * here and sent at once.  It holds bytes only while that connection's
     * ring is empty, so it doubles as scratch space for a reply that does
     * not fit a ring's contiguous tail.  Empty between events. */
    char *stage;
    size_t stage_cap;      /* conn_stage_size() */
    size_t stage_len;
    int stage_dst;         /* where the reply being built goes (conn.c) */
    size_t ring_limit;     /* max_output + one reply + an error line */
    size_t resume_below;   /* max_output / 2 */
    size_t buffered;       /* bytes held in rings and input buffers */
    size_t shed_above;     /* --max-buffered + 1/8: shed the largest holders */
    int64_t wake_ns;       /* CLOCK_MONOTONIC when the poller last returned */
    uint64_t batch_reqs;   /* requests answered since then */
    uint64_t pushed_reqs;  /* batch_reqs at the last conn_push() */
    uint64_t sent_reqs;    /* requests of this batch the kernel took whole */
    long long shed_log;    /* rate limit of the shedding warning */

    int draining;
    int cut;               /* connections were cut at the shutdown deadline */
    int64_t drain_deadline;/* CLOCK_MONOTONIC ms: cut what has not drained */
    struct accept_gate accept; /* pauses accepting on every listener */
    struct reactor_signals sigs;

    /* The client address a PROXY header named, by fd (conn_proxy.h);
     * allocated at the first proxied connection, touched per fd in use. */
    struct conn_peer *peers;

    /* Replies held in a ring, by fd: how many requests they answer and
     * since when, for the reply-latency histogram; allocated at the first
     * refused send, touched only by connections that hold output. */
    struct conn_owed *owed;

    /* Operator mode (operator.h); NULL unless a listener uses it. */
    struct operator *op;
};

struct conn_owed {
    int64_t since_ns;      /* wake-up of the batch that first held replies */
    uint64_t reqs;         /* requests whose replies wait in the ring */
};


/* Allocate w's tables and buffers for cfg (the connection table sized by
 * RLIMIT_NOFILE, the read and staging buffers, the output limits, the
 * timeout queues) and create its poller; nothing is registered yet.  0 or
 * -errno; worker_free() releases a partly set-up worker too. */
int worker_setup(struct worker *w, const struct worker_cfg *cfg);
void worker_free(struct worker *w);
/* Handle one poller event: a listener's, the signal pipe's or a
 * connection's (dropped if its slot closed earlier in the batch). */
void worker_dispatch(struct worker *w, const struct poller_event *ev);
/* One loop turn: wait up to timeout_ms, then as described above.  The
 * number of events handled, or the poller's negative errno. */
int worker_turn(struct worker *w, int timeout_ms);

#endif
