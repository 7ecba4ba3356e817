/*
 * conn.c - one client connection: read, frame, queue replies, flush, and the
 * error and close paths of the protocol (see conn.h for the life cycle).
 *
 * Policy in one place:
 *  - One recv() of up to rbuf_size per readable event: with level-triggered
 *    readiness a busy connection comes back next iteration, after everybody
 *    else had their turn.
 *  - Replies are built in the worker's staging buffer and sent with one
 *    send() when the read is framed (earlier only if the stage fills up or
 *    holds more than --max-output), so the replies of one read leave in one
 *    system call and nothing is allocated for them.
 *  - Only what the kernel refuses is copied into the connection's ring; from
 *    then on every reply goes behind it until it drains (order), and the
 *    ring is written when the socket becomes writable, never retried at
 *    once after a short write.
 *  - Write interest is registered only while the ring holds bytes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "compat.h"
#include "conn.h"
#include "conn_client.h"
#include "fault.h"
#include "log.h"
#include "operator.h"
#include "reactor.h"
#include "refusal.h"
#include "reply.h"

#define LINGER_READS 16  /* reads per event while discarding input */
#define STAGE_BATCH (64 * 1024) /* staged reply bytes that force a send */

static const char ERR_TOO_LONG[] = "ERR line too long\n";
static const char ERR_LINE_TIMEOUT[] = "ERR line timeout\n";
static const char ERR_NOMEM[] = "ERR out of memory\n";

/* --- bookkeeping --------------------------------------------------------- */

static void conn_break(struct conn *c, enum close_reason reason);

/* The interest-update policy of every loop (reactor.h): c->mask changes
 * only when the poller took the change.  A connection whose change failed
 * is marked broken (counted in poller_errors, closed as "reset") and is
 * closed when control returns to its event or timer (conn_settle()). */
static void change_interest(struct worker *w, struct conn *c, unsigned mask)
{
    static long long failure_log;
    unsigned m = c->mask;
    int rc = reactor_interest(w->poller, c->fd, &m, mask, conn_tag(c));

    c->mask = (uint8_t)m;
    if (rc == 0)
        return;
    STAT_INC(w->st, poller_errors);
    log_ratelimited(LOG_WARN, &failure_log, 10000,
                    "poller: interest change on fd %d: %s; closing the "
                    "connection", c->fd, strerror(-rc));
    conn_break(c, CLOSE_RESET);
}

/* The common case, once per read, costs a compare: no call. */
static inline void set_interest(struct worker *w, struct conn *c, unsigned mask)
{
    if (c->mask != mask)
        change_interest(w, c, mask);
}

/* Close c, still the connection of generation gen, if it was marked
 * broken and nothing has closed it yet. */
static void conn_settle(struct worker *w, struct conn *c, uint32_t gen)
{
    if ((c->flags & (CF_OPEN | CF_BROKEN)) == (CF_OPEN | CF_BROKEN) &&
        c->gen == gen)
        conn_close(w, c, (enum close_reason)c->reason);
}

/* c's timer links (conn.h): touched only while a timeout runs. */
static inline struct conn_timers *timers_of(struct worker *w,
                                            const struct conn *c)
{
    return &w->timers[c->fd];
}

/* Time c in q (line_q or linger_q), from now. */
static void timer_start(struct worker *w, struct conn *c, struct tqueue *q)
{
    c->flags |= CF_TIMER;
    tq_touch(q, &timers_of(w, c)->timer, w->clock.mono_ms);
}

/* Stop c's line or linger timeout; without one, no other cache line is
 * touched. */
static inline void timer_stop(struct worker *w, struct conn *c)
{
    if (!(c->flags & CF_TIMER))
        return;
    c->flags &= (uint16_t)~CF_TIMER;
    tq_remove(&timers_of(w, c)->timer);
}

/* Gauges and the worker's buffered total follow allocation changes of the
 * ring and the input buffer (rare: a ring exists only while the kernel
 * refuses output, an input buffer only for a partial line or held input). */
static void account(struct worker *w, uint32_t ring_before, uint32_t in_before,
                    const struct conn *c)
{
    if (c->out.cap != ring_before) {
        STAT_ADD(w->st, ring_bytes, c->out.cap);
        STAT_SUB(w->st, ring_bytes, ring_before);
        w->buffered += c->out.cap;
        w->buffered -= ring_before;
    }
    if (c->in.cap != in_before) {
        STAT_ADD(w->st, input_bytes, c->in.cap);
        STAT_SUB(w->st, input_bytes, in_before);
        w->buffered += c->in.cap;
        w->buffered -= in_before;
    }
}

/* After framing: the ring accounts for itself as it changes (out_reserve,
 * stage_send), so only the input buffer is compared here. */
static inline void account_in(struct worker *w, uint32_t in_before,
                              const struct conn *c)
{
    if (c->in.cap != in_before)
        account(w, c->out.cap, in_before, c);
}

/* The same for the HTTP handler's buffers (a long request-target or body). */
static void account_http(struct worker *w, size_t before, size_t after)
{
    if (after == before)
        return;
    STAT_ADD(w->st, input_bytes, after);
    STAT_SUB(w->st, input_bytes, before);
    w->buffered += after;
    w->buffered -= before;
}

static void count_close(struct worker *w, enum close_reason r)
{
    switch (r) {
#define COUNT_CASE(X, name, label) \
    case CLOSE_##name: STAT_INC(w->st, closed_##label); break;
    STATS_CLOSE_REASONS(COUNT_CASE, _)
#undef COUNT_CASE
    }
}

