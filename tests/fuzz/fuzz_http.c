/*
 * fuzz_http.c - the HTTP handler (http.h) fed the same byte stream twice:
 * once whole, once in random pieces down to single bytes with random
 * back-pressure pauses (the rest re-fed, as the connection code does).
 * A push parser must not care where the reads split, so both runs must
 * write byte-identical responses, count the same requests and end in the
 * same state; every response must start with "HTTP/1.1 ".
 *
 * Input layout: byte 0 seeds the splits and pauses, byte 1 picks the reply
 * mode and max_body (--max-line), the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "http.h"

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
            if (consumed > end - pos)
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
    free(whole.b.p);
    free(split.b.p);
    return 0;
}
