/*
 * compat.h - the few places where stampd needs something Linux-specific,
 * each with a portable fallback.  Everything else uses POSIX.
 *
 *   Linux              FreeBSD             macOS / other BSD
 *   accept4            accept4             accept + fcntl (macOS)
 *   SOCK_NONBLOCK|     same                socket/pipe + fcntl (macOS)
 *    SOCK_CLOEXEC, pipe2
 *   SO_REUSEPORT (LB)  SO_REUSEPORT_LB     no balancing: one shared listener
 *   recvmmsg/sendmmsg  same (11+)          one recvmsg/sendmsg per datagram
 *   MSG_NOSIGNAL       same                SO_NOSIGPIPE (macOS) + SIGPIPE ignored
 *   sched_setaffinity  cpuset_setaffinity  not supported (-ENOSYS)
 *   PR_SET_PDEATHSIG   PROC_PDEATHSIG_CTL  not supported (-ENOSYS)
 *
 * Built with -DCOMPAT_PORTABLE (tests only), Linux takes the macOS column
 * for accept, socket, pipe and listener sharing, so those fallbacks run
 * somewhere.  Unless noted, functions return 0 (or an fd) on success and a
 * negative errno value on failure.
 */
#ifndef STAMPD_COMPAT_H
#define STAMPD_COMPAT_H

#include <sys/socket.h>

/* macOS has no MSG_NOSIGNAL; compat_accept sets SO_NOSIGPIPE there, and
 * every stampd process ignores SIGPIPE anyway, so 0 is safe. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* recvmmsg/sendmmsg: Linux, FreeBSD 11+, NetBSD 7+, OpenBSD 7.2+ (which
 * added MSG_WAITFORONE with them).  Elsewhere udp.c sends and receives one
 * datagram per call, on this structure. */
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    (defined(__OpenBSD__) && defined(MSG_WAITFORONE))
#define COMPAT_HAVE_MMSG 1
#else
#define COMPAT_HAVE_MMSG 0
struct mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
#endif

/* accept() a connection as a non-blocking, close-on-exec socket. */
int compat_accept(int lfd);
/* The same, with the peer's address into *peer (ss_family AF_UNSPEC when
 * the kernel gave none). */
int compat_accept_peer(int lfd, struct sockaddr_storage *peer);

/* socket(2) with close-on-exec, and O_NONBLOCK if `nonblock`.  Like
 * socket(2): the fd, or -1 and errno. */
int compat_socket(int domain, int type, int nonblock);

/* pipe(2) with both ends non-blocking and close-on-exec.  Like pipe(2):
 * 0, or -1 and errno. */
int compat_pipe(int fds[2]);

/* socketpair(AF_UNIX, type) with both ends non-blocking and close-on-exec.
 * Like socketpair(2): 0, or -1 and errno. */
int compat_socketpair(int type, int fds[2]);

/* The pid and uid of a unix socket's peer (SO_PEERCRED on Linux; the uid
 * alone, pid -1, from getpeereid() on the BSDs and macOS).  0 or a
 * negative errno. */
int compat_peer_cred(int fd, long *pid, long *uid);

/* Ask the kernel to spread connections over every socket bound to the same
 * address with this option (SO_REUSEPORT on Linux, SO_REUSEPORT_LB on
 * FreeBSD 12+). */
int compat_set_reuseport(int fd);

/* 1 if compat_set_reuseport() load-balances new connections across the
 * group, so each worker can own one listener; 0 if the master must share one
 * listener among all workers instead (macOS, OpenBSD, NetBSD: their
 * SO_REUSEPORT gives each new connection to one socket, not a spread). */
int compat_reuseport_balances(void);

/* Pin the calling process to one CPU. */
int compat_pin_cpu(int cpu);

/* Have the kernel send `sig` to the calling process when its parent dies. */
int compat_parent_death_signal(int sig);

#endif
