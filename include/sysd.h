/*
 * sysd.h - the two systemd protocols stampd speaks, written out rather
 * than linked from libsystemd (a dozen lines each; the server then runs
 * the same with or without systemd installed):
 *   - sd_notify: datagrams "READY=1", "STATUS=...", ... to $NOTIFY_SOCKET;
 *   - socket activation: $LISTEN_FDS sockets from fd 3 on, named by
 *     $LISTEN_FDNAMES, meant for the process $LISTEN_PID.
 */
#ifndef STAMPD_SYSD_H
#define STAMPD_SYSD_H

#include <stdint.h>

#define SYSD_MAX_FDS 64
#define SYSD_NAME_MAX 32

/* Send one notification (several may be joined with '\n').  A no-op
 * without $NOTIFY_SOCKET.  0 or -errno. */
int sysd_notify(const char *msg);
int sysd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog period in microseconds when $WATCHDOG_USEC is set for us
 * ($WATCHDOG_PID absent or ours), else 0. */
uint64_t sysd_watchdog_usec(void);

/* The sockets passed to this process: up to `max` fds (made close-on-exec)
 * with their names ("" when unnamed).  Returns their number (0 when none
 * are meant for us); the LISTEN_* variables are removed so that children
 * do not take them for theirs. */
int sysd_listen_fds(int *fds, char (*names)[SYSD_NAME_MAX], int max);

#endif