void conn_close(struct worker *w, struct conn *c, enum close_reason reason)
{
    uint32_t rb = c->out.cap, ib = c->in.cap;

    if (c->flags & CF_OPERATOR)
        operator_closed(w, c);
    tq_remove(&timers_of(w, c)->idle);
    timer_stop(w, c);
    ring_release(&c->out);
    line_release(&c->in);
    if (c->flags & CF_OWED)
        w->owed[c->fd].reqs = 0;  /* those replies were never taken */
    account(w, rb, ib, c);
    if (c->http) {
        account_http(w, http_held(c->http), 0);
        http_free(c->http);
        c->http = NULL;
    }
    /* The stage only ever holds the bytes of the connection being served:
     * if that one closes (a failed send), they go with it. */
    w->stage_len = 0;
    /* close() removes the fd from the poller. */
    close(c->fd);
    if (c->flags & CF_REFUSED) {
        w->refused_lingering--;
    } else {
        w->active--;
        STAT_DEC(w->st, conns_active);
        STAT_LISTENER_SUB(w->st, c->lidx, active, 1);
        count_close(w, reason);
    }
    c->flags = 0;
    c->mask = 0;
    c->gen++;
}

/* Requests that reached the kernel count as arrived input even before the
 * loop reads them: a worker takes a bounded batch of events per wakeup, so
 * at a graceful stop the connections it has not reached yet look idle by
 * their last-activity stamp while their requests wait.  Closing them would
 * reset the client and lose those requests. */
static int input_waiting(const struct conn *c)
{
    int n = 0;

    if (c->flags & (CF_EOF | CF_CLOSING | CF_LINGER))
        return 0;
    return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

int conn_quiet(const struct conn *c)
{
    return ring_empty(&c->out) && !(c->flags & CF_PAUSED) && !input_waiting(c);
}

/* --- opening -------------------------------------------------------------- */

/* Activity on c: the idle queue orders connections by their last.  With
 * --idle-timeout 0 and no drain under way it times nothing, and is not
 * kept: relinking a member writes to two other connections' slots, cache
 * misses on every request at tens of thousands of connections.  A drain
 * queues every open connection when it starts (conn_drain_queue). */
static void idle_touch(struct worker *w, struct conn *c)
{
    if (w->idle_q.timeout_ms > 0)
        tq_touch(&w->idle_q, &timers_of(w, c)->idle, w->clock.mono_ms);
}

void conn_drain_queue(struct worker *w)
{
    for (int fd = 0; fd < w->nconns; fd++) {
        struct conn *c = &w->conns[fd];
        if ((c->flags & CF_OPEN) && !(c->flags & CF_REFUSED) &&
            !tq_queued(&w->timers[fd].idle))
            idle_touch(w, c);
    }
}

static struct conn *slot_init(struct worker *w, int fd)
{
    if (fd >= w->nconns) { /* cannot happen below RLIMIT_NOFILE */
        close(fd);
        return NULL;
    }
    struct conn *c = &w->conns[fd];
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof(*c));
    c->gen = gen & TAG_GEN_MASK; /* clear of the tag kind bits */
    c->fd = fd;
    c->flags = CF_OPEN;
    return c;
}

static void conn_begin(struct worker *w, struct conn *c);
static void conn_proxy_begin(struct worker *w, struct conn *c);
static void conn_bad_proxy(struct worker *w, struct conn *c, const char *why);

struct conn *conn_open(struct worker *w, int fd, int lidx)
{
    const struct listener *ls = &w->cfg->ls[lidx];
    enum listener_kind kind = ls->kind;
    int is_unix = ls->addr->family == AF_UNIX;
    struct conn *c = slot_init(w, fd);
    if (!c)
        return NULL;
    c->kind = (uint8_t)kind;
    c->lidx = (uint8_t)lidx;
    /* Only HTTP connections pay for parser state. */
    if (kind == LISTEN_HTTP && !(c->http = http_new())) {
        close(fd);
        c->flags = 0;
        return NULL;
    }
    if (!is_unix) {
        /* Replies are small and sent once per read: do not let Nagle
         * hold them back waiting for the client's delayed ACK. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = poller_add(w->poller, fd, POLLER_READ, conn_tag(c));
    if (rc < 0) {
        log_warn("poller_add fd %d: %s", fd, strerror(-rc));
        close(fd);
        c->flags = 0;
        http_free(c->http);
        c->http = NULL;
        return NULL;
    }
    c->mask = POLLER_READ;
    w->active++;
    STAT_INC(w->st, conns_accepted);
    STAT_INC(w->st, conns_active);
    STAT_LISTENER_ADD(w->st, lidx, accepted, 1);
    STAT_LISTENER_ADD(w->st, lidx, active, 1);
    idle_touch(w, c);
    if (ls->addr->flags & ADDR_CHUNK)
        c->flags |= CF_CHUNK;
    if (kind == LISTEN_LINE && w->op &&
        (w->o->reply == REPLY_OPERATOR || (ls->addr->flags & ADDR_OPERATOR)))
        c->flags |= CF_OPERATOR;
    /* Both may close c (a failed send): the caller does not use it. */
    uint32_t gen = c->gen;
    if (ls->addr->flags & ADDR_PROXY)
        conn_proxy_begin(w, c);
    else
        conn_begin(w, c);
    conn_settle(w, c, gen);
    return c;
}

static void enter_linger(struct worker *w, struct conn *c)
{
    (void)shutdown(c->fd, SHUT_WR);
    c->flags |= CF_LINGER;
    tq_remove(&timers_of(w, c)->idle);
    timer_start(w, c, &w->linger_q);
    set_interest(w, c, POLLER_READ);
}

void conn_refuse(struct worker *w, int fd, int lidx)
{
    const struct listener *ls = &w->cfg->ls[lidx];
    char msg[REFUSAL_MAX];
    size_t len = refusal_build(msg, REFUSE_TOO_MANY, ls->kind == LISTEN_HTTP,
                               w->clock.http_date, CLOCK_HTTP_LEN);

    STAT_INC(w->st, conns_refused);
    STAT_INC(w->st, err_max_conns);
    conn_log_refused(w, fd, lidx, "too many connections");
    /* A fresh socket's send buffer is empty: this small write succeeds. */
    ssize_t sent = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0)
        STAT_ADD(w->st, bytes_out, sent);
    /* Lingering is a courtesy; under a flood of refusals it would itself
     * exhaust descriptors, so beyond a bound the refusal is just a close. */
    if (w->refused_lingering >= 256) {
        (void)shutdown(fd, SHUT_WR);
        close(fd);
        return;
    }
    struct conn *c = slot_init(w, fd);
    if (!c)
        return;
    c->flags |= CF_REFUSED;
    if (poller_add(w->poller, fd, POLLER_READ, conn_tag(c)) < 0) {
        close(fd);
        c->flags = 0;
        return;
    }
    c->mask = POLLER_READ;
    w->refused_lingering++;
    enter_linger(w, c);
}

