/*
 * operator.c - operator mode inside a worker (see operator.h).
 *
 * The channel to the master is a non-blocking SOCK_SEQPACKET socket: a
 * message is one packet, delivered whole or not at all.  A held line whose
 * packet the kernel refuses (the master is not keeping up) is never shown
 * to anybody, so it is treated as a full queue rather than held; the other
 * messages only inform the console, and one lost under such pressure
 * costs a line of its display, never a client's answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "clientlog.h"
#include "conn_client.h"
#include "log.h"
#include "opchannel.h"
#include "operator.h"

#define EVENT_BUDGET 64   /* packets read per readable event */

static const char ERR_NO_OPERATOR[] = "ERR no operator\n";
static const char ERR_QUEUE_FULL[] = "ERR operator queue full\n";
#define ERR_FULL_LEN (sizeof(ERR_QUEUE_FULL) - 1)

/* One held line: the line itself went to the console. */
struct op_held {
    struct op_held *prev, *next; /* the worker's FIFO, oldest first */
    int fd;
    uint32_t gen;
    int64_t due_ms;              /* 0: never (--line-timeout 0) */
    uint32_t bytes;              /* counted in its op_conn's held_bytes */
    uint32_t err_after;          /* queue-full refusals owed after it */
    uint8_t tlen;                /* its terminator: 0, 1 (LF), 2 (CRLF) */
};

/* Per connection, by fd. */
struct op_conn {
    uint32_t id;
    uint32_t nheld;
    size_t held_bytes;
    struct op_held *newest;
};

struct operator {
    int fd;                      /* the channel; -1: none */
    int attached;                /* a console is attached */
    int draining;
    unsigned nheld;
    struct op_held *head, *tail;
    struct op_conn *conns;       /* w->nconns, by fd */
    int64_t timeout_ms;          /* --line-timeout; 0: never */
    char pkt[OPMSG_MAX];
    long long warn_log;
};

/* --- the channel ------------------------------------------------------------- */

/* Send one message; -1 when the kernel refused it. */
static int chan_send(struct operator *op, const struct opmsg *m)
{
    if (op->fd < 0)
        return -1;
    size_t n = opmsg_encode(op->pkt, m);
    ssize_t r;
    do
        r = send(op->fd, op->pkt, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)n ? 0 : -1;
}

static void chan_event(struct operator *op, enum opmsg_type type, uint32_t id)
{
    struct opmsg m = { .type = type, .id = id };
    if (op->attached && id)
        (void)chan_send(op, &m);
}

static void client_addr(const struct worker *w, const struct conn *c,
                        char *buf, size_t len)
{
    struct sockaddr_storage ss;
    (void)conn_client_addr(w, c, &ss);
    addr_peer_text(buf, len, (const struct sockaddr *)&ss);
}

/* --- the FIFO ------------------------------------------------------------------- */

static void fifo_unlink(struct operator *op, struct op_held *e)
{
    stampd_assert(e->prev ? e->prev->next == e : op->head == e);
    stampd_assert(e->next ? e->next->prev == e : op->tail == e);
    if (e->prev)
        e->prev->next = e->next;
    else
        op->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        op->tail = e->prev;
    op->nheld--;
}

/* Take e off every list; returns the refusals it owed. */
static uint32_t forget(struct operator *op, struct op_held *e)
{
    struct op_conn *oc = &op->conns[e->fd];
    uint32_t owed = e->err_after;

    fifo_unlink(op, e);
    oc->nheld--;
    oc->held_bytes -= e->bytes;
    if (oc->newest == e)
        oc->newest = NULL;  /* it was the last: nheld is 0 now */
    free(e);
    return owed;
}

/* Answer c's oldest held line e with `text` (an answer built by the
 * caller), then the refusals owed after it, and send them. */
static void answer(struct worker *w, struct conn *c, struct op_held *e,
                   const char *text, size_t len)
{
    uint32_t owed = forget(w->op, e);

    (void)conn_put(w, c, text, len);
    while (owed--)
        (void)conn_put(w, c, ERR_QUEUE_FULL, ERR_FULL_LEN);
    conn_kick(w, c);   /* may close c */
}

static void answer_err(struct worker *w, struct op_held *e)
{
    answer(w, &w->conns[e->fd], e, ERR_NO_OPERATOR, sizeof(ERR_NO_OPERATOR) - 1);
}

