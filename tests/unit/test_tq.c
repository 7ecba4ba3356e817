/*
 * test_tq.c - the timeout queue (include/tq.h): touch order, expiry from
 * the head, timeout 0 = never, tq_next_ms, and a random model test.
 */
#include <string.h>

#include "unit.h"
#include "tq.h"

struct item {
    int id;
    struct tlink link;
};

static int id_of(const struct tlink *l)
{
    return tq_entry(l, struct item, link)->id;
}

/* The queue, head to tail, as ids; also checks the back links. */
static size_t order(const struct tqueue *q, int *ids, size_t max)
{
    size_t n = 0;
    const struct tlink *prev = &q->head;

    for (const struct tlink *l = q->head.next; l != &q->head; l = l->next) {
        assert_ptr_equal(l->prev, prev);
        assert_true(n < max);
        ids[n++] = id_of(l);
        prev = l;
    }
    assert_ptr_equal(q->head.prev, prev);
    return n;
}

#define ORDER_IS(q, ...) do {                                               \
        const int want_[] = { __VA_ARGS__ };                                \
        int got_[64];                                                       \
        size_t n_ = order((q), got_, 64);                                   \
        assert_int_equal(n_, sizeof(want_) / sizeof(want_[0]));             \
        assert_memory_equal(got_, want_, sizeof(want_));                    \
    } while (0)

static void test_touch_and_expire(void **state)
{
    (void)state;
    struct tqueue q;
    struct item it[4];

    memset(it, 0, sizeof(it));
    for (int i = 0; i < 4; i++)
        it[i].id = i;
    tq_init(&q, 1000);
    assert_null(tq_first(&q));
    assert_null(tq_expired(&q, 1000000));
    assert_int_equal(tq_next_ms(&q, 0), -1);
    assert_false(tq_queued(&it[0].link));

    tq_touch(&q, &it[0].link, 0);
    tq_touch(&q, &it[1].link, 10);
    tq_touch(&q, &it[2].link, 20);
    assert_true(tq_queued(&it[0].link));
    ORDER_IS(&q, 0, 1, 2);
    assert_int_equal(it[1].link.stamp, 10);

    /* Touch moves to the tail with the new stamp. */
    tq_touch(&q, &it[0].link, 30);
    ORDER_IS(&q, 1, 2, 0);
    assert_int_equal(it[0].link.stamp, 30);
    tq_touch(&q, &it[0].link, 30);      /* the tail touched again */
    ORDER_IS(&q, 1, 2, 0);
    tq_touch(&q, &it[2].link, 40);      /* the middle */
    ORDER_IS(&q, 1, 0, 2);

    /* Head stamp 10, timeout 1000: due at 1010 exactly. */
    assert_int_equal(tq_next_ms(&q, 500), 510);
    assert_int_equal(tq_next_ms(&q, 1009), 1);
    assert_null(tq_expired(&q, 1009));
    assert_int_equal(tq_next_ms(&q, 1010), 0);
    assert_ptr_equal(tq_expired(&q, 1010), &it[1].link);
    assert_int_equal(tq_next_ms(&q, 5000), 0);   /* overdue is 0, never negative */

    /* Expire from the head in stamp order until nothing is due. */
    int expired[4], n = 0;
    struct tlink *l;
    while ((l = tq_expired(&q, 1035)) != NULL) {
        assert_true(n < 4);
        expired[n++] = id_of(l);
        tq_remove(l);
        assert_false(tq_queued(l));
        assert_null(l->next);
        assert_null(l->prev);
    }
    assert_int_equal(n, 2);
    assert_int_equal(expired[0], 1);
    assert_int_equal(expired[1], 0);
    ORDER_IS(&q, 2);
    assert_int_equal(tq_next_ms(&q, 1035), 5);

    /* Removing twice, or a never-queued link, is harmless. */
    tq_remove(&it[1].link);
    tq_remove(&it[3].link);
    ORDER_IS(&q, 2);
    tq_remove(&it[2].link);
    assert_null(tq_first(&q));
    assert_int_equal(tq_next_ms(&q, 0), -1);
    assert_ptr_equal(q.head.next, &q.head);
    assert_ptr_equal(q.head.prev, &q.head);
}

static void test_never(void **state)
{
    (void)state;
    struct tqueue q;
    struct item a = { .id = 1 };

    for (int64_t t = -5; t <= 0; t += 5) {
        tq_init(&q, t);
        tq_touch(&q, &a.link, 0);
        assert_ptr_equal(tq_first(&q), &a.link);   /* members are kept */
        assert_null(tq_expired(&q, INT64_MAX / 2));
        assert_int_equal(tq_next_ms(&q, INT64_MAX / 2), -1);
        tq_remove(&a.link);
    }
}

/* Against a model: each item's last touch time and a global touch
 * sequence (not advanced by a touch at the stamp it has); the queue must
 * list queued items by (stamp, sequence). */
static void test_random_model(void **state)
{
    (void)state;
    enum { N = 32, OPS = 20000 };
    struct tqueue q;
    struct item it[N];
    uint64_t seq[N], clock_seq = 0, seed = 0x7a11;
    int queued[N];
    int64_t now = 0;
    const int64_t timeout = 50;

    memset(it, 0, sizeof(it));
    memset(queued, 0, sizeof(queued));
    for (int i = 0; i < N; i++)
        it[i].id = i;
    tq_init(&q, timeout);
    for (int op = 0; op < OPS; op++) {
        uint64_t x = unit_rand(&seed);
        int i = (int)(x % N);
        now += (int64_t)(x >> 32) % 4;
        switch ((x >> 8) % 4) {
        case 0:
        case 1:
            /* A member already stamped `now` keeps its place. */
            if (!queued[i] || it[i].link.stamp != now)
                seq[i] = ++clock_seq;
            tq_touch(&q, &it[i].link, now);
            queued[i] = 1;
            break;
        case 2:
            tq_remove(&it[i].link);
            queued[i] = 0;
            break;
        default: {
            struct tlink *l;
            while ((l = tq_expired(&q, now)) != NULL) {
                int id = id_of(l);
                assert_true(queued[id]);
                assert_true(now - l->stamp >= timeout);
                tq_remove(l);
                queued[id] = 0;
            }
            break;
        }
        }
        /* The order is by touch sequence (stamps never decrease with it),
         * and the head's deadline is what tq_next_ms says. */
        int ids[N];
        size_t n = order(&q, ids, N), want_n = 0;
        for (int k = 0; k < N; k++)
            want_n += (size_t)queued[k];
        assert_int_equal(n, want_n);
        for (size_t k = 1; k < n; k++) {
            assert_true(seq[ids[k - 1]] < seq[ids[k]]);
            assert_true(it[ids[k - 1]].link.stamp <= it[ids[k]].link.stamp);
        }
        if (n == 0) {
            assert_int_equal(tq_next_ms(&q, now), -1);
        } else {
            int64_t left = it[ids[0]].link.stamp + timeout - now;
            assert_int_equal(tq_next_ms(&q, now), left < 0 ? 0 : left);
            assert_int_equal(tq_expired(&q, now) != NULL, left <= 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_touch_and_expire),
        cmocka_unit_test(test_never),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
