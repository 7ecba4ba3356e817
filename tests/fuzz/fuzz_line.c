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

#include "fuzz_util.h"
#include "line.h"

struct rec {
    struct fbuf out;  /* every payload + "\n" or "\r\n" as delivered */
    uint32_t rng;
    int pauses;
};

static void put(struct rec *r, const char *p, size_t n)
{
    fbuf_put(&r->out, p, n);
}

static int sink(void *ctx, const char *payload, size_t len, int crlf)
{
    struct rec *r = ctx;
    if (memchr(payload, '\n', len))
        abort();
    put(r, payload, len);
    put(r, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
    if ((fuzz_rand(&r->rng) & 7) == 0) {
        r->pauses++;
        return LINE_PAUSE;
    }
    return LINE_OK;
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
        size_t piece = 1 + fuzz_rand(&got.rng) % (n - pos);
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

    int ref_too_long = fuzz_echo_reference(d, n, max_line, &want.out);
    if (ref_too_long != too_long || !fbuf_equal(&got.out, &want.out))
        abort();
    free(got.out.p);
    free(want.out.p);
    return 0;
}
