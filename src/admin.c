/*
 * admin.c - the admin port's I/O (see admin.h); what the pages say is
 * metrics.c's business, the process figures procinfo.c's.
 *
 * A handful of connections at most (scrapers, probes, stampctl), so they
 * live in a small fixed table and are expired by a scan of it.  The admin
 * port shares the master's loop with supervision, so nothing it does may
 * hold that loop for long, whatever the clients send:
 *
 *  - I/O and serving are split.  admin_event() only accepts, reads into a
 *    per-connection buffer and writes; admin_tick() parses and answers at
 *    most one request per connection per loop turn, within a time budget,
 *    so the master reaps and respawns between any two answers of a flood of
 *    pipelined requests.
 *  - A connection with output pending is neither read nor parsed (no read
 *    interest), so a client that pipelines and never reads costs one
 *    response, not a queue of them.
 *  - Process figures from /proc (a readdir of each worker's fd table) are
 *    cached for ADMIN_PROC_CACHE_MS per process.
 *
 * Slots: ADMIN_MAX_CONNS ordinary ones.  When they are all taken, a new
 * connection evicts the oldest idle keep-alive slot, else the oldest slot
 * still waiting for a whole request; only when every slot is writing a
 * response does it land in one of ADMIN_SPARE_CONNS spare slots, which
 * read its request and answer 429 busy (never a reset, never the 503 that
 * means draining).  A slot gets ADMIN_REQUEST_TIMEOUT_MS for a whole
 * request from its first byte (or from the connect), ADMIN_IDLE_TIMEOUT_MS
 * of keep-alive idleness after a response, and the same per write that
 * makes progress for a slow reader of a response.
 */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "clocksync.h"
#include "compat.h"
#include "console.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "procinfo.h"
#include "reactor.h"
#include "sbuf.h"
#include "version.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_SPARE_CONNS 8
#define ADMIN_SLOTS (ADMIN_MAX_CONNS + ADMIN_SPARE_CONNS)
#define ADMIN_MAX_REQUEST 8192    /* bytes of one request (head + body) */
#define ADMIN_MAX_URL 1024
#define ADMIN_IDLE_TIMEOUT_MS 10000
#define ADMIN_REQUEST_TIMEOUT_MS 2000
#define ADMIN_MAX_OUTPUT (8u << 20) /* never hold more for one client */
#define ADMIN_TURN_BUDGET_NS 20000000 /* answering time per loop turn */
#define ADMIN_PROC_CACHE_MS 1000
#define ADMIN_PERIOD_MS 1000      /* health bookkeeping and the clock read */

struct aconn {
    int fd;                    /* -1: free */
    uint32_t gen;
    unsigned mask;
    int spare;                 /* a spare slot: its request is answered busy */
    http_parser parser;
    char in[ADMIN_MAX_REQUEST];/* read, not parsed yet */
    size_t in_len;
    int eof;                   /* the client half-closed */
    size_t req_bytes;          /* of the request being parsed */
    int in_msg;                /* between message begin and complete */
    char url[ADMIN_MAX_URL + 1];
    size_t url_len;
    int url_too_long;
    int close_after;           /* close once `out` is written */
    char field[16];            /* the header field being read, cut */
    size_t field_len;
    int in_auth;               /* its value is the Authorization header */
    char auth[OPTS_TOKEN_MAX + 16];
    size_t auth_len;
    int chat;                  /* hand over to the console once parsed */
    struct sbuf out;
    size_t out_off;
    int64_t deadline;
    int64_t idle_since;        /* last response written (or the connect) */
    struct admin *a;
};

struct proc_cache {
    struct proc_info pi;
    int64_t max_fds;
    int64_t read_ms;           /* 0: never read */
};

/* What the periodic bookkeeping knows about a worker slot. */
struct slot_watch {
    int64_t down_since_ms;     /* 0: serving when last looked at */
};

