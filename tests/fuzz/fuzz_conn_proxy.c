/*
 * fuzz_conn_proxy.c - a connection on a ,proxy listener through the real
 * reactor code (conn.c, conn_client.c): the input is written in random
 * pieces into a socketpair whose other end was opened by conn_open() on a
 * ,proxy line listener (a unix peer, so always a trusted source), with a
 * small read buffer so that a header straddles reads and is held between
 * them, and a small --max-output so back-pressure happens after it.
 *
 * Input layout as fuzz_conn.c: byte 0 picks max_line (1..256), byte 1
 * max_output (64..16384), byte 2 the read buffer size (1..256), byte 3
 * seeds the write sizes, and its top bit makes the listener ,proxy,chunk
 * (the read buffer is then at most max_line, so no read is too long); the
 * rest is the client's byte stream, then the client half-closes.
 *
 * Oracle: proxy_parse() over the whole stream.  DONE: the client reads
 * exactly the --reply echo of the bytes after the header (line framing:
 * as fuzz_conn.c checks it; chunk framing: those bytes themselves, however
 * the reads cut them); ERROR, or NEED_MORE (the stream ends inside a
 * header): exactly "ERR bad proxy header\n".  Then EOF, and every gauge is back to
 * zero.  So a header split anywhere is read as the whole would be, and
 * nothing after it is lost or answered twice.
 */
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
#include "proxy.h"

#define MAX_ROUNDS 100000

static const char BAD[] = "ERR bad proxy header\n";

static struct opts opts;
static struct stats_slot slot;
static struct worker w;
static struct addr laddr = { .family = AF_UNIX, .flags = ADDR_PROXY,
                             .text = "unix:fuzz" };
static struct listener lis = { .fd = -1, .kind = LISTEN_LINE, .addr = &laddr };
static struct worker_cfg cfg = { .ls = &lis, .nls = 1 };
static int ready;

static void setup(void)
{
    char err[256];
    char *argv[] = { "stampd", "--reply", "echo", "--line-timeout", "0",
                     "--idle-timeout", "0", "--log-level", "warn", NULL };
    if (opts_parse(&opts, 9, argv, 1, err, sizeof(err)) != OPTS_OK)
        abort();
    cfg.o = &opts;
    cfg.st = &slot;
    w.cfg = &cfg;
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

/* What the client must read. */
static void reference(const char *in, size_t n, int chunk, struct fbuf *want)
{
    struct proxy_result r;
    if (proxy_parse(in, n, &r) != PROXY_DONE) {
        fbuf_put(want, BAD, sizeof(BAD) - 1);
        return;
    }
    if (chunk) {
        fbuf_put(want, in + r.consumed, n - r.consumed);
        return;
    }
    if (fuzz_echo_reference(in + r.consumed, n - r.consumed, opts.max_line, want))
        fbuf_put(want, "ERR line too long\n", 18);
}

/* Write the stream in random pieces while running the loop; the client
 * half-closes once everything is written (or the server has closed). */
static void converse(int fd, const char *in, size_t n, uint32_t rng,
                     struct fbuf *got)
{
    size_t sent = 0;
    int eof = 0, shut = 0;

    for (int round = 0; round < MAX_ROUNDS && !eof; round++) {
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
        iterate();
        eof = drain(fd, got);
    }
    if (!eof)
        abort(); /* the server never finished the connection */
    if (!shut)
        shutdown(fd, SHUT_WR);
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
    int chunk = (data[3] & 0x80) != 0;
    laddr.flags = ADDR_PROXY | (chunk ? ADDR_CHUNK : 0);
    if (chunk && w.rbuf_size > opts.max_line)
        w.rbuf_size = opts.max_line;
    conn_limits(&w);
    const char *in = (const char *)data + 4;
    size_t n = size - 4;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    if (!conn_open(&w, sv[0], 0))
        abort();
    struct fbuf got = { 0 }, want = { 0 };
    converse(sv[1], in, n, data[3], &got);
    /* As in fuzz_conn.c: n more iterations let a lingering connection
     * discard what is still queued and see the client's EOF. */
    for (size_t i = 0; i < 100 + n && (w.conns[sv[0]].flags & CF_OPEN); i++)
        iterate();
    if (w.conns[sv[0]].flags & CF_OPEN)
        abort();
    close(sv[1]);

    reference(in, n, chunk, &want);
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
