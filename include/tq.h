/*
 * tq.h - timeout queues: one fixed timeout shared by every member, so a list
 * in stamp order replaces a timer heap (the lwan idea).  Touching a member
 * moves it to the tail with the current time; the expired members are always
 * at the head.  Every operation is O(1).  Pure, header-only.
 */
#ifndef STAMPD_TQ_H
#define STAMPD_TQ_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"

struct tlink {
    struct tlink *prev, *next; /* NULL/NULL when not queued */
    int64_t stamp;             /* monotonic ms of the last touch */
};

struct tqueue {
    struct tlink head;   /* sentinel: head.next is the oldest member */
    int64_t timeout_ms;  /* <= 0: never expires */
};

static inline void tq_init(struct tqueue *q, int64_t timeout_ms)
{
    q->head.prev = q->head.next = &q->head;
    q->head.stamp = 0;
    q->timeout_ms = timeout_ms;
}

static inline int tq_queued(const struct tlink *l) { return l->next != NULL; }

static inline void tq_remove(struct tlink *l)
{
    if (!l->next)
        return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* (Re)insert at the tail with stamp `now`.  `now` never decreases: the
 * queue's order is its stamps' order, which is what makes the head the
 * first to expire.  A member already stamped `now` stays where it is:
 * every member behind it has that stamp too, so the order holds, and a
 * busy member touched again within the millisecond costs no writes to its
 * neighbours. */
static inline void tq_touch(struct tqueue *q, struct tlink *l, int64_t now)
{
    if (l->next && l->stamp == now)
        return;
    tq_remove(l);
    stampd_assert(q->head.prev == &q->head || q->head.prev->stamp <= now);
    l->stamp = now;
    l->prev = q->head.prev;
    l->next = &q->head;
    q->head.prev->next = l;
    q->head.prev = l;
}

static inline struct tlink *tq_first(const struct tqueue *q)
{
    return q->head.next == &q->head ? NULL : q->head.next;
}

/* The oldest member if its timeout has run out at `now`, else NULL. */
static inline struct tlink *tq_expired(const struct tqueue *q, int64_t now)
{
    struct tlink *l = tq_first(q);
    if (!l || q->timeout_ms <= 0 || now - l->stamp < q->timeout_ms)
        return NULL;
    return l;
}

/* Milliseconds until the head expires: -1 if never, 0 if already due. */
static inline int64_t tq_next_ms(const struct tqueue *q, int64_t now)
{
    const struct tlink *l = tq_first(q);
    if (!l || q->timeout_ms <= 0)
        return -1;
    int64_t left = l->stamp + q->timeout_ms - now;
    return left < 0 ? 0 : left;
}

#define tq_entry(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