struct admin {
    poller_t *p;
    int lfd;
    unsigned lmask;            /* the listener's registered interest */
    struct accept_gate accept;
    const struct opts *o;
    struct stats_table *t;
    struct aconn c[ADMIN_SLOTS];
    unsigned rr;               /* where the next turn starts answering */
    http_parser_settings settings;
    struct proc_cache master;
    struct proc_cache *procs;  /* t->nworkers */
    struct proc_info *workers; /* t->nworkers, handed to metrics */
    int64_t *max_fds;          /* t->nworkers, handed to metrics */
    struct slot_watch *watch;  /* t->nworkers */
    struct worker_health *health; /* t->nworkers */
    struct clock_state clock;  /* the last reading, as the pages show it */
    struct clocksync_state clock_prev;
    int clock_read;            /* clock_prev holds a reading */
    int64_t next_period_ms;
    int64_t now;
    struct console *console;   /* NULL: no operator listener */
};

static uint64_t tag_of(const struct aconn *c, int i)
{
    return TAG_ADMIN | (uint64_t)c->gen << 16 | (uint64_t)(i + 1);
}

/* Free the slot; the caller has closed or handed over the fd. */
static void aconn_release(struct aconn *c)
{
    c->fd = -1;
    c->mask = 0;
    c->gen = (c->gen + 1) & 0xffffffu;
    sbuf_free(&c->out);
}

static void aconn_close(struct aconn *c)
{
    close(c->fd);  /* removes it from the poller */
    aconn_release(c);
}

static int out_pending(const struct aconn *c)
{
    return c->out.len > c->out_off;
}

/* Bytes in[] that may hold a request not yet looked at. */
static int has_input(const struct aconn *c)
{
    return c->in_len > 0;
}

/* --- the health and clock bookkeeping --------------------------------------- */

static void watch_slot(struct admin *a, unsigned w, int64_t now)
{
    const struct stats_slot *s = &a->t->slot[w];
    struct slot_watch *sw = &a->watch[w];
    struct worker_health *h = &a->health[w];
    int64_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
    int64_t hb = __atomic_load_n(&s->heartbeat_ms, __ATOMIC_RELAXED);

    h->recent_deaths = __atomic_load_n(&s->respawns_recent, __ATOMIC_RELAXED);
    if (pid > 0 && hb > 0) {
        sw->down_since_ms = 0;
        h->down_ms = 0;
        h->heartbeat_age_ms = now > hb ? now - hb : 0;
    } else {
        if (!sw->down_since_ms)
            sw->down_since_ms = now;
        h->down_ms = now - sw->down_since_ms;
        h->heartbeat_age_ms = -1;
    }
}

static void watch_workers(struct admin *a, int64_t now)
{
    for (unsigned w = 0; w < a->t->nworkers; w++)
        watch_slot(a, w, now);
}

/* Read the kernel's clock state (once a second) and log what changed:
 * a warning when it becomes unsynchronised or its maximum error crosses
 * --clock-max-error, a note when it is back (clocksync_evaluate()). */
static void check_clock(struct admin *a)
{
    struct clocksync_state now;
    char line[CLOCKSYNC_LINE_MAX];

    (void)clocksync_read(&now, NULL);
    enum clocksync_log lv =
        clocksync_evaluate(a->clock_read ? &a->clock_prev : NULL, &now,
                           (double)a->o->clock_max_error_us / 1e6, line,
                           sizeof(line));
    if (lv == CLOCKSYNC_LOG_WARNING)
        log_warn("%s", line);
    else if (lv == CLOCKSYNC_LOG_INFO)
        log_info("%s", line);
    a->clock_prev = now;
    a->clock_read = 1;
    a->clock = (struct clock_state){
        .known = now.valid, .synchronized = now.synchronized,
        .max_error_s = now.max_error_seconds,
        .est_error_s = now.estimated_error_seconds,
        .offset_s = now.offset_seconds,
    };
}

/* --- responses ------------------------------------------------------------ */

static void respond(struct aconn *c, int status, const char *reason,
                    const char *ctype, const struct sbuf *body, int head_only)
{
    size_t len = body ? body->len : 0;

    sbuf_printf(&c->out,
                "HTTP/1.1 %d %s\r\n"
                "%s%s"
                "Server: stampd/%s\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: %s\r\n\r\n",
                status, reason, status == 405 ? "Allow: GET, HEAD\r\n" : "",
                status == 429 ? "Retry-After: 1\r\n" : "",
                STAMPD_VERSION, ctype, len,
                c->close_after ? "close" : "keep-alive");
    if (body && len && !head_only)
        sbuf_append(&c->out, body->buf, len);
}

