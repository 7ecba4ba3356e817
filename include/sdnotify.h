/*
 * sdnotify.h - the systemd service-manager protocols stampd speaks:
 * readiness notification (sd_notify(3): READY=1, RELOADING=1, STOPPING=1,
 * STATUS=..., WATCHDOG=1, MAINPID=...) and socket activation
 * (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES).
 *
 * Why a few lines here instead of linking libsystemd: the notification
 * protocol is one AF_UNIX datagram of "KEY=VALUE" lines sent to the
 * socket named by $NOTIFY_SOCKET ("@name" meaning the abstract namespace),
 * and socket activation is three environment variables and descriptors
 * from 3 up.  systemd documents both as stable interfaces that programs
 * may implement on their own (its Interface Portability and Stability
 * chart marks them "reimplementable independently", and sd_notify(3)
 * carries a standalone implementation in its notes); its developers
 * advise against linking libsystemd only for them.  libsystemd would bring
 * a large library and its own dependencies (the 2024 xz backdoor reached
 * sshd through libsystemd's liblzma) into a process that only needs a
 * sendto().
 *
 * Everything here is pure except sdnotify_send() and sdnotify_send_to(),
 * the only functions that touch a socket.
 */
#ifndef STAMPD_SDNOTIFY_H
#define STAMPD_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Fixed messages. */
#define SDNOTIFY_READY    "READY=1"
#define SDNOTIFY_STOPPING "STOPPING=1"
#define SDNOTIFY_WATCHDOG "WATCHDOG=1"

/* Large enough for every message formatted here with a STATUS text of up
 * to SDNOTIFY_STATUS_MAX bytes. */
#define SDNOTIFY_MSG_MAX 320
#define SDNOTIFY_STATUS_MAX 256

/* "RELOADING=1\nMONOTONIC_USEC=N": N is CLOCK_MONOTONIC in microseconds
 * when the reload began (sd_notify(3) asks for it with RELOADING=1 since
 * systemd 253; older versions ignore it).  The formatters return the length as
 * snprintf() does; the message is whole when that is < size. */
int sdnotify_fmt_reloading(char *buf, size_t size, uint64_t monotonic_usec);

/* "STATUS=text", text cut at SDNOTIFY_STATUS_MAX bytes and every line
 * break turned into a space (a newline would start another assignment). */
int sdnotify_fmt_status(char *buf, size_t size, const char *text);

/* "MAINPID=pid": a new master started by a binary upgrade names itself. */
int sdnotify_fmt_mainpid(char *buf, size_t size, pid_t pid);

/* $NOTIFY_SOCKET into an address: an absolute path, or "@name" for the
 * abstract namespace.  0, or -1 (empty, relative, too long, or a form
 * not supported here such as "vsock:"). */
int sdnotify_addr(const char *spec, struct sockaddr_un *sa, socklen_t *len);

/* The watchdog interval from $WATCHDOG_USEC and $WATCHDOG_PID (either may
 * be NULL when unset), as sd_watchdog_enabled(3) reads them: the interval
 * in microseconds (send WATCHDOG=1 at least every half of it); 0 when
 * there is no watchdog or WATCHDOG_PID names another process; -1 when a
 * value is not a positive decimal number. */
int64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self);

#define SDNOTIFY_FDS_START 3      /* SD_LISTEN_FDS_START */
#define SDNOTIFY_FDNAME_MAX 255   /* systemd's limit on a name */

struct sdnotify_fd {
    int fd;
    char name[SDNOTIFY_FDNAME_MAX + 1];
};

/* Socket activation from the values of $LISTEN_PID, $LISTEN_FDS and
 * $LISTEN_FDNAMES (each NULL when unset) and getpid(): fills out[0..n)
 * with descriptors 3..3+n-1 and their names, and returns n.  Returns 0
 * (nothing inherited) when LISTEN_PID or LISTEN_FDS is unset or
 * LISTEN_PID names another process (the variables were meant for a
 * parent).  Names: LISTEN_FDNAMES is colon-separated, one per descriptor;
 * when it is unset every name is "unknown" (as sd_listen_fds_with_names()
 * says).  -1 with a message in err for a malformed value, a name count
 * that differs from LISTEN_FDS, or more than `max` descriptors. */
int sdnotify_listen_fds(const char *listen_pid, const char *listen_fds,
                        const char *listen_fdnames, pid_t self,
                        struct sdnotify_fd *out, size_t max,
                        char *err, size_t errlen);

/* --- I/O --------------------------------------------------------------- */

/* Send one message to $NOTIFY_SOCKET: 1 sent, 0 when NOTIFY_SOCKET is
 * unset (not run by a service manager), -errno on failure (EINVAL for an
 * address sdnotify_addr() refuses).  Blocking only as a datagram send to
 * a local socket is; never raises SIGPIPE. */
int sdnotify_send(const char *msg);

/* The same to an explicit address in $NOTIFY_SOCKET's syntax. */
int sdnotify_send_to(const char *spec, const char *msg);

#endif
