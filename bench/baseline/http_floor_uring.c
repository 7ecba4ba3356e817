/*
 * http_floor_uring.c - the thinnest io_uring HTTP responder: what a server
 * that leaves readiness polling behind would pay on this machine for one
 * keep-alive request and its response.  Measured beside stampd --http,
 * nginx and the epoll floor (http_floor.c) by bench/http.sh.
 *
 * One thread, one ring (single issuer, task work deferred to the wait), a
 * multishot accept, a multishot receive per connection into a ring of
 * provided buffers, and for each receive one send of as many responses as
 * it completed, from a shared read-only block of copies (no completion is
 * posted for a send that succeeds).  Everything queued in a pass goes to
 * the kernel with the next wait: one io_uring_enter per pass.  The
 * requests and responses are those of http_floor.c (a request ends with
 * an empty line; the response is the bytes stampd sends for "GET /").
 * No limits, no timeouts, no partial-send handling: a measuring stick.
 *
 *   bench-http-floor-uring PORT          (listens on 127.0.0.1)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "http_floor.h"

#define NBUF 4096               /* provided receive buffers (a power of 2) */
#define BUF_SIZE 2048
#define MAX_BATCH 256           /* responses per send */
#define MAX_FD 65536
#define TAG_ACCEPT (UINT64_C(1) << 40)
#define TAG_SEND (UINT64_C(1) << 41)

static struct io_uring ring;
static struct io_uring_buf_ring *bufring;
static char *bufs;
static char resp[512], *block;  /* one response; MAX_BATCH copies of it */
static size_t resp_len;
static time_t resp_sec = -1;
static unsigned char match[MAX_FD]; /* progress into "\r\n\r\n" per fd */
/*
 * The block is rewritten when the second changes; a send still in flight
 * may then carry the new date, which is still a valid response (the
 * length is the same for every second).
 */
static void response_refresh(void)
{
    if (floor_refresh(resp, sizeof(resp), &resp_len, &resp_sec))
        for (size_t i = 0; i < MAX_BATCH; i++)
            memcpy(block + i * resp_len, resp, resp_len);
}

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) { /* the queue is full: hand it to the kernel first */
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data64(sqe, TAG_ACCEPT);
}

static void arm_recv(int fd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, (uint64_t)fd);
}

/* Count the requests one received buffer completes and answer them. */
static void on_recv(int fd, const char *b, size_t n)
{
    size_t reqs = floor_count(&match[fd], b, n);
    while (reqs) {
        size_t k = reqs < MAX_BATCH ? reqs : MAX_BATCH;
        struct io_uring_sqe *sqe = sqe_get();
        io_uring_prep_send(sqe, fd, block, k * resp_len, MSG_NOSIGNAL);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, TAG_SEND | (uint64_t)fd);
        reqs -= k;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int lfd = floor_listen(argv[1], SOCK_STREAM);
    if (lfd < 0) {
        perror("http_floor_uring: listen");
        return 1;
    }
    struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
                                          IORING_SETUP_DEFER_TASKRUN |
                                          IORING_SETUP_CQSIZE,
                                 .cq_entries = 4 * NBUF };
    int r = io_uring_queue_init_params(4096, &ring, &p);
    if (r < 0) {
        fprintf(stderr, "http_floor_uring: io_uring: %s\n", strerror(-r));
        return 1;
    }
    bufring = mmap(NULL, NBUF * sizeof(struct io_uring_buf),
                   PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    bufs = malloc((size_t)NBUF * BUF_SIZE);
    block = malloc(MAX_BATCH * sizeof(resp));
    if (bufring == MAP_FAILED || !bufs || !block) {
        perror("http_floor_uring");
        return 1;
    }
    io_uring_buf_ring_init(bufring);
    struct io_uring_buf_reg reg = { .ring_addr = (unsigned long)bufring,
                                    .ring_entries = NBUF, .bgid = 0 };
    r = io_uring_register_buf_ring(&ring, &reg, 0);
    if (r < 0) {
        fprintf(stderr, "http_floor_uring: buffer ring: %s\n", strerror(-r));
        return 1;
    }
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(bufring, bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(bufring, NBUF);
    response_refresh();
    arm_accept(lfd);

    int closing[512];
    while (!floor_stop) {
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR) {
            fprintf(stderr, "http_floor_uring: wait: %s\n", strerror(-r));
            return 1;
        }
        response_refresh();
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0, returned = 0;
        size_t nclosing = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            uint64_t tag = cqe->user_data;
            if (tag == TAG_ACCEPT) {
                if (cqe->res >= MAX_FD)
                    close(cqe->res);
                else if (cqe->res >= 0) {
                    match[cqe->res] = 0;
                    arm_recv(cqe->res);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    arm_accept(lfd);
                continue;
            }
            if (tag & TAG_SEND)
                continue; /* a failed send; the receive ends the connection */
            int fd = (int)tag;
            if (cqe->res > 0) {
                unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                char *b = bufs + (size_t)bid * BUF_SIZE;
                on_recv(fd, b, (size_t)cqe->res);
                io_uring_buf_ring_add(bufring, b, BUF_SIZE, (unsigned short)bid,
                                      io_uring_buf_ring_mask(NBUF), (int)returned++);
                if (!(cqe->flags & IORING_CQE_F_MORE))
                    arm_recv(fd);
            } else if (cqe->res == -ENOBUFS) {
                arm_recv(fd);
            } else if (!(cqe->flags & IORING_CQE_F_MORE) &&
                       nclosing < sizeof(closing) / sizeof(closing[0])) {
                closing[nclosing++] = fd; /* after its last sends go out */
            }
        }
        io_uring_buf_ring_advance(bufring, (int)returned);
        io_uring_cq_advance(&ring, seen);
        if (nclosing) {
            io_uring_submit(&ring);
            for (size_t i = 0; i < nclosing; i++)
                close(closing[i]);
        }
    }
    return 0;
}
