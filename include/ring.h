/*
 * ring.h - the per-connection output ring.
 *
 * A power-of-two byte ring with free-running 32-bit indexes: `head` is where
 * the next byte to send is, `tail` where the next byte produced goes; the
 * used count is always tail - head (unsigned wrap-around does the rest) and
 * an index is reduced with `& (cap - 1)` only when memory is touched.
 *
 * The buffer exists only while bytes are pending: ring_reserve() allocates or
 * grows it on demand (doubling, so capacities stay on allocator size
 * classes), and ring_consume() frees it when the last byte has been sent, so
 * an idle connection owns no output memory.  Pure memory code, no I/O: the
 * caller turns ring_iov() into one writev().
 */
#ifndef STAMPD_RING_H
#define STAMPD_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RING_MIN_CAP 4096u

struct ring {
    char *buf;     /* NULL while empty */
    uint32_t cap;  /* 0 or a power of two */
    uint32_t head; /* consumer index (free-running) */
    uint32_t tail; /* producer index (free-running) */
};

static inline uint32_t ring_used(const struct ring *r) { return r->tail - r->head; }
static inline uint32_t ring_free_space(const struct ring *r) { return r->cap - ring_used(r); }
static inline int ring_empty(const struct ring *r) { return r->tail == r->head; }

/* Make room for n more bytes, growing to the next power of two that fits.
 * Fails with -ENOBUFS if that capacity would exceed `limit` (which must be
 * a power of two), -ENOMEM if allocation fails; the ring is unchanged then. */
int ring_reserve(struct ring *r, size_t n, size_t limit);

/* Pointer to n contiguous free bytes at the tail, or NULL if the free space
 * wraps before n bytes (the caller then builds elsewhere and ring_append()s).
 * Requires prior ring_reserve(r, n, ...).  Commit with ring_produce(). */
char *ring_tail_contig(struct ring *r, size_t n);
void ring_produce(struct ring *r, size_t n);

/* Copy n bytes in (wrapping as needed).  Requires ring_reserve(r, n, ...). */
void ring_append(struct ring *r, const void *src, size_t n);

/* Describe the pending bytes as at most two iovecs; returns how many (0 when
 * empty, 2 only when the data wraps). */
int ring_iov(const struct ring *r, struct iovec iov[2]);

/* Drop n sent bytes from the head (n <= used).  Frees the buffer when the
 * ring becomes empty. */
void ring_consume(struct ring *r, size_t n);

/* Free the buffer and forget the contents. */
void ring_release(struct ring *r);

/* Smallest power of two >= n (n <= 2^31); 0 maps to 1. */
uint32_t ring_pow2(size_t n);

#endif
