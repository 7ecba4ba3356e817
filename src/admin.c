/*
 * admin.c - the admin port's I/O (see admin.h); what the pages say is
 * metrics.c's business, the process figures procinfo.c's.
 *
 * A handful of connections at most (scrapers, stampctl), so they live in a
 * small fixed table and are expired by a scan of it.  Requests are parsed
 * with http_parser; keep-alive and pipelining work, every response is
 * rendered in full into the connection's output buffer and written without
 * blocking.  The master's loop must never stall on a slow client: reads and
 * writes are non-blocking, a request head is limited to ADMIN_MAX_REQUEST
 * bytes, and a request must arrive whole within ADMIN_TIMEOUT_MS of the
 * connection or the previous response (a slow reader of a response gets
 * the same time per write that makes progress).
 */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "compat.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "procinfo.h"
#include "sbuf.h"
#include "version.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_REQUEST 8192    /* bytes of one request (head + body) */
#define ADMIN_MAX_URL 1024
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_MAX_OUTPUT (8u << 20) /* never hold more for one client */

struct aconn {
    int fd;                    /* -1: free */
    uint32_t gen;
    unsigned mask;
    http_parser parser;
    size_t req_bytes;          /* of the request being parsed */
    int in_msg;                /* between message begin and complete */
    char url[ADMIN_MAX_URL + 1];
    size_t url_len;
    int url_too_long;
    int close_after;           /* close once `out` is written */
    int failed;                /* stop parsing: an error response is queued */
    struct sbuf out;
    size_t out_off;
    int64_t deadline;
    struct admin *a;
};

struct admin {
    poller_t *p;
    int lfd;
    const struct opts *o;
    struct stats_table *t;
    struct aconn c[ADMIN_MAX_CONNS];
    http_parser_settings settings;
    struct proc_info *workers;
    int64_t now;
};

static uint64_t tag_of(const struct aconn *c, int i)
{
    return ADMIN_TAG | (uint64_t)c->gen << 16 | (uint64_t)(i + 1);
}

static void aconn_close(struct admin *a, struct aconn *c)
{
    close(c->fd);  /* removes it from the poller */
    c->fd = -1;
    c->mask = 0;
    c->gen++;
    sbuf_free(&c->out);
    (void)a;
}

/* --- responses ------------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void respond(struct aconn *c, int status, const char *reason,
                    const char *ctype, const struct sbuf *body, int head_only)
{
    size_t len = body ? body->len : 0;

    sbuf_printf(&c->out,
                "HTTP/1.1 %d %s\r\n"
                "%s"
                "Server: stampd/%s\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: %s\r\n\r\n",
                status, reason, status == 405 ? "Allow: GET, HEAD\r\n" : "",
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

static void collect(struct admin *a, struct metrics_input *in)
{
    memset(in, 0, sizeof(*in));
    in->t = a->t;
    in->o = a->o;
    in->version = STAMPD_VERSION;
    in->poller = poller_backend();
    in->now_unix_ms = wall_ms();
    in->draining = (int)__atomic_load_n(&a->t->draining, __ATOMIC_RELAXED);
    procinfo_read(getpid(), &in->master);
    for (unsigned i = 0; i < a->t->nworkers; i++) {
        pid_t pid = (pid_t)STAT_GET(&a->t->slot[i], pid);
        if (pid > 0)
            procinfo_read(pid, &a->workers[i]);
        else
            memset(&a->workers[i], 0, sizeof(a->workers[i]));
    }
    in->workers = a->workers;
}

/* The path without a query string. */
static int path_is(const struct aconn *c, const char *path)
{
    size_t n = strcspn(c->url, "?");
    return n == strlen(path) && memcmp(c->url, path, n) == 0;
}

static void route(struct admin *a, struct aconn *c)
{
    int method = c->parser.method;
    int head = method == HTTP_HEAD;

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
    if (path_is(c, "/healthz")) {
        if (__atomic_load_n(&a->t->draining, __ATOMIC_RELAXED))
            respond_text(c, 503, "Service Unavailable", "draining\n", head);
        else
            respond_text(c, 200, "OK", "ok\n", head);
        return;
    }
    if (path_is(c, "/metrics") || path_is(c, "/stats")) {
        struct metrics_input in;
        struct sbuf body = { 0 };
        int json = path_is(c, "/stats");

        collect(a, &in);
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

static int on_message_complete(http_parser *hp)
{
    struct aconn *c = hp->data;
    c->in_msg = 0;
    c->deadline = c->a->now + ADMIN_TIMEOUT_MS;
    if (!http_should_keep_alive(hp))
        c->close_after = 1;
    route(c->a, c);
    /* Stop after a response that closes: nothing after it is answered. */
    return c->close_after ? 1 : 0;
}

/* --- I/O --------------------------------------------------------------------- */

static void set_mask(struct admin *a, struct aconn *c, int i, unsigned mask)
{
    if (mask != c->mask && poller_mod(a->p, c->fd, c->mask, mask, tag_of(c, i)) == 0)
        c->mask = mask;
}

static void aconn_flush(struct admin *a, struct aconn *c, int i)
{
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.buf + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->deadline = a->now + ADMIN_TIMEOUT_MS;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            set_mask(a, c, i, POLLER_WRITE);
            return;
        }
        aconn_close(a, c);
        return;
    }
    sbuf_reset(&c->out);
    c->out_off = 0;
    if (c->close_after) {
        (void)shutdown(c->fd, SHUT_WR);
        aconn_close(a, c);
        return;
    }
    set_mask(a, c, i, POLLER_READ);
}

