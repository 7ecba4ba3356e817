/*
 * priority.c - the master's scheduling priority over its workers (see
 * priority.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "priority.h"

#define NICE_MIN -20

static int base_nice;  /* the nice value stampd started with */
static int raised;     /* the master's nice value is below it */

/* getpriority() returns -1 for nice -1 as for an error: errno tells. */
static int current_nice(int *nice_out)
{
    errno = 0;
    int v = getpriority(PRIO_PROCESS, 0);
    if (v == -1 && errno != 0)
        return -errno;
    *nice_out = v;
    return 0;
}

int priority_master_raise(int levels, char *why, size_t len)
{
    int base = 0;
    int rc = current_nice(&base);

    raised = 0;
    if (rc < 0) {
        snprintf(why, len, "unchanged (getpriority: %s)", strerror(-rc));
        return 0;
    }
    base_nice = base;
    int want = base - levels < NICE_MIN ? NICE_MIN : base - levels;
    if (levels <= 0 || want == base) {
        snprintf(why, len, "nice %d, as the workers", base);
        return 0;
    }
    if (setpriority(PRIO_PROCESS, 0, want) != 0) {
        snprintf(why, len, "nice %d, as the workers (cannot lower it: %s)",
                 base, strerror(errno));
        return 0;
    }
    raised = 1;
    snprintf(why, len, "nice %d, workers %d", want, base);
    return base - want;
}

int priority_child_reset(void)
{
    if (!raised)
        return 0;
    raised = 0;
    return setpriority(PRIO_PROCESS, 0, base_nice) == 0 ? 0 : -errno;
}
