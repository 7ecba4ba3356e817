/*
 * ring.c - the per-connection output ring (see ring.h for the contract).
 *
 * Invariants: cap is 0 (buf NULL, head == len == 0) or at most RING_MAX_CAP;
 * head < cap and len <= cap while allocated.  The tail offset is head + len
 * reduced once by cap (both are below 2^31, so the sum cannot overflow).
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static uint32_t tail_offset(const struct ring *r)
{
    uint32_t t = r->head + r->len;
    return t >= r->cap ? t - r->cap : t;
}

/* The capacity growth picks for `need` bytes under `limit` (need <= limit). */
static size_t grown_cap(size_t cap, size_t need, size_t limit)
{
    cap = cap ? cap : RING_MIN_CAP;
    while (cap < need && cap < limit)
        cap *= 2;
    return cap > limit ? limit : cap;
}

/* The slow half of ring_reserve(): allocate a buffer big enough for
 * used + n bytes and linearise the contents into it (head becomes 0), so
 * that the next writer sees the longest possible contiguous tail.  A fresh
 * buffer rather than realloc(): realloc would copy the wrapped layout and we
 * would move the bytes a second time. */
static int ring_grow(struct ring *r, size_t n, size_t limit)
{
    uint32_t used = r->len;

    if (limit > RING_MAX_CAP)
        limit = RING_MAX_CAP;
    if (n > limit || used > limit - n)
        return -ENOBUFS;

    size_t cap = grown_cap(r->cap, used + n, limit);
    char *nbuf = malloc(cap);
    if (!nbuf)
        return -ENOMEM;
    if (used) {
        uint32_t first = r->cap - r->head;
        if (first > used)
            first = used;
        memcpy(nbuf, r->buf + r->head, first);
        memcpy(nbuf + first, r->buf, used - first);
    }
    free(r->buf);
    r->buf = nbuf;
    r->cap = (uint32_t)cap;
    r->head = 0;
    return 0;
}

int ring_reserve(struct ring *r, size_t n, size_t limit)
{
    if (n <= ring_free_space(r))
        return 0;
    return ring_grow(r, n, limit);
}

/* With ring_reserve(r, n) done, the free space is at least n.  If the
 * pending bytes wrap, the free space is the one run [tail, head) and fits;
 * otherwise its first run is [tail, cap).  The empty, unallocated ring has
 * t == 0 == cap and yields buf + 0 == NULL only for n == 0. */
char *ring_tail_contig(struct ring *r, size_t n)
{
    uint32_t t = tail_offset(r);
    uint32_t run = t < r->head || (t == r->head && r->len) ? r->head - t
                                                           : r->cap - t;
    return n <= run ? r->buf + t : NULL;
}

void ring_produce(struct ring *r, size_t n)
{
    stampd_assert(n <= ring_free_space(r));
    r->len += (uint32_t)n;
}

void ring_append(struct ring *r, const void *src, size_t n)
{
    if (n == 0) /* buf may be NULL: memcpy's arguments must not be */
        return;
    stampd_assert(n <= ring_free_space(r));
    uint32_t t = tail_offset(r);
    size_t first = r->cap - t;
    if (first > n)
        first = n;
    memcpy(r->buf + t, src, first);
    memcpy(r->buf, (const char *)src + first, n - first);
    r->len += (uint32_t)n;
}

int ring_iov(const struct ring *r, struct iovec iov[2])
{
    if (r->len == 0)
        return 0;
    uint32_t first = r->cap - r->head;
    iov[0].iov_base = r->buf + r->head;
    if (r->len <= first) {
        iov[0].iov_len = r->len;
        return 1;
    }
    iov[0].iov_len = first;
    iov[1].iov_base = r->buf;
    iov[1].iov_len = r->len - first;
    return 2;
}

void ring_consume(struct ring *r, size_t n)
{
    stampd_assert(n <= r->len);
    r->len -= (uint32_t)n;
    if (r->len == 0) {
        ring_release(r);
        return;
    }
    r->head += (uint32_t)n;
    if (r->head >= r->cap)
        r->head -= r->cap;
}

void ring_release(struct ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->head = 0;
    r->len = 0;
}
