/*
 * fault.c - allocation-failure and clock-state injection for tests (see
 * fault.h).  Linked only into FAULT_INJECTION builds.
 *
 * Workers are single-threaded, so the counters need no atomics; the master
 * never arms them (it does not call fault_worker_ready()).
 */
#ifdef FAULT_INJECTION
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "poller.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

int __real_poller_mod(poller_t *p, int fd, unsigned old_mask,
                      unsigned new_mask, uint64_t data);
int __wrap_poller_mod(poller_t *p, int fd, unsigned old_mask,
                      unsigned new_mask, uint64_t data);

static unsigned long fail_every;   /* 0: disarmed */
static unsigned long allocations;
static unsigned long mod_fail_every; /* 0: disarmed */
static unsigned long mods;
static const char *stall_on;       /* NULL: no stalls */
static long stall_ms;
/* Where the deliberate leak's address is dropped (volatile: the store and
 * the overwrite are both kept, so no root to the block remains). */
static void *volatile leak_sink;

/* Allocate a block and lose its only pointer: a definite leak for
 * LeakSanitizer to find at the worker's exit. */
static __attribute__((noinline)) void leak_on_purpose(void)
{
    for (int i = 0; i < 4; i++) {
        leak_sink = __real_malloc(4096);
        leak_sink = NULL;
    }
}

/* Arm a "one in N fails" injection from environment variable var. */
static void arm(const char *var, unsigned long *every, unsigned long *count,
                const char *what)
{
    const char *e = getenv(var);
    if (!e)
        return;
    *every = strtoul(e, NULL, 10);
    *count = 0;
    if (*every)
        log_info("fault injection: one %s in %lu fails", what, *every);
}

/* True when this call is the one in `every` to fail (0: never). */
static int due(unsigned long every, unsigned long *count)
{
    return every && ++*count % every == 0;
}

void fault_worker_ready(void)
{
    const char *e = getenv("STAMPD_FAULT_EXIT_AT_START");
    if (e && *e == '1') {
        log_error("fault injection: exiting at start-up");
        _exit(3);
    }
    e = getenv("STAMPD_FAULT_LEAK");
    if (e && *e == '1') {
        log_info("fault injection: leaking memory on purpose");
        leak_on_purpose();
    }
    arm("STAMPD_FAULT_POLLER_MOD_EVERY", &mod_fail_every, &mods,
        "interest change");
    arm("STAMPD_FAULT_ALLOC_EVERY", &fail_every, &allocations, "allocation");
    stall_on = getenv("STAMPD_FAULT_STALL_ON");
    e = getenv("STAMPD_FAULT_STALL_MS");
    stall_ms = e ? strtol(e, NULL, 10) : 0;
    if (stall_on && *stall_on && stall_ms > 0)
        log_info("fault injection: a read holding \"%s\" stalls %ld ms",
                 stall_on, stall_ms);
}

void fault_after_read(const char *data, size_t n)
{
    struct timespec end;

    if (!stall_on || !*stall_on || stall_ms <= 0 ||
        !memmem(data, n, stall_on, strlen(stall_on)))
        return;
    log_info("fault injection: stalling %ld ms", stall_ms);
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += stall_ms / 1000;
    end.tv_nsec += (stall_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    /* Until the deadline, whatever signals come (they return EINTR). */
    for (int i = 0; i < 100000; i++)
        if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) != EINTR)
            break;
}

/* True when this allocation is the one to fail. */
static int fail_now(void)
{
    if (!due(fail_every, &allocations))
        return 0;
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* realloc(p, 0) frees; failing it would leak p. */
    if (n == 0 || !fail_now())
        return __real_realloc(p, n);
    return NULL;
}

/* Only changes of an existing registration: registering a new fd
 * (accepts) goes through. */
int __wrap_poller_mod(poller_t *p, int fd, unsigned old_mask,
                      unsigned new_mask, uint64_t data)
{
    if (old_mask && old_mask != new_mask && due(mod_fail_every, &mods))
        return -ENOMEM;
    return __real_poller_mod(p, fd, old_mask, new_mask, data);
}

int fault_adjtimex(struct timex *tx)
{
    const char *path = getenv("STAMPD_FAULT_ADJTIMEX_FILE");
    FILE *f = path ? fopen(path, "re") : NULL;
    if (!f)
        return adjtimex(tx);
    long v[5];
    int n = fscanf(f, "%li %li %li %li %li", &v[0], &v[1], &v[2], &v[3], &v[4]);
    fclose(f);
    if (n >= 2 && v[0] == -1) {
        errno = (int)v[1];
        return -1;
    }
    if (n != 5) {
        errno = EINVAL;
        return -1;
    }
    tx->status = (int)v[1];
    tx->maxerror = v[2];
    tx->esterror = v[3];
    tx->offset = v[4];
    return (int)v[0];
}
#else
/* ISO C forbids an empty translation unit. */
typedef int fault_unused;
#endif