/* --- output ------------------------------------------------------------ */

size_t conn_stage_size(const struct opts *o)
{
    /* The largest reply: an HTTP response head and a body of a whole
     * --max-line request with its stamp; a line reply is smaller. */
    return STAGE_BATCH + o->max_line + CLOCK_PREFIX_LEN + 8 + HTTP_RESPONSE_HEAD_MAX;
}

void conn_limits(struct worker *w)
{
    const struct opts *o = w->o;
    /* Output is paused as soon as the unsent bytes exceed --max-output, so
     * the ring never needs more than that, the one reply that crossed the
     * limit and the error response or line queued after it. */
    w->ring_limit = o->max_output + o->max_line + CLOCK_PREFIX_LEN + 8 +
                    2 * HTTP_RESPONSE_HEAD_MAX;
    w->resume_below = o->max_output / 2;
    w->shed_above = o->max_buffered + o->max_buffered / 8;
}

/* Where out_reserve() put the reply being built. */
enum { DST_STAGE, DST_RING, DST_SPILL };

/* Mark c for closing after a failed send; the framer is stopped and the
 * caller closes it when control returns (conn_broken()). */
static void conn_break(struct conn *c, enum close_reason reason)
{
    c->flags |= CF_BROKEN;
    c->reason = (uint8_t)reason;
}

/* One send() of the staged bytes; what the kernel refuses goes into the
 * ring.  0, or -1 with c marked broken (the socket failed, or no memory for
 * the ring). */
