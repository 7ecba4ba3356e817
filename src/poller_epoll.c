/*
 * poller_epoll.c - the Linux backend of poller.h.
 *
 * Level-triggered epoll.  Interest 0 is expressed as "not registered"
 * (EPOLL_CTL_DEL) rather than as a registration with no events: epoll always
 * reports EPOLLERR and EPOLLHUP, so an fd parked with events == 0 after a
 * hang-up would wake every poller_wait() for nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "poller.h"
#include "poller_backend.h"

struct poller {
    int epfd;
    int cap;                    /* size of evs */
    struct epoll_event *evs;
    int masked;                 /* wait with `mask` (poller_block_signal) */
    sigset_t mask;
};

poller_t *poller_create(int size_hint)
{
    poller_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cap = poller_batch(size_hint);
    p->evs = calloc((size_t)p->cap, sizeof(*p->evs));
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!p->evs || p->epfd == -1)
        return poller_create_failed(p, p->evs, p->epfd);
    return p;
}

void poller_destroy(poller_t *p)
{
    if (!p)
        return;
    close(p->epfd);
    free(p->evs);
    free(p);
}

static uint32_t to_epoll(unsigned mask)
{
    return (mask & POLLER_READ ? EPOLLIN : 0u) |
           (mask & POLLER_WRITE ? EPOLLOUT : 0u);
}

int poller_mod(poller_t *p, int fd, unsigned old_mask, unsigned new_mask,
               uint64_t data)
{
    struct epoll_event ev = { .events = to_epoll(new_mask), .data.u64 = data };
    int op;

    if (old_mask == new_mask)
        return 0;
    if (old_mask == 0)
        op = EPOLL_CTL_ADD;
    else if (new_mask == 0)
        op = EPOLL_CTL_DEL;
    else
        op = EPOLL_CTL_MOD;
    if (epoll_ctl(p->epfd, op, fd, &ev) == -1)
        return -errno;
    return 0;
}

int poller_wait(poller_t *p, struct poller_event *events, int max,
                int timeout_ms)
{
    int n;

    if (max > p->cap)
        max = p->cap;
    if (p->masked)
        n = epoll_pwait(p->epfd, p->evs, max, timeout_ms, &p->mask);
    else
        n = epoll_wait(p->epfd, p->evs, max, timeout_ms);
    if (n == -1)
        return -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->evs[i].events;
        unsigned mask = 0;

        if (e & EPOLLIN)
            mask |= POLLER_READ;
        if (e & EPOLLOUT)
            mask |= POLLER_WRITE;
        /* Errors and hang-ups wake both directions: the handler that runs
         * learns the details from read()/write(). */
        if (e & (EPOLLERR | EPOLLHUP))
            mask |= POLLER_READ | POLLER_WRITE;
        events[i].data = p->evs[i].data.u64;
        events[i].mask = mask;
    }
    return n;
}

int poller_block_signal(poller_t *p, int sig)
{
    /* The mask in force now, plus sig. */
    if (sigprocmask(SIG_BLOCK, NULL, &p->mask) != 0 ||
        sigaddset(&p->mask, sig) != 0)
        return -errno;
    p->masked = 1;
    return 0;
}

const char *poller_backend(void)
{
    return "epoll";
}
