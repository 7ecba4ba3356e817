/*
 * test_hist.c - the log-linear histogram index (include/hist.h): index,
 * lower and upper bound agree for sub_bits 2 (the server) and 7
 * (stampbench) over every bucket and over edge and random values.
 */

#include "unit.h"
#include "hist.h"

static const unsigned sub_bits_list[] = { 2, 7 };

/* v lies in its bucket's bounds. */
static void check_value(uint64_t v, unsigned sb)
{
    unsigned i = hist_index(v, sb);
    uint64_t lo = hist_lower(i, sb), hi = hist_upper(i, sb);

    if (v < lo || v > hi)
        fail_msg("sub_bits %u: %llu in bucket %u [%llu, %llu]", sb,
                 (unsigned long long)v, i, (unsigned long long)lo,
                 (unsigned long long)hi);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        unsigned sb = sub_bits_list[k];
        /* Below 2^sub_bits, and on to 2^(sub_bits+1), buckets are one wide. */
        for (uint64_t v = 0; v < ((uint64_t)2 << sb); v++) {
            assert_int_equal(hist_index(v, sb), v);
            assert_int_equal(hist_lower((unsigned)v, sb), v);
            assert_int_equal(hist_upper((unsigned)v, sb), v);
        }
    }
    /* sub_bits 2 by hand: 8,9 -> 8; 10,11 -> 9; 12,13 -> 10; 14,15 -> 11;
     * 16..19 -> 12. */
    assert_int_equal(hist_index(8, 2), 8);
    assert_int_equal(hist_index(9, 2), 8);
    assert_int_equal(hist_index(10, 2), 9);
    assert_int_equal(hist_index(15, 2), 11);
    assert_int_equal(hist_index(16, 2), 12);
    assert_int_equal(hist_index(19, 2), 12);
    assert_int_equal(hist_index(20, 2), 13);
    assert_int_equal(hist_lower(13, 2), 20);
    assert_int_equal(hist_upper(13, 2), 23);
}

/* Every bucket: bounds round-trip through hist_index, buckets tile the
 * uint64 range without gaps, and a bucket is at most 1/2^sub_bits of its
 * lower bound wide. */
static void test_every_bucket(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        unsigned sb = sub_bits_list[k];
        unsigned last = hist_index(UINT64_MAX, sb);
        uint64_t sub = (uint64_t)1 << sb;

        assert_int_equal(last, (65 - sb) * sub - 1);   /* 251 and 7423 */
        assert_int_equal(hist_lower(0, sb), 0);
        assert_int_equal(hist_upper(last, sb), UINT64_MAX);
        for (unsigned i = 0; i <= last; i++) {
            uint64_t lo = hist_lower(i, sb), hi = hist_upper(i, sb);
            assert_true(lo <= hi);
            assert_int_equal(hist_index(lo, sb), i);
            assert_int_equal(hist_index(hi, sb), i);
            if (i < last) {
                assert_int_equal(hist_lower(i + 1, sb), hi + 1);
            }
            if (i >= sub) {
                assert_true((hi - lo + 1) * sub <= lo);
            }
        }
    }
}

static void test_edge_and_random_values(void **state)
{
    (void)state;
    uint64_t seed = 0x415;

    for (size_t k = 0; k < 2; k++) {
        unsigned sb = sub_bits_list[k];
        unsigned prev = 0;

        check_value(0, sb);
        check_value(UINT64_MAX, sb);
        check_value(UINT64_MAX - 1, sb);
        for (unsigned b = 0; b < 64; b++) {
            uint64_t p = (uint64_t)1 << b;
            check_value(p - 1, sb);
            check_value(p, sb);
            check_value(p + 1, sb);
            /* Monotonic across the power of two. */
            assert_true(hist_index(p - 1, sb) <= hist_index(p, sb));
            assert_true(hist_index(p, sb) <= hist_index(p + 1, sb));
            assert_true(hist_index(p, sb) >= prev);
            prev = hist_index(p, sb);
            /* A power of two starts a bucket. */
            assert_int_equal(hist_lower(hist_index(p, sb), sb), p);
        }
        for (int n = 0; n < 100000; n++) {
            uint64_t v = unit_rand(&seed) >> (unit_rand(&seed) % 64);
            check_value(v, sb);
            if (v > 0)
                assert_true(hist_index(v - 1, sb) <= hist_index(v, sb));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_every_bucket),
        cmocka_unit_test(test_edge_and_random_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
