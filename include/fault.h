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
 * The interest-change hook wraps poller_mod() the same way: with
 * STAMPD_FAULT_POLLER_MOD_EVERY=N, once a worker is ready every Nth change
 * of an existing registration (write interest for held output, reading
 * paused or resumed; registering a new fd is never failed) fails with
 * -ENOMEM, to exercise the policy of reactor.h (the connection is closed
 * and counted in poller_errors).
 *
 * The clock discipline hook: fault_adjtimex() is what clocksync.c calls
 * instead of adjtimex().  With STAMPD_FAULT_ADJTIMEX_FILE naming a file,
 * each call reads the result from it (re-read every call, so a test can
 * change it while the server runs): "STATE STATUS MAXERROR ESTERROR
 * OFFSET" (STATE the return value such as 0 TIME_OK or 5 TIME_ERROR,
 * STATUS the STA_* bits, e.g. 0x40 for STA_UNSYNC, errors and offset in
 * microseconds), or "-1 ERRNO" for a failing call.  Without the variable,
 * or when the file does not exist, the real adjtimex(); an unreadable
 * line fails with EINVAL.
 *
 * The stall hook: fault_after_read() sees every client read.  With
 * STAMPD_FAULT_STALL_ON naming a text and STAMPD_FAULT_STALL_MS a time, a
 * read that holds the text stalls the worker that long before it is
 * answered (signals do not cut it short), so that a test can make one loop
 * turn last across a second boundary.
 *
 * In normal builds fault_worker_ready() and fault_after_read() are empty
 * inline functions and fault_adjtimex() is adjtimex().
 */
#ifndef STAMPD_FAULT_H
#define STAMPD_FAULT_H

#include <stddef.h>
#include <sys/timex.h>

#ifdef FAULT_INJECTION
void fault_worker_ready(void);
void fault_after_read(const char *data, size_t n);
int fault_adjtimex(struct timex *tx);
#else
static inline void fault_worker_ready(void) {}
static inline void fault_after_read(const char *data, size_t n)
{
    (void)data;
    (void)n;
}
static inline int fault_adjtimex(struct timex *tx) { return adjtimex(tx); }
#endif

#endif