/* Every held line gets "ERR no operator" (a detach, a lost master, a
 * stop).  Answering may resume a paused connection, whose new lines are
 * answered at once now that nobody is attached. */
static void release_all(struct worker *w)
{
    struct operator *op = w->op;
    struct op_held *e;

    op->attached = 0;
    while ((e = op->head)) {
        answer_err(w, e);
        stampd_assert(op->head != e);
    }
}

/* --- messages from the master ------------------------------------------------ */

/* The operator's reply for connection m->id. */
static void on_reply(struct worker *w, const struct opmsg *m)
{
    struct operator *op = w->op;
    struct op_held *e;

    for (e = op->head; e; e = e->next)
        if (op->conns[e->fd].id == m->id)
            break;
    if (!e) {
        chan_event(op, OPM_NOLINE, m->id);
        return;
    }
    struct conn *c = &w->conns[e->fd];
    static const char *const terms[] = { "", "\n", "\r\n" };
    char buf[CLOCK_PREFIX_LEN + OPMSG_DATA_MAX + 2];
    size_t n = 0;

    memcpy(buf, clock_prefix(&w->clock, w->o->time_format), CLOCK_PREFIX_LEN);
    n = CLOCK_PREFIX_LEN;
    memcpy(buf + n, m->data, m->len);
    n += m->len;
    memcpy(buf + n, terms[e->tlen], e->tlen);
    n += e->tlen;
    answer(w, c, e, buf, n);
}

static void on_message(struct worker *w, const struct opmsg *m)
{
    struct operator *op = w->op;

    switch (m->type) {
    case OPM_ATTACH:
        op->attached = !op->draining;
        break;
    case OPM_DETACH:
        release_all(w);
        break;
    case OPM_REPLY:
        on_reply(w, m);
        break;
    default:
        break;
    }
}

void operator_event(struct worker *w)
{
    struct operator *op = w->op;
    struct opmsg m;

    for (int i = 0; i < EVENT_BUDGET && op->fd >= 0; i++) {
        ssize_t r = recv(op->fd, op->pkt, sizeof(op->pkt), MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            /* The master is gone (or the channel broke): nobody will
             * answer.  close() takes the fd out of the poller. */
            close(op->fd);
            op->fd = -1;
            release_all(w);
            return;
        }
        if (opmsg_decode(op->pkt, (size_t)r, &m) == 0)
            on_message(w, &m);
    }
}

/* --- connections --------------------------------------------------------------- */

void operator_opened(struct worker *w, struct conn *c)
{
    struct operator *op = w->op;
    const struct worker_cfg *cfg = w->cfg;
    struct op_conn *oc = &op->conns[c->fd];
    uint32_t serial = cfg->op_serial ? ++*cfg->op_serial : 1;

    memset(oc, 0, sizeof(*oc));
    oc->id = opchan_id((unsigned)cfg->id, serial, (unsigned)w->o->workers);
    if (op->attached) {
        struct opmsg m = { .type = OPM_CONNECT, .id = oc->id };
        client_addr(w, c, m.addr, sizeof(m.addr));
        (void)chan_send(op, &m);
    }
}

void operator_closed(struct worker *w, struct conn *c)
{
    struct operator *op = w->op;
    struct op_conn *oc = &op->conns[c->fd];
    struct op_held *e = op->head;

    while (e && oc->nheld) {
        struct op_held *next = e->next;
        if (e->fd == c->fd)
            (void)forget(op, e);
        e = next;
    }
    chan_event(op, OPM_CLOSED, oc->id);
    oc->id = 0;
}

unsigned operator_held(const struct worker *w, const struct conn *c)
{
    return w->op ? w->op->conns[c->fd].nheld : 0;
}

int operator_may_resume(const struct worker *w, const struct conn *c)
{
    return !w->op || w->op->conns[c->fd].held_bytes < w->resume_below;
}

void operator_release(struct worker *w, struct conn *c)
{
    struct operator *op = w->op;
    struct op_held *e, *next;

    /* In FIFO order, which is c's order. */
    for (e = op->head; e && op->conns[c->fd].nheld; e = next) {
        next = e->next;
        if (e->fd != c->fd || e->gen != c->gen)
            continue;
        uint32_t owed = forget(op, e);
        (void)conn_put(w, c, ERR_NO_OPERATOR, sizeof(ERR_NO_OPERATOR) - 1);
        while (owed--)
            (void)conn_put(w, c, ERR_QUEUE_FULL, ERR_FULL_LEN);
    }
}

