/*
 * ring.h - the per-connection output ring: the back-pressure path.
 *
 * Replies normally never touch a ring: conn.c writes them straight from the
 * worker's staging buffer.  Only the bytes the kernel refuses are copied
 * here, and while a ring holds bytes every later reply of its connection is
 * appended behind them, so order holds.
 *
 * Layout: `head` is the offset of the next byte to send (0 <= head < cap),
 * `len` the number of pending bytes, which run from head to the end of the
 * buffer and continue at offset 0.  The capacity need not be a power of two:
 * the limit a caller passes (--max-output plus one reply) is the most the
 * ring may ever allocate, not a figure rounded up to the next power of two.
 *
 * The buffer exists only while bytes are pending: ring_reserve() allocates
 * or grows it on demand (doubling from RING_MIN_CAP, clamped to the limit),
 * and ring_consume() frees it when the last byte has been sent, so an idle
 * connection owns no output memory.  Pure memory code, no I/O: the caller
 * turns ring_iov() into one send() or sendmsg().
 */
#ifndef STAMPD_RING_H
#define STAMPD_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RING_MIN_CAP 4096u
/* The largest capacity (and limit) a ring accepts. */
#define RING_MAX_CAP (1u << 31)

struct ring {
    char *buf;     /* NULL while empty */
    uint32_t cap;  /* bytes allocated, 0 while empty */
    uint32_t head; /* offset of the oldest pending byte, < cap */
    uint32_t len;  /* pending bytes, <= cap */
};

static inline uint32_t ring_used(const struct ring *r) { return r->len; }
static inline uint32_t ring_free_space(const struct ring *r) { return r->cap - r->len; }
static inline int ring_empty(const struct ring *r) { return r->len == 0; }

/* Make room for n more bytes.  Growth doubles the capacity (at least
 * RING_MIN_CAP) until used + n fits, but never past `limit`: the last step
 * allocates exactly `limit` bytes.  Fails with -ENOBUFS if used + n exceeds
 * `limit`, -ENOMEM if allocation fails; the ring is unchanged then. */
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

#endif
