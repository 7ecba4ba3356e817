/*
 * kqueue_emu.c - TEST-ONLY emulation of kqueue(2)/kevent(2) on top of epoll,
 * so that src/poller_kqueue.c runs on Linux (poller conformance suite and
 * the integration tests).  Linked only into test builds (tests/kqueue.mk),
 * never into the server that `make` builds.
 *
 * What it follows (FreeBSD kqueue(2), freebsd-manpages 12.2):
 *  - a kevent is identified by (ident, filter); EV_ADD on an existing one
 *    modifies it (udata, ext, flags) and enables it unless EV_DISABLE;
 *    EV_DELETE / EV_ENABLE / EV_DISABLE on a missing one fail with ENOENT;
 *    an ident that is not an open descriptor fails with EBADF, an unknown
 *    filter with EINVAL;
 *  - the changelist is applied, in order, before any event is read; a change
 *    that fails (or any change carrying EV_RECEIPT) is reported in the
 *    eventlist with EV_ERROR and the errno (0 for a receipt of success) in
 *    data while there is room; with no room left an error makes kevent()
 *    return -1/errno and a receipt stops processing.  As FreeBSD's
 *    kern_event.c does, a call that produced such entries returns them
 *    without waiting for events;
 *  - EVFILT_READ: data = bytes readable (for a listening TCP socket: the
 *    accept queue length); EV_EOF once the read direction is shut down, with
 *    the pending socket error (if any) in fflags.  EVFILT_WRITE: data = room
 *    in the send buffer (approximate: SO_SNDBUF - SIOCOUTQ); EV_EOF when the
 *    peer can no longer receive (reset, or a pipe's last reader gone);
 *  - level-triggered: a kevent whose condition holds is returned by every
 *    kevent() call; EV_ONESHOT deletes it after one delivery;
 *  - udata and ext[] are returned verbatim;
 *  - close() removes every kevent that references the descriptor (this file
 *    interposes close(); epoll alone would keep a registration alive while a
 *    dup or a forked child holds the file open);
 *  - the queue is not inherited by a child created with fork(): the child
 *    drops its copies (pthread_atfork), so the descriptor number is invalid
 *    there, as on FreeBSD;
 *  - timeout NULL waits indefinitely, a zero timespec polls, nevents == 0
 *    returns at once; timeouts are rounded up to milliseconds and capped at
 *    24 hours (kqueue(2) BUGS); a signal makes kevent() fail with EINTR after
 *    the changes were applied.
 *
 * Deliberately not emulated (rejected with EINVAL so that a backend relying
 * on them fails loudly): other filters, EV_CLEAR, EV_DISPATCH, NOTE_LOWAT.
 * Linux can only read a socket's pending error by consuming it (SO_ERROR);
 * so that the program still meets the error as on a BSD, where the filter
 * only peeks, the error taken for fflags is owed to the next read, readv,
 * recv, write, writev or send on that descriptor (interposed here too).
 * Known differences from a real kernel: our
 * own shutdown(SHUT_WR) does not raise EV_EOF on EVFILT_WRITE; regular files
 * cannot be registered (epoll refuses them); fclose()/dup2() closing a
 * registered descriptor is not seen.  Not thread-safe: stampd's processes
 * are single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#if !defined(KQUEUE_EMULATION)
#error "build with -Itests/kqueue/include: this file needs the test sys/event.h"
#endif

#define KQ_MAX 16
#define KQ_MAX_WAIT_MS (24 * 3600 * 1000)
#define KQ_ACTIONS (EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE)
#define KQ_SUPPORTED (KQ_ACTIONS | EV_ONESHOT | EV_RECEIPT)

struct knote {
    int active;
    int enabled;
    unsigned short flags;       /* EV_ONESHOT, EV_RECEIPT: returned as set */
    void *udata;
    uint64_t ext[4];
};

struct kq_fd {
    struct knote kn[2];         /* [0] EVFILT_READ, [1] EVFILT_WRITE */
    uint32_t registered;        /* epoll events registered; 0: not at all */
};

struct kq {
    int epfd;                   /* also the kqueue descriptor */
    int nfds;
    struct kq_fd *fds;
};

static struct kq *kqs[KQ_MAX];
static int atfork_installed;
static int *owed;               /* [fd]: socket error taken for fflags */
static int nowed;

static int raw_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

static void owe(int fd, int err)
{
    if (fd >= nowed) {
        int n = nowed ? nowed : 64;
        while (n <= fd)
            n *= 2;
        int *t = realloc(owed, (size_t)n * sizeof(*t));
        if (!t)
            return;
        memset(t + nowed, 0, (size_t)(n - nowed) * sizeof(*t));
        owed = t;
        nowed = n;
    }
    owed[fd] = err;
}

/* 1 (errno set) if an error is owed to fd's next I/O call. */
static int pay(int fd)
{
    if (fd < 0 || fd >= nowed || !owed[fd])
        return 0;
    errno = owed[fd];
    owed[fd] = 0;
    return 1;
}