static int stage_send(struct worker *w, struct conn *c)
{
    size_t len = w->stage_len;
    ssize_t r;

    w->stage_len = 0;
    do
        r = send(c->fd, w->stage, len, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    STAT_INC(w->st, writes);
    if (r < 0) {
        if (errno != EAGAIN) { /* EPIPE, ECONNRESET: replies are lost */
            conn_break(c, CLOSE_RESET);
            return -1;
        }
        r = 0;
    }
    STAT_ADD(w->st, bytes_out, r);
    if ((size_t)r == len)
        return 0;
    /* The ring is empty while the stage is in use, and the stage holds at
     * most --max-output plus one reply: this fits the ring's limit. */
    stampd_assert(ring_empty(&c->out));
    uint32_t rb = c->out.cap;
    if (ring_reserve(&c->out, len - (size_t)r, w->ring_limit) != 0) {
        STAT_INC(w->st, err_nomem);
        conn_break(c, CLOSE_LIMIT);
        return -1;
    }
    ring_append(&c->out, w->stage + r, len - (size_t)r);
    account(w, rb, c->in.cap, c);
    return 0;
}

/* Room for an n-byte reply (n <= the largest reply): at the end of the
 * stage while c's ring is empty, else at the ring's tail, or in the (then
 * unused) stage when the ring's free space wraps.  NULL when c broke or the
 * ring cannot grow. */
static char *out_reserve(struct worker *w, struct conn *c, size_t n)
{
    if (c->flags & CF_BROKEN)
        return NULL;
    if (ring_empty(&c->out)) {
        if (w->stage_len + n > w->stage_cap && stage_send(w, c) != 0)
            return NULL;
        if (ring_empty(&c->out)) {
            w->stage_dst = DST_STAGE;
            return w->stage + w->stage_len;
        }
    }
    uint32_t rb = c->out.cap;
    if (ring_reserve(&c->out, n, w->ring_limit) != 0)
        return NULL;
    account(w, rb, c->in.cap, c);
    char *dst = ring_tail_contig(&c->out, n);
    w->stage_dst = dst ? DST_RING : DST_SPILL;
    if (dst)
        return dst;
    /* Bytes are staged only while the ring is empty. */
    stampd_assert(w->stage_len == 0);
    return w->stage;
}

/* Commit the n bytes written at out_reserve()'s pointer.  Returns LINE_PAUSE
 * once the bytes the kernel has not taken exceed --max-output (or c broke),
 * else LINE_OK. */
static int out_commit(struct worker *w, struct conn *c, size_t n)
{
    switch (w->stage_dst) {
    case DST_STAGE:
        w->stage_len += n;
        /* Staged bytes are not refused yet: send before they could make a
         * ring grow past --max-output. */
        if (w->stage_len > w->o->max_output && stage_send(w, c) != 0)
            return LINE_PAUSE;
        break;
    case DST_RING:
        ring_produce(&c->out, n);
        break;
    default:
        ring_append(&c->out, w->stage, n);
        break;
    }
    return ring_used(&c->out) > w->o->max_output ? LINE_PAUSE : LINE_OK;
}

/* Queue raw bytes (an error line) behind the replies owed. */
static void out_put(struct worker *w, struct conn *c, const char *msg,
                    size_t len)
{
    if (len)
        (void)conn_put(w, c, msg, len);
}

/* The end of a batch: send what is staged, then either wait for
 * writability (the ring holds bytes) or finish what an error or EOF
 * started.  c may be closed on return. */
/* The reply latency (request read -> reply accepted by the kernel) of the
 * requests answered since the last push: those whose replies the kernel
 * took whole are timed with the batch (conn_batch_done); those that wait
 * in the ring are timed when it drains, at the wake-up that drained it.
 * No clock is read here. */
static void reply_timing(struct worker *w, struct conn *c)
{
    uint64_t reqs = w->batch_reqs - w->pushed_reqs;
    struct conn_owed *ow;

    w->pushed_reqs = w->batch_reqs;
    if (ring_empty(&c->out)) {
        w->sent_reqs += reqs;
        if (c->flags & CF_OWED) {  /* a flag: owed[] is another cache miss */
            c->flags &= (uint16_t)~CF_OWED;
            ow = &w->owed[c->fd];
            stats_reply_latency_record(w->st, (uint64_t)(w->wake_ns - ow->since_ns),
                                       ow->reqs);
            ow->reqs = 0;
        }
        return;
    }
    if (reqs == 0)
        return;
    if (!w->owed && !(w->owed = calloc((size_t)w->nconns, sizeof(*w->owed))))
        return;  /* not timed: a statistic is not worth failing a reply */
    ow = &w->owed[c->fd];
    if (!(c->flags & CF_OWED)) {
        c->flags |= CF_OWED;
        ow->since_ns = w->wake_ns;
        ow->reqs = 0;
    }
    ow->reqs += reqs;
}

static void conn_push(struct worker *w, struct conn *c)
{
    if (w->stage_len)
        (void)stage_send(w, c);
    reply_timing(w, c);
    if (c->flags & CF_BROKEN) {
        conn_close(w, c, (enum close_reason)c->reason);
        return;
    }
    if (!ring_empty(&c->out)) {
        set_interest(w, c, c->mask | POLLER_WRITE);
        return;
    }
    set_interest(w, c, c->mask & ~POLLER_WRITE);
    if (c->flags & CF_CLOSING) {
        if (c->flags & CF_EOF)
            conn_close(w, c, (enum close_reason)c->reason);
        else
            enter_linger(w, c);
    } else if ((c->flags & CF_EOF) && !operator_held(w, c)) {
        conn_close(w, c, CLOSE_EOF);  /* held lines wait for their answers */
    }
}

/* A send failed while the framer ran: close now.  True if it did. */
static int conn_broken(struct worker *w, struct conn *c)
{
    if (!(c->flags & CF_BROKEN))
        return 0;
    conn_close(w, c, (enum close_reason)c->reason);
    return 1;
}

/* --- the error path ---------------------------------------------------- */

/* Queue `msg` after the replies already owed, stop framing input, and close
 * once it is sent (conn_push -> enter_linger). */
static void conn_fail(struct worker *w, struct conn *c, const char *msg,
                      size_t len, enum close_reason reason)
{
    uint32_t ib = c->in.cap;

    c->flags |= CF_CLOSING;
    c->flags &= (uint16_t)~CF_PAUSED;
    c->reason = (uint8_t)reason;
    timer_stop(w, c);
    line_release(&c->in);
    account_in(w, ib, c);
    if (c->flags & CF_OPERATOR)
        operator_release(w, c);  /* the lines it holds are owed first */
    /* The ring limit leaves room for one error line past --max-output. */
    out_put(w, c, msg, len);
    /* Keep reading (and discarding) so that a client still sending cannot
     * deadlock against replies it is not reading yet. */
    set_interest(w, c, c->mask | POLLER_READ);
    conn_push(w, c);
}

/* --- the start of a connection ------------------------------------------ */

/* Whatever comes before the first request: the --greeting line (line and
 * chunk listeners; HTTP has no place for it).  Staged only: the caller
 * sends it (conn_push) with whatever follows. */
static void conn_greet(struct worker *w, struct conn *c)
{
    const char *g = w->o->greeting;
    size_t len = strlen(g);
    char *dst;

    if (c->flags & CF_OPERATOR)
        operator_opened(w, c);
    if (!len || c->kind == LISTEN_HTTP || !(dst = out_reserve(w, c, len + 1)))
        return;
    memcpy(dst, g, len);
    dst[len] = '\n';
    (void)out_commit(w, c, len + 1);
}

/* A new connection that is ready for requests. */
static void conn_begin(struct worker *w, struct conn *c)
{
    conn_greet(w, c);
    if (w->stage_len || (c->flags & CF_BROKEN))
        conn_push(w, c);
}

/* A ,proxy connection: refused at once unless its peer is a trusted
 * balancer; else the header is awaited for at most --line-timeout. */
static void conn_proxy_begin(struct worker *w, struct conn *c)
{
    int trusted = conn_proxy_trusted(w, c->fd);

    c->flags |= CF_PROXY;
    if (trusted < 0) {
        conn_close(w, c, CLOSE_RESET);
        return;
    }
    if (!trusted) {
        conn_bad_proxy(w, c, "untrusted source");
        return;
    }
    timer_start(w, c, &w->line_q);
}

static void conn_bad_proxy(struct worker *w, struct conn *c, const char *why)
{
    char msg[REFUSAL_MAX], what[96];
    size_t len = refusal_build(msg, REFUSE_BAD_PROXY, c->kind == LISTEN_HTTP,
                               w->clock.http_date, CLOCK_HTTP_LEN);

    STAT_INC(w->st, err_bad_proxy);
    snprintf(what, sizeof(what), "bad proxy header (%s)", why);
    conn_log_enforce(w, c, what);
    c->flags &= (uint16_t)~CF_PROXY;
    conn_fail(w, c, msg, len, CLOSE_PROTOCOL);
}

/* Bytes for a connection still waiting for its PROXY header.  Returns 1
 * when (*data, *n) now hold the application data after the header (maybe
 * none; *owned, if set, is freed by the caller) with the greeting staged,
 * 0 when there is nothing more to do (header incomplete, or refused). */
static int conn_proxy_input(struct worker *w, struct conn *c,
                            const char **data, size_t *n, char **owned)
{
    uint32_t ib = c->in.cap;
    const char *why = NULL;
    enum proxy_verdict v = conn_proxy_feed(w, c, *data, *n, data, n, owned,
                                           &why);
    account_in(w, ib, c);
    if (v == CPROXY_MORE)
        return 0;
    if (v == CPROXY_BAD) {
        conn_bad_proxy(w, c, why);
        return 0;
    }
    timer_stop(w, c);
    conn_greet(w, c);
    return 1;
}

/* --- framing and replies ----------------------------------------------- */

struct sink_ctx {
    struct worker *w;
    struct conn *c;
};

/* The framer's sink: build one reply where out_reserve() says.  Pauses the
 * framer once the bytes the kernel has not taken exceed --max-output. */
static int reply_sink(void *ctx, const char *payload, size_t len, int crlf)
{
    struct sink_ctx *s = ctx;
    struct worker *w = s->w;
    struct conn *c = s->c;
    const struct opts *o = w->o;
    /* crlf < 0: a chunk, answered with no terminator */
    const char *term = crlf > 0 ? "\r\n" : "\n";
    size_t tlen = crlf > 0 ? 2 : crlf == 0 ? 1 : 0;
    const char *prefix = clock_prefix(&w->clock, o->time_format);

    if (o->log_requests)
        conn_log_request(w, c, payload, len);
    if (c->flags & CF_OPERATOR)
        return operator_line(w, c, payload, len, (int)tlen);

    /* The fast path, for a stamp reply that fits the stage while nothing
     * is held in the ring (Redis's _addReplyToBuffer): build it in place,
     * with copies of constant size the compiler inlines.  Everything else
     * takes out_reserve()/out_commit(). */
    size_t stamped = CLOCK_PREFIX_LEN + len + tlen;
    if (o->reply == REPLY_STAMP && ring_empty(&c->out) &&
        !(c->flags & CF_BROKEN) &&
        w->stage_len + stamped <= w->stage_cap &&
        w->stage_len + stamped <= o->max_output) {
        char *dst = w->stage + w->stage_len;
        memcpy(dst, prefix, CLOCK_PREFIX_LEN);
        memcpy(dst + CLOCK_PREFIX_LEN, payload, len);
        if (tlen)
            dst[CLOCK_PREFIX_LEN + len] = term[0];
        if (tlen == 2)
            dst[CLOCK_PREFIX_LEN + len + 1] = '\n';
        w->stage_len += stamped;
        return LINE_OK;
    }

    size_t n = reply_size(o->reply, CLOCK_PREFIX_LEN, len, tlen);
    if (n == 0) /* --reply none */
        return LINE_OK;
    char *dst = out_reserve(w, c, n);
    if (!dst)
        return c->flags & CF_BROKEN ? LINE_PAUSE : LINE_FAIL;
    reply_build(dst, o->reply, prefix, CLOCK_PREFIX_LEN, payload, len, term,
                tlen);
    return out_commit(w, c, n);
}

void conn_batch_done(struct worker *w)
{
    int64_t now = clock_mono_ns();
    stats_latency_record(w->st, (uint64_t)(now - w->wake_ns), w->batch_reqs);
    stats_reply_latency_record(w->st, (uint64_t)(now - w->wake_ns), w->sent_reqs);
    w->batch_reqs = w->pushed_reqs = w->sent_reqs = 0;
}

/* Back-pressure: keep the unframed rest of a read and stop reading until
 * the ring drains (conn_flush -> conn_resume).  0, or -1 after failing c. */
static int conn_hold(struct worker *w, struct conn *c, const char *rest,
                     size_t n, uint32_t ib)
{
    timer_stop(w, c);
    if (line_stash(&c->in, rest, n) != 0) {
        account_in(w, ib, c);
        STAT_INC(w->st, err_nomem);
        conn_fail(w, c, ERR_NOMEM, sizeof(ERR_NOMEM) - 1, CLOSE_LIMIT);
        return -1;
    }
    c->flags |= CF_PAUSED;
    STAT_INC(w->st, backpressure_pauses);
    set_interest(w, c, c->mask & ~POLLER_READ);
    return 0;
}

/* The HTTP handler's sink: a response is built like a line reply. */
static char *http_reserve(void *ctx, size_t n)
{
    struct sink_ctx *s = ctx;
    return out_reserve(s->w, s->c, n);
}

static int http_commit(void *ctx, size_t n)
{
    struct sink_ctx *s = ctx;
    return out_commit(s->w, s->c, n) == LINE_PAUSE;
}

/* HTTP counterpart of the framing below: every response of one read is
 * staged and leaves in one send; errors and Connection: close take the
 * same conn_fail path as the line protocol (owed responses first, then
 * half-close and linger). */
static void http_input(struct worker *w, struct conn *c, const char *data,
                       size_t n)
{
    const struct opts *o = w->o;
    struct sink_ctx x = { w, c };
    const struct http_sink sink = { http_reserve, http_commit, &x };
    const struct http_env env = {
        o->reply, clock_prefix(&w->clock, o->time_format), CLOCK_PREFIX_LEN,
        w->clock.http_date, CLOCK_HTTP_LEN, o->max_line,
    };
    uint32_t ib = c->in.cap;
    size_t consumed = 0, reqs = 0;

    int had_partial = http_partial(c->http);
    size_t held = http_held(c->http);
    int rc = http_feed(c->http, &env, data, n, &sink, &consumed, &reqs);
    /* A large request-target or body lives in the handler's buffer. */
    account_http(w, held, http_held(c->http));
    for (size_t i = 0; o->log_requests && i < reqs; i++)
        conn_log_request(w, c, NULL, 0);
    if (reqs) {
        STAT_ADD(w->st, requests_http, reqs);
        STAT_LISTENER_ADD(w->st, c->lidx, requests, reqs);
        w->batch_reqs += reqs;
    }
    if (conn_broken(w, c))
        return;
    switch (rc) {
    case HTTP_OK:
        /* --line-timeout bounds an unfinished request as it bounds an
         * unfinished line: from its first byte. */
        if (!http_partial(c->http))
            timer_stop(w, c);
        else if (reqs || !had_partial)
            timer_start(w, c, &w->line_q);
        break;
    case HTTP_PAUSE:
        if (conn_hold(w, c, data + consumed, n - consumed, ib) != 0)
            return;
        break;
    case HTTP_CLOSE:
        conn_fail(w, c, "", 0, CLOSE_EOF);
        return;
    case HTTP_ERR_LIMIT:
    case HTTP_ERR_PROTOCOL:
        conn_log_enforce(w, c, rc == HTTP_ERR_LIMIT ?
                         "HTTP request over a limit (413/431)" :
                         "malformed HTTP request (400/501/505)");
        conn_fail(w, c, "", 0,
                  rc == HTTP_ERR_LIMIT ? CLOSE_LIMIT : CLOSE_PROTOCOL);
        return;
    default: /* HTTP_NOMEM: no room even for an error response */
        STAT_INC(w->st, err_nomem);
        conn_fail(w, c, "", 0, CLOSE_LIMIT);
        return;
    }
    account_in(w, ib, c);
    conn_push(w, c); /* also a lone 100 Continue */
}

static void frame_input(struct worker *w, struct conn *c, const char *data,
                        size_t n);

/* Bytes just read, or held while paused: a PROXY header first where one is
 * due, then framing. */
static void conn_input(struct worker *w, struct conn *c, const char *data,
                       size_t n)
{
    char *owned = NULL;

    if ((c->flags & CF_PROXY) && !conn_proxy_input(w, c, &data, &n, &owned))
        return;
    if (n > 0)
        frame_input(w, c, data, n);
    else
        conn_push(w, c); /* the greeting after a header */
    if (owned) /* rare: skip the allocator call per read */
        free(owned);
}

/* ,chunk: the whole read is one request, answered with no terminator.  A
 * read longer than --max-line is refused as a line too long would be. */
static int chunk_feed(const char *data, size_t n, size_t max_line,
                      struct sink_ctx *s, size_t *consumed, size_t *lines)
{
    *consumed = 0;
    *lines = 0;
    if (n > max_line)
        return LINE_TOO_LONG;
    int rc = reply_sink(s, data, n, -1);
    if (rc == LINE_FAIL)
        return LINE_FAIL;
    *consumed = n;
    *lines = 1;
    return rc;
}

/* The common case in one loop (line_stamp_run): stamp replies for the
 * complete lines at the start of a read, while nothing is held (no partial
 * line, nothing in the ring) and no line needs more than a copy (no
 * operator, no request log).  The checks reply_sink() makes per line are
 * made once per read; the rest of the read, if any, goes to the framer. */
static void stamp_run(struct worker *w, struct conn *c, const char **data,
                      size_t *n, size_t *lines)
{
    const struct opts *o = w->o;
    size_t limit = w->stage_cap < o->max_output ? w->stage_cap : o->max_output;

    if (o->reply != REPLY_STAMP || o->log_requests || c->in.len > 0 ||
        (c->flags & (CF_OPERATOR | CF_CHUNK | CF_BROKEN)) ||
        !ring_empty(&c->out) || w->stage_len >= limit)
        return;
    size_t used;
    w->stage_len += line_stamp_run(*data, *n, o->max_line,
                                   clock_prefix(&w->clock, o->time_format),
                                   CLOCK_PREFIX_LEN, w->stage + w->stage_len,
                                   limit - w->stage_len, &used, lines);
    *data += used;
    *n -= used;
}

/* Frame `data`, answer every complete line (or the chunk) and send the
 * replies. */
static void frame_input(struct worker *w, struct conn *c, const char *data,
                        size_t n)
{
    if (c->http) {
        http_input(w, c, data, n);
        return;
    }
    struct sink_ctx s = { w, c };
    uint32_t ib = c->in.cap;
    int had_partial = c->in.len > 0;
    size_t consumed = 0, lines = 0, fast = 0;

    stamp_run(w, c, &data, &n, &fast);
    int rc = LINE_OK;
    if (c->flags & CF_CHUNK)
        rc = chunk_feed(data, n, w->o->max_line, &s, &consumed, &lines);
    else if (n > 0) /* the one-loop path usually answers the whole read */
        rc = line_feed(&c->in, data, n, w->o->max_line, reply_sink, &s,
                       &consumed, &lines);
    lines += fast;
    if (lines) {
        STAT_ADD(w->st, requests_line, lines);
        STAT_LISTENER_ADD(w->st, c->lidx, requests, lines);
        w->batch_reqs += lines;
    }
    account_in(w, ib, c);
    ib = c->in.cap;
    if (conn_broken(w, c))
        return;
    switch (rc) {
    case LINE_OK:
        /* The line timeout runs from the first byte of a partial line: a
         * fragment left after complete lines is a new line, even when the
         * same read finished the one held before. */
        if (c->in.len > 0 && (!had_partial || lines > 0))
            timer_start(w, c, &w->line_q);
        else if (c->in.len == 0 && had_partial)
            timer_stop(w, c);  /* queued only with a partial line held */
        break;
    case LINE_PAUSE:
        if (conn_hold(w, c, data + consumed, n - consumed, ib) != 0)
            return;
        break;
    case LINE_TOO_LONG:
        account_in(w, ib, c);
        STAT_INC(w->st, err_line_too_long);
        conn_log_enforce(w, c, "line too long");
        conn_fail(w, c, ERR_TOO_LONG, sizeof(ERR_TOO_LONG) - 1, CLOSE_LIMIT);
        return;
    default: /* LINE_NOMEM, LINE_FAIL: out of memory */
        account_in(w, ib, c);
        STAT_INC(w->st, err_nomem);
        conn_fail(w, c, ERR_NOMEM, sizeof(ERR_NOMEM) - 1, CLOSE_LIMIT);
        return;
    }
    account_in(w, ib, c);
    conn_push(w, c);
}

/* The client half-closed: a final fragment is a request ending in LF. */
static void conn_eof(struct worker *w, struct conn *c)
{
    struct sink_ctx s = { w, c };
    uint32_t ib = c->in.cap;
    int had = c->in.len > 0;

    if (c->flags & CF_PROXY) { /* the header was cut short */
        c->flags |= CF_EOF;
        set_interest(w, c, c->mask & ~POLLER_READ);
        conn_bad_proxy(w, c, "truncated");
        return;
    }
    c->flags |= CF_EOF;
    timer_stop(w, c);
    set_interest(w, c, c->mask & ~POLLER_READ);
    if (c->http) { /* an unfinished HTTP request is not answered */
        conn_push(w, c);
        return;
    }
    int rc = line_finish(&c->in, reply_sink, &s);
    account_in(w, ib, c);
    if (conn_broken(w, c))
        return;
    if (had && rc != LINE_FAIL) {
        STAT_INC(w->st, requests_line);
        STAT_LISTENER_ADD(w->st, c->lidx, requests, 1);
    }
    if (rc == LINE_FAIL) {
        STAT_INC(w->st, err_nomem);
        conn_fail(w, c, ERR_NOMEM, sizeof(ERR_NOMEM) - 1, CLOSE_LIMIT);
        return;
    }
    conn_push(w, c);
}

/* Paused and the ring has drained below half: frame what was held. */
static void conn_resume(struct worker *w, struct conn *c)
{
    char *held;
    size_t n;
    uint32_t ib = c->in.cap;

    c->flags &= (uint16_t)~CF_PAUSED;
    line_take(&c->in, &held, &n);
    STAT_SUB(w->st, input_bytes, ib);
    w->buffered -= ib;
    set_interest(w, c, c->mask | POLLER_READ);
    if (n)
        conn_input(w, c, held, n);
    else
        conn_push(w, c);
    free(held);
}

int conn_put(struct worker *w, struct conn *c, const char *bytes, size_t len)
{
    char *dst = out_reserve(w, c, len);
    if (!dst)
        return c->flags & CF_BROKEN ? LINE_PAUSE : LINE_FAIL;
    memcpy(dst, bytes, len);
    return out_commit(w, c, len);
}

void conn_kick(struct worker *w, struct conn *c)
{
    if ((c->flags & CF_PAUSED) && ring_used(&c->out) < w->resume_below &&
        operator_may_resume(w, c))
        conn_resume(w, c);
    else
        conn_push(w, c);
}

/* --- I/O ----------------------------------------------------------------- */

static void conn_discard(struct worker *w, struct conn *c)
{
    for (int i = 0; i < LINGER_READS; i++) {
        ssize_t r = recv(c->fd, w->rbuf, w->rbuf_size, 0);
        if (r > 0) {
            STAT_ADD(w->st, bytes_in, r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        /* EOF or error: the client is done sending. */
        if (c->flags & CF_LINGER) {
            conn_close(w, c, (enum close_reason)c->reason);
        } else {
            c->flags |= CF_EOF;
            set_interest(w, c, c->mask & ~POLLER_READ);
        }
        return;
    }
}

static void conn_read(struct worker *w, struct conn *c)
{
    if (c->flags & (CF_CLOSING | CF_LINGER)) {
        conn_discard(w, c);
        return;
    }
    if (c->flags & (CF_PAUSED | CF_EOF))
        return; /* a hang-up reported without read interest */
    if (w->buffered > w->o->max_buffered && !ring_empty(&c->out)) {
        /* Over the worker's budget, a connection that already holds output
         * would only add to it: leave its requests in the kernel until its
         * ring drains (conn_flush -> conn_resume). */
        c->flags |= CF_PAUSED;
        STAT_INC(w->st, budget_pauses);
        set_interest(w, c, c->mask & ~POLLER_READ);
        return;
    }

    ssize_t r;
    do
        r = recv(c->fd, w->rbuf, w->rbuf_size, 0);
    while (r < 0 && errno == EINTR);

    if (r > 0) {
        fault_after_read(w->rbuf, (size_t)r);
        clock_refresh(&w->clock, w->o->time_format);
        STAT_ADD(w->st, bytes_in, r);
        idle_touch(w, c);
        conn_input(w, c, w->rbuf, (size_t)r);
    } else if (r == 0) {
        idle_touch(w, c);
        conn_eof(w, c);
    } else if (errno != EAGAIN) {
        conn_close(w, c, CLOSE_RESET);
    }
}

/* Writable: send what the ring holds in one call (two iovecs when it
 * wraps), resume a paused connection below half the limit, and finish an
 * error or EOF once everything is out. */
static void conn_flush(struct worker *w, struct conn *c)
{
    struct iovec iov[2];
    int cnt = ring_iov(&c->out, iov);
    ssize_t r;

    do {
        if (cnt == 1) {
            r = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
            r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        }
    } while (r < 0 && errno == EINTR);
    STAT_INC(w->st, writes);
    if (r < 0) {
        if (errno != EAGAIN) { /* EPIPE, ECONNRESET: replies are lost */
            conn_close(w, c, CLOSE_RESET);
            return;
        }
    } else {
        uint32_t rb = c->out.cap;
        ring_consume(&c->out, (size_t)r);
        account(w, rb, c->in.cap, c);
        STAT_ADD(w->st, bytes_out, r);
        idle_touch(w, c);
    }
    conn_kick(w, c);
}

/* --- the memory budget --------------------------------------------------- */

/* Bytes c holds that count against --max-buffered. */
static size_t held_bytes(const struct conn *c)
{
    return (size_t)c->out.cap + c->in.cap + (c->http ? http_held(c->http) : 0);
}

static unsigned size_class(size_t n)
{
    return 63u - (unsigned)__builtin_clzll((unsigned long long)n);
}

/* Drop what c holds and close it, telling a line-protocol client
 * "ERR out of memory" if its socket takes the line at once (a client that
 * stopped reading has a full socket and just sees the close).  The replies
 * it owed are lost: its client was not reading them. */
static void conn_shed(struct worker *w, struct conn *c)
{
    uint32_t rb = c->out.cap, ib = c->in.cap;

    STAT_INC(w->st, err_max_buffered);
    conn_log_enforce(w, c, "over --max-buffered");
    timer_stop(w, c);
    ring_release(&c->out);
    line_release(&c->in);
    account(w, rb, ib, c);
    if (c->http || (c->flags & CF_LINGER) ||
        send(c->fd, ERR_NOMEM, sizeof(ERR_NOMEM) - 1,
             MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(ERR_NOMEM) - 1) {
        conn_close(w, c, CLOSE_MEMORY);
        return;
    }
    STAT_ADD(w->st, bytes_out, sizeof(ERR_NOMEM) - 1);
    c->flags = (uint16_t)((c->flags & ~CF_PAUSED) | CF_CLOSING);
    c->reason = CLOSE_MEMORY;
    enter_linger(w, c);
    conn_settle(w, c, c->gen);
}

/* Over --max-buffered by more than an eighth: shed the largest holders
 * until the worker is back under the budget.  Two passes over the table
 * (a histogram of holders by power-of-two size, then the closing), which
 * the eighth of slack amortises: each run frees at least that much. */
static void conn_shed_largest(struct worker *w)
{
    size_t budget = w->o->max_buffered;
    size_t excess = w->buffered - budget;
    size_t by_class[64] = { 0 };

    for (int fd = 0; fd < w->nconns; fd++) {
        const struct conn *c = &w->conns[fd];
        size_t h = (c->flags & CF_OPEN) ? held_bytes(c) : 0;
        if (h)
            by_class[size_class(h)] += h;
    }
    /* Every holder above class k goes; those of class k as needed. */
    unsigned k = 63;
    size_t above = 0;
    while (k > 0 && above + by_class[k] < excess)
        above += by_class[k--];
    for (int pass = 0; pass < 2 && w->buffered > budget; pass++) {
        for (int fd = 0; fd < w->nconns && w->buffered > budget; fd++) {
            struct conn *c = &w->conns[fd];
            size_t h = (c->flags & CF_OPEN) ? held_bytes(c) : 0;
            if (h && (pass ? size_class(h) == k : size_class(h) > k))
                conn_shed(w, c);
        }
    }
    log_ratelimited(LOG_WARN, &w->shed_log, 10000,
                    "over --max-buffered (%zu bytes): closed the largest "
                    "holders, %zu bytes held now", budget, w->buffered);
}

void conn_event(struct worker *w, struct conn *c, unsigned mask)
{
    uint32_t gen = c->gen;

    if (mask & POLLER_READ)
        conn_read(w, c);
    /* The read may have closed (and even reused) the slot. */
    if ((c->flags & CF_OPEN) && c->gen == gen && (mask & POLLER_WRITE) &&
        !ring_empty(&c->out))
        conn_flush(w, c);
    conn_settle(w, c, gen);
    if (w->buffered > w->shed_above)
        conn_shed_largest(w);
}

/* --- timers ---------------------------------------------------------------- */

void conn_idle_expired(struct worker *w, struct conn *c)
{
    if (w->draining) {
        /* While draining, the idle queue times 100 ms of quiet; a
         * connection that still owes output, or whose requests wait in
         * the kernel, is not quiet. */
        if (conn_quiet(c))
            conn_close(w, c, CLOSE_SHUTDOWN);
        else
            idle_touch(w, c);
        return;
    }
    STAT_INC(w->st, err_idle_timeout);
    conn_log_enforce(w, c, "idle timeout");
    conn_close(w, c, CLOSE_TIMEOUT);
}

static void line_expired(struct worker *w, struct conn *c)
{
    if (c->flags & CF_PROXY) {
        conn_bad_proxy(w, c, "timeout");
        return;
    }
    STAT_INC(w->st, err_line_timeout);
    conn_log_enforce(w, c, "line timeout");
    if (c->http) { /* no ERR line inside HTTP: owed responses, then close */
        conn_fail(w, c, "", 0, CLOSE_TIMEOUT);
        return;
    }
    conn_fail(w, c, ERR_LINE_TIMEOUT, sizeof(ERR_LINE_TIMEOUT) - 1,
              CLOSE_TIMEOUT);
}

void conn_line_expired(struct worker *w, struct conn *c)
{
    uint32_t gen = c->gen;
    line_expired(w, c);
    conn_settle(w, c, gen);
}

void conn_linger_expired(struct worker *w, struct conn *c)
{
    conn_close(w, c, (enum close_reason)c->reason);
}
