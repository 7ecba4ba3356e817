/*
 * hist.h - a log-linear histogram index (HDR-histogram style), pure.
 *
 * Values below 2^sub_bits are their own bucket; above, each power of two is
 * split into 2^sub_bits equal sub-buckets, so a bucket's width is at most
 * 1/2^sub_bits of its lower bound: sub_bits 2 gives 25% resolution (the
 * server's per-worker latency histogram, small and fixed), sub_bits 7 under
 * 1% (stampbench).  The same two functions serve both.
 */
#ifndef STAMPD_HIST_H
#define STAMPD_HIST_H

#include <stdint.h>

/* Bucket of value v; buckets needed to cover every uint64 value is
 * hist_index(UINT64_MAX, sub_bits) + 1. */
static inline unsigned hist_index(uint64_t v, unsigned sub_bits)
{
    uint64_t sub = (uint64_t)1 << sub_bits;
    if (v < sub)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);   /* >= sub_bits */
    unsigned shift = msb - sub_bits;
    return (unsigned)((shift + 1) << sub_bits) + (unsigned)((v >> shift) - sub);
}

/* The largest value that falls in bucket i (inclusive upper bound). */
static inline uint64_t hist_upper(unsigned i, unsigned sub_bits)
{
    uint64_t sub = (uint64_t)1 << sub_bits;
    unsigned hi = i >> sub_bits;   /* 0: i < sub, the exact buckets */
    if (hi == 0)
        return i;
    unsigned shift = hi - 1;
    unsigned __int128 end = (unsigned __int128)(sub + (i & (sub - 1)) + 1) << shift;
    return end > (unsigned __int128)UINT64_MAX ? UINT64_MAX : (uint64_t)(end - 1);
}

/* The smallest value in bucket i. */
static inline uint64_t hist_lower(unsigned i, unsigned sub_bits)
{
    uint64_t sub = (uint64_t)1 << sub_bits;
    unsigned hi = i >> sub_bits;   /* 0: i < sub, the exact buckets */
    if (hi == 0)
        return i;
    unsigned shift = hi - 1;
    return (sub + (i & (sub - 1))) << shift;
}

#endif
