/*
 * sys/event.h - TEST-ONLY stand-in for the BSD header, so that
 * src/poller_kqueue.c can be compiled and run on Linux against
 * tests/kqueue/kqueue_emu.c (an emulation of kqueue(2) on top of epoll).
 * Never on the include path of a normal build.
 *
 * Layout, names and constant values follow FreeBSD 12+ <sys/event.h> as
 * documented in kqueue(2) (struct kevent with ext[4]).  Only the parts the
 * emulation implements are declared: a program that uses anything else must
 * fail to compile here rather than silently get an unimplemented feature.
 */
#ifndef STAMPD_TEST_SYS_EVENT_H
#define STAMPD_TEST_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#define KQUEUE_EMULATION 1  /* lets tests tell the emulation from a real BSD */

#define EVFILT_READ   (-1)
#define EVFILT_WRITE  (-2)

/* actions */
#define EV_ADD        0x0001
#define EV_DELETE     0x0002
#define EV_ENABLE     0x0004
#define EV_DISABLE    0x0008
/* flags */
#define EV_ONESHOT    0x0010
#define EV_RECEIPT    0x0040
/* returned values */
#define EV_EOF        0x8000
#define EV_ERROR      0x4000

struct kevent {
    uintptr_t ident;        /* file descriptor */
    short filter;           /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags;
    unsigned int fflags;    /* on EV_EOF: the socket error, if any */
    int64_t data;           /* bytes readable / writable; errno on EV_ERROR */
    void *udata;            /* returned verbatim */
    uint64_t ext[4];        /* returned verbatim */
};

#define EV_SET(kevp_, a, b, c, d, e, f) do {    \
        struct kevent *kevp__ = (kevp_);        \
        kevp__->ident = (a);                    \
        kevp__->filter = (short)(b);            \
        kevp__->flags = (unsigned short)(c);    \
        kevp__->fflags = (d);                   \
        kevp__->data = (e);                     \
        kevp__->udata = (f);                    \
        kevp__->ext[0] = 0;                     \
        kevp__->ext[1] = 0;                     \
        kevp__->ext[2] = 0;                     \
        kevp__->ext[3] = 0;                     \
    } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
           struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

#endif
