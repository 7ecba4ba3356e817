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


#endif
