/*
 * worker.h - one single-threaded reactor process.
 */
#ifndef STAMPD_WORKER_H
#define STAMPD_WORKER_H

#include <stdint.h>

#include "opts.h"
#include "stats.h"

enum listener_kind { LISTEN_LINE = 0, LISTEN_HTTP, LISTEN_UDP };

struct udp_sock;

struct listener {
    int fd;
    enum listener_kind kind;
    int shared;                /* one socket for all workers (unix:) */
    const struct addr *addr;
    struct udp_sock *udp;      /* LISTEN_UDP: batching state (worker only) */
    unsigned mask;             /* stream: its registered interest (worker only) */
};

struct worker_cfg {
    int id;                    /* 0 .. workers-1 */
    const struct opts *o;
    struct listener *ls;       /* this worker's sockets */
    int nls;
    struct stats_slot *st;
    int op_fd;                 /* operator channel (opchannel.h), -1: none */
    uint32_t *op_serial;       /* this slot's operator connection serial,
                                * in memory shared with the master, so it
                                * survives a respawn; NULL: none */
};

/* Run until a graceful stop completes.  Returns the process exit status:
 * 0 if everything drained in time, 1 if connections were cut off or the
 * loop failed. */
int worker_main(const struct worker_cfg *cfg);

#endif
