/*
 * test_ring.c - the output ring (src/ring.c): wrap, growth, the limit, the
 * send iovecs, freeing when drained, a limit that is not a power of two,
 * and a random model test against a plain byte queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "ring.h"

#define BIG_LIMIT ((size_t)1 << 20)

/* Byte i of a test stream: a pattern that never repeats within 251 bytes,
 * so a misplaced run cannot compare equal by accident. */
static char pat(uint64_t i)
{
    return (char)(i * 7 % 251);
}

static void fill(char *dst, uint64_t from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = pat(from + i);
}

/* The pattern from any start, for memcmp(): pat() has period 251. */
#define PAT_SPAN ((size_t)1 << 21)
static char pattern[251 + PAT_SPAN];

static const char *pat_at(uint64_t from)
{
    if (pattern[1] == 0)
        fill(pattern, 0, sizeof(pattern));
    return pattern + from % 251;
}

/* Append n pattern bytes numbered from `from`. */
static void put(struct ring *r, uint64_t from, size_t n, size_t limit)
{
    char *tmp = malloc(n ? n : 1);
    assert_non_null(tmp);
    fill(tmp, from, n);
    assert_int_equal(ring_reserve(r, n, limit), 0);
    ring_append(r, tmp, n);
    free(tmp);
}

/* The pending bytes, gathered from ring_iov(), must be the pattern from
 * `from`; returns the iovec count. */
static int check_contents(const struct ring *r, uint64_t from)
{
    struct iovec iov[2];
    int cnt = ring_iov(r, iov);
    size_t total = 0;
    uint64_t k = from;

    assert_in_range(cnt, 0, 2);
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        assert_true(iov[i].iov_len > 0);
        assert_true(p >= r->buf && p + iov[i].iov_len <= r->buf + r->cap);
        assert_true(iov[i].iov_len <= PAT_SPAN);
        if (memcmp(p, pat_at(k), iov[i].iov_len) != 0)
            fail_msg("iovec %d (%zu bytes) differs", i, iov[i].iov_len);
        k += iov[i].iov_len;
        total += iov[i].iov_len;
    }
    assert_int_equal(total, ring_used(r));
    return cnt;
}

static void test_empty_ring(void **state)
{
    (void)state;
    struct ring r = { 0 };
    struct iovec iov[2];

    assert_int_equal(ring_used(&r), 0);
    assert_int_equal(ring_free_space(&r), 0);
    assert_true(ring_empty(&r));
    assert_int_equal(ring_iov(&r, iov), 0);
    /* Reserving nothing allocates nothing. */
    assert_int_equal(ring_reserve(&r, 0, BIG_LIMIT), 0);
    assert_null(r.buf);
    ring_append(&r, "", 0);
    assert_null(r.buf);
    ring_consume(&r, 0);
    assert_null(r.buf);
    ring_release(&r);
    assert_null(r.buf);
}

static void test_alloc_and_free(void **state)
{
    (void)state;
    struct ring r = { 0 };
    struct iovec iov[2];

    assert_int_equal(ring_reserve(&r, 10, BIG_LIMIT), 0);
    assert_non_null(r.buf);
    assert_int_equal(r.cap, RING_MIN_CAP);  /* small replies share one size class */
    ring_append(&r, "0123456789", 10);
    assert_int_equal(ring_used(&r), 10);
    assert_int_equal(ring_free_space(&r), RING_MIN_CAP - 10);
    assert_int_equal(ring_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf);
    assert_int_equal(iov[0].iov_len, 10);
    assert_memory_equal(iov[0].iov_base, "0123456789", 10);

    /* A partial consume keeps the buffer and moves the head. */
    ring_consume(&r, 4);
    assert_non_null(r.buf);
    assert_int_equal(ring_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf + 4);
    assert_int_equal(iov[0].iov_len, 6);
    assert_memory_equal(iov[0].iov_base, "456789", 6);

    /* Draining frees it: an idle connection owns no output memory. */
    ring_consume(&r, 6);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);
    assert_int_equal(r.head, 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(ring_iov(&r, iov), 0);
}

