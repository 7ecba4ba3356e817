/*
 * log.c - one line per event on stderr (see log.h).
 *
 * Each line is built in a stack buffer and handed to the kernel with one
 * write(2).  The master and every worker share one stderr; a write of at
 * most PIPE_BUF bytes to a pipe is atomic (pipe(7)), and on files opened
 * O_APPEND each write lands whole, so lines never interleave mid-way.  That
 * is why a line is capped at LOG_LINE_MAX and longer messages are cut with
 * "..." rather than split.
 *
 * The log functions preserve errno, so `log_warn("...: %s", strerror(errno))`
 * followed by a check of errno keeps working.  They allocate nothing and are
 * safe to call between fork() and the first loop iteration.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define LOG_LINE_MAX PIPE_BUF  /* 4096 on Linux */
#define LOG_ROLE_MAX 32

static enum log_level log_min = LOG_INFO;
static char log_role[LOG_ROLE_MAX] = "master";

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_init(enum log_level level, const char *role)
{
    log_min = level;
    log_set_role(role);
}

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role ? role : "");
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void emit(enum log_level level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    char iso[CLOCK_ISO_LEN + 1];
    struct timespec ts;
    struct tm tm;
    size_t off, room, len;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    clock_fmt_iso(&tm, (int)(ts.tv_nsec / 1000000), iso);

    n = snprintf(line, sizeof(line), "%s stampd[%d] %s %s: ", iso, (int)getpid(),
                 log_role, level_names[(unsigned)level < 4 ? level : LOG_ERROR]);
    off = n < 0 ? 0 : (size_t)n;
    room = sizeof(line) - off - 1;  /* keep one byte for the newline */
    n = vsnprintf(line + off, room + 1, fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > room) {
        memcpy(line + off + room - 3, "...", 3);
        n = (int)room;
    }
    /* One event, one line: a newline in a message (say, from a peer's
     * bytes) would forge a second line. */
    for (char *p = line + off; p < line + off + n; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    len = off + (size_t)n;
    line[len++] = '\n';

    /* A blocking stderr accepts the whole line in one go; the loop only
     * covers a signal arriving first and, defensively, a short write.  A
     * full non-blocking stderr drops the line rather than stall a worker. */
    for (size_t done = 0, tries = 0; done < len && tries < 8; tries++) {
        ssize_t w = write(STDERR_FILENO, line + done, len - done);
        if (w > 0)
            done += (size_t)w;
        else if (w == -1 && errno != EINTR)
            break;
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
    errno = saved;
}

void log_ratelimited(enum log_level level, long long *last, int interval_ms,
                     const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    long long now;

    if (level < log_min)
        return;
    now = mono_ms();
    /* 0 means "never logged"; a real instant of 0 is stored as 1. */
    if (*last != 0 && now - *last < interval_ms) {
        errno = saved;
        return;
    }
    *last = now ? now : 1;
    va_start(ap, fmt);
    emit(level, fmt, ap);
    va_end(ap);
    errno = saved;
}