static void respond_text(struct aconn *c, int status, const char *reason,
                         const char *text, int head_only)
{
    struct sbuf body = { 0 };
    sbuf_puts(&body, text);
    respond(c, status, reason, "text/plain; charset=utf-8", &body, head_only);
    sbuf_free(&body);
}

static void proc_cached(struct proc_cache *pc, pid_t pid, int64_t now)
{
    if (pc->read_ms && pc->pi.pid == pid && now - pc->read_ms < ADMIN_PROC_CACHE_MS)
        return;
    procinfo_read(pid, &pc->pi);
    pc->max_fds = procinfo_max_fds(pid);
    pc->read_ms = now;
}

static void collect(struct admin *a, struct metrics_input *in, int procs)
{
    memset(in, 0, sizeof(*in));
    in->t = a->t;
    in->o = a->o;
    in->version = STAMPD_VERSION;
    in->poller = poller_backend();
    in->now_unix_ms = clock_wall_ms();
    in->draining = (int)__atomic_load_n(&a->t->draining, __ATOMIC_RELAXED);
    in->ready_state = (int)__atomic_load_n(&a->t->ready_state, __ATOMIC_RELAXED);
    in->clock = a->clock;
    watch_workers(a, a->now);
    in->health = a->health;
    if (!procs)
        return;
    proc_cached(&a->master, getpid(), a->now);
    in->master = a->master.pi;
    in->master_max_fds = a->master.max_fds;
    for (unsigned i = 0; i < a->t->nworkers; i++) {
        pid_t pid = (pid_t)STAT_GET(&a->t->slot[i], pid);
        if (pid > 0)
            proc_cached(&a->procs[i], pid, a->now);
        else
            a->procs[i].read_ms = 0;
        a->workers[i] = a->procs[i].pi;
        a->max_fds[i] = a->procs[i].max_fds;
        if (pid <= 0)
            memset(&a->workers[i], 0, sizeof(a->workers[i]));
    }
    in->workers = a->workers;
    in->workers_max_fds = a->max_fds;
}

/* The path without a query string. */
static int path_is(const struct aconn *c, const char *path)
{
    size_t n = strcspn(c->url, "?");
    return n == strlen(path) && memcmp(c->url, path, n) == 0;
}

/* /healthz and /readyz: 200 "ok", or 503 with the reason as the body. */
static void route_probe(struct admin *a, struct aconn *c, int ready, int head)
{
    struct metrics_input in;
    char why[160];

    collect(a, &in, 0);
    if (ready ? metrics_ready(&in, why, sizeof(why))
              : metrics_live(&in, why, sizeof(why))) {
        respond_text(c, 200, "OK", "ok\n", head);
        return;
    }
    size_t n = strlen(why);
    if (n + 1 < sizeof(why)) {
        why[n] = '\n';
        why[n + 1] = '\0';
    }
    respond_text(c, 503, "Service Unavailable", why, head);
}

/* GET /chat with "Upgrade: stampd-chat": the operator console (console.h).
 * The only request that changes what clients receive, so it is refused
 * (403) where the address or the token does not allow it. */
static void route_chat(struct admin *a, struct aconn *c, int head)
{
    struct sbuf why = { 0 };
    int st;

    c->close_after = 1;
    if (!a->console) {
        respond_text(c, 404, "Not Found", "no listener is in operator mode "
                     "(--reply operator or --listen ADDR,operator)\n", head);
        return;
    }
    if (!c->parser.upgrade) {
        respond_text(c, 426, "Upgrade Required",
                     "the chat channel needs \"Upgrade: stampd-chat\" "
                     "(use stampctl chat)\n", head);
        return;
    }
    c->auth[c->auth_len] = '\0';
    st = console_check(a->console, c->auth, &why);
    if (st == 0) {
        c->close_after = 0;
        c->chat = 1;
    } else {
        log_info("operator console refused (%d): %.*s", st,
                 why.len ? (int)why.len - 1 : 0, why.buf ? why.buf : "");
        respond_text(c, st, st == 409 ? "Conflict" : "Forbidden",
                     why.buf ? why.buf : "\n", head);
    }
    sbuf_free(&why);
}

