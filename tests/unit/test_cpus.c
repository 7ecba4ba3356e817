/*
 * test_cpus.c - the default worker count (src/cpus.c): the cgroup v2 and
 * v1 quota files, /proc/self/cgroup, and the choice between the affinity
 * mask and the quota, with the reason the start-up line shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cpus.h"

static void test_cpu_max(void **state)
{
    (void)state;
    double q = -7;
    assert_int_equal(cpus_parse_cpu_max("max 100000\n", &q), 0);
    assert_true(q == -7);                      /* untouched: no limit */
    assert_int_equal(cpus_parse_cpu_max("150000 100000\n", &q), 1);
    assert_true(q == 1.5);
    assert_int_equal(cpus_parse_cpu_max("50000 100000", &q), 1);
    assert_true(q == 0.5);
    assert_int_equal(cpus_parse_cpu_max("200000 50000\n", &q), 1);
    assert_true(q == 4.0);
    /* Malformed: no period, zero period, negative quota, junk. */
    assert_int_equal(cpus_parse_cpu_max("150000\n", &q), -1);
    assert_int_equal(cpus_parse_cpu_max("150000 0\n", &q), -1);
    assert_int_equal(cpus_parse_cpu_max("-1 100000\n", &q), -1);
    assert_int_equal(cpus_parse_cpu_max("maxi 100000\n", &q), -1);
    assert_int_equal(cpus_parse_cpu_max("100 100000 x\n", &q), -1);
    assert_int_equal(cpus_parse_cpu_max("", &q), -1);
}

static void test_cfs(void **state)
{
    (void)state;
    double q = -7;
    assert_int_equal(cpus_parse_cfs("-1\n", "100000\n", &q), 0);
    assert_true(q == -7);
    assert_int_equal(cpus_parse_cfs("250000\n", "100000\n", &q), 1);
    assert_true(q == 2.5);
    assert_int_equal(cpus_parse_cfs("0\n", "100000\n", &q), -1);
    assert_int_equal(cpus_parse_cfs("-2\n", "100000\n", &q), -1);
    assert_int_equal(cpus_parse_cfs("100000\n", "0\n", &q), -1);
    assert_int_equal(cpus_parse_cfs("x\n", "100000\n", &q), -1);
}

static void test_cgroup_path(void **state)
{
    (void)state;
    char p[64];
    static const char v2[] = "0::/system.slice/stampd.service\n";
    static const char v1[] =
        "12:pids:/user.slice\n"
        "4:cpu,cpuacct:/docker/abc\n"
        "1:name=systemd:/docker/abc\n"
        "0::/\n";

    assert_int_equal(cpus_cgroup_path(v2, "", p, sizeof(p)), 0);
    assert_string_equal(p, "/system.slice/stampd.service");
    assert_int_equal(cpus_cgroup_path(v2, "cpu", p, sizeof(p)), -1);
    assert_int_equal(cpus_cgroup_path(v1, "cpu", p, sizeof(p)), 0);
    assert_string_equal(p, "/docker/abc");
    assert_int_equal(cpus_cgroup_path(v1, "cpuacct", p, sizeof(p)), 0);
    assert_int_equal(cpus_cgroup_path(v1, "cpus", p, sizeof(p)), -1);
    assert_int_equal(cpus_cgroup_path(v1, "", p, sizeof(p)), 0);
    assert_string_equal(p, "/");
    /* A path that does not fit is refused, not cut. */
    assert_int_equal(cpus_cgroup_path(v2, "", p, 8), -1);
    assert_int_equal(cpus_cgroup_path("", "", p, sizeof(p)), -1);
    assert_int_equal(cpus_cgroup_path("garbage", "", p, sizeof(p)), -1);
}

static void test_choose(void **state)
{
    (void)state;
    struct cpus_choice c;

    cpus_choose(&c, 8, 2, 0);                 /* taskset -c 0,1 */
    assert_int_equal(c.n, 2);
    assert_string_equal(c.reason, "CPUs in affinity mask");
    cpus_choose(&c, 8, 0, 0);                 /* mask unreadable */
    assert_int_equal(c.n, 8);
    assert_string_equal(c.reason, "online CPUs");
    cpus_choose(&c, 8, 8, 1.5);               /* docker --cpus 1.5 */
    assert_int_equal(c.n, 2);
    assert_string_equal(c.reason, "cgroup CPU quota 1.5");
    cpus_choose(&c, 8, 8, 0.25);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.reason, "cgroup CPU quota 0.25");
    cpus_choose(&c, 8, 8, 3.0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.reason, "cgroup CPU quota 3");
    cpus_choose(&c, 8, 2, 4.0);               /* the mask is the tighter */
    assert_int_equal(c.n, 2);
    assert_string_equal(c.reason, "CPUs in affinity mask");
    cpus_choose(&c, 0, 0, 0);
    assert_int_equal(c.n, 1);
}

static void test_usable(void **state)
{
    (void)state;
    struct cpus_choice c;
    cpus_usable(&c);
    assert_true(c.n >= 1);
    assert_string_equal(cpus_reason(), c.reason);
    cpus_set_reason("set by --workers");
    assert_string_equal(cpus_reason(), "set by --workers");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_max),
        cmocka_unit_test(test_cfs),
        cmocka_unit_test(test_cgroup_path),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_usable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