/* --- holding lines ------------------------------------------------------------- */

static int over_limit(const struct worker *w, const struct op_conn *oc, int rc)
{
    return oc->held_bytes > w->o->max_output ? LINE_PAUSE : rc;
}

/* A line refused for a full queue: answered now if c holds nothing, else
 * after c's newest held line. */
static int refuse_full(struct worker *w, struct conn *c, struct op_conn *oc)
{
    struct operator *op = w->op;

    log_ratelimited(LOG_WARN, &op->warn_log, 10000,
                    "operator queue full (%u lines held, --operator-queue %u)",
                    op->nheld, w->o->operator_queue);
    chan_event(op, OPM_FULL, oc->id);
    if (!oc->nheld) {
        int rc = conn_put(w, c, ERR_QUEUE_FULL, ERR_FULL_LEN);
        return rc;
    }
    oc->newest->err_after++;
    oc->newest->bytes += ERR_FULL_LEN;
    oc->held_bytes += ERR_FULL_LEN;
    return over_limit(w, oc, LINE_OK);
}

int operator_line(struct worker *w, struct conn *c, const char *payload,
                  size_t len, int tlen)
{
    struct operator *op = w->op;
    struct op_conn *oc = &op->conns[c->fd];

    /* Nothing is held while no console is attached (a detach answers
     * every held line), so an answer now keeps the order. */
    if (!op->attached)
        return conn_put(w, c, ERR_NO_OPERATOR, sizeof(ERR_NO_OPERATOR) - 1);
    if (op->nheld >= w->o->operator_queue)
        return refuse_full(w, c, oc);
    struct op_held *e = calloc(1, sizeof(*e));
    struct opmsg m = { .type = OPM_LINE, .id = oc->id, .data = payload,
                       .len = len };
    client_addr(w, c, m.addr, sizeof(m.addr));
    if (!e || chan_send(op, &m) != 0) {
        free(e);
        return refuse_full(w, c, oc);
    }
    e->fd = c->fd;
    e->gen = c->gen;
    e->tlen = (uint8_t)tlen;
    e->bytes = (uint32_t)(len + (size_t)tlen);
    e->due_ms = op->timeout_ms ? w->clock.mono_ms + op->timeout_ms : 0;
    e->prev = op->tail;
    if (op->tail)
        op->tail->next = e;
    else
        op->head = e;
    op->tail = e;
    op->nheld++;
    oc->nheld++;
    oc->held_bytes += e->bytes;
    oc->newest = e;
    return over_limit(w, oc, LINE_OK);
}

/* --- timers and the stop -------------------------------------------------------- */

int64_t operator_next_ms(const struct worker *w, int64_t now_ms)
{
    const struct op_held *e = w->op ? w->op->head : NULL;
    if (!e || !e->due_ms)
        return -1;
    return e->due_ms > now_ms ? e->due_ms - now_ms : 0;
}

void operator_expire(struct worker *w)
{
    struct operator *op = w->op;
    struct op_held *e;

    while (op && (e = op->head) && e->due_ms && e->due_ms <= w->clock.mono_ms) {
        uint32_t id = op->conns[e->fd].id;
        answer_err(w, e);
        chan_event(op, OPM_TIMEOUT, id);
    }
}

void operator_drain(struct worker *w)
{
    if (!w->op)
        return;
    w->op->draining = 1;
    release_all(w);
}

/* --- set-up ----------------------------------------------------------------------- */

int operator_init(struct worker *w)
{
    const struct worker_cfg *cfg = w->cfg;
    struct operator *op = calloc(1, sizeof(*op));

    if (!op)
        return -ENOMEM;
    w->op = op;
    op->fd = cfg->op_fd;
    op->timeout_ms = (int64_t)w->o->line_timeout * 1000;
    /* Zeroed pages are touched only by fds of operator connections. */
    op->conns = calloc((size_t)w->nconns, sizeof(*op->conns));
    if (!op->conns)
        return -ENOMEM;
    if (op->fd >= 0) {
        int rc = poller_add(w->poller, op->fd, POLLER_READ, TAG_IPC);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void operator_free(struct worker *w)
{
    struct operator *op = w->op;

    if (!op)
        return;
    for (struct op_held *e = op->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    if (op->fd >= 0)
        close(op->fd);
    free(op->conns);
    free(op);
    w->op = NULL;
}
