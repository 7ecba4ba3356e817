/*
 * worker.c - one single-threaded reactor: the event loop, accepting,
 * timers, signals and the graceful stop.  What happens on a connection is
 * conn.c's business; the loop turn is described in worker_state.h, the
 * rules every loop shares in reactor.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clientlog.h"
#include "clock_edge.h"
#include "compat.h"
#include "conn.h"
#include "conn_client.h"
#include "fault.h"
#include "log.h"
#include "reactor.h"
#include "opchannel.h"
#include "operator.h"
#include "udp.h"
#include "worker_state.h"

#define MAX_EVENTS 512
#define ACCEPT_BUDGET 64        /* accepts per listener per wakeup */
#define READ_BUFFER (64 * 1024)
#define LINGER_MS 2000
#define DRAIN_QUIET_MS 100

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    reactor_signal_wake();
}

static int setup_signals(struct worker *w)
{
    static const int stop[] = { SIGTERM, SIGINT, SIGQUIT, 0 };
    static const int reopen[] = { SIGUSR1, 0 };  /* --log-file rotated */
    /* What only the master acts on, should a process-group kill bring it. */
    static const int ignored[] = { SIGPIPE, SIGHUP, SIGUSR2, SIGWINCH, 0 };
    static const int dfl[] = { SIGCHLD, 0 };

    int rc = reactor_signals_open(&w->sigs);
    if (rc < 0)
        return rc;
    reactor_signals_handle(on_stop_signal, 0, stop);
    reactor_signals_handle(log_reopen_on_signal, 0, reopen);
    reactor_signals_handle(SIG_IGN, 0, ignored);
    reactor_signals_handle(SIG_DFL, 0, dfl);

    /* The master may have blocked signals around fork(). */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
}

/* --- accepting ----------------------------------------------------------- */

/* An open stream (TCP or unix) listener: one that accept() applies to. */
static int stream_open(const struct listener *ls)
{
    return ls->fd >= 0 && ls->kind != LISTEN_UDP;
}

/* Every open stream listener's interest to `mask` (the reactor's
 * policy: each records only what the poller took).  0, or -1 if one
 * failed. */
static int listeners_interest(struct worker *w, unsigned mask)
{
    int rc = 0;
    for (int i = 0; i < w->cfg->nls; i++) {
        struct listener *ls = &w->cfg->ls[i];
        if (stream_open(ls) &&
            reactor_interest(w->poller, ls->fd, &ls->mask, mask,
                             TAG_LISTENER | (uint64_t)i) != 0)
            rc = -1;
    }
    return rc;
}

/* Accept up to `budget` connections; returns 1 if the queue ran dry. */
static int accept_some(struct worker *w, struct listener *ls, int budget)
{
    int lidx = (int)(ls - w->cfg->ls);

    for (int i = 0; i < budget; i++) {
        struct sockaddr_storage peer;
        int fd = reactor_accept_peer(&w->accept, ls->fd, w->clock.mono_ms, &peer);
        switch (fd) {
        case ACCEPT_DRY:
            return 1;
        case ACCEPT_AGAIN:
            continue;
        case ACCEPT_PAUSED:
            listeners_interest(w, 0);
            return 0;
        case ACCEPT_FAILED:
            return 0;
        default:
            break;
        }
        int refused = w->active >= w->o->max_conns;
        conn_client_accepted(w, lidx, &peer, refused);
        if (refused)
            conn_refuse(w, fd, lidx);
        else
            (void)conn_open(w, fd, lidx);
    }
    return 0;
}

/* --- graceful stop ------------------------------------------------------- */

/* Stop listening on one TCP or unix listener (drain only). */
static void close_listener(struct worker *w, struct listener *ls)
{
    (void)reactor_interest(w->poller, ls->fd, &ls->mask, 0, 0);
    close(ls->fd);
    ls->fd = -1;
}

/* Stream listeners still open: a draining worker waits for none. */
static int streams_open(const struct worker *w)
{
    int n = 0;
    for (int i = 0; i < w->cfg->nls; i++)
        n += stream_open(&w->cfg->ls[i]);
    return n;
}

