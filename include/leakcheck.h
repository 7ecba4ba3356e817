/*
 * leakcheck.h - LeakSanitizer for worker processes.
 *
 * A worker leaves through _exit(), which skips the exit-time leak check
 * that LeakSanitizer runs from atexit(): without this, a sanitizer build
 * would check the master only.  leakcheck_worker_exit(rc) runs the check
 * explicitly and turns a leak into exit status LEAKCHECK_EXIT_STATUS (when
 * the worker would otherwise have exited 0), which the master logs as an
 * unclean worker exit; the report itself goes to stderr, i.e. the log.
 *
 * The check honours ASAN_OPTIONS (detect_leaks=0 disables it).  In builds
 * without AddressSanitizer this is the identity.
 */
#ifndef STAMPD_LEAKCHECK_H
#define STAMPD_LEAKCHECK_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LEAKCHECK_ENABLED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LEAKCHECK_ENABLED 1
#endif

#define LEAKCHECK_EXIT_STATUS 23

#ifdef LEAKCHECK_ENABLED
#include <sanitizer/lsan_interface.h>

static inline int leakcheck_worker_exit(int rc)
{
    if (__lsan_do_recoverable_leak_check() && rc == 0)
        return LEAKCHECK_EXIT_STATUS;
    return rc;
}
#else
static inline int leakcheck_worker_exit(int rc)
{
    return rc;
}
#endif

#endif