static void route(struct admin *a, struct aconn *c)
{
    int method = c->parser.method;
    int head = method == HTTP_HEAD;

    if (c->spare) {
        c->close_after = 1;
        respond_text(c, 429, "Too Many Requests", "busy\n", head);
        return;
    }
    if (c->url_too_long) {
        c->close_after = 1;
        respond_text(c, 414, "URI Too Long", "uri too long\n", head);
        return;
    }
    if (method != HTTP_GET && !head) {
        respond_text(c, 405, "Method Not Allowed",
                     "method not allowed: the admin port is read-only\n", 0);
        return;
    }
    if (path_is(c, "/chat")) {
        route_chat(a, c, head);
        return;
    }
    if (path_is(c, "/healthz") || path_is(c, "/readyz")) {
        route_probe(a, c, path_is(c, "/readyz"), head);
        return;
    }
    if (path_is(c, "/metrics") || path_is(c, "/stats")) {
        struct metrics_input in;
        struct sbuf body = { 0 };
        int json = path_is(c, "/stats");

        collect(a, &in, 1);
        if (json)
            metrics_render_json(&body, &in);
        else
            metrics_render_prometheus(&body, &in);
        if (sbuf_failed(&body)) {
            c->close_after = 1;
            respond_text(c, 500, "Internal Server Error", "out of memory\n", head);
        } else {
            respond(c, 200, "OK",
                    json ? "application/json"
                         : "text/plain; version=0.0.4; charset=utf-8",
                    &body, head);
        }
        sbuf_free(&body);
        return;
    }
    respond_text(c, 404, "Not Found", "not found\n", head);
}

/* --- http_parser callbacks ---------------------------------------------- */

static int on_message_begin(http_parser *hp)
{
    struct aconn *c = hp->data;
    c->url_len = 0;
    c->url[0] = '\0';
    c->url_too_long = 0;
    c->req_bytes = 0;
    c->in_msg = 1;
    c->field_len = 0;
    c->in_auth = 0;
    c->auth_len = 0;
    return 0;
}

/* Only the Authorization header is kept (the console's token); a field
 * or value may come in pieces. */
static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct aconn *c = hp->data;
    if (c->in_auth >= 0) {  /* a new field after a value */
        c->field_len = 0;
        c->in_auth = -1;
    }
    size_t room = sizeof(c->field) - c->field_len;
    memcpy(c->field + c->field_len, at, len < room ? len : room);
    c->field_len += len < room ? len : room;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct aconn *c = hp->data;
    if (c->in_auth < 0)
        c->in_auth = c->field_len == 13 &&
                     strncasecmp(c->field, "authorization", 13) == 0;
    if (c->in_auth) {
        size_t room = sizeof(c->auth) - 1 - c->auth_len;
        memcpy(c->auth + c->auth_len, at, len < room ? len : room);
        c->auth_len += len < room ? len : room;
    }
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    struct aconn *c = hp->data;
    if (c->url_len + len > ADMIN_MAX_URL) {
        c->url_too_long = 1;
        return 0;
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return 0;
}

/* Answer the request and pause: the parser resumes on a later turn. */
static int on_message_complete(http_parser *hp)
{
    struct aconn *c = hp->data;
    c->in_msg = 0;
    if (!http_should_keep_alive(hp))
        c->close_after = 1;
    route(c->a, c);
    http_parser_pause(hp, 1);
    return 0;
}

/* --- I/O --------------------------------------------------------------------- */

/* Interest follows state: write while output is pending; read only when
 * nothing is pending, nothing buffered waits to be parsed, and the client
 * may still send.  A change the poller refuses closes the connection
 * (reactor.h): 0 while it lives, -1 once closed. */
