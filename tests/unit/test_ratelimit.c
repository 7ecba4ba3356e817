/*
 * test_ratelimit.c - the log-line limiter: the burst, the summary when a
 * window ends (from the next line or from the timer, reported once), the
 * timer's due time and the summary text.
 */
#include "unit.h"

#include <string.h>

#include "ratelimit.h"

static void test_burst_then_summary(void **state)
{
    (void)state;
    struct ratelimit rl;
    uint64_t sum;
    ratelimit_init(&rl, 10, 0);
    assert_int_equal(rl.window_ms, RATELIMIT_WINDOW_MS);
    /* 25 lines within the first second: 10 pass, 15 are dropped. */
    int passed = 0;
    for (int i = 0; i < 25; i++) {
        passed += ratelimit_allow(&rl, 5000 + (uint64_t)i * 10, &sum);
        assert_int_equal(sum, 0);
    }
    assert_int_equal(passed, 10);
    /* 999 ms after the window opened it is still open. */
    assert_int_equal(ratelimit_allow(&rl, 5999, &sum), 0);
    assert_int_equal(sum, 0);
    /* At 1000 ms a new window: the line passes, the summary comes first. */
    assert_int_equal(ratelimit_allow(&rl, 6000, &sum), 1);
    assert_int_equal(sum, 16);
    /* Reported once. */
    assert_int_equal(ratelimit_allow(&rl, 6001, &sum), 1);
    assert_int_equal(sum, 0);
}

static void test_quiet_window_no_summary(void **state)
{
    (void)state;
    struct ratelimit rl;
    uint64_t sum;
    ratelimit_init(&rl, 3, 1000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ratelimit_allow(&rl, 100, &sum), 1);
    assert_int_equal(ratelimit_allow(&rl, 5000, &sum), 1);
    assert_int_equal(sum, 0);
}

static void test_flush_from_timer(void **state)
{
    (void)state;
    struct ratelimit rl;
    uint64_t sum;
    ratelimit_init(&rl, 2, 1000);
    assert_int_equal(ratelimit_due(&rl, 0), 0);
    for (int i = 0; i < 7; i++)
        ratelimit_allow(&rl, 200, &sum);
    assert_int_equal(ratelimit_due(&rl, 200), 1000);
    assert_int_equal(ratelimit_due(&rl, 700), 500);
    assert_int_equal(ratelimit_flush(&rl, 1199), 0);
    assert_int_equal(ratelimit_due(&rl, 1200), 0);
    assert_int_equal(ratelimit_flush(&rl, 1200), 5);
    /* Once: neither a second flush nor the next line repeats it. */
    assert_int_equal(ratelimit_flush(&rl, 1300), 0);
    assert_int_equal(ratelimit_allow(&rl, 1300, &sum), 1);
    assert_int_equal(sum, 0);
    assert_int_equal(ratelimit_due(&rl, 1300), 1000);
}

static void test_long_flood(void **state)
{
    (void)state;
    /* 100 lines a second for 10 s at 10 per second: per window 10 pass,
     * and each later window reports the 90 its predecessor dropped. */
    struct ratelimit rl;
    uint64_t sum, total_sum = 0;
    int passed = 0, summaries = 0;
    ratelimit_init(&rl, 10, 1000);
    for (uint64_t t = 0; t < 10000; t += 10) {
        passed += ratelimit_allow(&rl, t, &sum);
        if (sum) {
            assert_int_equal(sum, 90);
            summaries++;
            total_sum += sum;
        }
    }
    total_sum += ratelimit_flush(&rl, 10000);
    assert_int_equal(passed, 100);
    assert_int_equal(summaries, 9);
    assert_int_equal(passed + (int)total_sum, 1000);
}

static void test_zero_burst_and_clock_backwards(void **state)
{
    (void)state;
    struct ratelimit rl;
    uint64_t sum;
    ratelimit_init(&rl, 0, 1000);
    assert_int_equal(ratelimit_allow(&rl, 50, &sum), 0);
    assert_int_equal(ratelimit_allow(&rl, 60, &sum), 0);
    assert_int_equal(ratelimit_flush(&rl, 1050), 2);
    /* A time before the window's start keeps the window. */
    ratelimit_init(&rl, 1, 1000);
    assert_int_equal(ratelimit_allow(&rl, 5000, &sum), 1);
    assert_int_equal(ratelimit_allow(&rl, 10, &sum), 0);
    assert_int_equal(sum, 0);
    assert_int_equal(ratelimit_due(&rl, 10), 1000);
    assert_int_equal(ratelimit_flush(&rl, 6000), 1);
}

static void test_format(void **state)
{
    (void)state;
    char buf[RATELIMIT_SUMMARY_MAX];
    assert_int_equal(ratelimit_format(buf, sizeof(buf), 15), 27);
    assert_string_equal(buf, "15 similar lines suppressed");
    ratelimit_format(buf, sizeof(buf), 1);
    assert_string_equal(buf, "1 similar line suppressed");
    int n = ratelimit_format(buf, sizeof(buf), UINT64_MAX);
    assert_true(n < (int)sizeof(buf));
    assert_string_equal(buf, "18446744073709551615 similar lines suppressed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_summary),
        cmocka_unit_test(test_quiet_window_no_summary),
        cmocka_unit_test(test_flush_from_timer),
        cmocka_unit_test(test_long_flood),
        cmocka_unit_test(test_zero_burst_and_clock_backwards),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
