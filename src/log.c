/*
 * log.c - one line per event on stderr (see log.h).
 *
 * With --log-file, the file is opened O_APPEND and put in place of stderr
 * (dup2 onto fd 2), so that every process keeps writing to fd 2 and a
 * worker inherits the file at fork.  Reopening (SIGUSR1, after logrotate
 * has moved the file) is open + dup2 + close: all three are async-signal-
 * safe, so a worker can do it in its signal handler, and a line being
 * written at that moment lands whole in the old file or the new one.
 *
 * Under journald ($JOURNAL_STREAM names the device and inode of our stderr)
 * a line starts with its syslog priority, "<4>", which journald strips and
 * records, and carries no timestamp: the journal keeps its own.
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
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define LOG_LINE_MAX PIPE_BUF  /* 4096 on Linux */
#define LOG_ROLE_MAX 32

static enum log_level log_min = LOG_INFO;
static char log_role[LOG_ROLE_MAX] = "master";

static const char *const level_names[] = { "debug", "info", "warn", "error" };
/* syslog(3) priorities: LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR. */
static const char level_prio[] = { '7', '6', '4', '3' };
static int log_journal;            /* stderr is a journald stream */
static char log_path[OPTS_PATH_MAX];
static uid_t log_uid = (uid_t)-1;  /* owner given to a file we create */

/* $JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected to our
 * stderr; it is inherited by children whose stderr may point elsewhere,
 * hence the comparison. */
static int stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

int log_open_file(const char *path, uid_t owner)
{
    snprintf(log_path, sizeof(log_path), "%s", path);
    log_uid = owner;
    return log_reopen();
}

int log_reopen(void)
{
    int fd, saved = errno, rc = 0;

    if (log_path[0] == '\0')
        return 0;
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1) {
        rc = -errno;
        errno = saved;
        return rc;
    }
    /* Workers that dropped privileges reopen the file themselves. */
    if (log_uid != (uid_t)-1)
        (void)fchown(fd, log_uid, (gid_t)-1);
    if (fd != STDERR_FILENO) {
        if (dup2(fd, STDERR_FILENO) == -1)
            rc = -errno;
        close(fd);
    }
    log_journal = 0;
    errno = saved;
    return rc;
}

void log_reopen_on_signal(int sig)
{
    (void)sig;
    (void)log_reopen();
}

void log_init(enum log_level level, const char *role)
{
    log_min = level;
    log_set_role(role);
    log_journal = log_path[0] == '\0' && stderr_is_journal();
}

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role ? role : "");
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

    unsigned lv = (unsigned)level < 4 ? (unsigned)level : LOG_ERROR;
    if (log_journal)
        n = snprintf(line, sizeof(line), "<%c>stampd[%d] %s %s: ", level_prio[lv],
                     (int)getpid(), log_role, level_names[lv]);
    else
        n = snprintf(line, sizeof(line), "%s stampd[%d] %s %s: ", iso, (int)getpid(),
                     log_role, level_names[lv]);
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
    now = clock_mono_ms();
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
