/*
 * fuzz_proxy.c - the PROXY protocol header parser against itself.
 *
 * The input is what a connection received.  Every prefix, each in a heap
 * block of exactly its length (so ASan sees a read past it), is parsed and
 * must agree with the whole: NEED_MORE asks for more than it has and never
 * for more than the header the whole finds (need is a lower bound on the
 * header's length); the first
 * prefix that gives ERROR or DONE gives the verdict of the whole, DONE with
 * the same header (consumed <= len) for every longer prefix.  Any
 * disagreement aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static enum proxy_status parse_copy(const uint8_t *data, size_t k,
                                    struct proxy_result *r)
{
    uint8_t *copy = malloc(k ? k : 1);
    if (!copy)
        abort();
    if (k)
        memcpy(copy, data, k);
    enum proxy_status st = proxy_parse(copy, k, r);
    free(copy);
    return st;
}

static int same(const struct proxy_result *a, const struct proxy_result *b)
{
    return a->consumed == b->consumed && a->version == b->version &&
           a->command == b->command && a->keep_addr == b->keep_addr &&
           a->transport == b->transport &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_result whole, r;
    enum proxy_status wst = parse_copy(data, size, &whole);
    if (wst == PROXY_DONE && (whole.consumed > size || whole.consumed == 0 ||
                              whole.consumed > PROXY_MAX_LEN))
        abort();
    if (wst == PROXY_NEED_MORE && whole.need <= size)
        abort();
    if (wst == PROXY_ERROR && !whole.error)
        abort();
    size_t k = 0;
    enum proxy_status st = PROXY_NEED_MORE;
    for (; k <= size; k++) {
        st = parse_copy(data, k, &r);
        if (st != PROXY_NEED_MORE)
            break;
        if (r.need <= k || (size < r.need && wst == PROXY_DONE))
            abort();
        if (wst == PROXY_DONE && r.need > whole.consumed)
            abort();
    }
    if (k > size)
        return wst == PROXY_NEED_MORE ? 0 : (abort(), 0);
    if (st != wst)
        abort();
    if (st == PROXY_ERROR)
        return 0;
    /* DONE at exactly the header's length, the same for all longer. */
    if (k != whole.consumed || !same(&r, &whole))
        abort();
    for (k++; k <= size; k++) {
        if (parse_copy(data, k, &r) != PROXY_DONE || !same(&r, &whole))
            abort();
    }
    return 0;
}
