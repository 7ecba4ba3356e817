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
#endif

#include "compat.h"

int compat_accept(int lfd)
{
    int fd;
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__)
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return fd == -1 ? -errno : fd;
#else
    fd = accept(lfd, NULL, NULL);
    if (fd == -1)
        return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
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
#if defined(__linux__) || defined(SO_REUSEPORT_LB)
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
#else
    (void)sig;
    return -ENOSYS;
#endif
}
