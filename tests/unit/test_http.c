/*
 * test_http.c - the pure HTTP handler: framing, keep-alive rules, responses
 * and every error path, with input fed whole and split at every byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

#define PREFIX "[Mon Sep  5 22:29:12 2016] "
#define DATE "Mon, 05 Sep 2016 22:29:12 GMT"
#define HEAD_OK(clen) "HTTP/1.1 200 OK\r\nServer: stampd\r\nDate: " DATE \
    "\r\nContent-Type: text/plain\r\nContent-Length: " clen
#define HEAD_ERR(code, reason, clen) "HTTP/1.1 " code " " reason \
    "\r\nServer: stampd\r\nDate: " DATE \
    "\r\nContent-Type: text/plain\r\nContent-Length: " clen \
    "\r\nConnection: close\r\n\r\n" reason "\n"

struct out {
    char buf[1 << 16];
    size_t len;
    char tmp[HTTP_RESPONSE_HEAD_MAX + 70000];
    int pause_after;  /* commit() returns 1 after this many responses */
    int ncommits;
    int fail;         /* reserve() fails */
};

static char *t_reserve(void *ctx, size_t n)
{
    struct out *o = ctx;
    assert_true(n <= sizeof(o->tmp));
    return o->fail ? NULL : o->tmp;
}

static int t_commit(void *ctx, size_t n)
{
    struct out *o = ctx;
    assert_true(o->len + n <= sizeof(o->buf));
    memcpy(o->buf + o->len, o->tmp, n);
    o->len += n;
    o->ncommits++;
    return o->pause_after && o->ncommits >= o->pause_after;
}

static struct http_env env_mode(enum reply_mode m, size_t max_body)
{
    struct http_env e = { m, PREFIX, sizeof(PREFIX) - 1, DATE,
                          sizeof(DATE) - 1, max_body };
    return e;
}

/* Feed `in` in pieces of `step` bytes (0: whole); returns the last status
 * and the total requests in *reqs. */
static int feed_steps(struct http_conn *h, const struct http_env *e,
                      struct out *o, const char *in, size_t n, size_t step,
                      size_t *reqs)
{
    struct http_sink sink = { t_reserve, t_commit, o };
    size_t off = 0, total = 0;
    int rc = HTTP_OK;
    if (step == 0)
        step = n;
    while (off < n) {
        size_t k = n - off < step ? n - off : step, used, r;
        rc = http_feed(h, e, in + off, k, &sink, &used, &r);
        total += r;
        if (rc == HTTP_PAUSE) {
            assert_true(used <= k);
            off += used;
            continue;
        }
        assert_int_equal(used, k);
        off += k;
        if (rc != HTTP_OK)
            break;
    }
    *reqs = total;
    return rc;
}

/* Run one exchange whole and at every split size 1..8, expecting the same
 * bytes, status and request count each time. */
static void check(enum reply_mode m, size_t max_body, const char *in,
                  size_t inlen, const char *want, int want_rc, size_t want_reqs)
{
    struct http_env e = env_mode(m, max_body);
    static const size_t steps[] = { 0, 1, 2, 3, 5, 7, 8 };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct out *o = calloc(1, sizeof(*o));
        struct http_conn *h = http_new();
        size_t reqs;
        assert_non_null(o);
        assert_non_null(h);
        int rc = feed_steps(h, &e, o, in, inlen, steps[i], &reqs);
        if (o->len != strlen(want) || memcmp(o->buf, want, o->len) != 0)
            fail_msg("step %zu: got\n%.*s\nwant\n%s", steps[i], (int)o->len,
                     o->buf, want);
        assert_int_equal(rc, want_rc);
        assert_int_equal(reqs, want_reqs);
        http_free(h);
        free(o);
    }
    /* Two pieces, cut at every byte (short inputs: this is quadratic). */
    for (size_t cut = 1; cut < inlen && inlen < 2048; cut++) {
        struct out *o = calloc(1, sizeof(*o));
        struct http_conn *h = http_new();
        struct http_sink sink = { t_reserve, t_commit, o };
        size_t used, r1 = 0, r2 = 0;
        int rc = http_feed(h, &e, in, cut, &sink, &used, &r1);
        assert_int_equal(used, cut);
        if (rc == HTTP_OK)
            rc = http_feed(h, &e, in + cut, inlen - cut, &sink, &used, &r2);
        if (o->len != strlen(want) || memcmp(o->buf, want, o->len) != 0)
            fail_msg("cut %zu: got\n%.*s\nwant\n%s", cut, (int)o->len,
                     o->buf, want);
        assert_int_equal(rc, want_rc);
        assert_int_equal(r1 + r2, want_reqs);
        http_free(h);
        free(o);
    }
}

