/*
 * http.c - the HTTP/1.x request handler (see http.h).  Pure.
 *
 * http_parser does the framing; its callbacks collect the request-target
 * and the body into one buffer (target first, body after it), note the few
 * header fields the protocol cares about (Transfer-Encoding, Expect) and
 * answer at on_message_complete.  The parser is paused from a callback
 * only when the caller must regain control mid-input (back-pressure, the
 * last response of a connection); otherwise one http_parser_execute() runs
 * through every pipelined request of a read.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "check.h"
#include "http.h"

#define HDR_NAME_MAX 20   /* longest field name we match, plus slack */
#define HDR_VAL_MAX 24    /* longest value we match ("100-continue"), plus slack */
#define SMALL_BUF 96      /* target + body inline before going to the heap */

enum hdr_kind { HDR_OTHER = 0, HDR_TE, HDR_EXPECT };

struct http_conn {
    http_parser p;
    const struct http_env *env;    /* valid during http_feed() */
    const struct http_sink *sink;
    char *buf;                     /* small[] or heap */
    uint32_t len, cap;             /* bytes of target + body held */
    uint32_t target_len;
    size_t requests;
    int status;                    /* != HTTP_OK: stop (paused or dead) */
    int err;                       /* status code chosen by a callback */
    uint8_t name_len, val_len;
    uint8_t in_value;              /* last header callback was a value */
    uint8_t te_other, expect;
    uint8_t partial;
    char name[HDR_NAME_MAX];
    char val[HDR_VAL_MAX];
    char small[SMALL_BUF];
};

static http_parser_settings settings;

/* --- collecting ------------------------------------------------------------ */

static int buf_add(struct http_conn *h, const char *at, size_t n)
{
    if (n > UINT32_MAX - h->len)
        return -1;
    size_t need = (size_t)h->len + n;
    if (need > h->cap) {
        size_t cap = h->cap * 2;
        if (cap < need)
            cap = need;
        char *nb = h->buf == h->small ? malloc(cap) : realloc(h->buf, cap);
        if (!nb)
            return -1;
        if (h->buf == h->small)
            memcpy(nb, h->small, h->len);
        h->buf = nb;
        h->cap = (uint32_t)cap;
    }
    memcpy(h->buf + h->len, at, n);
    h->len += (uint32_t)n;
    return 0;
}

static void buf_reset(struct http_conn *h)
{
    /* Keep a modest heap buffer for the next request; drop a large one so
     * a keep-alive connection does not hold a big body's memory. */
    if (h->buf != h->small && h->cap > 4096) {
        free(h->buf);
        h->buf = h->small;
        h->cap = SMALL_BUF;
    }
    h->len = 0;
    h->target_len = 0;
}

static int ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    return 1;
}

static enum hdr_kind hdr_kind(const struct http_conn *h)
{
    if (h->name_len > sizeof(h->name) - 1)
        return HDR_OTHER;
    if (ieq(h->name, h->name_len, "transfer-encoding"))
        return HDR_TE;
    if (ieq(h->name, h->name_len, "expect"))
        return HDR_EXPECT;
    return HDR_OTHER;
}

/* A header field (name and value) is complete: note what matters. */
static void hdr_done(struct http_conn *h)
{
    if (!h->in_value)
        return;
    const char *v = h->val;
    size_t n = h->val_len;
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    int over = h->val_len > sizeof(h->val) - 1;
    switch (hdr_kind(h)) {
    case HDR_TE:
        if (over || !ieq(v, n, "chunked"))
            h->te_other = 1;
        break;
    case HDR_EXPECT:
        if (!over && ieq(v, n, "100-continue"))
            h->expect = 1;
        break;
    default:
        break;
    }
    h->in_value = 0;
    h->name_len = 0;
    h->val_len = 0;
}

/* Pieces are kept up to one byte past the array so "too long" stays
 * distinguishable from an exact match; the counters saturate. */
static void piece(char *dst, uint8_t *len, size_t cap, const char *at, size_t n)
{
    size_t have = *len;
    if (have < cap) {
        size_t k = cap - have < n ? cap - have : n;
        memcpy(dst + have, at, k);
    }
    have += n;
    *len = (uint8_t)(have > cap ? cap : have);
}

