/*
 * stats.c - the shared statistics table (see stats.h).
 */
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "stats.h"

struct stats_table *stats_table_create(unsigned nworkers)
{
    size_t size = sizeof(struct stats_table) +
                  (size_t)nworkers * sizeof(struct stats_slot);
    struct stats_table *t = mmap(NULL, size, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED)
        return NULL;
    t->nworkers = nworkers;  /* mmap gives zeroed pages */
    return t;
}

void stats_slot_reset_gauges(struct stats_slot *s)
{
#define STATS_ZERO(f, m, ln, lv, h) STAT_SET(s, f, 0);
    STATS_GAUGES(STATS_ZERO)
#undef STATS_ZERO
#define STATS_LZERO(f, m, h) STAT_SET(&s->lst[i], f, 0);
    for (unsigned i = 0; i < STATS_MAX_LISTENERS; i++) {
        STATS_LISTENER_GAUGES(STATS_LZERO)
    }
#undef STATS_LZERO
    __atomic_store_n(&s->heartbeat_ms, 0, __ATOMIC_RELAXED);
}