#define CHECK(in, want, rc, reqs) \
    check(REPLY_STAMP, 65536, in, sizeof(in) - 1, want, rc, reqs)

static void test_get(void **state)
{
    (void)state;
    CHECK("GET / HTTP/1.1\r\nHost: x\r\n\r\n",
          HEAD_OK("29") "\r\n\r\n" PREFIX "/\n", HTTP_OK, 1);
}

static void test_target_raw(void **state)
{
    (void)state;
    CHECK("GET /a%20b?x=1 HTTP/1.1\r\n\r\n",
          HEAD_OK("38") "\r\n\r\n" PREFIX "/a%20b?x=1\n", HTTP_OK, 1);
}

static void test_pipelined(void **state)
{
    (void)state;
    CHECK("GET /1 HTTP/1.1\r\n\r\n"
          "POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
          "GET /3 HTTP/1.1\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/1\n"
          HEAD_OK("33") "\r\n\r\n" PREFIX "hello\n"
          HEAD_OK("30") "\r\n\r\n" PREFIX "/3\n", HTTP_OK, 3);
}

static void test_chunked(void **state)
{
    (void)state;
    CHECK("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3\r\nabc\r\na;ext=1\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n"
          "GET /n HTTP/1.1\r\n\r\n",
          HEAD_OK("41") "\r\n\r\n" PREFIX "abc0123456789\n"
          HEAD_OK("30") "\r\n\r\n" PREFIX "/n\n", HTTP_OK, 2);
}

static void test_empty_body_uses_target(void **state)
{
    (void)state;
    CHECK("POST /t HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/t\n", HTTP_OK, 1);
}

static void test_http10(void **state)
{
    (void)state;
    /* 1.0 closes by default: the rest of the input is ignored. */
    CHECK("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/a\n",
          HTTP_CLOSE, 1);
    /* ... unless it asks for keep-alive. */
    CHECK("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
          "GET /b HTTP/1.0\r\n\r\n",
          HEAD_OK("30") "\r\nConnection: keep-alive\r\n\r\n" PREFIX "/a\n"
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/b\n",
          HTTP_CLOSE, 2);
}

static void test_connection_close(void **state)
{
    (void)state;
    CHECK("GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/a\n",
          HTTP_CLOSE, 1);
}

static void test_head(void **state)
{
    (void)state;
    CHECK("HEAD /abc HTTP/1.1\r\n\r\nGET /abc HTTP/1.1\r\n\r\n",
          HEAD_OK("32") "\r\n\r\n"
          HEAD_OK("32") "\r\n\r\n" PREFIX "/abc\n", HTTP_OK, 2);
}

static void test_expect_continue(void **state)
{
    (void)state;
    CHECK("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n"
          "\r\nhi",
          "HTTP/1.1 100 Continue\r\n\r\n"
          HEAD_OK("30") "\r\n\r\n" PREFIX "hi\n", HTTP_OK, 1);
}

/* Plain requests whole in one read skip the parser; check() feeds each
 * input whole and split, so these compare both routes on the requests at
 * the edge of "plain": ordinary fields, a tab in a value, an empty value,
 * a name that merely starts like one http_parser acts on, and the fields
 * themselves. */
