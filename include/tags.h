/*
 * tags.h - the poller tags of every event loop, allocated in one place.
 *
 * A registration's 64-bit `data` (poller.h) comes back verbatim with each
 * event; a loop's dispatch reads from it what the event is for.  Each kind
 * of registration owns one high bit, so no two kinds can be mistaken for
 * each other in any loop, and the bits below say which one of that kind.
 *
 *   bit 63  TAG_LISTENER  worker: a listening socket; low 16 bits: its
 *                         index in the worker's listener table
 *   bit 62  TAG_ADMIN     master: the admin port (admin.c lays out the low
 *                         bits: 0 the listener, else slot + 1 and the
 *                         slot's generation)
 *   bit 61  TAG_SIGNAL    either loop: its self-pipe (reactor.h)
 *   bit 60  TAG_HANDOFF   master: a starting successor's readiness pipe
 *   bit 59  TAG_IPC       operator mode (opchannel.h): in a worker, its
 *                         channel to the master; in the master (console.c
 *                         lays out the low bits), a worker's channel as
 *                         slot + 1, or the attached console as its
 *                         generation << 16
 *   none    a worker's client connection: TAG_CONN(gen, fd), the slot's
 *           generation above bit 32 (TAG_GEN_MASK keeps it below bit 59)
 *           and the fd below; the generation changes every time a slot is
 *           reused, so an event queued for a connection closed earlier in
 *           the same batch is recognised and dropped.
 */
#ifndef STAMPD_TAGS_H
#define STAMPD_TAGS_H

#include <stdint.h>

#define TAG_LISTENER (1ull << 63)
#define TAG_ADMIN    (1ull << 62)
#define TAG_SIGNAL   (1ull << 61)
#define TAG_HANDOFF  (1ull << 60)
#define TAG_IPC      (1ull << 59)

/* Every kind bit: a tag with none of them set is a connection's. */
#define TAG_KINDS (TAG_LISTENER | TAG_ADMIN | TAG_SIGNAL | TAG_HANDOFF | TAG_IPC)

/* A connection generation: 27 bits, so that it stays clear of TAG_KINDS. */
#define TAG_GEN_MASK 0x07ffffffu

/* The low 16 bits of a kind's tag: which one of that kind. */
#define TAG_INDEX(tag) ((unsigned)((tag) & 0xffff))

static inline uint64_t tag_conn(uint32_t gen, int fd)
{
    return (uint64_t)(gen & TAG_GEN_MASK) << 32 | (uint32_t)fd;
}

static inline uint32_t tag_conn_gen(uint64_t tag)
{
    return (uint32_t)(tag >> 32) & TAG_GEN_MASK;
}

static inline int tag_conn_fd(uint64_t tag)
{
    return (int)(uint32_t)tag;
}

#endif