/* Data that wraps gives two iovecs, the older part first. */
static void test_wrap(void **state)
{
    (void)state;
    const size_t lim = RING_MIN_CAP;  /* no growth: the ring must wrap */
    struct ring r = { 0 };
    struct iovec iov[2];

    put(&r, 0, 3000, lim);
    ring_consume(&r, 2000);
    assert_int_equal(check_contents(&r, 2000), 1);
    /* 1096 bytes fit before the end, 904 wrap to the start. */
    put(&r, 3000, 2000, lim);
    assert_int_equal(r.cap, 4096);
    assert_int_equal(ring_used(&r), 3000);
    assert_int_equal(ring_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, r.buf + 2000);
    assert_int_equal(iov[0].iov_len, 2096);
    assert_ptr_equal(iov[1].iov_base, r.buf);
    assert_int_equal(iov[1].iov_len, 904);
    assert_int_equal(check_contents(&r, 2000), 2);

    /* Fill to the brim: exactly cap bytes pending. */
    assert_int_equal(ring_free_space(&r), 1096);
    put(&r, 5000, 1096, lim);
    assert_int_equal(ring_used(&r), 4096);
    assert_int_equal(ring_free_space(&r), 0);
    assert_int_equal(check_contents(&r, 2000), 2);
    /* One more byte is over the limit. */
    assert_int_equal(ring_reserve(&r, 1, lim), -ENOBUFS);

    /* Consume across the end: the head wraps, one iovec again. */
    ring_consume(&r, 2500);
    assert_int_equal(check_contents(&r, 4500), 1);
    ring_consume(&r, 1596);
    assert_null(r.buf);
}

/* ring_tail_contig() gives a pointer exactly when n bytes fit before the
 * end of the buffer or the free space is one run; checked at every tail
 * position of a small ring. */
static void test_tail_contig(void **state)
{
    (void)state;
    const size_t lim = RING_MIN_CAP;

    for (uint32_t head = 0; head < RING_MIN_CAP; head += 37) {
        for (uint32_t used = 1; used < RING_MIN_CAP; used += 149) {
            struct ring r = { 0 };
            assert_int_equal(ring_reserve(&r, 1, lim), 0);
            r.head = head;
            put(&r, 0, used, lim);
            uint32_t t = (r.head + r.len) % r.cap;
            uint32_t h = r.head;
            int free_wraps = t >= h;  /* free space is [t, cap) + [0, h) */
            uint32_t fr = ring_free_space(&r);
            for (uint32_t n = 1; n <= fr; n += 1 + n / 3) {
                char *p = ring_tail_contig(&r, n);
                if (!free_wraps || n <= r.cap - t) {
                    assert_ptr_equal(p, r.buf + t);
                } else {
                    assert_null(p);
                }
            }
            /* The boundary itself when the free space wraps. */
            if (free_wraps && r.cap - t < fr) {
                assert_non_null(ring_tail_contig(&r, r.cap - t));
                assert_null(ring_tail_contig(&r, r.cap - t + 1));
            }
            /* Writing through the pointer then ring_produce() is the
             * same as ring_append(). */
            uint32_t room = free_wraps ? r.cap - t : fr;
            if (room > 0) {
                char *p = ring_tail_contig(&r, room);
                assert_non_null(p);
                fill(p, used, room);
                ring_produce(&r, room);
                check_contents(&r, 0);
            }
            ring_release(&r);
        }
    }
}

/* Growth doubles until the bytes fit and linearises the
 * pending bytes, so a wrapped ring comes out as one run at offset 0. */
