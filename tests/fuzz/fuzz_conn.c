/*
 * fuzz_conn.c - one whole connection through the real reactor code: the
 * input is written in random pieces into a socketpair whose other end is a
 * connection opened by conn_open(); the real poller and conn_event() run
 * it exactly as the worker loop does (minus accept and timers), with a
 * small --max-output so staged replies are sent early, output is held in
 * the ring and back-pressure pauses and resumes happen, and a small read
 * buffer so lines straddle reads.
 *
 * Input layout: byte 0 picks max_line (1..256), byte 1 max_output
 * (64..16384), byte 2 the read buffer size (1..256), byte 3 seeds the
 * write sizes; the rest is the client's byte stream, then the client
 * half-closes.  What the client reads must be exactly the --reply echo of
 * every complete line (a final fragment answered with LF), or, when a line
 * is too long, the replies owed before it and "ERR line too long\n"; then
 * EOF.  Afterwards the connection is closed and every gauge (active
 * connections, ring and input bytes) is back to zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "fuzz_util.h"
#include "opts.h"

#define MAX_ROUNDS 100000

static struct opts opts;
static struct stats_slot slot;
static struct worker w;
static int ready;


static void setup(void)
{
    char err[256];
    char *argv[] = { "stampd", "--reply", "echo", "--line-timeout", "0",
                     "--idle-timeout", "0", NULL };
    if (opts_parse(&opts, 7, argv, 1, err, sizeof(err)) != OPTS_OK)
        abort();
    w.o = &opts;
    w.st = &slot;
    w.nconns = 4096;
    w.conns = calloc((size_t)w.nconns, sizeof(*w.conns));
    w.rbuf = malloc(256);
    opts.max_line = 256;  /* the largest the input can pick */
    w.stage_cap = conn_stage_size(&opts);
    w.stage = malloc(w.stage_cap);
    w.poller = poller_create(16);
    if (!w.conns || !w.rbuf || !w.stage || !w.poller)
        abort();
    tq_init(&w.idle_q, 0);
    tq_init(&w.line_q, 0);
    tq_init(&w.linger_q, 2000);
    clock_update(&w.clock);
    ready = 1;
}


/* One worker loop iteration without blocking. */
static void iterate(void)
{
    struct poller_event ev[16];
    int n = poller_wait(w.poller, ev, 16, 0);
    clock_update(&w.clock);
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)ev[i].data;
        uint32_t gen = (uint32_t)(ev[i].data >> 32);
        if (fd < 0 || fd >= w.nconns)
            abort();
        struct conn *c = &w.conns[fd];
        if (!(c->flags & CF_OPEN) || c->gen != gen)
            continue;
        conn_event(&w, c, ev[i].mask);
    }
}

static int drain(int fd, struct fbuf *got)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    if (!ready)
        setup();
    opts.max_line = (size_t)data[0] + 1;
    opts.max_output = 64 + (size_t)data[1] * 64;
    w.rbuf_size = 1 + (size_t)data[2];
    conn_limits(&w);
    uint32_t rng = data[3];
    const char *in = (const char *)data + 4;
    size_t n = size - 4;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    struct conn *c = conn_open(&w, sv[0], LISTEN_LINE, 1);
    if (!c)
        abort();

    struct fbuf got = { 0 }, want = { 0 };
    size_t sent = 0;
    int eof = 0, shut = 0;
    for (int round = 0; round < MAX_ROUNDS && !eof; round++) {
        if (sent < n) {
            size_t piece = 1 + fuzz_rand(&rng) % (n - sent);
            ssize_t r = write(sv[1], in + sent, piece);
            if (r > 0)
                sent += (size_t)r;
            else if (r < 0 && errno != EAGAIN && errno != EPIPE)
                abort();
            else if (r < 0 && errno == EPIPE)
                sent = n; /* the server closed after an error */
        } else if (!shut) {
            shutdown(sv[1], SHUT_WR);
            shut = 1;
        }
        iterate();
        eof = drain(sv[1], &got);
    }
    if (!eof)
        abort(); /* the server never finished the connection */
    /* The server closes after its EOF or, after an error, after the
     * client's EOF.  A lingering connection discards at least one read
     * buffer per iteration (LINGER_READS of them), and up to n bytes may
     * still be queued ahead of the EOF, so n iterations always suffice. */
    if (!shut)
        shutdown(sv[1], SHUT_WR);
    for (size_t i = 0; i < 100 + n && (w.conns[sv[0]].flags & CF_OPEN); i++)
        iterate();
    if (w.conns[sv[0]].flags & CF_OPEN)
        abort();
    close(sv[1]);

    if (fuzz_echo_reference(in, n, opts.max_line, &want))
        fbuf_put(&want, "ERR line too long\n", 18);
    if (!fbuf_equal(&got, &want)) {
        fprintf(stderr, "got %zu bytes: %.*s\nwant %zu bytes: %.*s\n",
                got.len, (int)(got.len < 300 ? got.len : 300), got.p,
                want.len, (int)(want.len < 300 ? want.len : 300), want.p);
        abort();
    }
    if (w.active != 0 || slot.conns_active != 0 || slot.ring_bytes != 0 ||
        slot.input_bytes != 0 || w.buffered != 0 || w.stage_len != 0)
        abort();
    free(got.p);
    free(want.p);
    return 0;
}