static void test_plain_requests(void **state)
{
    (void)state;
    CHECK("GET /p?q=1&r=~x HTTP/1.1\r\nHost: h:80\r\nUser-Agent: a\tb\r\n"
          "X-Empty:\r\nAccept: */*\r\n\r\nHEAD /h HTTP/1.1\r\n\r\n",
          HEAD_OK("39") "\r\n\r\n" PREFIX "/p?q=1&r=~x\n"
          HEAD_OK("30") "\r\n\r\n", HTTP_OK, 2);
    /* http_parser marks Transfer-Encoding from a name's first 17 bytes. */
    CHECK("GET / HTTP/1.1\r\nTransfer-Encoding1: chunked\r\n\r\n",
          HEAD_ERR("501", "Not Implemented", "16"), HTTP_ERR_PROTOCOL, 0);
    CHECK("GET /a HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
          "GET /b HTTP/1.1\r\n\r\n",
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/a\n",
          HTTP_CLOSE, 1);
    CHECK("GET /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
          HEAD_OK("30") "\r\n\r\n" PREFIX "hi\n", HTTP_OK, 1);
    /* An empty line between requests, a fragment, a byte outside the plain
     * sets in a value (obs-text) and an HTTP/1.0 request. */
    CHECK("GET /a HTTP/1.1\r\n\r\n\r\nGET /b#f HTTP/1.1\r\nX: \xe9\r\n\r\n"
          "GET /c HTTP/1.0\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
          HEAD_OK("32") "\r\n\r\n" PREFIX "/b#f\n"
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/c\n",
          HTTP_CLOSE, 3);
}

static void test_modes(void **state)
{
    (void)state;
    static const char in[] = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\naBc!";
    check(REPLY_ECHO, 65536, in, sizeof(in) - 1,
          HEAD_OK("5") "\r\n\r\naBc!\n", HTTP_OK, 1);
    check(REPLY_UPPER, 65536, in, sizeof(in) - 1,
          HEAD_OK("5") "\r\n\r\nABC!\n", HTTP_OK, 1);
}

static void test_400(void **state)
{
    (void)state;
    const char *want = HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
                       HEAD_ERR("400", "Bad Request", "12");
    CHECK("GET /a HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n", want, HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: "
          "chunked\r\nContent-Length: 3\r\n\r\nabc", want, HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX: a\rb\r\n\r\n", want,
          HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\rX: 1\r\n\r\n", want,
          HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: "
          "chunked\r\n\r\nzz\r\n", want, HTTP_ERR_PROTOCOL, 1);
}

static void test_413(void **state)
{
    (void)state;
    const char *want = HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
                       HEAD_ERR("413", "Content Too Large", "18");
    static const char cl[] = "GET /a HTTP/1.1\r\n\r\n"
                             "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    check(REPLY_STAMP, 10, cl, sizeof(cl) - 1, want, HTTP_ERR_LIMIT, 1);
    static const char ch[] = "GET /a HTTP/1.1\r\n\r\n"
                             "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                             "\r\n6\r\nabcdef\r\n5\r\nghijk\r\n";
    check(REPLY_STAMP, 10, ch, sizeof(ch) - 1, want, HTTP_ERR_LIMIT, 1);
    /* Exactly max_body is fine. */
    static const char ok[] = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
                             "0123456789";
    check(REPLY_STAMP, 10, ok, sizeof(ok) - 1,
          HEAD_OK("38") "\r\n\r\n" PREFIX "0123456789\n", HTTP_OK, 1);
}

/* A request head of exactly `size` bytes: request line, one padded header
 * field, the empty line. */
static char *head_of(size_t size, size_t *len)
{
    static const char start[] = "GET /h HTTP/1.1\r\nX-Pad: ";
    char *r = malloc(size + 32);
    size_t pad = size - (sizeof(start) - 1) - 4;
    memcpy(r, start, sizeof(start) - 1);
    memset(r + sizeof(start) - 1, 'p', pad);
    memcpy(r + sizeof(start) - 1 + pad, "\r\n\r\n", 4);
    *len = size;
    return r;
}

static void test_431(void **state)
{
    (void)state;
    size_t n;
    /* The limit holds for the second request of a connection too. */
    char *ok = head_of(HTTP_REQUEST_HEAD_MAX, &n);
    char *two = malloc(2 * n);
    memcpy(two, ok, n);
    memcpy(two + n, ok, n);
    const char *w1 = HEAD_OK("30") "\r\n\r\n" PREFIX "/h\n";
    char want[512];
    snprintf(want, sizeof(want), "%s%s", w1, w1);
    check(REPLY_STAMP, 65536, two, 2 * n, want, HTTP_OK, 2);
    free(two);
    free(ok);

    char *big = head_of(HTTP_REQUEST_HEAD_MAX + 1, &n);
    check(REPLY_STAMP, 65536, big, n,
          HEAD_ERR("431", "Request Header Fields Too Large", "32"),
          HTTP_ERR_LIMIT, 0);
    free(big);
}

