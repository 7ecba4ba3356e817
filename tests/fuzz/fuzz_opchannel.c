/*
 * fuzz_opchannel.c - the operator console's pure parts on any bytes: a
 * packet from a channel (opmsg_decode) and a line the operator typed
 * (opconsole_parse).  The first byte picks which.  A packet that decodes
 * must point inside itself, format into one line, and encode back to the
 * same bytes; a parsed line's text must lie inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opchannel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void packet(const char *p, size_t n)
{
    static char again[OPMSG_MAX];
    struct opmsg m;
    struct sbuf b = { 0 };

    if (opmsg_decode(p, n, &m) != 0)
        return;
    if (m.data < p || m.data + m.len > p + n || strlen(m.addr) >= OPMSG_ADDR_MAX ||
        m.full_len < m.len)
        abort();
    opconsole_format(&b, &m);
    if (b.len && (b.buf[b.len - 1] != '\n' || sbuf_failed(&b)))
        abort();
    sbuf_free(&b);
    /* A packet re-encodes to itself, but for OPM_LINE's uncut length,
     * which the encoder takes from the data it is given. */
    if (m.type != OPM_LINE || m.full_len == m.len) {
        size_t k = opmsg_encode(again, &m);
        if (k != n || memcmp(again, p, n) != 0)
            abort();
    }
}

static void typed(const char *p, size_t n)
{
    uint32_t id = 0;
    const char *text = NULL;
    size_t tlen = 0;
    int rc = opconsole_parse(p, n, &id, &text, &tlen);

    if (rc < -1 || rc > 1 || (rc == 1 && id == 0))
        abort();
    if (rc >= 0 && (text < p || text + tlen > p + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy)
        abort();
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1)
        typed(copy, size - 1);
    else
        packet(copy, size - 1);
    free(copy);
    return 0;
}
