/*
 * sdnotify.c - sd_notify and socket activation (see sdnotify.h).  Pure
 * except for the senders at the end.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdnotify.h"

int sdnotify_fmt_reloading(char *buf, size_t size, uint64_t monotonic_usec)
{
    return snprintf(buf, size, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                    monotonic_usec);
}

int sdnotify_fmt_status(char *buf, size_t size, const char *text)
{
    char clean[SDNOTIFY_STATUS_MAX + 1];
    size_t n = strnlen(text, SDNOTIFY_STATUS_MAX);
    for (size_t i = 0; i < n; i++)
        clean[i] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
    clean[n] = '\0';
    return snprintf(buf, size, "STATUS=%s", clean);
}

int sdnotify_fmt_mainpid(char *buf, size_t size, pid_t pid)
{
    return snprintf(buf, size, "MAINPID=%ld", (long)pid);
}

int sdnotify_addr(const char *spec, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = strlen(spec);
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n < 2 || (spec[0] != '/' && spec[0] != '@') ||
        n > sizeof(sa->sun_path) - (spec[0] == '/'))
        return -1;
    memcpy(sa->sun_path, spec, n);
    if (spec[0] == '@')
        sa->sun_path[0] = '\0';   /* abstract: no NUL terminator counted */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                       (spec[0] == '/'));
    return 0;
}

/* A decimal number 1..max with nothing around it; -1 otherwise. */
static int64_t positive(const char *s, int64_t max)
{
    int64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v > 0 ? v : -1;
}

int64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self)
{
    if (!usec)
        return 0;
    if (pid) {
        int64_t p = positive(pid, INT_MAX);
        if (p < 0)
            return -1;
        if (p != (int64_t)self)
            return 0;
    }
    return positive(usec, INT64_MAX);
}

static int lf_fail(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -1;
}

/* Split LISTEN_FDNAMES into out[0..n); -1 on a count mismatch or a name
 * too long. */
static int lf_names(const char *names, struct sdnotify_fd *out, size_t n,
                    char *err, size_t errlen)
{
    const char *p = names;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > SDNOTIFY_FDNAME_MAX)
            return lf_fail(err, errlen, "LISTEN_FDNAMES: a name is too long");
        memcpy(out[i].name, p, len);
        out[i].name[len] = '\0';
        if (!end) {
            if (i + 1 != n)
                break;
            return 0;
        }
        p = end + 1;
    }
    return lf_fail(err, errlen,
                   "LISTEN_FDNAMES does not name as many sockets as LISTEN_FDS");
}

int sdnotify_listen_fds(const char *listen_pid, const char *listen_fds,
                        const char *listen_fdnames, pid_t self,
                        struct sdnotify_fd *out, size_t max,
                        char *err, size_t errlen)
{
    if (!listen_pid || !listen_fds)
        return 0;
    int64_t pid = positive(listen_pid, INT_MAX);
    if (pid < 0)
        return lf_fail(err, errlen, "LISTEN_PID is not a process id");
    if (pid != (int64_t)self)
        return 0;
    int64_t n = positive(listen_fds, INT_MAX - SDNOTIFY_FDS_START);
    if (n < 0)
        return lf_fail(err, errlen, "LISTEN_FDS is not a positive number");
    if ((uint64_t)n > max)
        return lf_fail(err, errlen, "LISTEN_FDS: more sockets than stampd serves");
    for (int64_t i = 0; i < n; i++) {
        out[i].fd = SDNOTIFY_FDS_START + (int)i;
        strcpy(out[i].name, "unknown");
    }
    if (listen_fdnames && lf_names(listen_fdnames, out, (size_t)n, err, errlen) < 0)
        return -1;
    return (int)n;
}

/* --- I/O: the only socket code in this file ----------------------------- */

int sdnotify_send_to(const char *spec, const char *msg)
{
    struct sockaddr_un sa;
    socklen_t len;
    if (sdnotify_addr(spec, &sa, &len) < 0)
        return -EINVAL;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    int rc = 1;
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
                       (const struct sockaddr *)&sa, len);
    if (n == -1)
        rc = -errno;
    close(fd);
    return rc;
}

int sdnotify_send(const char *msg)
{
    const char *spec = getenv("NOTIFY_SOCKET");
    if (!spec || !*spec)
        return 0;
    return sdnotify_send_to(spec, msg);
}
