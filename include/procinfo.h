/*
 * procinfo.h - a process's resident memory, open descriptors, start time
 * and CPU time, from /proc (Linux).  Elsewhere the figures read as unknown
 * (-1 / 0) and the admin pages leave them out.
 */
#ifndef STAMPD_PROCINFO_H
#define STAMPD_PROCINFO_H

#include <stdint.h>
#include <sys/types.h>

#include "metrics.h"

/* Fill *pi for pid; fields that cannot be read are -1 (0 for times). */
void procinfo_read(pid_t pid, struct proc_info *pi);
/* pid's soft limit of open descriptors (/proc/PID/limits), -1 if unknown
 * or unlimited. */
int64_t procinfo_max_fds(pid_t pid);

/* The kernel's clock discipline state through adjtimex(2) (read only:
 * modes 0); c->known is 0 where it cannot be read.  In FAULT_INJECTION
 * builds, STAMPD_FAULT_ADJTIMEX="SYNC,MAXERR_US,ESTERR_US,OFFSET_NS"
 * replaces what the kernel says (SYNC 1 or 0). */
void procinfo_clock(struct clock_state *c);

#endif
