/*
 * check.h - invariants that hold in every build.
 *
 * stampd_assert(cond) is for what a comment would otherwise only claim:
 * ring indices, framer preconditions, timer order, connection flag
 * combinations.  Unlike assert(3) it is not compiled out by NDEBUG: a
 * broken invariant in a server that keeps running corrupts replies
 * silently, so it logs the file, line and condition and aborts (the master
 * logs the worker's death and replaces it).  Not for input validation: bad
 * input is an error reply, never an abort.
 */
#ifndef STAMPD_CHECK_H
#define STAMPD_CHECK_H

/* Write "stampd: FILE:LINE: invariant failed: COND" to stderr and abort. */
__attribute__((noreturn, cold)) void check_failed(const char *file, int line,
                                                  const char *cond);

#define stampd_assert(cond) \
    ((cond) ? (void)0 : check_failed(__FILE__, __LINE__, #cond))

#endif
