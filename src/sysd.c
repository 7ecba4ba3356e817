/*
 * sysd.c - sd_notify and socket activation (see sysd.h; the protocols are
 * described in sd_notify(3) and sd_listen_fds(3)).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compat.h"
#include "sysd.h"

int sysd_notify(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    size_t len;

    if (!path || !path[0])
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path))
        return -EINVAL;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';  /* abstract namespace */
    int fd = compat_socket(AF_UNIX, SOCK_DGRAM, 1);
    if (fd == -1)
        return -errno;
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
                       (struct sockaddr *)&sun,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    int rc = n == -1 ? -errno : 0;
    close(fd);
    return rc;
}

int sysd_notifyf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return sysd_notify(buf);
}

/* $name as a number meant for this process: 1 when `pid_var` is absent or
 * names us. */
static int for_us(const char *pid_var)
{
    const char *p = getenv(pid_var);
    return !p || strtol(p, NULL, 10) == (long)getpid();
}

uint64_t sysd_watchdog_usec(void)
{
    const char *u = getenv("WATCHDOG_USEC");
    if (!u || !for_us("WATCHDOG_PID"))
        return 0;
    return strtoull(u, NULL, 10);
}

int sysd_listen_fds(int *fds, char (*names)[SYSD_NAME_MAX], int max)
{
    const char *nfds = getenv("LISTEN_FDS");
    const char *pid = getenv("LISTEN_PID");
    const char *fdnames = getenv("LISTEN_FDNAMES");
    int n = 0;

    if (nfds && pid && strtol(pid, NULL, 10) == (long)getpid()) {
        long v = strtol(nfds, NULL, 10);
        n = v > 0 ? (int)(v < max ? v : max) : 0;
    }
    for (int i = 0; i < n; i++) {
        fds[i] = 3 + i;  /* SD_LISTEN_FDS_START */
        (void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        names[i][0] = '\0';
    }
    /* "a:b:c", one name per fd. */
    for (int i = 0; fdnames && *fdnames && i < n; i++) {
        size_t l = strcspn(fdnames, ":");
        snprintf(names[i], SYSD_NAME_MAX, "%.*s", (int)l, fdnames);
        fdnames += l + (fdnames[l] == ':');
    }
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    return n;
}
