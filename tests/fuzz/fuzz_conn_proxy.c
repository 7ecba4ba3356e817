/*
 * fuzz_conn_proxy.c - a connection on a ,proxy listener through the real
 * reactor code (conn.c, conn_client.c): the input is written in random
 * pieces into a socketpair whose other end was opened by conn_open() on a
 * ,proxy line listener (a unix peer, so always a trusted source) and is
 * run by the worker's own loop turn (fuzz_worker.h), with a
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
#include <stdint.h>
#include <stddef.h>

#include "fuzz_worker.h"
#include "proxy.h"

static const char BAD[] = "ERR bad proxy header\n";

static struct fuzz_worker fw;

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
    if (fuzz_echo_reference(in + r.consumed, n - r.consumed, fw.opts.max_line, want))
        fbuf_put(want, "ERR line too long\n", 18);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    if (!fw.ready) {
        char *argv[] = { "stampd", "--reply", "echo", "--line-timeout", "0",
                         "--idle-timeout", "0", "--log-level", "warn", NULL };
        fuzz_worker_setup(&fw, 9, argv);
    }
    fuzz_worker_limits(&fw, data);
    int chunk = (data[3] & 0x80) != 0;
    fw.addr.flags = ADDR_PROXY | (chunk ? ADDR_CHUNK : 0);
    if (chunk && fw.w.rbuf_size > fw.opts.max_line)
        fw.w.rbuf_size = fw.opts.max_line;
    const char *in = (const char *)data + 4;
    size_t n = size - 4;

    int sv[2];
    fuzz_worker_open(&fw, sv, 0);
    struct fbuf got = { 0 }, want = { 0 };
    fuzz_worker_converse(&fw, sv[1], in, n, data[3], 0, &got);
    fuzz_worker_finish(&fw, sv, n);

    reference(in, n, chunk, &want);
    fuzz_worker_check(&fw, &got, &want);
    return 0;
}