static int update_mask(struct admin *a, struct aconn *c, int i)
{
    unsigned mask = 0;
    if (out_pending(c))
        mask = POLLER_WRITE;
    else if (!has_input(c) && !c->eof && !c->close_after &&
             c->in_len < sizeof(c->in))
        mask = POLLER_READ;
    if (reactor_interest(a->p, c->fd, &c->mask, mask, tag_of(c, i)) == 0)
        return 0;
    STAT_INC(a->t, admin_poller_errors);
    aconn_close(c);
    return -1;
}

/* Write what is owed; then close, or go back to waiting for requests.
 * 0 while the connection lives, -1 once closed. */
static int aconn_flush(struct admin *a, struct aconn *c, int i)
{
    while (out_pending(c)) {
        ssize_t w = send(c->fd, c->out.buf + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->deadline = a->now + ADMIN_IDLE_TIMEOUT_MS;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return update_mask(a, c, i);
        aconn_close(c);
        return -1;
    }
    sbuf_reset(&c->out);
    c->out_off = 0;
    c->idle_since = a->now;
    if (c->close_after || (c->eof && !has_input(c))) {
        (void)shutdown(c->fd, SHUT_WR);
        aconn_close(c);
        return -1;
    }
    if (has_input(c))  /* the next pipelined request: a whole one is due */
        c->deadline = a->now + ADMIN_REQUEST_TIMEOUT_MS;
    return update_mask(a, c, i);
}

static void fail(struct aconn *c, int status, const char *reason)
{
    c->close_after = 1;
    char text[64];
    snprintf(text, sizeof(text), "%s\n", reason);
    respond_text(c, status, reason, text, 0);
}

/* Parse what in[] holds, up to the end of one request, which is answered.
 * Bytes after it stay in in[] for a later turn. */
static void parse_one(struct aconn *c)
{
    size_t done = http_parser_execute(&c->parser, &c->a->settings, c->in, c->in_len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
        memmove(c->in, c->in + done, c->in_len - done);
        c->in_len -= done;
        if (c->close_after)
            c->in_len = 0;  /* nothing after a closing response is answered */
        else if (c->parser.upgrade && !c->chat)
            fail(c, 400, "Bad Request");
        return;
    }
    size_t had = c->in_len;
    c->in_len = 0;
    if (e != HPE_OK || done != had)
        fail(c, 400, "Bad Request");
    else if (c->parser.upgrade)
        fail(c, 400, "Bad Request");
    else if (c->in_msg && (c->req_bytes += done) > ADMIN_MAX_REQUEST)
        fail(c, 431, "Request Header Fields Too Large");
}

/* One turn's work for a connection: parse and answer one buffered request
 * unless output is still pending. */
static void aconn_serve(struct admin *a, struct aconn *c, int i)
{
    if (out_pending(c) || !has_input(c))
        return;
    parse_one(c);
    if (c->chat) {  /* the console's from now on, with what followed */
        (void)poller_del(a->p, c->fd, c->mask);
        console_take(a->console, c->fd, c->in, c->in_len);
        aconn_release(c);
        return;
    }
    if (c->out.len > ADMIN_MAX_OUTPUT) {
        aconn_close(c);
        return;
    }
    if (out_pending(c)) {
        (void)aconn_flush(a, c, i);
        return;
    }
    if (c->eof && !has_input(c)) {
        aconn_close(c);  /* half-closed with nothing (more) to answer */
        return;
    }
    (void)update_mask(a, c, i);
}

static void aconn_read(struct admin *a, struct aconn *c, int i)
{
    if (out_pending(c) || c->in_len == sizeof(c->in))
        return;
    ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r < 0) {
        aconn_close(c);
        return;
    }
    if (r == 0) {
        /* EOF: answer what arrived whole, then close. */
        c->eof = 1;
        if (!has_input(c)) {
            aconn_close(c);
            return;
        }
        (void)update_mask(a, c, i);
        return;
    }
    /* Reads do not move the deadline (responses and writes do), so a
     * client dripping a request byte by byte cannot hold a slot; the first
     * byte of a request starts its shorter deadline. */
    if (c->in_len == 0 && !c->in_msg &&
        c->deadline > a->now + ADMIN_REQUEST_TIMEOUT_MS)
        c->deadline = a->now + ADMIN_REQUEST_TIMEOUT_MS;
    if (c->close_after)
        return; /* discard: the connection is closing */
    c->in_len += (size_t)r;
    (void)update_mask(a, c, i);
}

