/*
 * compat.h - the few places where stampd needs something Linux-specific,
 * each with a portable fallback.  Everything else uses POSIX.
 *
 *   Linux              FreeBSD             macOS/other BSD
 *   accept4            accept4             accept + fcntl
 *   SO_REUSEPORT (LB)  SO_REUSEPORT_LB     no balancing: one shared listener
 *   sched_setaffinity  cpuset_setaffinity  not supported (-ENOSYS)
 *   PR_SET_PDEATHSIG   PROC_PDEATHSIG_CTL  not supported (-ENOSYS)
 * All return 0 (or an fd) on success and a negative errno value on failure.
 */
#ifndef STAMPD_COMPAT_H
#define STAMPD_COMPAT_H

#include <sys/socket.h>

/* accept() a connection as a non-blocking, close-on-exec socket. */
int compat_accept(int lfd);

/* Ask the kernel to spread connections over every socket bound to the same
 * address with this option (SO_REUSEPORT on Linux, SO_REUSEPORT_LB on
 * FreeBSD 12+). */
int compat_set_reuseport(int fd);

/* 1 if compat_set_reuseport() load-balances new connections across the
 * group, so each worker can own one listener; 0 if the master must share one
 * listener among all workers instead. */
int compat_reuseport_balances(void);

/* Pin the calling process to one CPU. */
int compat_pin_cpu(int cpu);

/* Have the kernel send `sig` to the calling process when its parent dies. */
int compat_parent_death_signal(int sig);

#endif
