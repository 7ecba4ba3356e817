/*
 * check.c - the failure path of stampd_assert (see check.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

void check_failed(const char *file, int line, const char *cond)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "stampd[%d]: %s:%d: invariant failed: %s\n",
                     (int)getpid(), file, line, cond);

    /* write(2), not stdio: the process may be in any state. */
    if (n > 0)
        (void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    abort();
}