/* --- slots ----------------------------------------------------------------- */

/* Nothing owed, nothing buffered here or unread in the kernel. */
static int is_idle(const struct aconn *c)
{
    int unread = 0;
    return c->fd >= 0 && !out_pending(c) && !has_input(c) && !c->in_msg &&
           ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0;
}

/* The ordinary slot to give a new connection: a free one, else the oldest
 * idle keep-alive one, else the oldest one still waiting for a whole
 * request (evicted); -1 when every slot owes a response. */
static int pick_slot(struct admin *a)
{
    int idle = -1, partial = -1;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
        struct aconn *c = &a->c[i];
        if (c->fd < 0)
            return i;
        if (is_idle(c)) {
            if (idle < 0 || c->idle_since < a->c[idle].idle_since)
                idle = i;
        } else if (c->in_msg && !has_input(c) && !out_pending(c) &&
                   !c->close_after) {
            /* all it sent is parsed and the request is still unfinished */
            if (partial < 0 || c->idle_since < a->c[partial].idle_since)
                partial = i;
        }
    }
    int victim = idle >= 0 ? idle : partial;
    if (victim >= 0)
        aconn_close(&a->c[victim]);
    return victim;
}

/* A spare slot (its request gets 429 busy): a free one, else the oldest. */
static int pick_spare(struct admin *a)
{
    int old = ADMIN_MAX_CONNS;
    for (int i = ADMIN_MAX_CONNS; i < ADMIN_SLOTS; i++) {
        if (a->c[i].fd < 0)
            return i;
        if (a->c[i].idle_since < a->c[old].idle_since)
            old = i;
    }
    aconn_close(&a->c[old]);
    return old;
}

/* Accept what is queued, a few per turn.  Out of descriptors, the
 * listener leaves the poller until the pause ends (admin_tick()): it
 * would stay readable and spin the master's loop. */
static void accept_some(struct admin *a)
{
    for (int n = 0; n < 16; n++) {
        int fd = reactor_accept(&a->accept, a->lfd, a->now);
        if (fd == ACCEPT_AGAIN)
            continue;
        if (fd == ACCEPT_PAUSED)
            (void)reactor_interest(a->p, a->lfd, &a->lmask, 0, TAG_ADMIN);
        if (fd < 0)
            return;
        int i = pick_slot(a);
        int spare = i < 0;
        if (spare)
            i = pick_spare(a);
        struct aconn *c = &a->c[i];
        uint32_t gen = c->gen;
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->gen = gen;
        c->spare = spare;
        c->a = a;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        c->deadline = a->now + ADMIN_REQUEST_TIMEOUT_MS;
        c->idle_since = a->now;
        if (poller_add(a->p, fd, POLLER_READ, tag_of(c, i)) != 0) {
            close(fd);
            c->fd = -1;
            continue;
        }
        c->mask = POLLER_READ;
    }
}

/* --- the interface ---------------------------------------------------------- */

/* Free a and its per-worker tables (any of them may be NULL). */
static void admin_free(struct admin *a)
{
    if (!a)
        return;
    free(a->workers);
    free(a->procs);
    free(a->watch);
    free(a->health);
    free(a->max_fds);
    free(a);
}

