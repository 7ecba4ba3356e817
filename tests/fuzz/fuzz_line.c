/*
 * fuzz_line.c - the line framer against a reference.
 *
 * Input layout: byte 0 picks max_line (1..256), byte 1 seeds the split and
 * pause choices, the rest is the stream.  The stream is fed in random pieces,
 * the sink randomly asks to pause (the caller then stashes and re-feeds the
 * rest, as conn.c does), and the lines seen, the error and the final
 * fragment must equal what a one-pass reference computes from the whole
 * stream.  Any difference aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line.h"

struct rec {
    char *out;      /* every payload + "\n" or "\r\n" as delivered */
    size_t len, cap;
    uint32_t rng;
    int pauses;
};

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void put(struct rec *r, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        r->out = realloc(r->out, r->cap);
        if (!r->out)
            abort();
    }
    memcpy(r->out + r->len, p, n);
    r->len += n;
}

static int sink(void *ctx, const char *payload, size_t len, int crlf)
{
    struct rec *r = ctx;
    if (memchr(payload, '\n', len))
        abort();
    put(r, payload, len);
    put(r, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
    if ((next_rand(&r->rng) & 7) == 0) {
        r->pauses++;
        return LINE_PAUSE;
    }
    return LINE_OK;
}

/* The reference: the whole stream in one pass.  Returns 1 when a line is
 * too long (the output then holds the lines before it). */
static int reference(const char *d, size_t n, size_t max_line, struct rec *r)
{
    size_t pos = 0;
    while (pos < n) {
        const char *lf = memchr(d + pos, '\n', n - pos);
        if (!lf)
            break;
        size_t len = (size_t)(lf - (d + pos)) + 1;
        if (len > max_line)
            return 1;
        size_t plen = len - 1;
        int crlf = plen > 0 && d[pos + plen - 1] == '\r';
        put(r, d + pos, plen - (size_t)crlf);
        put(r, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
        pos += len;
    }
    if (n - pos >= max_line)
        return 1;
    if (n > pos) { /* the final fragment, answered at EOF with LF */
        put(r, d + pos, n - pos);
        put(r, "\n", 1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = (size_t)data[0] + 1;
    const char *d = (const char *)data + 2;
    size_t n = size - 2;
    struct rec got = { .rng = data[1] }, want = { 0 };
    struct line_buf lb = { 0 };
    int too_long = 0;

    size_t pos = 0;
    while (pos < n && !too_long) {
        size_t piece = 1 + next_rand(&got.rng) % (n - pos);
        char *chunk = malloc(piece);
        if (!chunk)
            abort();
        memcpy(chunk, d + pos, piece); /* ASan sees over-reads per piece */
        pos += piece;
        const char *cur = chunk;
        size_t left = piece;
        for (;;) {
            size_t consumed = 7777, lines = 7777;
            int rc = line_feed(&lb, cur, left, max_line, sink, &got,
                               &consumed, &lines);
            if (consumed > left)
                abort();
            if (rc == LINE_TOO_LONG) {
                too_long = 1;
                break;
            }
            if (rc == LINE_OK) {
                if (consumed != left)
                    abort();
                break;
            }
            if (rc != LINE_PAUSE || lines == 0)
                abort();
            /* Paused: no partial line is held; the rest is stashed, taken
             * back and framed again (conn.c's pause/resume). */
            if (lb.len != 0)
                abort();
            char *held;
            size_t hn;
            if (line_stash(&lb, cur + consumed, left - consumed) != 0)
                abort();
            line_take(&lb, &held, &hn);
            if (hn != left - consumed ||
                (hn && memcmp(held, cur + consumed, hn) != 0))
                abort();
            free(chunk);
            chunk = held;
            cur = held;
            left = hn;
            if (!hn)
                break;
        }
        free(chunk);
    }
    if (!too_long) {
        if (lb.len >= max_line)
            abort();
        int rc = line_finish(&lb, sink, &got);
        if (rc != LINE_OK && rc != LINE_PAUSE)
            abort();
    }
    line_release(&lb);

    int ref_too_long = reference(d, n, max_line, &want);
    if (ref_too_long != too_long || got.len != want.len ||
        (got.len && memcmp(got.out, want.out, got.len) != 0))
        abort();
    free(got.out);
    free(want.out);
    return 0;
}