ssize_t read(int fd, void *buf, size_t n)
{
    return pay(fd) ? -1 : syscall(SYS_read, fd, buf, n);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    return pay(fd) ? -1 : syscall(SYS_readv, fd, iov, n);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return pay(fd) ? -1 : syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    return pay(fd) ? -1 : syscall(SYS_write, fd, buf, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    return pay(fd) ? -1 : syscall(SYS_writev, fd, iov, n);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return pay(fd) ? -1 : syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

static void kq_forget(int i, int close_epfd)
{
    if (close_epfd)
        (void)raw_close(kqs[i]->epfd);
    free(kqs[i]->fds);
    free(kqs[i]);
    kqs[i] = NULL;
}

static void kq_fork_child(void)
{
    for (int i = 0; i < KQ_MAX; i++)
        if (kqs[i])
            kq_forget(i, 1);
}

static struct kq *kq_find(int fd)
{
    for (int i = 0; i < KQ_MAX; i++)
        if (kqs[i] && kqs[i]->epfd == fd)
            return kqs[i];
    return NULL;
}

int kqueue(void)
{
    int i;

    if (!atfork_installed) {
        if (pthread_atfork(NULL, NULL, kq_fork_child) != 0) {
            errno = ENOMEM;
            return -1;
        }
        atfork_installed = 1;
    }
    for (i = 0; i < KQ_MAX && kqs[i]; i++)
        ;
    if (i == KQ_MAX) {
        errno = ENOMEM;         /* as RLIMIT_KQUEUES would */
        return -1;
    }
    struct kq *q = calloc(1, sizeof(*q));
    if (!q) {
        errno = ENOMEM;
        return -1;
    }
    q->epfd = epoll_create1(0);
    if (q->epfd == -1) {
        free(q);
        return -1;
    }
    kqs[i] = q;
    return q->epfd;
}

int close(int fd)
{
    if (fd >= 0 && fd < nowed)
        owed[fd] = 0;
    for (int i = 0; i < KQ_MAX; i++) {
        struct kq *q = kqs[i];
        if (!q)
            continue;
        if (q->epfd == fd) {
            kq_forget(i, 0);
            continue;
        }
        if (fd >= 0 && fd < q->nfds) {
            if (q->fds[fd].registered)
                (void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
            memset(&q->fds[fd], 0, sizeof(q->fds[fd]));
        }
    }
    return raw_close(fd);
}

/* Make the epoll registration match the enabled kevents of fd. */
static int kq_sync(struct kq *q, int fd)
{
    struct kq_fd *f = &q->fds[fd];
    uint32_t want = 0;

    /* EPOLLRDHUP: a peer's shutdown is EV_EOF on the read filter. */
    if (f->kn[0].active && f->kn[0].enabled)
        want |= EPOLLIN | EPOLLRDHUP;
    if (f->kn[1].active && f->kn[1].enabled)
        want |= EPOLLOUT;
    if (want == f->registered)
        return 0;
    struct epoll_event ev = { .events = want, .data.fd = fd };
    int op = !f->registered ? EPOLL_CTL_ADD
                            : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(q->epfd, op, fd, &ev) == -1)
        return errno;
    f->registered = want;
    return 0;
}

/* Apply one change; returns 0 or an errno value (the change has no effect
 * then). */
static int kq_register(struct kq *q, const struct kevent *kev)
{
    if (kev->filter != EVFILT_READ && kev->filter != EVFILT_WRITE)
        return EINVAL;
    if (kev->flags & ~KQ_SUPPORTED)
        return EINVAL;
    if (kev->ident > INT_MAX || fcntl((int)kev->ident, F_GETFD) == -1)
        return EBADF;

    int fd = (int)kev->ident;
    if (fd >= q->nfds) {
        int n = q->nfds ? q->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct kq_fd *t = realloc(q->fds, (size_t)n * sizeof(*t));
        if (!t)
            return ENOMEM;
        memset(t + q->nfds, 0, (size_t)(n - q->nfds) * sizeof(*t));
        q->fds = t;
        q->nfds = n;
    }
    struct kq_fd *f = &q->fds[fd];
    struct kq_fd saved = *f;
    struct knote *kn = &f->kn[kev->filter == EVFILT_READ ? 0 : 1];

    if (!kn->active && !(kev->flags & EV_ADD))
        return ENOENT;
    if (kev->flags & EV_ADD) {
        kn->active = 1;
        kn->enabled = 1;
        kn->flags = kev->flags & (unsigned short)~KQ_ACTIONS;
        kn->udata = kev->udata;
        memcpy(kn->ext, kev->ext, sizeof(kn->ext));
    }
    if (kev->flags & EV_DELETE)
        memset(kn, 0, sizeof(*kn));
    if (kev->flags & EV_ENABLE)
        kn->enabled = 1;
    if (kev->flags & EV_DISABLE)
        kn->enabled = 0;
    int err = kq_sync(q, fd);
    if (err)
        *f = saved;
    return err;
}

static int64_t readable_bytes(int fd)
{
    int listening = 0, n = 0;
    socklen_t len = sizeof(listening);

    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
        listening) {
        struct tcp_info ti;
        len = sizeof(ti);
        /* For a listener, Linux reports the accept queue in tcpi_unacked. */
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
            return ti.tcpi_unacked;
        return 1;
    }
    return ioctl(fd, FIONREAD, &n) == 0 ? n : 0;
}

static int64_t writable_bytes(int fd)
{
    int sndbuf = 0, queued = 0;
    socklen_t len = sizeof(sndbuf);

    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
        ioctl(fd, SIOCOUTQ, &queued) == 0)
        return sndbuf > queued ? sndbuf - queued : 0;
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > 0 && ioctl(fd, FIONREAD, &queued) == 0)
        return size > queued ? size - queued : 0;
    return 0;
}

