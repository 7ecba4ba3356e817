/*
 * priority.h - the master's scheduling priority over its workers.
 *
 * The master serves the admin port and supervises; on a machine whose CPUs
 * are saturated by workers and clients, a master at the same priority
 * waits its turn behind all of them, and so does /stats.  With
 * --master-priority N the master lowers its nice value by N (to at most
 * -20) before it forks anything, and every child (a worker, or the new
 * master of a binary upgrade before it executes) returns to the nice value
 * stampd started with: the workers keep the priority they would have had,
 * and the master is N levels ahead of them.  Lowering a nice value needs
 * privilege (root or CAP_SYS_NICE); without it nothing changes and the
 * start-up line says why.
 */
#ifndef STAMPD_PRIORITY_H
#define STAMPD_PRIORITY_H

#include <stddef.h>

/* In the master, once, before the first fork: lower the nice value by
 * `levels` (0: leave it).  Returns the levels applied (0 when not
 * permitted or asked), and describes the outcome in why[0..len) for the
 * start-up line. */
int priority_master_raise(int levels, char *why, size_t len);

/* In a child of the master: back to the nice value stampd started with (a
 * no-op when the master kept it).  Raising a nice value needs no privilege;
 * 0 or -errno. */
int priority_child_reset(void);

#endif