struct admin *admin_create(poller_t *p, int lfd, const struct opts *o,
                           struct stats_table *t, char *err, size_t errlen)
{
    unsigned nw = t->nworkers ? t->nworkers : 1;
    struct admin *a = calloc(1, sizeof(*a));
    if (!a || !(a->workers = calloc(nw, sizeof(*a->workers))) ||
        !(a->procs = calloc(nw, sizeof(*a->procs))) ||
        !(a->watch = calloc(nw, sizeof(*a->watch))) ||
        !(a->health = calloc(nw, sizeof(*a->health))) ||
        !(a->max_fds = calloc(nw, sizeof(*a->max_fds)))) {
        admin_free(a);
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->p = p;
    a->lfd = lfd;
    a->o = o;
    a->t = t;
    a->accept.who = "admin accept";
    a->accept.pauses = &t->admin_accept_pauses;
    a->accept.errors = &t->admin_accept_errors;
    for (int i = 0; i < ADMIN_SLOTS; i++)
        a->c[i].fd = -1;
    http_parser_settings_init(&a->settings);
    a->settings.on_message_begin = on_message_begin;
    a->settings.on_url = on_url;
    a->settings.on_header_field = on_header_field;
    a->settings.on_header_value = on_header_value;
    a->settings.on_message_complete = on_message_complete;
    int rc = reactor_interest(p, lfd, &a->lmask, POLLER_READ, TAG_ADMIN);
    if (rc < 0) {
        snprintf(err, errlen, "admin: poller: %s", strerror(-rc));
        admin_free(a);
        return NULL;
    }
    check_clock(a);
    return a;
}

void admin_destroy(struct admin *a)
{
    if (!a)
        return;
    for (int i = 0; i < ADMIN_SLOTS; i++)
        if (a->c[i].fd >= 0)
            aconn_close(&a->c[i]);
    (void)reactor_interest(a->p, a->lfd, &a->lmask, 0, TAG_ADMIN);
    admin_free(a);
}

void admin_set_console(struct admin *a, struct console *con)
{
    a->console = con;
}

void admin_event(struct admin *a, uint64_t tag, unsigned mask, int64_t now_ms)
{
    a->now = now_ms;
    unsigned idx = TAG_INDEX(tag);
    if (idx == 0) {
        accept_some(a);
        return;
    }
    int i = (int)idx - 1;
    if (i >= ADMIN_SLOTS)
        return;
    struct aconn *c = &a->c[i];
    if (c->fd < 0 || (uint32_t)((tag >> 16) & 0xffffff) != c->gen)
        return;  /* closed earlier in this batch */
    if ((mask & POLLER_WRITE) && out_pending(c) && aconn_flush(a, c, i) < 0)
        return;
    if ((mask & POLLER_READ) && c->fd >= 0)
        aconn_read(a, c, i);
}

void admin_tick(struct admin *a, int64_t now_ms)
{
    a->now = now_ms;
    if (reactor_accept_resume(&a->accept, now_ms) &&
        reactor_interest(a->p, a->lfd, &a->lmask, POLLER_READ, TAG_ADMIN) != 0)
        a->accept.resume_at = now_ms + ACCEPT_PAUSE_MS;  /* try again */
    if (now_ms >= a->next_period_ms) {
        a->next_period_ms = now_ms + ADMIN_PERIOD_MS;
        watch_workers(a, now_ms);
        check_clock(a);
    }
    int64_t stop = clock_mono_ns() + ADMIN_TURN_BUDGET_NS;
    unsigned start = a->rr;
    for (unsigned k = 0; k < ADMIN_SLOTS; k++) {
        unsigned i = (start + k) % ADMIN_SLOTS;
        struct aconn *c = &a->c[i];
        if (c->fd < 0)
            continue;
        if (now_ms >= c->deadline) {
            aconn_close(c);
            continue;
        }
        if (out_pending(c) || !has_input(c))
            continue;
        if (clock_mono_ns() >= stop) {
            a->rr = i;  /* out of time: this one goes first next turn */
            return;
        }
        aconn_serve(a, c, (int)i);
    }
    a->rr = (start + 1) % ADMIN_SLOTS;
}

int64_t admin_next_timeout_ms(const struct admin *a, int64_t now_ms)
{
    int64_t t = -1;

    reactor_timer_in(&t, a->next_period_ms > now_ms ? a->next_period_ms - now_ms : 0);
    reactor_timer_at(&t, a->accept.resume_at, now_ms);
    for (int i = 0; i < ADMIN_SLOTS; i++) {
        const struct aconn *c = &a->c[i];
        if (c->fd < 0)
            continue;
        if (!out_pending(c) && has_input(c))
            return 0;  /* a buffered request waits for the next turn */
        reactor_timer_at(&t, c->deadline, now_ms);
    }
    return t;
}