/* Turn epoll's events `e` for fd into at most `room` kevents. */
static int kq_deliver(struct kq *q, int fd, uint32_t e, struct kevent *out,
                      int room)
{
    static const uint32_t fires[2] = {
        EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR,
        EPOLLOUT | EPOLLHUP | EPOLLERR,
    };
    static const uint32_t eofs[2] = {
        EPOLLRDHUP | EPOLLHUP | EPOLLERR,
        EPOLLHUP | EPOLLERR,
    };
    struct kq_fd *f = &q->fds[fd];
    int n = 0, oneshot = 0, sockerr = -1;

    for (int k = 0; k < 2 && n < room; k++) {
        struct knote *kn = &f->kn[k];
        if (!kn->active || !kn->enabled || !(e & fires[k]))
            continue;
        struct kevent *ev = &out[n++];
        ev->ident = (uintptr_t)fd;
        ev->filter = k ? EVFILT_WRITE : EVFILT_READ;
        ev->flags = kn->flags;
        ev->fflags = 0;
        ev->data = k ? writable_bytes(fd) : readable_bytes(fd);
        ev->udata = kn->udata;
        memcpy(ev->ext, kn->ext, sizeof(ev->ext));
        if (e & eofs[k]) {
            ev->flags |= EV_EOF;
            if (sockerr < 0) {
                socklen_t len = sizeof(sockerr);
                sockerr = 0;
                if ((e & EPOLLERR) &&
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &sockerr, &len) != 0)
                    sockerr = 0;
                if (sockerr)
                    owe(fd, sockerr);
            }
            ev->fflags = (unsigned)sockerr;
        }
        if (kn->flags & EV_ONESHOT) {
            memset(kn, 0, sizeof(*kn));
            oneshot = 1;
        }
    }
    if (oneshot)
        (void)kq_sync(q, fd);
    return n;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kevent(int kqfd, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout)
{
    struct kq *q = kq_find(kqfd);
    int nout = 0;

    if (!q) {
        errno = EBADF;
        return -1;
    }
    if (nchanges < 0 || nevents < 0) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < nchanges; i++) {
        /* A copy: the changelist and the eventlist may be one array. */
        struct kevent kev = changelist[i];
        int err = kq_register(q, &kev);
        if (!err && !(kev.flags & EV_RECEIPT))
            continue;
        if (nout == nevents) {
            if (!err)
                return nout;    /* no room for the receipt: stop here */
            errno = err;
            return -1;
        }
        kev.flags = EV_ERROR;
        kev.data = err;
        eventlist[nout++] = kev;
    }
    if (nout || nevents == 0)
        return nout;

    int wait_ms = -1;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
            timeout->tv_nsec >= 1000000000L) {
            errno = EINVAL;
            return -1;
        }
        if (timeout->tv_sec >= KQ_MAX_WAIT_MS / 1000)
            wait_ms = KQ_MAX_WAIT_MS;
        else
            wait_ms = (int)(timeout->tv_sec * 1000 +
                            (timeout->tv_nsec + 999999) / 1000000);
    }
    int64_t deadline = wait_ms < 0 ? -1 : now_ms() + wait_ms;
    static struct epoll_event evs[1024];

    for (;;) {
        int max = nevents < 1024 ? nevents : 1024;
        int n = epoll_wait(q->epfd, evs, max, wait_ms);
        if (n == -1)
            return -1;          /* EINTR: the changes stay applied */
        for (int i = 0; i < n && nout < nevents; i++)
            nout += kq_deliver(q, evs[i].data.fd, evs[i].events,
                               eventlist + nout, nevents - nout);
        if (nout || n == 0)
            return nout;
        /* Woken only by conditions no enabled kevent reports: the caller
         * asked to wait, so wait out the rest of the timeout. */
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return 0;
            wait_ms = (int)left;
        }
    }
}
