/*
 * cpus.h - how many CPUs this process may actually use: the default worker
 * count.
 *
 * The online CPU count overstates it twice over: the affinity mask
 * (`taskset -c 0`, cpusets, sched_setaffinity(2)) may allow fewer CPUs,
 * and a cgroup CPU quota (containers: `docker --cpus 1.5`, systemd
 * CPUQuota=) caps the CPU time all threads together get per period, so
 * more busy workers than ceil(quota / period) only take turns.  The
 * count is min(affinity CPUs, ceil(quota)), at least 1.
 *
 * The parsers and cpus_choose are pure (no I/O; tests/unit/test_cpus.c);
 * cpus_usable reads the kernel's files.
 */
#ifndef STAMPD_CPUS_H
#define STAMPD_CPUS_H

#include <stddef.h>

/* The text of cgroup v2's cpu.max: "max 100000" (no limit) or
 * "QUOTA PERIOD" in microseconds.  1 with *cpus = QUOTA / PERIOD, 0 for
 * "max", -1 when malformed (a zero period included). */
int cpus_parse_cpu_max(const char *text, double *cpus);

/* cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us texts: quota -1 means
 * no limit.  Same results as cpus_parse_cpu_max. */
int cpus_parse_cfs(const char *quota_text, const char *period_text,
                   double *cpus);

/* From the text of /proc/self/cgroup, the cgroup path of `controller`:
 * "" selects the v2 unified line ("0::/path"); otherwise the v1 line whose
 * controller list holds it ("4:cpu,cpuacct:/path").  0 with the path
 * (starting with '/') in out, -1 when there is no such line or it does not
 * fit. */
int cpus_cgroup_path(const char *proc_cgroup, const char *controller,
                     char *out, size_t len);

struct cpus_choice {
    int n;              /* >= 1 */
    char reason[80];    /* e.g. "CPUs in affinity mask", "cgroup CPU quota 1.5" */
};

/* Decide: `affinity` CPUs in the mask (<= 0: unknown, then `online`),
 * `quota` CPUs of cgroup quota (<= 0: none). */
void cpus_choose(struct cpus_choice *c, int online, int affinity, double quota);

/* Read the affinity mask (sched_getaffinity(2)), the cgroup v2 cpu.max of
 * this process's cgroup and its ancestors, or cgroup v1's CFS quota, and
 * decide.  Never fails: what cannot be read is treated as no limit.  The
 * result is also kept for cpus_reason(). */
void cpus_usable(struct cpus_choice *c);

/* Why the default worker count is what it is: the reason of the last
 * cpus_usable() call, or of cpus_set_reason(); "" before either. */
const char *cpus_reason(void);
void cpus_set_reason(const char *reason);

#endif