static void begin_drain(struct worker *w)
{
    w->draining = 1;
    w->drain_deadline = w->clock.mono_ms +
                        (int64_t)w->o->shutdown_timeout * 1000;
    /* Serve what is already queued, then stop listening.  The queue is
     * bounded by the backlog; the round cap only guards against a listener
     * that keeps failing.  A listener whose accepts are paused by
     * descriptor exhaustion stays open: its queued clients are accepted as
     * the connections being drained free descriptors, and it is closed
     * when its queue runs dry (or at the drain deadline). */
    for (int i = 0; i < w->cfg->nls; i++) {
        struct listener *ls = &w->cfg->ls[i];
        if (ls->fd < 0)
            continue;
        if (ls->kind == LISTEN_UDP) {
            /* Datagrams already queued are answered, then the socket goes. */
            udp_event(ls->udp, POLLER_READ, w->o, &w->clock, w->st);
            close(ls->fd);
            ls->fd = -1;
            continue;
        }
        for (int round = 0; round < 1024; round++)
            if (accept_some(w, ls, ACCEPT_BUDGET) ||
                reactor_accept_paused(&w->accept))
                break;
        if (!reactor_accept_paused(&w->accept))
            close_listener(w, ls);
    }
    operator_drain(w);
    int queued = w->idle_q.timeout_ms > 0;
    w->idle_q.timeout_ms = DRAIN_QUIET_MS;
    if (!queued)
        conn_drain_queue(w);  /* --idle-timeout 0 kept no idle queue */
    log_info("draining %u connection%s", w->active, w->active == 1 ? "" : "s");
}

static void cut_everything(struct worker *w)
{
    unsigned n = 0;

    for (int fd = 0; fd < w->nconns; fd++) {
        struct conn *c = &w->conns[fd];
        if (!(c->flags & CF_OPEN))
            continue;
        if (!(c->flags & CF_REFUSED)) {
            n++;
            STAT_INC(w->st, err_shutdown_cut);
        }
        conn_close(w, c, CLOSE_SHUTDOWN);
    }
    /* Clients still queued behind a paused listener are not served. */
    for (int i = 0; i < w->cfg->nls; i++) {
        struct listener *ls = &w->cfg->ls[i];
        if (stream_open(ls)) {
            close_listener(w, ls);
            w->cut = 1;
            log_warn("shutdown timeout: stopped listening on %s with accepts "
                     "still paused", ls->addr->text);
        }
    }
    if (n) {
        w->cut = 1;
        log_warn("shutdown timeout: closed %u connection%s that had not drained",
                 n, n == 1 ? "" : "s");
    }
}

/* --- timers ------------------------------------------------------------- */

static void expire_timers(struct worker *w)
{
    int64_t now = w->clock.mono_ms;
    struct tlink *t;

    while ((t = tq_expired(&w->linger_q, now)))
        conn_linger_expired(w, CONN_OF_TIMER(w, t, timer));
    while ((t = tq_expired(&w->line_q, now)))
        conn_line_expired(w, CONN_OF_TIMER(w, t, timer));
    /* A draining worker re-queues busy connections at `now`, which stops
     * this loop: they are behind every member stamped earlier. */
    while ((t = tq_expired(&w->idle_q, now)))
        conn_idle_expired(w, CONN_OF_TIMER(w, t, idle));
    operator_expire(w);

    if (reactor_accept_resume(&w->accept, now)) {
        /* A listener the poller would not take back: retry after a pause. */
        if (listeners_interest(w, POLLER_READ) != 0)
            w->accept.resume_at = now + ACCEPT_PAUSE_MS;
        /* Draining, a listener with nothing queued any more would never
         * become readable: try each now, and close those that ran dry. */
        for (int i = 0; w->draining && i < w->cfg->nls &&
                        !reactor_accept_paused(&w->accept); i++) {
            struct listener *ls = &w->cfg->ls[i];
            if (stream_open(ls) && accept_some(w, ls, ACCEPT_BUDGET))
                close_listener(w, ls);
        }
    }
}

/* The loop turns at least every STATS_HEARTBEAT_MS so that the heartbeat
 * shows a live loop even when nothing happens. */
static int next_timeout(const struct worker *w)
{
    int64_t now = w->clock.mono_ms, t = -1;

    reactor_timer_in(&t, tq_next_ms(&w->idle_q, now));
    reactor_timer_in(&t, tq_next_ms(&w->line_q, now));
    reactor_timer_in(&t, tq_next_ms(&w->linger_q, now));
    reactor_timer_in(&t, operator_next_ms(w, now));
    reactor_timer_at(&t, w->accept.resume_at, now);
    if (w->draining)
        reactor_timer_at(&t, w->drain_deadline, now);
    return reactor_wait_ms(t, STATS_HEARTBEAT_MS);
}

