/*
 * fuzz_util.h - what every fuzz target shares: a growable byte buffer for
 * collected output and a tiny deterministic PRNG (the input seeds it, so a
 * crash replays exactly).
 */
#ifndef STAMPD_FUZZ_UTIL_H
#define STAMPD_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fbuf {
    char *p;
    size_t len, cap;
};

static inline void fbuf_put(struct fbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline int fbuf_equal(const struct fbuf *a, const struct fbuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static inline uint32_t fuzz_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* What --reply echo must answer to the stream d[0..n) under max_line,
 * computed in one pass: each complete line as it is (the echo of a payload
 * plus its own terminator), a final fragment plus LF.  Returns 1 when a line
 * is too long; out then holds the replies owed before it. */
static inline int fuzz_echo_reference(const char *d, size_t n, size_t max_line,
                                      struct fbuf *out)
{
    size_t pos = 0;
    while (pos < n) {
        const char *lf = memchr(d + pos, '\n', n - pos);
        if (!lf)
            break;
        size_t len = (size_t)(lf - (d + pos)) + 1;
        if (len > max_line)
            return 1;
        fbuf_put(out, d + pos, len);
        pos += len;
    }
    if (n - pos >= max_line)
        return 1;
    if (n > pos) {
        fbuf_put(out, d + pos, n - pos);
        fbuf_put(out, "\n", 1);
    }
    return 0;
}

#endif