static void test_growth(void **state)
{
    (void)state;
    struct ring r = { 0 };
    struct iovec iov[2];

    put(&r, 0, 3000, BIG_LIMIT);
    ring_consume(&r, 2500);
    put(&r, 3000, 3000, BIG_LIMIT);  /* wraps: 500 + 3000 in 4096 */
    assert_int_equal(r.cap, 4096);
    assert_int_equal(check_contents(&r, 2500), 2);

    /* 3500 used + 1500 = 5000 -> 8192, contents in order from offset 0. */
    assert_int_equal(ring_reserve(&r, 1500, BIG_LIMIT), 0);
    assert_int_equal(r.cap, 8192);
    assert_int_equal(r.head, 0);
    assert_int_equal(r.len, 3500);
    assert_int_equal(ring_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.buf);
    assert_int_equal(check_contents(&r, 2500), 1);
    /* A reserve that already fits changes nothing. */
    char *buf = r.buf;
    assert_int_equal(ring_reserve(&r, 8192 - 3500, BIG_LIMIT), 0);
    assert_ptr_equal(r.buf, buf);
    assert_int_equal(r.cap, 8192);

    /* used + n = 8193 -> 16384, not merely 2x if more is asked. */
    assert_int_equal(ring_reserve(&r, 8193 - 3500, BIG_LIMIT), 0);
    assert_int_equal(r.cap, 16384);
    assert_int_equal(ring_reserve(&r, 100000, BIG_LIMIT), 0);
    assert_int_equal(r.cap, 131072);
    assert_int_equal(check_contents(&r, 2500), 1);
    put(&r, 6000, 100000, BIG_LIMIT);
    assert_int_equal(check_contents(&r, 2500), 1);
    assert_int_equal(r.cap, 131072);
    ring_release(&r);
    assert_null(r.buf);

    /* One big first reply: doubled straight to a size that holds it. */
    assert_int_equal(ring_reserve(&r, 70000, BIG_LIMIT), 0);
    assert_int_equal(r.cap, 131072);
    ring_release(&r);
}

static void test_limit(void **state)
{
    (void)state;
    const size_t lim = 8192;
    struct ring r = { 0 };

    /* Bigger than the limit on an empty ring: refused, nothing allocated. */
    assert_int_equal(ring_reserve(&r, lim + 1, lim), -ENOBUFS);
    assert_null(r.buf);
    assert_int_equal(r.cap, 0);

    put(&r, 0, 5000, lim);
    ring_consume(&r, 1000);
    put(&r, 5000, 4000, lim);      /* 8000 used: grown to the limit */
    assert_int_equal(r.cap, lim);
    ring_consume(&r, 1000);
    put(&r, 9000, 1000, lim);      /* 8000 used again, now wrapped */
    assert_int_equal(ring_used(&r), 8000);
    assert_int_equal(check_contents(&r, 2000), 2);

    struct ring before = r;
    char *copy = malloc(r.cap);
    assert_non_null(copy);
    memcpy(copy, r.buf, r.cap);
    assert_int_equal(ring_reserve(&r, 193, lim), -ENOBUFS);
    assert_int_equal(ring_reserve(&r, SIZE_MAX, lim), -ENOBUFS);
    assert_int_equal(ring_reserve(&r, (size_t)UINT32_MAX + 1, (size_t)1 << 40), -ENOBUFS);
    /* Unchanged: the same buffer, indexes and bytes. */
    assert_ptr_equal(r.buf, before.buf);
    assert_int_equal(r.cap, before.cap);
    assert_int_equal(r.head, before.head);
    assert_int_equal(r.len, before.len);
    assert_memory_equal(r.buf, copy, r.cap);
    free(copy);
    assert_int_equal(check_contents(&r, 2000), 2);

    /* Exactly up to the limit is fine. */
    assert_int_equal(ring_reserve(&r, 192, lim), 0);
    put(&r, 10000, 192, lim);
    assert_int_equal(ring_used(&r), lim);
    assert_int_equal(check_contents(&r, 2000), 2);
    ring_release(&r);

    /* A limit below the minimum capacity: the ring stays within it. */
    assert_int_equal(ring_reserve(&r, 10, 1024), 0);
    assert_true(r.cap >= 10 && r.cap <= 1024);
    put(&r, 0, 10, 1024);
    put(&r, 10, 1014, 1024);
    assert_int_equal(r.cap, 1024);
    assert_int_equal(ring_reserve(&r, 1, 1024), -ENOBUFS);
    assert_int_equal(check_contents(&r, 0), 1);
    ring_release(&r);
}

/* A limit that is not a power of two is the most the ring allocates:
 * growth doubles, and its last step is exactly the limit.  Wrapping works
 * the same at that odd capacity. */
