/*
 * compat.c - see compat.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#if defined(__linux__)
#include <sched.h>
#include <sys/prctl.h>
#elif defined(__FreeBSD__)
#include <sys/param.h>
#include <sys/cpuset.h>
#include <sys/procctl.h>
#endif

#include "compat.h"

/* accept4 and the SOCK_* type flags: Linux, FreeBSD 10+, NetBSD 8+,
 * OpenBSD 5.7+; not macOS. */
#if (defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
     defined(__OpenBSD__)) && !defined(COMPAT_PORTABLE)
#define HAVE_SOCK_FLAGS 1
#else
#define HAVE_SOCK_FLAGS 0
#endif

#if !HAVE_SOCK_FLAGS
/* The close-on-exec and non-blocking flags set afterwards: -1/errno like the
 * call they follow, and fd closed on failure. */
static int set_flags(int fd, int nonblock)
{
    int fl;

    if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
        (nonblock && ((fl = fcntl(fd, F_GETFL)) == -1 ||
                      fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1))) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* set_flags() on both ends of a pipe or socketpair; both closed on failure. */
static int set_flags_both(int fds[2])
{
    if (set_flags(fds[0], 1) == -1) {
        int e = errno;
        close(fds[1]);
        errno = e;
        return -1;
    }
    return set_flags(fds[1], 1) == -1 ? (close(fds[0]), -1) : 0;
}
#endif

int compat_accept(int lfd)
{
    return compat_accept_peer(lfd, NULL);
}

int compat_accept_peer(int lfd, struct sockaddr_storage *peer)
{
    int fd;
    socklen_t len = peer ? sizeof(*peer) : 0;
    struct sockaddr *sa = (struct sockaddr *)peer;

    if (peer)
        peer->ss_family = AF_UNSPEC;
#if HAVE_SOCK_FLAGS
    fd = accept4(lfd, sa, peer ? &len : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return fd == -1 ? -errno : fd;
#else
    fd = accept(lfd, sa, peer ? &len : NULL);
    if (fd == -1 || set_flags(fd, 1) == -1)
        return -errno;
#if defined(SO_NOSIGPIPE)
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    return fd;
#endif
}

int compat_socket(int domain, int type, int nonblock)
{
#if HAVE_SOCK_FLAGS
    return socket(domain, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
#else
    int fd = socket(domain, type, 0);
    return fd == -1 ? -1 : set_flags(fd, nonblock);
#endif
}

int compat_pipe(int fds[2])
{
#if HAVE_SOCK_FLAGS
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (pipe(fds) == -1)
        return -1;
    return set_flags_both(fds);
#endif
}

int compat_socketpair(int type, int fds[2])
{
#if HAVE_SOCK_FLAGS
    return socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
#else
    if (socketpair(AF_UNIX, type, 0, fds) == -1)
        return -1;
    return set_flags_both(fds);
#endif
}

int compat_peer_cred(int fd, long *pid, long *uid)
{
#if defined(SO_PEERCRED) && defined(__linux__)
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
        return -errno;
    *pid = cr.pid;
    *uid = cr.uid;
    return 0;
#else
    uid_t u;
    gid_t g;
    if (getpeereid(fd, &u, &g) == -1)
        return -errno;
    *pid = -1;
    *uid = (long)u;
    return 0;
#endif
}

int compat_set_reuseport(int fd)
{
    int one = 1;
#if defined(SO_REUSEPORT_LB)
    int opt = SO_REUSEPORT_LB;
#elif defined(SO_REUSEPORT)
    int opt = SO_REUSEPORT;
#else
    (void)fd; (void)one;
    return -ENOSYS;
#endif
#if defined(SO_REUSEPORT_LB) || defined(SO_REUSEPORT)
    if (setsockopt(fd, SOL_SOCKET, opt, &one, sizeof(one)) == -1)
        return -errno;
    return 0;
#endif
}

int compat_reuseport_balances(void)
{
#if (defined(__linux__) || defined(SO_REUSEPORT_LB)) && !defined(COMPAT_PORTABLE)
    return 1;
#else
    return 0;
#endif
}

int compat_pin_cpu(int cpu)
{
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) == -1)
        return -errno;
    return 0;
#elif defined(__FreeBSD__)
    cpuset_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (cpuset_setaffinity(CPU_LEVEL_WHICH, CPU_WHICH_PID, -1, sizeof(set),
                           &set) == -1)
        return -errno;
    return 0;
#else
    (void)cpu;
    return -ENOSYS;
#endif
}

int compat_parent_death_signal(int sig)
{
#if defined(__linux__)
    if (prctl(PR_SET_PDEATHSIG, sig) == -1)
        return -errno;
    return 0;
#elif defined(__FreeBSD__) && defined(PROC_PDEATHSIG_CTL)
    /* FreeBSD 11.2+. */
    if (procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &sig) == -1)
        return -errno;
    return 0;
#else
    (void)sig;
    return -ENOSYS;
#endif
}
