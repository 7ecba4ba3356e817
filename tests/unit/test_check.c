/*
 * test_check.c - stampd_assert (src/check.c) holds in every build: a false
 * condition aborts with the file, line and condition on stderr, a true one
 * costs nothing; and the direct clock reads of clock.h.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "check.h"
#include "clock.h"

static void test_true_passes(void **state)
{
    (void)state;
    int n = 0;

    stampd_assert(n == 0);
    stampd_assert(++n == 1);   /* evaluated exactly once */
    assert_int_equal(n, 1);
}

static void test_false_aborts(void **state)
{
    (void)state;
    int pfd[2], status;
    char buf[256] = { 0 };
    ssize_t got;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        stampd_assert(1 + 1 == 3);
        _exit(0);  /* not reached */
    }
    close(pfd[1]);
    got = read(pfd[0], buf, sizeof(buf) - 1);
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_true(got > 0);
    assert_non_null(strstr(buf, "test_check.c:"));
    assert_non_null(strstr(buf, "invariant failed: 1 + 1 == 3\n"));
}

static void test_clock_reads(void **state)
{
    (void)state;
    int64_t m0 = clock_mono_ns(), ms = clock_mono_ms(), m1 = clock_mono_ns();
    int64_t wall = clock_wall_ms();

    assert_true(m0 <= m1);
    assert_true(ms >= m0 / 1000000 && ms <= m1 / 1000000);
    assert_true(wall > 1600000000000LL);   /* after 2020 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_passes),
        cmocka_unit_test(test_false_aborts),
        cmocka_unit_test(test_clock_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
