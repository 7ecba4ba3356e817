/*
 * fuzz_http.c - the HTTP handler (http.h) fed the same byte stream twice:
 * once whole, once in random pieces down to single bytes with random
 * back-pressure pauses (the rest re-fed, as the connection code does).
 * A push parser must not care where the reads split, so both runs must
 * write byte-identical responses, count the same requests and end in the
 * same state.
 *
 * The output is also checked against an oracle: a second, plain
 * http_parser over the whole input records every complete request (method,
 * payload), and the responses must be
 *  - well formed: a status line, headers, a Content-Length that matches the
 *    body (empty for HEAD), status in the set http.h documents (100 only as
 *    the exact interim response);
 *  - one per complete request, in order: the i-th 200 answers the i-th
 *    request (its body is the reply to that request's payload);
 *  - final where they must be: an error status or Connection: close only on
 *    the last response, matching the handler's result; when the handler
 *    accepted all input (HTTP_OK), every complete request was answered.
 * A CONNECT or Upgrade request is an ordinary request (or, the handler's
 * other choice, a 400/501 that closes): the reference parses what follows
 * it as the next request.
 *
 * Input layout: byte 0 seeds the splits and pauses, byte 1 picks the reply
 * mode and max_body (--max-line), the rest is the stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "fuzz_util.h"
#include "http.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

struct out {
    struct fbuf b;
    size_t reserved;
    uint32_t rng;   /* 0: never pause */
};

static char *reserve(void *ctx, size_t n)
{
    struct out *o = ctx;
    if (o->b.len + n > o->b.cap) {
        o->b.cap = (o->b.len + n) * 2 + 64;
        o->b.p = realloc(o->b.p, o->b.cap);
        if (!o->b.p)
            abort();
    }
    o->reserved = n;
    return o->b.p + o->b.len;
}

static int commit(void *ctx, size_t n)
{
    struct out *o = ctx;
    if (n > o->reserved || n < 9 || memcmp(o->b.p + o->b.len, "HTTP/1.1 ", 9))
        abort();
    o->b.len += n;
    o->reserved = 0;
    return o->rng && (fuzz_rand(&o->rng) & 3) == 0;
}

/* Feed d[0..n) in pieces (piece 0: whole); returns the final status and
 * the number of 200 responses. */
static int run(const struct http_env *env, const char *d, size_t n,
               uint32_t seed, struct out *o, size_t *reqs)
{
    struct http_conn *h = http_new();
    struct http_sink sink = { reserve, commit, o };
    size_t pos = 0;
    int rc = HTTP_OK;

    if (!h)
        abort();
    *reqs = 0;
    o->rng = seed;
    while (pos < n) {
        size_t piece = seed ? 1 + fuzz_rand(&seed) % (n - pos) : n - pos;
        if (seed && (seed & 0x100))
            piece = 1;
        size_t end = pos + piece;
        while (pos < end) {
            size_t consumed = 0, r = 0;
            rc = http_feed(h, env, d + pos, end - pos, &sink, &consumed, &r);
            *reqs += r;
            /* http.h: everything is consumed unless the sink paused. */
            if (consumed > end - pos ||
                (rc != HTTP_PAUSE && consumed != end - pos))
                abort();
            pos += consumed;
            if (rc != HTTP_PAUSE)
                break;
        }
        if (rc != HTTP_OK && rc != HTTP_PAUSE)
            break;
    }
    http_free(h);
    return rc == HTTP_PAUSE ? HTTP_OK : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- the reference: every complete request, from a plain http_parser ------ */

struct ref_msg {
    int head;             /* method HEAD: the 200 has no body */
    struct fbuf url, body;
};

struct ref {
    struct ref_msg *m;
    size_t n, cap;        /* m[n] is the message being parsed */
    int error;            /* the stream has a parse error after m[n-1] */
};

static struct ref_msg *ref_cur(http_parser *p)
{
    struct ref *r = p->data;
    if (r->n == r->cap) {
        r->cap = r->cap * 2 + 8;
        r->m = realloc(r->m, r->cap * sizeof(*r->m));
        CHECK(r->m);
        memset(r->m + r->n, 0, (r->cap - r->n) * sizeof(*r->m));
    }
    return &r->m[r->n];
}

static int ref_url(http_parser *p, const char *at, size_t n)
{
    fbuf_put(&ref_cur(p)->url, at, n);
    return 0;
}

static int ref_body(http_parser *p, const char *at, size_t n)
{
    fbuf_put(&ref_cur(p)->body, at, n);
    return 0;
}

static int ref_complete(http_parser *p)
{
    struct ref *r = p->data;
    ref_cur(p)->head = p->method == HTTP_HEAD;
    r->n++;
    return 0;
}

static void ref_parse(struct ref *r, const char *d, size_t n)
{
    static http_parser_settings rs;
    http_parser p;

    rs.on_url = ref_url;
    rs.on_body = ref_body;
    rs.on_message_complete = ref_complete;
    size_t off = 0;
    if (n == 0)
        return;
    while (off < n) {
        http_parser_init(&p, HTTP_REQUEST);
        p.data = r;
        off += http_parser_execute(&p, &rs, d + off, n - off);
        if (!p.upgrade)
            break;
        /* A CONNECT or Upgrade request is an ordinary request to stampd
         * (http.h): what follows it is the next request. */
    }
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK || off != n)
        r->error = 1;
}

static void ref_free(struct ref *r)
{
    for (size_t i = 0; i < r->cap; i++) {
        free(r->m[i].url.p);
        free(r->m[i].body.p);
    }
    free(r->m);
}

/* --- the responses -------------------------------------------------------- */

