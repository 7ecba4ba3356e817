/*
 * fuzz_conn.c - one whole connection through the real reactor code: the
 * input is written in random pieces into a socketpair whose other end is a
 * connection opened by conn_open(); the worker's own loop turn
 * (worker_turn(), through fuzz_worker.h) runs it, minus accept, with a
 * small --max-output so staged replies are sent early, output is held in
 * the ring and back-pressure pauses and resumes happen, and a small read
 * buffer so lines straddle reads.
 *
 * Input layout: byte 0 picks max_line (1..256), byte 1 max_output
 * (64..16384), byte 2 the read buffer size (1..256), byte 3 seeds the
 * write sizes and, by its low bit, makes the client a slow reader (the
 * server's socket send buffer shrunk, the client reading in one round of
 * four until it half-closes) so that the kernel refuses replies and they go
 * through the ring; the rest is the client's byte stream, then the client
 * half-closes.  What the client reads must be exactly the --reply echo of
 * every complete line (a final fragment answered with LF), or, when a line
 * is too long, the replies owed before it and "ERR line too long\n"; then
 * EOF.  Afterwards the connection is closed and every gauge (active
 * connections, ring and input bytes) is back to zero.
 */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_worker.h"

static struct fuzz_worker fw;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    if (!fw.ready) {
        char *argv[] = { "stampd", "--reply", "echo", "--line-timeout", "0",
                         "--idle-timeout", "0", NULL };
        fuzz_worker_setup(&fw, 7, argv);
    }
    fuzz_worker_limits(&fw, data);
    uint32_t rng = data[3];
    const char *in = (const char *)data + 4;
    size_t n = size - 4;
    int lazy = rng & 1;  /* a slow reader: small send buffer, rare reads */

    int sv[2];
    fuzz_worker_open(&fw, sv, lazy);  /* listener 0: line, unix */
    struct fbuf got = { 0 }, want = { 0 };
    fuzz_worker_converse(&fw, sv[1], in, n, rng, lazy, &got);
    fuzz_worker_finish(&fw, sv, n);

    if (fuzz_echo_reference(in, n, fw.opts.max_line, &want))
        fbuf_put(&want, "ERR line too long\n", 18);
    fuzz_worker_check(&fw, &got, &want);
    return 0;
}
