/*
 * poller_backend.h - what the poller backends (poller_epoll.c,
 * poller_kqueue.c) share, for them only: the size of the event array a
 * backend fills per poller_wait(), and the undoing of a poller_create()
 * that failed half-way.
 */
#ifndef STAMPD_POLLER_BACKEND_H
#define STAMPD_POLLER_BACKEND_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define POLLER_MAX_BATCH 1024  /* events one poller_wait() can return */

/* The event array's length for a poller_create() size hint. */
static inline int poller_batch(int size_hint)
{
    return size_hint > 0 && size_hint < POLLER_MAX_BATCH ? size_hint
                                                         : POLLER_MAX_BATCH;
}

/* Undo a failed poller_create(): close the kernel object kfd if it was
 * opened (-1 if not), free the event array and the poller, and keep the
 * failure's errno (ENOMEM if none was set).  Returns NULL. */
static inline void *poller_create_failed(void *p, void *evs, int kfd)
{
    int saved = errno;
    if (kfd != -1)
        close(kfd);
    free(evs);
    free(p);
    errno = saved ? saved : ENOMEM;
    return NULL;
}

#endif
