/*
 * fuzz_worker.h - a real worker (worker_state.h) for the connection
 * fuzzers: set up by worker_setup() with one unix line listener whose
 * connections are handed in through conn_open() (no accept), and run by
 * worker_turn(), the loop turn the server itself runs (dispatch, the
 * batch's timing, timers), without blocking.  Sizing formulas are the
 * worker's own; an input only picks the limits (fuzz_worker_limits()).
 *
 * A run: fuzz_worker_open() a socketpair, fuzz_worker_converse() the
 * input through it, fuzz_worker_finish() until the server has closed,
 * then fuzz_worker_check() what the client read against the oracle and
 * every gauge against zero.
 */
#ifndef STAMPD_FUZZ_WORKER_H
#define STAMPD_FUZZ_WORKER_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "fuzz_util.h"
#include "opts.h"
#include "worker_state.h"

#define FUZZ_MAX_ROUNDS 100000
#define FUZZ_MAX_LINE 256   /* the largest max_line an input can pick */

struct fuzz_worker {
    struct opts opts;
    struct stats_slot slot;
    struct worker w;
    struct addr addr;
    struct listener lis;
    struct worker_cfg cfg;
    int ready;
};

/* Parse the options (argv[0] the program name) and set the worker up. */
static inline void fuzz_worker_setup(struct fuzz_worker *f, int argc,
                                     char **argv)
{
    char err[256];
    if (opts_parse(&f->opts, argc, argv, 1, err, sizeof(err)) != OPTS_OK)
        abort();
    f->opts.max_line = FUZZ_MAX_LINE;  /* sizes the staging buffer */
    f->addr.family = AF_UNIX;
    snprintf(f->addr.text, sizeof(f->addr.text), "unix:fuzz");
    f->lis = (struct listener){ .fd = -1, .kind = LISTEN_LINE, .addr = &f->addr };
    f->cfg = (struct worker_cfg){ .o = &f->opts, .ls = &f->lis, .nls = 1,
                                  .st = &f->slot };
    if (worker_setup(&f->w, &f->cfg) != 0)
        abort();
    f->ready = 1;
}

/* The input's first three bytes: max_line (1..256), max_output
 * (64..16384) and the read size (1..256). */
static inline void fuzz_worker_limits(struct fuzz_worker *f, const uint8_t *d)
{
    f->opts.max_line = (size_t)d[0] + 1;
    f->opts.max_output = 64 + (size_t)d[1] * 64;
    f->w.rbuf_size = 1 + (size_t)d[2];
    conn_limits(&f->w);
}

/* One loop turn of the worker, without blocking. */
static inline void fuzz_worker_turn(struct fuzz_worker *f)
{
    if (worker_turn(&f->w, 0) < 0)
        abort();
}

/* A socketpair whose sv[0] the worker serves (listener 0). */
static inline void fuzz_worker_open(struct fuzz_worker *f, int sv[2],
                                    int small_sndbuf)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    if (small_sndbuf) {
        int small = 2048; /* the kernel doubles it, and keeps a minimum */
        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    if (!conn_open(&f->w, sv[0], 0))
        abort();
}

/* Read what the server sent; 1 at its EOF (or reset). */
static inline int fuzz_drain(int fd, struct fbuf *got)
{
    char tmp[8192];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r > 0) {
            fbuf_put(got, tmp, (size_t)r);
            continue;
        }
        if (r == 0)
            return 1;
        if (errno == EAGAIN)
            return 0;
        if (errno == ECONNRESET)
            return 1;
        abort();
    }
}

/* Write the stream in random pieces (seeded by rng) while running the
 * loop, then half-close; a `lazy` client reads in one round of four only
 * until it half-closes.  Aborts unless the server ends the connection. */
static inline void fuzz_worker_converse(struct fuzz_worker *f, int fd,
                                        const char *in, size_t n,
                                        uint32_t rng, int lazy,
                                        struct fbuf *got)
{
    size_t sent = 0;
    int eof = 0, shut = 0;

    for (int round = 0; round < FUZZ_MAX_ROUNDS && !eof; round++) {
        if (sent < n) {
            size_t piece = 1 + fuzz_rand(&rng) % (n - sent);
            ssize_t r = write(fd, in + sent, piece);
            if (r > 0)
                sent += (size_t)r;
            else if (r < 0 && errno == EPIPE)
                sent = n; /* the server closed after an error */
            else if (r < 0 && errno != EAGAIN)
                abort();
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        fuzz_worker_turn(f);
        if (!lazy || shut || fuzz_rand(&rng) % 4 == 0)
            eof = fuzz_drain(fd, got);
    }
    if (!eof)
        abort(); /* the server never finished the connection */
    if (!shut)
        shutdown(fd, SHUT_WR);
}

/* The server closes after its EOF or, after an error, after the client's
 * EOF.  A lingering connection discards at least one read buffer per turn
 * and up to n bytes may still be queued ahead of the EOF, so n more turns
 * always suffice.  Then the client's end is closed. */
static inline void fuzz_worker_finish(struct fuzz_worker *f, int sv[2], size_t n)
{
    for (size_t i = 0; i < 100 + n && (f->w.conns[sv[0]].flags & CF_OPEN); i++)
        fuzz_worker_turn(f);
    if (f->w.conns[sv[0]].flags & CF_OPEN)
        abort();
    close(sv[1]);
}

/* The oracle's verdict, then every gauge back to zero; frees both. */
static inline void fuzz_worker_check(struct fuzz_worker *f, struct fbuf *got,
                                     struct fbuf *want)
{
    if (!fbuf_equal(got, want)) {
        fprintf(stderr, "got %zu bytes: %.*s\nwant %zu bytes: %.*s\n",
                got->len, (int)(got->len < 300 ? got->len : 300), got->p,
                want->len, (int)(want->len < 300 ? want->len : 300), want->p);
        abort();
    }
    const struct worker *w = &f->w;
    if (w->active != 0 || f->slot.conns_active != 0 || f->slot.ring_bytes != 0 ||
        f->slot.input_bytes != 0 || w->buffered != 0 || w->stage_len != 0)
        abort();
    free(got->p);
    free(want->p);
}

#endif
