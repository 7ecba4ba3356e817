/*
 * ring.c - the per-connection output ring (see ring.h for the contract).
 *
 * Invariants: cap is 0 (buf NULL, head == tail == 0) or a power of two no
 * larger than RING_MAX_CAP; 0 <= tail - head <= cap in uint32 arithmetic.
 * Indexes run free and wrap at 2^32; since cap divides 2^32, `idx & (cap-1)`
 * stays the right slot across that wrap.
 */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The largest capacity a uint32 used count can describe unambiguously
 * (tail - head must be able to reach cap), and ring_pow2()'s domain. */
#define RING_MAX_CAP (1u << 31)

uint32_t ring_pow2(size_t n)
{
    if (n <= 1)
        return 1;
    return 1u << (32 - __builtin_clz((uint32_t)(n - 1)));
}

/* The slow half of ring_reserve(): allocate a buffer big enough for
 * used + n bytes and linearise the contents into it (head becomes 0), so
 * that the next writer sees the longest possible contiguous tail.  A fresh
 * buffer rather than realloc(): realloc would copy the wrapped layout and we
 * would move the bytes a second time. */
static int ring_grow(struct ring *r, size_t n, size_t limit)
{
    uint32_t used = ring_used(r);

    if (limit > RING_MAX_CAP)
        limit = RING_MAX_CAP;
    if (n > limit || used > limit - n)
        return -ENOBUFS;

    uint32_t cap = ring_pow2(used + n);
    if (cap < RING_MIN_CAP && RING_MIN_CAP <= limit)
        cap = RING_MIN_CAP;
    if (cap > limit) /* only when `limit` is not a power of two */
        return -ENOBUFS;

    char *nbuf = malloc(cap);
    if (!nbuf)
        return -ENOMEM;
    if (used) {
        uint32_t h = r->head & (r->cap - 1);
        uint32_t first = r->cap - h;
        if (first > used)
            first = used;
        memcpy(nbuf, r->buf + h, first);
        memcpy(nbuf + first, r->buf, used - first);
    }
    free(r->buf);
    r->buf = nbuf;
    r->cap = cap;
    r->head = 0;
    r->tail = used;
    return 0;
}

int ring_reserve(struct ring *r, size_t n, size_t limit)
{
    if (n <= ring_free_space(r))
        return 0;
    return ring_grow(r, n, limit);
}

/* With ring_reserve(r, n) done, the free space is at least n; if the
 * pending bytes wrap it is one run [tail, head) and cap - t >= n holds
 * trivially, otherwise its first run is [tail, cap).  So one comparison
 * decides.  The empty, unallocated ring has t == 0 == cap and yields
 * buf + 0 == NULL only for n == 0. */
char *ring_tail_contig(struct ring *r, size_t n)
{
    uint32_t t = r->tail & (r->cap - 1);
    return n <= r->cap - t ? r->buf + t : NULL;
}

void ring_produce(struct ring *r, size_t n)
{
    r->tail += (uint32_t)n;
}

void ring_append(struct ring *r, const void *src, size_t n)
{
    if (n == 0) /* buf may be NULL: memcpy's arguments must not be */
        return;
    uint32_t t = r->tail & (r->cap - 1);
    size_t first = r->cap - t;
    if (first > n)
        first = n;
    memcpy(r->buf + t, src, first);
    memcpy(r->buf, (const char *)src + first, n - first);
    r->tail += (uint32_t)n;
}

int ring_iov(const struct ring *r, struct iovec iov[2])
{
    uint32_t used = ring_used(r);
    if (used == 0)
        return 0;
    uint32_t h = r->head & (r->cap - 1);
    uint32_t first = r->cap - h;
    iov[0].iov_base = r->buf + h;
    if (used <= first) {
        iov[0].iov_len = used;
        return 1;
    }
    iov[0].iov_len = first;
    iov[1].iov_base = r->buf;
    iov[1].iov_len = used - first;
    return 2;
}

void ring_consume(struct ring *r, size_t n)
{
    r->head += (uint32_t)n;
    if (r->head == r->tail)
        ring_release(r);
}

void ring_release(struct ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
    r->head = 0;
    r->tail = 0;
}
