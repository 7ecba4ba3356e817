/*
 * test_clocksync.c - the clock discipline reader and its evaluation:
 * adjtimex() answers chosen here (through a stand-in function), every
 * transition of the warning logic, and one reading of this machine's
 * kernel (printed, checked for sanity only: its values are the host's).
 */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

#include "clocksync.h"

static struct { int rc, err, status; long maxerror, esterror, offset; } fake;

static int fake_adjtimex(struct timex *tx)
{
    assert_int_equal(tx->modes, 0);    /* read only, never a change */
    if (fake.rc == -1) {
        errno = fake.err;
        return -1;
    }
    tx->status = fake.status;
    tx->maxerror = fake.maxerror;
    tx->esterror = fake.esterror;
    tx->offset = fake.offset;
    return fake.rc;
}

static struct clocksync_state read_fake(int rc, int status, long maxerr,
                                        long esterr, long offset)
{
    struct clocksync_state s;
    fake.rc = rc;
    fake.status = status;
    fake.maxerror = maxerr;
    fake.esterror = esterr;
    fake.offset = offset;
    assert_int_equal(clocksync_read(&s, fake_adjtimex), 0);
    return s;
}

static void test_read_synced(void **state)
{
    (void)state;
    struct clocksync_state s = read_fake(TIME_OK, STA_PLL, 12500, 300, -42);
    assert_true(s.valid);
    assert_true(s.synchronized);
    assert_int_equal(s.kernel_state, TIME_OK);
    assert_true(s.max_error_seconds == 0.0125);
    assert_true(s.estimated_error_seconds == 0.0003);
    assert_true(s.offset_seconds == -0.000042);
    /* STA_NANO: the offset is in nanoseconds. */
    s = read_fake(TIME_OK, STA_PLL | STA_NANO, 1000, 10, 1500000);
    assert_true(s.offset_seconds == 0.0015);
    /* A leap second pending is still synchronised. */
    s = read_fake(TIME_INS, STA_PLL | STA_INS, 1000, 10, 0);
    assert_true(s.synchronized);
}

static void test_read_unsynced(void **state)
{
    (void)state;
    /* What an undisciplined Linux clock reports. */
    struct clocksync_state s = read_fake(TIME_ERROR, STA_UNSYNC, 16000000,
                                         16000000, 0);
    assert_false(s.synchronized);
    assert_true(s.max_error_seconds == 16.0);
    /* Either sign is enough. */
    s = read_fake(TIME_OK, STA_UNSYNC, 1000, 10, 0);
    assert_false(s.synchronized);
    s = read_fake(TIME_ERROR, 0, 1000, 10, 0);
    assert_false(s.synchronized);
}

static void test_read_failure(void **state)
{
    (void)state;
    struct clocksync_state s;
    fake.rc = -1;
    fake.err = EPERM;
    assert_int_equal(clocksync_read(&s, fake_adjtimex), -EPERM);
    assert_false(s.valid);
    assert_int_equal(s.error, EPERM);
}

#define LIMIT 0.1

static enum clocksync_log eval(const struct clocksync_state *prev,
                               const struct clocksync_state *now, char *line)
{
    return clocksync_evaluate(prev, now, LIMIT, line, CLOCKSYNC_LINE_MAX);
}

static void test_evaluate_unsync(void **state)
{
    (void)state;
    char line[CLOCKSYNC_LINE_MAX];
    struct clocksync_state good = read_fake(TIME_OK, STA_PLL, 20000, 1000, 250);
    struct clocksync_state bad = read_fake(TIME_ERROR, STA_UNSYNC, 16000000,
                                           16000000, 0);
    /* First reading: a bad clock is reported at once, a good one not. */
    assert_int_equal(eval(NULL, &good, line), CLOCKSYNC_LOG_NONE);
    assert_string_equal(line, "");
    assert_int_equal(eval(NULL, &bad, line), CLOCKSYNC_LOG_WARNING);
    assert_string_equal(line, "clock unsynchronised (maximum error 16.000000 s, "
                        "estimated error 16.000000 s, offset 0.000000 s)");
    /* Good to bad warns once; bad stays quiet; back to good is info. */
    assert_int_equal(eval(&good, &bad, line), CLOCKSYNC_LOG_WARNING);
    assert_int_equal(eval(&bad, &bad, line), CLOCKSYNC_LOG_NONE);
    assert_int_equal(eval(&bad, &good, line), CLOCKSYNC_LOG_INFO);
    assert_string_equal(line, "clock synchronised again (maximum error "
                        "0.020000 s, estimated error 0.001000 s, offset "
                        "0.000250 s)");
    assert_int_equal(eval(&good, &good, line), CLOCKSYNC_LOG_NONE);
}