static void test_501(void **state)
{
    (void)state;
    CHECK("GET /a HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: gzip"
          "\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
          HEAD_ERR("501", "Not Implemented", "16"), HTTP_ERR_PROTOCOL, 1);
    CHECK("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
          HEAD_ERR("501", "Not Implemented", "16"), HTTP_ERR_PROTOCOL, 0);
}

static void test_505(void **state)
{
    (void)state;
    CHECK("GET /a HTTP/1.1\r\n\r\nGET / HTTP/2.0\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
          HEAD_ERR("505", "HTTP Version Not Supported", "27"),
          HTTP_ERR_PROTOCOL, 1);
}

/* CONNECT asks for a tunnel: what follows its head is not HTTP and has no
 * framing we could know, so it is refused with 501 and nothing after it is
 * parsed; the requests before it are answered first. */
static void test_connect_501(void **state)
{
    (void)state;
    const char *want = HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
                       HEAD_ERR("501", "Not Implemented", "16");
    CHECK("GET /a HTTP/1.1\r\n\r\nCONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n"
          "GET /b HTTP/1.1\r\n\r\n", want, HTTP_ERR_PROTOCOL, 1);
    /* A Content-Length on CONNECT does not make its "body" a request. */
    CHECK("GET /a HTTP/1.1\r\n\r\nCONNECT h:1 HTTP/1.1\r\nContent-Length: 19"
          "\r\n\r\nGET /b HTTP/1.1\r\n\r\n", want, HTTP_ERR_PROTOCOL, 1);
}

/* An Upgrade request is answered as an ordinary one (the protocol does not
 * switch), with Connection: close: whatever the client sends next may be
 * the other protocol and is never read as a request. */
static void test_upgrade_answered_then_close(void **state)
{
    (void)state;
    CHECK("GET /a HTTP/1.1\r\n\r\n"
          "GET /u HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
          "GET /smuggled HTTP/1.1\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
          HEAD_OK("30") "\r\nConnection: close\r\n\r\n" PREFIX "/u\n",
          HTTP_CLOSE, 2);
    /* Its body is framed as usual and answered; nothing after it is. */
    CHECK("POST /u HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
          "Content-Length: 5\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n",
          HEAD_OK("33") "\r\nConnection: close\r\n\r\n" PREFIX "hello\n",
          HTTP_CLOSE, 1);
    CHECK("POST /u HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
          "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
          "GET /smuggled HTTP/1.1\r\n\r\n",
          HEAD_OK("31") "\r\nConnection: close\r\n\r\n" PREFIX "abc\n",
          HTTP_CLOSE, 1);
    /* Upgrade without "Connection: upgrade" is no upgrade request. */
    CHECK("GET /a HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
          HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
          HEAD_OK("30") "\r\n\r\n" PREFIX "/b\n", HTTP_OK, 2);
}

/* RFC 9112 section 5.1: no whitespace between a field name and the colon;
 * a field name is a token, so no whitespace inside it either. */
static void test_space_before_colon_400(void **state)
{
    (void)state;
    const char *want = HEAD_OK("30") "\r\n\r\n" PREFIX "/a\n"
                       HEAD_ERR("400", "Bad Request", "12");
    CHECK("GET /a HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding : "
          "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", want, HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length  : 3\r\n"
          "\r\nabc", want, HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nX Y: 1\r\n\r\n", want,
          HTTP_ERR_PROTOCOL, 1);
    CHECK("GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX\t: 1\r\n\r\n",
          want, HTTP_ERR_PROTOCOL, 1);
}

static void test_dead_after_error(void **state)
{
    (void)state;
    struct http_env e = env_mode(REPLY_STAMP, 100);
    struct out *o = calloc(1, sizeof(*o));
    struct http_conn *h = http_new();
    struct http_sink sink = { t_reserve, t_commit, o };
    size_t used, reqs;
    static const char bad[] = "BAD\r\n\r\n";
    static const char good[] = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(http_feed(h, &e, bad, sizeof(bad) - 1, &sink, &used,
                               &reqs), HTTP_ERR_PROTOCOL);
    size_t len = o->len;
    assert_int_equal(http_feed(h, &e, good, sizeof(good) - 1, &sink, &used,
                               &reqs), HTTP_ERR_PROTOCOL);
    assert_int_equal(used, sizeof(good) - 1);
    assert_int_equal(reqs, 0);
    assert_int_equal(o->len, len);
    http_free(h);
    free(o);
}