static void test_odd_limit(void **state)
{
    (void)state;
    const size_t lim = 10000;
    struct ring r = { 0 };
    struct iovec iov[2];

    put(&r, 0, 3000, lim);
    assert_int_equal(r.cap, 4096);
    put(&r, 3000, 3000, lim);           /* 6000: 8192 */
    assert_int_equal(r.cap, 8192);
    put(&r, 6000, 3000, lim);           /* 9000: clamped to 10000 */
    assert_int_equal(r.cap, lim);
    assert_int_equal(check_contents(&r, 0), 1);
    put(&r, 9000, 1000, lim);           /* exactly full */
    assert_int_equal(ring_free_space(&r), 0);
    assert_int_equal(ring_reserve(&r, 1, lim), -ENOBUFS);

    /* Consume most, then wrap around the odd end. */
    ring_consume(&r, 9990);
    assert_int_equal(r.head, 9990);
    put(&r, 10000, 500, lim);
    assert_int_equal(ring_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, r.buf + 9990);
    assert_int_equal(iov[0].iov_len, 10);
    assert_ptr_equal(iov[1].iov_base, r.buf);
    assert_int_equal(iov[1].iov_len, 500);
    assert_int_equal(check_contents(&r, 9990), 2);
    /* The free space after the wrap is one run [500, 9990). */
    assert_ptr_equal(ring_tail_contig(&r, 9490), r.buf + 500);
    assert_null(ring_tail_contig(&r, 9491));
    ring_consume(&r, 15);                /* the head wraps to offset 5 */
    assert_int_equal(r.head, 5);
    assert_int_equal(check_contents(&r, 10005), 1);
    ring_consume(&r, 495);
    assert_null(r.buf);

    /* A limit below the minimum capacity is the capacity. */
    put(&r, 0, 10, 777);
    assert_int_equal(r.cap, 777);
    ring_release(&r);
}

/* Random operations against a plain byte queue; starting some runs with
 * the head at a random offset, and using limits that are not powers of
 * two. */
static void test_random_model(void **state)
{
    (void)state;
    enum { RUNS = 200, OPS = 400 };
    uint64_t seed = 0x7269ee51ull;
    static char scratch[70000];

    for (int run = 0; run < RUNS; run++) {
        struct ring r = { 0 };
        uint64_t q_head = 0, q_tail = 0;  /* the model: pattern bytes [head, tail) */
        size_t lim = (size_t)4096 << (unit_rand(&seed) % 5);   /* 4k .. 64k */
        if (run % 3 == 0)
            lim += (size_t)(unit_rand(&seed) % 4000);

        if (run % 2) {
            assert_int_equal(ring_reserve(&r, 1, lim), 0);
            r.head = (uint32_t)(unit_rand(&seed) % r.cap);
        }
        for (int op = 0; op < OPS; op++) {
            uint64_t x = unit_rand(&seed);
            size_t used = (size_t)(q_tail - q_head);

            assert_int_equal(ring_used(&r), used);
            if (x % 3 != 0) {
                /* Produce 0..~lim/4 bytes, sometimes more than fits. */
                size_t n = (size_t)(unit_rand(&seed) % (lim / 3 + 2));
                struct ring before = r;
                int rc = ring_reserve(&r, n, lim);
                if (used + n > lim) {
                    assert_int_equal(rc, -ENOBUFS);
                    assert_ptr_equal(r.buf, before.buf);
                    assert_int_equal(r.head, before.head);
                    assert_int_equal(r.len, before.len);
                    assert_int_equal(r.cap, before.cap);
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_true(ring_free_space(&r) >= n);
                assert_true(r.cap <= lim);
                char *p = (x & 8) ? ring_tail_contig(&r, n) : NULL;
                if (p) {
                    fill(p, q_tail, n);
                    ring_produce(&r, n);
                } else {
                    fill(scratch, q_tail, n);
                    ring_append(&r, scratch, n);
                }
                q_tail += n;
            } else if (used > 0) {
                size_t n = (x & 16) ? used : (size_t)(unit_rand(&seed) % (used + 1));
                ring_consume(&r, n);
                q_head += n;
                if (q_head == q_tail) {
                    assert_null(r.buf);
                }
            }
            check_contents(&r, q_head);
        }
        ring_release(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_ring),
        cmocka_unit_test(test_alloc_and_free),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_tail_contig),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_odd_limit),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
