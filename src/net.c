/*
 * net.c - creating listening sockets (startup code; see net.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "compat.h"
#include "net.h"

#define NET_BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */

static void bind_error(const struct addr *a, int err, char *buf, size_t len)
{
    if (err == EADDRINUSE)
        snprintf(buf, len, "address already in use: %s", a->text);
    else
        snprintf(buf, len, "cannot bind %s: %s", a->text, strerror(err));
}

static int v6only(int fd, const struct addr *a)
{
    int one = 1;
    /* "[::]" means IPv6 only: an IPv4 listener on the same port is a
     * separate --listen. */
    if (a->family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
        return -1;
    return 0;
}

int net_probe(struct addr *a, int socktype, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, one = 1;

    if (a->family == AF_UNIX)
        return 0;
    fd = compat_socket(a->family, socktype, 0);
    if (fd == -1) {
        snprintf(err, errlen, "socket for %s: %s", a->text, strerror(errno));
        return -1;
    }
    /* TCP: SO_REUSEADDR so that TIME_WAIT leftovers of a previous run do not
     * count as "in use"; Linux still refuses the bind while any socket
     * listens on the port, which is the conflict we look for.  UDP: without
     * it, since there it would let two servers share the port. */
    if (socktype == SOCK_STREAM)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6only(fd, a) == -1 ||
        bind(fd, (struct sockaddr *)&a->ss, a->len) == -1) {
        bind_error(a, errno, err, errlen);
        close(fd);
        return -1;
    }
    if (addr_port(a) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        /* clang-tidy 14's analyzer does not model getsockname() filling ss. */
        /* NOLINTBEGIN(clang-analyzer-core.*) */
        if (ss.ss_family == AF_INET)
            addr_set_port(a, ntohs(((struct sockaddr_in *)&ss)->sin_port));
        else
            addr_set_port(a, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        /* NOLINTEND(clang-analyzer-core.*) */
        addr_format(a);
    }
    close(fd);
    return 0;
}

/* A unix socket file left by a process that died is "stale": nobody accepts
 * on it, so connect() is refused.  Replace it; refuse a live one. */
static int unix_clear_stale(const struct addr *a, char *err, size_t errlen)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
    struct stat st;
    int fd, rc;

    if (lstat(sun->sun_path, &st) == -1)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", a->text,
                                               strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a socket", a->text);
        return -1;
    }
    fd = compat_socket(AF_UNIX, SOCK_STREAM, 1);
    if (fd == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        close(fd);
        snprintf(err, errlen, "address already in use: %s", a->text);
        return -1;
    }
    close(fd);
    if (unlink(sun->sun_path) == -1 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove stale %s: %s", a->text,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int net_listen(const struct addr *a, int socktype, int reuseport, char *err,
               size_t errlen)
{
    int fd, one = 1, rc;

    if (a->family == AF_UNIX && unix_clear_stale(a, err, errlen) == -1)
        return -1;
    fd = compat_socket(a->family, socktype, 1);
    if (fd == -1) {
        snprintf(err, errlen, "socket for %s: %s", a->text, strerror(errno));
        return -1;
    }
    if (a->family != AF_UNIX) {
        if (socktype == SOCK_STREAM)
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport && (rc = compat_set_reuseport(fd)) < 0) {
            snprintf(err, errlen, "SO_REUSEPORT on %s: %s", a->text,
                     strerror(-rc));
            close(fd);
            return -1;
        }
        if (v6only(fd, a) == -1) {
            snprintf(err, errlen, "IPV6_V6ONLY on %s: %s", a->text,
                     strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
        bind_error(a, errno, err, errlen);
        close(fd);
        return -1;
    }
    if (socktype == SOCK_STREAM && listen(fd, NET_BACKLOG) == -1) {
        snprintf(err, errlen, "listen on %s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