/* --- responses ------------------------------------------------------------ */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put(p, lit, sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Status line and headers.  conn: 0 none, 1 "keep-alive", 2 "close". */
static char *put_head(char *p, const struct http_env *env, int code,
                      uint64_t clen, int conn)
{
    if (code == 200) {
        p = PUT_LIT(p, "HTTP/1.1 200 OK\r\nServer: stampd\r\nDate: ");
    } else {
        p = PUT_LIT(p, "HTTP/1.1 ");
        p = put_u64(p, (uint64_t)code);
        *p++ = ' ';
        const char *r = reason_phrase(code);
        p = put(p, r, strlen(r));
        p = PUT_LIT(p, "\r\nServer: stampd\r\nDate: ");
    }
    p = put(p, env->date, env->date_len);
    p = PUT_LIT(p, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    p = put_u64(p, clen);
    if (conn == 1)
        p = PUT_LIT(p, "\r\nConnection: keep-alive");
    else if (conn == 2)
        p = PUT_LIT(p, "\r\nConnection: close");
    return PUT_LIT(p, "\r\n\r\n");
}

/* Write one whole response; returns the sink's commit() verdict or -1. */
static int emit(struct http_conn *h, const char *data, size_t n)
{
    char *dst = h->sink->reserve(h->sink->ctx, n);
    if (!dst)
        return -1;
    memcpy(dst, data, n);
    return h->sink->commit(h->sink->ctx, n);
}

static int emit_error(struct http_conn *h, int code)
{
    char buf[HTTP_RESPONSE_HEAD_MAX];
    const char *r = reason_phrase(code);
    size_t rlen = strlen(r);
    char *p = put_head(buf, h->env, code, rlen + 1, 2);
    p = put(p, r, rlen);
    *p++ = '\n';
    return emit(h, buf, (size_t)(p - buf)) < 0 ? -1 : 0;
}

/* A 200 response answering `payload`.  conn: as put_head(). */
static int emit_200(struct http_conn *h, const char *payload, size_t plen,
                    int head_only, int conn)
{
    const struct http_env *env = h->env;
    size_t blen = reply_size(env->reply, env->prefix_len, plen, 1);
    size_t n = HTTP_RESPONSE_HEAD_MAX + (head_only ? 0 : blen);
    char *dst = h->sink->reserve(h->sink->ctx, n);
    if (!dst)
        return -1;
    char *p = put_head(dst, env, 200, blen, conn);
    if (!head_only)
        p += reply_build(p, env->reply, env->prefix, env->prefix_len,
                         payload, plen, "\n", 1);
    return h->sink->commit(h->sink->ctx, (size_t)(p - dst));
}

/* The 200 response for the request http_parser just completed. */
static int emit_ok(struct http_conn *h, int keep)
{
    const char *payload = h->buf;
    size_t plen = h->target_len;
    if (h->len > h->target_len) {
        payload = h->buf + h->target_len;
        plen = h->len - h->target_len;
    }
    int conn = !keep ? 2 : h->p.http_minor == 0 ? 1 : 0;
    return emit_200(h, payload, plen, h->p.method == HTTP_HEAD, conn);
}

/* --- the plain-request fast path ------------------------------------------
 * Most requests are "GET /path HTTP/1.1" with a few ordinary header fields
 * and no body.  fast_request() recognises such a request when it is whole
 * in the input, from a strict subset of what http_parser accepts, and the
 * handler answers it exactly as the parser's callbacks would (a 200 whose
 * payload is the request-target, keep-alive without a Connection field).
 * Anything else goes to the parser: another method or version, a field
 * that affects framing or the connection, a byte outside the plain sets,
 * an empty line before the request, a head longer than FAST_HEAD_MAX or
 * one not complete yet. */

#define FAST_HEAD_MAX (HTTP_REQUEST_HEAD_MAX / 2)

/* Byte classes of the fast path, filled by http_global_init(). */
enum { FC_TARGET = 1, FC_NAME = 2, FC_VALUE = 4 };
static uint8_t fast_class[256];

static void fast_classes_init(void)
{
    /* origin-form request-target: unreserved, sub-delims, ":@/?%" */
    static const char target[] = "-._~!$&'()*+,;=:@/?%";
    static const char tchar[] = "!#$%&'*+-.^_`|~"; /* RFC 9110 field name */
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9');
        if (alnum || (c && strchr(target, c)))
            k |= FC_TARGET;
        if (alnum || (c && strchr(tchar, c)))
            k |= FC_NAME;
        if ((c >= 0x20 && c <= 0x7e) || c == '\t')
            k |= FC_VALUE;
        fast_class[c] = k;
    }
}

static int fast_is(char c, int k)
{
    return fast_class[(unsigned char)c] & k;
}

/* The fields http_parser or this handler give a meaning, and any name
 * that starts with one: http_parser notes a Transfer-Encoding as soon as
 * the name's first 17 bytes match, whatever follows. */
static int fast_special_field(const char *name, size_t n)
{
#define STARTS(lit) (n >= sizeof(lit) - 1 && ieq(name, sizeof(lit) - 1, lit))
    switch (name[0] | 0x20) {
    case 'c': return STARTS("connection") || STARTS("content-length");
    case 'p': return STARTS("proxy-connection");
    case 't': return STARTS("transfer-encoding");
    case 'u': return STARTS("upgrade");
    case 'e': return STARTS("expect");
    default:  return 0;
    }
#undef STARTS
}

/* The length of the plain request at d[0..n), with its target and method
 * (HEAD or GET), or 0 when the parser must take it. */
static size_t fast_request(const char *d, size_t n, const char **target,
                           size_t *tlen, int *head_only)
{
    size_t i, end = n < FAST_HEAD_MAX ? n : FAST_HEAD_MAX;

    if (end >= 4 && memcmp(d, "GET ", 4) == 0) {
        i = 4;
        *head_only = 0;
    } else if (end >= 5 && memcmp(d, "HEAD ", 5) == 0) {
        i = 5;
        *head_only = 1;
    } else {
        return 0;
    }
    size_t t0 = i;
    if (i >= end || d[i] != '/')
        return 0;
    while (i < end && fast_is(d[i], FC_TARGET))
        i++;
    static const char ver[] = " HTTP/1.1\r\n";
    if (end - i < sizeof(ver) - 1 || memcmp(d + i, ver, sizeof(ver) - 1) != 0)
        return 0;
    *target = d + t0;
    *tlen = i - t0;
    i += sizeof(ver) - 1;
    for (;;) { /* header fields, up to the empty line */
        if (end - i < 2)
            return 0;
        if (d[i] == '\r')
            return d[i + 1] == '\n' ? i + 2 : 0;
        size_t n0 = i;
        while (i < end && fast_is(d[i], FC_NAME))
            i++;
        if (i == n0 || i >= end || d[i] != ':' ||
            fast_special_field(d + n0, i - n0))
            return 0;
        for (i++; i < end && d[i] != '\r'; i++)
            if (!fast_is(d[i], FC_VALUE))
                return 0;
        if (end - i < 2 || d[i + 1] != '\n')
            return 0;
        i += 2;
    }
}

/* Answer the plain requests at the start of d[0..n); returns the bytes
 * they took.  Sets h->status when the sink asks to pause or fails. */
static size_t fast_requests(struct http_conn *h, const char *d, size_t n)
{
    size_t off = 0;
    const char *target;
    size_t tlen, len;
    int head_only;

    while (off < n &&
           (len = fast_request(d + off, n - off, &target, &tlen, &head_only))) {
        int rc = emit_200(h, target, tlen, head_only, 0);
        if (rc < 0) {
            h->status = HTTP_NOMEM;
            return n;
        }
        off += len;
        h->requests++;
        if (rc > 0) {
            h->status = HTTP_PAUSE;
            break;
        }
    }
    return off;
}

/* --- parser callbacks ----------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    struct http_conn *h = p->data;
    buf_reset(h);
    h->name_len = h->val_len = h->in_value = 0;
    h->te_other = h->expect = 0;
    h->partial = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = p->data;
    if (buf_add(h, at, n) < 0) {
        h->status = HTTP_NOMEM;
        return -1;
    }
    h->target_len = h->len;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = p->data;
    /* http_parser built without HTTP_PARSER_STRICT (as Debian's is) takes a
     * space as a name character, so "Transfer-Encoding : chunked" would be
     * honoured; RFC 9112 section 5.1 requires 400 for whitespace before the
     * colon, and a field name is a token, so no space anywhere in it. */
    if (memchr(at, ' ', n)) {
        h->err = 400;
        return -1;
    }
    hdr_done(h);
    piece(h->name, &h->name_len, sizeof(h->name), at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = p->data;
    h->in_value = 1;
    if (hdr_kind(h) != HDR_OTHER)
        piece(h->val, &h->val_len, sizeof(h->val), at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *h = p->data;
    hdr_done(h);
    /* A tunnel request: its data is not HTTP and its length is unknown. */
    if (p->method == HTTP_CONNECT) {
        h->err = 501;
        return -1;
    }
    if (p->http_major != 1) {
        h->err = 505;
        return -1;
    }
    if (h->te_other) {
        h->err = 501;
        return -1;
    }
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > h->env->max_body) {
        h->err = 413;
        return -1;
    }
    if (h->expect && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (emit(h, cont, sizeof(cont) - 1) < 0) {
            h->status = HTTP_NOMEM;
            return -1;
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = p->data;
    if ((size_t)(h->len - h->target_len) + n > h->env->max_body) {
        h->err = 413;
        return -1;
    }
    if (buf_add(h, at, n) < 0) {
        h->status = HTTP_NOMEM;
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *h = p->data;
    /* http_parser stops after an Upgrade request as if the protocol had
     * switched; it has not (we answer 200, not 101), but a client or proxy
     * may already be sending the other protocol, so nothing after it is
     * read as a request: the answer closes the connection. */
    int keep = http_should_keep_alive(p) && !p->upgrade;
    int rc = emit_ok(h, keep);
    h->partial = 0;
    if (rc < 0) {
        h->status = HTTP_NOMEM;
        return -1;
    }
    h->requests++;
    buf_reset(h);
    if (!keep)
        h->status = HTTP_CLOSE;
    else if (rc > 0)
        h->status = HTTP_PAUSE;
    if (h->status != HTTP_OK)
        http_parser_pause(p, 1);
    return 0;
}

/* --- the interface ---------------------------------------------------------- */

static void http_global_init(void)
{
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    /* The limit is process-wide in http_parser 2.9; ours is the only one. */
    http_parser_set_max_header_size(HTTP_REQUEST_HEAD_MAX);
    fast_classes_init();
}

struct http_conn *http_new(void)
{
    if (!settings.on_message_complete)
        http_global_init();
    struct http_conn *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    h->buf = h->small;
    h->cap = SMALL_BUF;
    return h;
}

void http_free(struct http_conn *h)
{
    if (!h)
        return;
    if (h->buf != h->small)
        free(h->buf);
    free(h);
}

int http_partial(const struct http_conn *h)
{
    return h->partial;
}

size_t http_held(const struct http_conn *h)
{
    return h->buf == h->small ? 0 : h->cap;
}

static int error_code(struct http_conn *h)
{
    if (h->err)
        return h->err;
    switch (HTTP_PARSER_ERRNO(&h->p)) {
    case HPE_HEADER_OVERFLOW:          return 431;
    case HPE_INVALID_TRANSFER_ENCODING: return 501;
    default:                           return 400;
    }
}

int http_feed(struct http_conn *h, const struct http_env *env,
              const char *data, size_t n, const struct http_sink *sink,
              size_t *consumed, size_t *requests)
{
    size_t off = 0;

    h->requests = 0;
    if (h->status != HTTP_OK && h->status != HTTP_PAUSE) {
        *consumed = n;
        *requests = 0;
        return h->status;
    }
    h->status = HTTP_OK;
    h->env = env;
    h->sink = sink;
    /* Between requests, plain ones skip the parser (see fast_request). */
    if (!h->partial)
        off = fast_requests(h, data, n);
    /* A zero-length execute means EOF to http_parser: never pass one. */
    if (h->status == HTTP_OK && off < n) {
        size_t done = http_parser_execute(&h->p, &settings, data + off, n - off);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->p, 0);
            off = h->status == HTTP_CLOSE ? n : off + done;
        } else if (e != HPE_OK && h->status != HTTP_NOMEM) {
            int code = error_code(h);
            h->status = code == 413 || code == 431 ? HTTP_ERR_LIMIT
                                                   : HTTP_ERR_PROTOCOL;
            if (emit_error(h, code) < 0)
                h->status = HTTP_NOMEM;
            off = n;
        } else if (e != HPE_OK) {
            off = n;
        } else {
            /* Never drop input unparsed: http_parser only stops early after
             * an upgrade, which on_message_complete turns into a close. */
            stampd_assert(done == n - off);
            off = n;
        }
    }
    h->partial = h->status == HTTP_OK || h->status == HTTP_PAUSE
                     ? h->partial : 0;
    *consumed = off;
    *requests = h->requests;
    return h->status;
}

int http_status_code(const char *buf, size_t len)
{
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        code = code * 10 + (buf[i] - '0');
    }
    return code;
}