/* --- set-up -------------------------------------------------------------- */

_Static_assert(STATS_MAX_UDP >= OPTS_MAX_ADDRS,
               "every --udp address needs a drop-count slot");

/* The connection table's mapping: a slot per possible descriptor. */
static size_t conns_bytes(const struct worker *w)
{
    return (size_t)w->nconns * sizeof(*w->conns);
}

int worker_setup(struct worker *w, const struct worker_cfg *cfg)
{
    const struct opts *o = cfg->o;
    struct rlimit rl;

    memset(w, 0, sizeof(*w));
    w->sigs.rd = w->sigs.wr = -1;
    w->cfg = cfg;
    w->o = o;
    w->st = cfg->st;
    w->accept.who = "accept";
    w->accept.pauses = &w->st->accept_pauses;
    w->accept.errors = &w->st->accept_errors;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > (1u << 24))
        rl.rlim_cur = 1u << 20;
    w->nconns = (int)rl.rlim_cur;
    /* Zeroed pages are touched only when their fd is used.  The slots
     * are cache lines: the table is an anonymous mapping, page-aligned
     * whatever the allocator. */
    w->conns = mmap(NULL, conns_bytes(w), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w->conns == MAP_FAILED)
        w->conns = NULL;
    w->timers = calloc((size_t)w->nconns, sizeof(*w->timers));
    w->rbuf_size = READ_BUFFER;
    w->rbuf = malloc(w->rbuf_size);
    w->stage_cap = conn_stage_size(o);
    w->stage = malloc(w->stage_cap);
    conn_limits(w);
    if (!w->conns || !w->timers || !w->rbuf || !w->stage)
        return -ENOMEM;

    tq_init(&w->idle_q, (int64_t)o->idle_timeout * 1000);
    tq_init(&w->line_q, (int64_t)o->line_timeout * 1000);
    tq_init(&w->linger_q, LINGER_MS);
    clock_update(&w->clock);

    w->poller = poller_create(1024);
    return w->poller ? 0 : -errno;
}

/* ctime stamps: the clock is checked after each read by a load, not a
 * clock read, where the poller can keep the alarm from waking an idle
 * loop (clock_edge.h); elsewhere every check reads the clock. */
static void start_clock_edge(struct worker *w)
{
    if (w->o->time_format != TIME_CTIME ||
        poller_block_signal(w->poller, CLOCK_EDGE_SIGNAL) != 0)
        return;
    int rc = clock_edge_start(&w->clock);
    if (rc < 0)
        log_debug("second-boundary alarm: %s; reading the clock after "
                  "every read", strerror(-rc));
}

/* Register the signal pipe and every listener. */
static int worker_listen(struct worker *w)
{
    const struct worker_cfg *cfg = w->cfg;
    int nudp = 0;

    int rc = setup_signals(w);
    if (rc < 0)
        return rc;
    start_clock_edge(w);
    rc = poller_add(w->poller, w->sigs.rd, POLLER_READ, TAG_SIGNAL);
    if (rc < 0)
        return rc;
    if (opchan_wanted(w->o) && (rc = operator_init(w)) < 0)
        return rc;
    for (int i = 0; i < cfg->nls; i++) {
        struct listener *ls = &cfg->ls[i];
        rc = reactor_interest(w->poller, ls->fd, &ls->mask, POLLER_READ,
                              TAG_LISTENER | (uint64_t)i);
        if (rc < 0)
            return rc;
        if (ls->kind == LISTEN_UDP) {
            if (!(ls->udp = udp_create(ls->fd, w->poller, TAG_LISTENER | (uint64_t)i)))
                return -ENOMEM;
            udp_set_listener(ls->udp, ls->addr);
            udp_track_listener(ls->udp, stats_listener(w->st, (unsigned)i));
            /* A socket shared by every worker (no balancing SO_REUSEPORT)
             * has one drop total: worker 0 alone counts it. */
            if (nudp < STATS_MAX_UDP && (!ls->shared || cfg->id == 0))
                udp_track_drops(ls->udp, &w->st->udp_drops_seen[nudp]);
            nudp++;
        }
    }
    return 0;
}

