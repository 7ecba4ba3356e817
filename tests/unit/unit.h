/*
 * unit.h - what the unit tests of the pure modules share: cmocka (which
 * needs these headers before its own) and one seeded generator, so every
 * randomised test is the same on every run and a failure can be replayed.
 */
#ifndef STAMPD_UNIT_H
#define STAMPD_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* xorshift64*: the state must start non-zero. */
static inline uint64_t unit_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

#endif
