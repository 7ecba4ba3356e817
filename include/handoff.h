/*
 * handoff.h - handing the service to a new master process, as nginx does
 * for a binary upgrade: the old master forks and execs the binary with its
 * listening sockets left open (their fds listed in $STAMPD_INHERIT, see
 * inherit.h) and the write end of a pipe in $STAMPD_READY_FD.  The new
 * master adopts the sockets instead of binding, forks its workers on them,
 * and writes one byte to the pipe once every worker serves.  Only then
 * does the old master stop its workers gracefully and exit.
 *
 * The sockets are the same kernel objects in both masters, so nothing
 * queued in them is lost: the old workers accept what they can until they
 * close their copies, and the new workers accept the rest.
 *
 * If the new master cannot start (exec fails, it exits, or it does not
 * serve within HANDOFF_TIMEOUT_MS), the old master logs why and keeps
 * serving.
 */
#ifndef STAMPD_HANDOFF_H
#define STAMPD_HANDOFF_H

#include <stdint.h>
#include <sys/types.h>

#define HANDOFF_TIMEOUT_MS 30000
#define HANDOFF_READY_ENV "STAMPD_READY_FD"
/* Set when the handed sockets are the listeners whatever the options say
 * (they came from systemd socket activation). */
#define HANDOFF_ONLY_ENV "STAMPD_INHERIT_ONLY"

struct handoff {
    pid_t pid;          /* the new master, 0 if none */
    int fd;             /* read end of its readiness pipe, -1 if none */
    int64_t deadline;   /* CLOCK_MONOTONIC ms */
    int succeeded;      /* it serves: it is our successor */
    const char *what;   /* "upgrade" or "reload" */
};

void handoff_init(struct handoff *h);

/* Whether a new master is starting (not yet serving). */
int handoff_pending(const struct handoff *h);

/* Fork and exec `path` with `argv`, passing the fds in `keep` (`inherit`:
 * their $STAMPD_INHERIT text).  0, or -1 after logging why. */
int handoff_start(struct handoff *h, const char *what, const char *path,
                  char *const argv[], const char *inherit, int inherit_only,
                  const int *keep, int nkeep, int64_t now_ms);

/* The readiness pipe is readable: 1 when the new master serves, 0 when
 * nothing decisive was read, -1 when it closed without a word (the new
 * master died; its exit is logged when it is reaped). */
int handoff_readable(struct handoff *h);

/* A child was reaped: 1 if it was the new master (a failure is logged). */
int handoff_reaped(struct handoff *h, pid_t pid, int status);

/* Give up on a new master still starting (SIGTERM: it stops gracefully). */
void handoff_abort(struct handoff *h, const char *why);

/* Abort when the deadline passed; 1 if it did. */
int handoff_check_deadline(struct handoff *h, int64_t now_ms);

/* In a worker: close what the handoff keeps open. */
void handoff_close_in_child(struct handoff *h);

/* In a new master: the fd from $STAMPD_READY_FD (made close-on-exec;
 * the variable is removed), or -1. */
int handoff_ready_fd(void);

/* Tell the old master we serve (one byte), and close fd. */
void handoff_signal_ready(int fd);

#endif