static void fail(struct aconn *c, int status, const char *reason)
{
    c->failed = 1;
    c->close_after = 1;
    char text[64];
    snprintf(text, sizeof(text), "%s\n", reason);
    respond_text(c, status, reason, text, 0);
}

static void aconn_read(struct admin *a, struct aconn *c, int i)
{
    char buf[4096];
    ssize_t r = read(c->fd, buf, sizeof(buf));

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        /* EOF: answer nothing more; close once what is owed is written. */
        if (c->out.len > c->out_off) {
            c->close_after = 1;
            aconn_flush(a, c, i);
        } else {
            aconn_close(a, c);
        }
        return;
    }
    /* Reads do not move the deadline (responses and writes do), so a
     * client dripping a request byte by byte cannot hold a slot. */
    if (c->failed || c->close_after)
        return; /* discard: the connection is closing */
    size_t done = http_parser_execute(&c->parser, &a->settings, buf, (size_t)r);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_CB_message_complete)
        ; /* stopped after a closing response */
    else if (e != HPE_OK || done != (size_t)r)
        fail(c, 400, "Bad Request");
    else if (c->parser.upgrade)
        fail(c, 400, "Bad Request");
    else if (c->in_msg && (c->req_bytes += (size_t)r) > ADMIN_MAX_REQUEST)
        fail(c, 431, "Request Header Fields Too Large");
    if (c->out.len > ADMIN_MAX_OUTPUT) {
        aconn_close(a, c);
        return;
    }
    if (c->out.len > c->out_off)
        aconn_flush(a, c, i);
}

static void accept_some(struct admin *a)
{
    for (int n = 0; n < 16; n++) {
        int fd = compat_accept(a->lfd);
        if (fd < 0) {
            if (fd != -EAGAIN && fd != -EINTR && fd != -ECONNABORTED)
                log_warn("admin accept: %s", strerror(-fd));
            return;
        }
        int i;
        for (i = 0; i < ADMIN_MAX_CONNS && a->c[i].fd >= 0; i++)
            ;
        if (i == ADMIN_MAX_CONNS) {
            static const char busy[] =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                "Connection: close\r\n\r\nbusy\n";
            (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        struct aconn *c = &a->c[i];
        uint32_t gen = c->gen;
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->gen = gen & 0xffffffu;
        c->a = a;
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        c->deadline = a->now + ADMIN_TIMEOUT_MS;
        if (poller_add(a->p, fd, POLLER_READ, tag_of(c, i)) != 0) {
            close(fd);
            c->fd = -1;
            continue;
        }
        c->mask = POLLER_READ;
    }
}

/* --- the interface ---------------------------------------------------------- */

struct admin *admin_create(poller_t *p, int lfd, const struct opts *o,
                           struct stats_table *t, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof(*a));
    if (!a || !(a->workers = calloc(t->nworkers ? t->nworkers : 1,
                                    sizeof(*a->workers)))) {
        free(a);
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->p = p;
    a->lfd = lfd;
    a->o = o;
    a->t = t;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        a->c[i].fd = -1;
    http_parser_settings_init(&a->settings);
    a->settings.on_message_begin = on_message_begin;
    a->settings.on_url = on_url;
    a->settings.on_message_complete = on_message_complete;
    int rc = poller_add(p, lfd, POLLER_READ, ADMIN_TAG);
    if (rc < 0) {
        snprintf(err, errlen, "admin: poller: %s", strerror(-rc));
        free(a->workers);
        free(a);
        return NULL;
    }
    return a;
}

void admin_destroy(struct admin *a)
{
    if (!a)
        return;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        if (a->c[i].fd >= 0)
            aconn_close(a, &a->c[i]);
    (void)poller_del(a->p, a->lfd, POLLER_READ);
    free(a->workers);
    free(a);
}

void admin_event(struct admin *a, uint64_t tag, unsigned mask, int64_t now_ms)
{
    a->now = now_ms;
    unsigned idx = (unsigned)(tag & 0xffff);
    if (idx == 0) {
        accept_some(a);
        return;
    }
    int i = (int)idx - 1;
    if (i >= ADMIN_MAX_CONNS)
        return;
    struct aconn *c = &a->c[i];
    if (c->fd < 0 || (uint32_t)((tag >> 16) & 0xffffff) != c->gen)
        return;  /* closed earlier in this batch */
    uint32_t gen = c->gen;
    if (mask & POLLER_READ)
        aconn_read(a, c, i);
    if (c->fd >= 0 && c->gen == gen && (mask & POLLER_WRITE) &&
        c->out.len > c->out_off)
        aconn_flush(a, c, i);
}

void admin_tick(struct admin *a, int64_t now_ms)
{
    a->now = now_ms;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++)
        if (a->c[i].fd >= 0 && now_ms >= a->c[i].deadline)
            aconn_close(a, &a->c[i]);
}

int64_t admin_next_timeout_ms(const struct admin *a, int64_t now_ms)
{
    int64_t t = -1;
    for (int i = 0; i < ADMIN_MAX_CONNS; i++) {
        if (a->c[i].fd < 0)
            continue;
        int64_t left = a->c[i].deadline - now_ms;
        if (left < 0)
            left = 0;
        if (t < 0 || left < t)
            t = left;
    }
    return t;
}
