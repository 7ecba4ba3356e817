/*
 * log.h - one line per event on stderr:
 *   2016-09-05T22:29:12.345Z stampd[1234] worker 0 warn: message
 * Lines are written with a single write(2) so that processes sharing stderr
 * do not interleave mid-line.  log_ratelimited() drops repeats of the same
 * call site within an interval (for EMFILE and similar storms).
 */
#ifndef STAMPD_LOG_H
#define STAMPD_LOG_H

#include <sys/types.h>

#include "opts.h"

void log_init(enum log_level level, const char *role); /* role: "master", "worker 3" */
void log_set_role(const char *role);
/* Send every later line to `path` (appended; created 0640, owned by `owner`
 * unless it is (uid_t)-1) in place of stderr.  0 or -errno; on failure
 * stderr is unchanged. */
int log_open_file(const char *path, uid_t owner);
/* Open the log file again under the same path (after a rotation); a no-op
 * without one.  Async-signal-safe.  0 or -errno (the old file stays). */
int log_reopen(void);
/* A signal handler that calls log_reopen() (for workers' SIGUSR1). */
void log_reopen_on_signal(int sig);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* *last holds the monotonic ms of the last emitted line for this site. */
void log_ratelimited(enum log_level level, long long *last, int interval_ms,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