static void test_pause(void **state)
{
    (void)state;
    struct http_env e = env_mode(REPLY_STAMP, 100);
    struct out *o = calloc(1, sizeof(*o));
    struct http_conn *h = http_new();
    struct http_sink sink = { t_reserve, t_commit, o };
    static const char in[] = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    size_t used, reqs;
    o->pause_after = 1;
    assert_int_equal(http_feed(h, &e, in, sizeof(in) - 1, &sink, &used, &reqs),
                     HTTP_PAUSE);
    assert_int_equal(used, 19);
    assert_int_equal(reqs, 1);
    assert_false(http_partial(h));
    o->pause_after = 0;
    assert_int_equal(http_feed(h, &e, in + used, sizeof(in) - 1 - used, &sink,
                               &used, &reqs), HTTP_OK);
    assert_int_equal(reqs, 1);
    assert_string_equal(o->buf + o->len - 3, "/2\n");
    http_free(h);
    free(o);
}

static void test_partial_and_nomem(void **state)
{
    (void)state;
    struct http_env e = env_mode(REPLY_STAMP, 100);
    struct out *o = calloc(1, sizeof(*o));
    struct http_conn *h = http_new();
    struct http_sink sink = { t_reserve, t_commit, o };
    size_t used, reqs;
    static const char in[] = "GET / HTTP/1.1\r\n";
    assert_int_equal(http_feed(h, &e, in, sizeof(in) - 1, &sink, &used, &reqs),
                     HTTP_OK);
    assert_true(http_partial(h));
    o->fail = 1;
    assert_int_equal(http_feed(h, &e, "\r\n", 2, &sink, &used, &reqs),
                     HTTP_NOMEM);
    assert_int_equal(o->len, 0);
    http_free(h);
    free(o);
}

static void test_large_body_heap(void **state)
{
    (void)state;
    /* A body past the inline buffer, then a small one on the same state. */
    size_t blen = 5000;
    char *in = malloc(blen + 200);
    int k = sprintf(in, "POST / HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", blen);
    memset(in + k, 'b', blen);
    k += (int)blen;
    k += sprintf(in + k, "GET /s HTTP/1.1\r\n\r\n");
    struct http_env e = env_mode(REPLY_ECHO, 65536);
    struct out *o = calloc(1, sizeof(*o));
    struct http_conn *h = http_new();
    size_t reqs;
    assert_int_equal(feed_steps(h, &e, o, in, (size_t)k, 0, &reqs), HTTP_OK);
    assert_int_equal(reqs, 2);
    assert_int_equal(http_held(h), 0); /* the big buffer was dropped */
    assert_memory_equal(o->buf + o->len - 3, "/s\n", 3);
    http_free(h);
    free(o);
    free(in);
}

static void test_status_code(void **state)
{
    (void)state;
    assert_int_equal(http_status_code("HTTP/1.1 200 OK\r\n", 17), 200);
    assert_int_equal(http_status_code("HTTP/1.0 503 ", 13), 503);
    assert_int_equal(http_status_code("HTTP/1.1 404", 12), 404);
    assert_int_equal(http_status_code("HTTP/1.1 40", 11), -1);
    assert_int_equal(http_status_code("HTTP/2.0 200 OK", 15), -1);
    assert_int_equal(http_status_code("HTTP/1.1  200 OK", 16), -1);
    assert_int_equal(http_status_code("HTTP/1.1 2x0 OK", 15), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_target_raw),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_empty_body_uses_target),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_plain_requests),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_400),
        cmocka_unit_test(test_413),
        cmocka_unit_test(test_431),
        cmocka_unit_test(test_501),
        cmocka_unit_test(test_505),
        cmocka_unit_test(test_connect_501),
        cmocka_unit_test(test_upgrade_answered_then_close),
        cmocka_unit_test(test_space_before_colon_400),
        cmocka_unit_test(test_dead_after_error),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_partial_and_nomem),
        cmocka_unit_test(test_large_body_heap),
        cmocka_unit_test(test_status_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