struct resp {
    int status, close;
    size_t clen, body_off, body_len;
};

static const char *find(const char *h, size_t n, const char *needle)
{
    return memmem(h, n, needle, strlen(needle));
}

/* Parse the response at o[*pos..n) into r; aborts on a malformed one.  The
 * body length is taken from Content-Length unless `no_body` (HEAD). */
static void resp_next(const char *o, size_t n, size_t *pos, int no_body,
                      struct resp *r)
{
    const char *s = o + *pos;
    size_t left = n - *pos;
    const char *end = find(s, left, "\r\n\r\n");
    CHECK(end && left >= 13 && memcmp(s, "HTTP/1.1 ", 9) == 0);
    CHECK(s[9] >= '1' && s[9] <= '5' && s[10] >= '0' && s[10] <= '9' &&
          s[11] >= '0' && s[11] <= '9' && s[12] == ' ');
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    size_t hlen = (size_t)(end - s) + 4;
    memset(&r->clen, 0, sizeof(*r) - offsetof(struct resp, clen));
    r->close = find(s, hlen, "\r\nConnection: close\r\n") != NULL;
    if (r->status == 100) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        CHECK(hlen == sizeof(cont) - 1 && memcmp(s, cont, hlen) == 0);
        *pos += hlen;
        return;
    }
    const char *cl = find(s, hlen, "\r\nContent-Length: ");
    CHECK(cl);
    cl += 18;
    CHECK(*cl >= '0' && *cl <= '9');
    while (*cl >= '0' && *cl <= '9')
        r->clen = r->clen * 10 + (size_t)(*cl++ - '0');
    CHECK(cl[0] == '\r' && cl[1] == '\n');
    r->body_off = *pos + hlen;
    r->body_len = no_body && r->status == 200 ? 0 : r->clen;
    CHECK(r->body_len <= left - hlen);
    *pos += hlen + r->body_len;
}

static int allowed_status(int st)
{
    return st == 200 || st == 400 || st == 413 || st == 431 || st == 501 ||
           st == 505;
}

/* The 200 body owed to message m under env. */
static int body_matches(const struct http_env *env, const struct ref_msg *m,
                        const char *b, size_t n)
{
    const struct fbuf *pl = m->body.len ? &m->body : &m->url;
    size_t pre = env->reply == REPLY_STAMP ? env->prefix_len : 0;
    if (n != pre + pl->len + 1 || b[n - 1] != '\n')
        return 0;
    if (pre && memcmp(b, env->prefix, pre) != 0)
        return 0;
    for (size_t i = 0; i < pl->len; i++) {
        char c = pl->p[i];
        if (env->reply == REPLY_UPPER && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (b[pre + i] != c)
            return 0;
    }
    return 1;
}

/* The whole run's output o against the reference; rc is the handler's
 * result, n200 the number of 200s it reported. */
static void oracle(const struct http_env *env, const char *d, size_t n,
                   const struct fbuf *o, int rc, size_t n200)
{
    struct ref ref = { 0 };
    struct resp r = { 0 };
    size_t pos = 0, oks = 0, finals = 0;
    int last_status = 0, last_close = 0;

    ref_parse(&ref, d, n);
    while (pos < o->len) {
        /* Only the last final response may be an error or say close. */
        CHECK(finals == 0 || (last_status == 200 && !last_close));
        int head = oks < ref.n && ref.m[oks].head;
        resp_next(o->p, o->len, &pos, head, &r);
        if (r.status == 100)
            continue;
        CHECK(allowed_status(r.status));
        if (r.status == 200) {
            CHECK(oks < ref.n);
            if (!ref.m[oks].head)
                CHECK(body_matches(env, &ref.m[oks], o->p + r.body_off,
                                   r.body_len));
            oks++;
        } else {
            CHECK(r.close && r.body_len >= 2 &&
                  o->p[r.body_off + r.body_len - 1] == '\n');
        }
        finals++;
        last_status = r.status;
        last_close = r.close;
    }
    CHECK(oks == n200);
    switch (rc) {
    case HTTP_OK:       /* all input taken: every complete request answered */
        CHECK(finals == 0 || (last_status == 200 && !last_close));
        CHECK(!ref.error && oks == ref.n);
        break;
    case HTTP_CLOSE:
        CHECK(last_status == 200 && last_close);
        break;
    case HTTP_ERR_LIMIT:
        CHECK(last_status == 413 || last_status == 431);
        break;
    case HTTP_ERR_PROTOCOL:
        CHECK(last_status == 400 || last_status == 501 || last_status == 505);
        break;
    default:
        abort();
    }
    ref_free(&ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const char prefix[] = "[Mon Sep  5 22:29:12 2016] ";
    static const char date[] = "Mon, 05 Sep 2016 22:29:12 GMT";
    struct http_env env = {
        .reply = (enum reply_mode)(data[1] % 3),
        .prefix = prefix, .prefix_len = sizeof(prefix) - 1,
        .date = date, .date_len = sizeof(date) - 1,
        .max_body = 1 + (size_t)(data[1] >> 2) * 64,
    };
    const char *d = (const char *)data + 2;
    size_t n = size - 2;
    struct out whole = { 0 }, split = { 0 };
    size_t rw, rs;

    int a = run(&env, d, n, 0, &whole, &rw);
    int b = run(&env, d, n, 0x9e37u * data[0] + 1, &split, &rs);
    if (a != b || rw != rs || !fbuf_equal(&whole.b, &split.b))
        abort();
    oracle(&env, d, n, &whole.b, a, rw);
    free(whole.b.p);
    free(split.b.p);
    return 0;
}