void worker_free(struct worker *w)
{
    for (int i = 0; w->cfg && i < w->cfg->nls; i++) {
        udp_destroy(w->cfg->ls[i].udp);
        w->cfg->ls[i].udp = NULL;
    }
    operator_free(w);
    if (w->poller)
        poller_destroy(w->poller);
    w->poller = NULL;
    reactor_signals_close(&w->sigs);
    if (w->conns)
        munmap(w->conns, conns_bytes(w));
    free(w->timers);
    free(w->rbuf);
    free(w->stage);
    free(w->peers);
    free(w->owed);
    w->conns = NULL;
    w->timers = NULL;
    w->rbuf = w->stage = NULL;
    w->peers = NULL;
    w->owed = NULL;
}

/* --- the loop ------------------------------------------------------------ */

void worker_dispatch(struct worker *w, const struct poller_event *ev)
{
    if (ev->data & TAG_LISTENER) {
        unsigned i = TAG_INDEX(ev->data);
        if (i >= (unsigned)w->cfg->nls)
            return;
        struct listener *ls = &w->cfg->ls[i];
        if (ls->kind == LISTEN_UDP) {
            if (ls->fd >= 0)
                udp_event(ls->udp, ev->mask, w->o, &w->clock, w->st);
            return;
        }
        if (ls->fd >= 0 && !reactor_accept_paused(&w->accept) &&
            accept_some(w, ls, ACCEPT_BUDGET) && w->draining)
            close_listener(w, ls); /* its queue is served */
        return;
    }
    if (ev->data == TAG_IPC) {
        operator_event(w);
        return;
    }
    if (ev->data == TAG_SIGNAL) {
        reactor_signals_drain(&w->sigs);
        return;
    }
    if (ev->data & TAG_KINDS)
        return;  /* no other kind is registered in a worker */
    int fd = tag_conn_fd(ev->data);
    if (fd < 0 || fd >= w->nconns)
        return;
    struct conn *c = &w->conns[fd];
    if (!(c->flags & CF_OPEN) || c->gen != tag_conn_gen(ev->data))
        return; /* closed earlier in this batch */
    conn_event(w, c, ev->mask);
}

int worker_turn(struct worker *w, int timeout_ms)
{
    struct poller_event events[MAX_EVENTS];

    int n = poller_wait(w->poller, events, MAX_EVENTS, timeout_ms);
    clock_update(&w->clock);
    clock_edge_follow(&w->clock);
    stats_heartbeat(w->st, w->clock.mono_ms);
    if (n == -EINTR)
        n = 0;
    if (n < 0)
        return n;
    STAT_INC(w->st, loop_iterations);
    if (n > 0)
        STAT_ADD(w->st, loop_events, n);
    w->wake_ns = w->clock.mono_ns;
    for (int i = 0; i < n; i++)
        worker_dispatch(w, &events[i]);
    if (w->batch_reqs)
        conn_batch_done(w);
    expire_timers(w);
    clientlog_tick(w->clock.mono_ms);
    return n;
}

int worker_main(const struct worker_cfg *cfg)
{
    static struct worker w;

    int rc = worker_setup(&w, cfg);
    if (rc == 0)
        rc = worker_listen(&w);
    if (rc < 0) {
        log_error("cannot start: %s", strerror(-rc));
        worker_free(&w);
        return 1;
    }
    fault_worker_ready();
    stats_heartbeat(w.st, w.clock.mono_ms);  /* serving from here on */
    log_debug("serving (pid %d)", (int)getpid());

    for (;;) {
        int n = worker_turn(&w, next_timeout(&w));
        if (n < 0) {
            log_error("poller_wait: %s", strerror(-n));
            w.cut = 1;
            break;
        }
        if (stop_requested && !w.draining)
            begin_drain(&w);
        if (w.draining) {
            if (w.clock.mono_ms >= w.drain_deadline)
                cut_everything(&w);
            if (w.active == 0 && w.refused_lingering == 0 && !streams_open(&w))
                break;
        }
    }
    rc = w.cut ? 1 : 0;
    log_debug("stopped (%s)", rc ? "connections cut" : "drained");
    worker_free(&w);
    return rc;
}
