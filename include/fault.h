/*
 * fault.h - test-only fault injection, compiled in with -DFAULT_INJECTION
 * (tests/reliability.mk builds build-fault/stampd that way, with ASan).
 *
 * The allocation hook wraps malloc/calloc/realloc at link time
 * (-Wl,--wrap=...), so no allocation site changes: once a worker has
 * finished its initialisation (fault_worker_ready()), every Nth allocation
 * made by stampd's own code fails, N taken from STAMPD_FAULT_ALLOC_EVERY.
 * STAMPD_FAULT_EXIT_AT_START=1 makes every worker die right after its
 * initialisation instead, to exercise the master's respawn throttle.
 * STAMPD_FAULT_LEAK=1 makes every worker leak a few blocks at start-up, so
 * that a test can prove LeakSanitizer checks workers (see leakcheck.h).
 *
 * In normal builds fault_worker_ready() is an empty inline function.
 */
#ifndef STAMPD_FAULT_H
#define STAMPD_FAULT_H

#ifdef FAULT_INJECTION
void fault_worker_ready(void);
#else
static inline void fault_worker_ready(void) {}
#endif

#endif