static void test_evaluate_max_error(void **state)
{
    (void)state;
    char line[CLOCKSYNC_LINE_MAX];
    struct clocksync_state at = read_fake(TIME_OK, STA_PLL, 100000, 1000, 0);
    struct clocksync_state over = read_fake(TIME_OK, STA_PLL, 100001, 1000, 0);
    struct clocksync_state more = read_fake(TIME_OK, STA_PLL, 900000, 1000, 0);
    /* Exactly the limit is within it. */
    assert_int_equal(eval(NULL, &at, line), CLOCKSYNC_LOG_NONE);
    assert_int_equal(eval(&at, &over, line), CLOCKSYNC_LOG_WARNING);
    assert_string_equal(line, "clock maximum error exceeds the limit of "
                        "0.100000 s (maximum error 0.100001 s, estimated "
                        "error 0.001000 s, offset 0.000000 s)");
    assert_int_equal(eval(&over, &more, line), CLOCKSYNC_LOG_NONE);
    assert_int_equal(eval(&more, &at, line), CLOCKSYNC_LOG_INFO);
    assert_string_equal(line, "clock maximum error back within the limit "
                        "(maximum error 0.100000 s, estimated error 0.001000 "
                        "s, offset 0.000000 s)");
    /* Over the limit from the first reading. */
    assert_int_equal(eval(NULL, &more, line), CLOCKSYNC_LOG_WARNING);
    /* Unsynchronised and over: one line, the unsynchronised one. */
    struct clocksync_state bad = read_fake(TIME_ERROR, STA_UNSYNC, 16000000,
                                           16000000, 0);
    assert_int_equal(eval(&at, &bad, line), CLOCKSYNC_LOG_WARNING);
    assert_non_null(strstr(line, "clock unsynchronised"));
    /* Synchronised again but still over: the limit warning. */
    assert_int_equal(eval(&bad, &more, line), CLOCKSYNC_LOG_WARNING);
    assert_non_null(strstr(line, "exceeds the limit"));
}

static void test_evaluate_read_errors(void **state)
{
    (void)state;
    char line[CLOCKSYNC_LINE_MAX];
    struct clocksync_state good = read_fake(TIME_OK, STA_PLL, 1000, 10, 0);
    struct clocksync_state failed;
    fake.rc = -1;
    fake.err = EPERM;
    clocksync_read(&failed, fake_adjtimex);
    assert_int_equal(eval(&good, &failed, line), CLOCKSYNC_LOG_WARNING);
    assert_string_equal(line, "cannot read the clock discipline state: "
                        "Operation not permitted");
    assert_int_equal(eval(NULL, &failed, line), CLOCKSYNC_LOG_WARNING);
    assert_int_equal(eval(&failed, &failed, line), CLOCKSYNC_LOG_NONE);
    assert_int_equal(eval(&failed, &good, line), CLOCKSYNC_LOG_NONE);
    /* A short buffer is cut, never overrun. */
    char tiny[8];
    assert_int_equal(clocksync_evaluate(&good, &failed, LIMIT, tiny,
                                        sizeof(tiny)), CLOCKSYNC_LOG_WARNING);
    assert_string_equal(tiny, "cannot ");
}

static void test_this_machine(void **state)
{
    (void)state;
    struct clocksync_state s;
    char line[CLOCKSYNC_LINE_MAX];
    assert_int_equal(clocksync_read(&s, NULL), 0);
    assert_true(s.valid);
    printf("this machine: kernel state %d, status %#x, synchronized %d, "
           "max error %.6f s, estimated error %.6f s, offset %.9f s\n",
           s.kernel_state, (unsigned)s.status, s.synchronized,
           s.max_error_seconds, s.estimated_error_seconds, s.offset_seconds);
    assert_true(s.kernel_state >= TIME_OK && s.kernel_state <= TIME_ERROR);
    /* The kernel caps the maximum error at 16 s (NTP_PHASE_LIMIT). */
    assert_true(s.max_error_seconds >= 0 && s.max_error_seconds <= 16.0);
    assert_true(s.estimated_error_seconds >= 0 &&
                s.estimated_error_seconds <= 16.0);
    assert_int_equal(s.synchronized, !(s.status & STA_UNSYNC) &&
                                     s.kernel_state != TIME_ERROR);
    enum clocksync_log lvl = clocksync_evaluate(NULL, &s, LIMIT, line,
                                                sizeof(line));
    printf("this machine, first evaluation at a 0.1 s limit: %s%s\n",
           lvl == CLOCKSYNC_LOG_WARNING ? "warning: " : "",
           lvl == CLOCKSYNC_LOG_NONE ? "(nothing to log)" : line);
    assert_int_equal(lvl == CLOCKSYNC_LOG_WARNING,
                     !s.synchronized || s.max_error_seconds > LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_synced),
        cmocka_unit_test(test_read_unsynced),
        cmocka_unit_test(test_read_failure),
        cmocka_unit_test(test_evaluate_unsync),
        cmocka_unit_test(test_evaluate_max_error),
        cmocka_unit_test(test_evaluate_read_errors),
        cmocka_unit_test(test_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
