/*
 * handoff.c - starting a new master on our sockets (see handoff.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"
#include "handoff.h"
#include "inherit.h"
#include "log.h"
#include "priority.h"

#define READY_BYTE 'R'

void handoff_init(struct handoff *h)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    h->what = "upgrade";
}

int handoff_pending(const struct handoff *h)
{
    return h->pid != 0 && !h->succeeded;
}

/* In the forked child: make the kept fds survive exec, then exec. */
static void exec_child(const char *what, const char *path, char *const argv[],
                       const char *inherit, int inherit_only, const int *keep,
                       int nkeep, int ready_fd)
{
    char num[16];
    sigset_t none;

    for (int i = 0; i < nkeep; i++)
        (void)fcntl(keep[i], F_SETFD, 0);
    (void)fcntl(ready_fd, F_SETFD, 0);
    snprintf(num, sizeof(num), "%d", ready_fd);
    if (setenv(INHERIT_ENV, inherit, 1) != 0 ||
        setenv(HANDOFF_READY_ENV, num, 1) != 0 ||
        (inherit_only ? setenv(HANDOFF_ONLY_ENV, "1", 1)
                      : unsetenv(HANDOFF_ONLY_ENV)) != 0) {
        log_error("%s: environment: %s", what, strerror(errno));
        _exit(127);
    }
    /* The new master starts from stampd's own nice value, not the one
     * this master raised itself to. */
    (void)priority_child_reset();
    /* Caught signals revert to their defaults at exec; the mask stays. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(path, argv);
    log_error("%s: cannot execute %s: %s", what, path, strerror(errno));
    _exit(127);
}

int handoff_start(struct handoff *h, const char *what, const char *path,
                  char *const argv[], const char *inherit, int inherit_only,
                  const int *keep, int nkeep, int64_t now_ms)
{
    int p[2];
    sigset_t all, old;

    if (compat_pipe(p) != 0) {
        log_error("%s: pipe: %s; still serving", what, strerror(errno));
        return -1;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        exec_child(what, path, argv, inherit, inherit_only, keep, nkeep, p[1]);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        log_error("%s: fork: %s; still serving", what, strerror(errno));
        close(p[0]);
        return -1;
    }
    h->pid = pid;
    h->fd = p[0];
    h->deadline = now_ms + HANDOFF_TIMEOUT_MS;
    h->succeeded = 0;
    h->what = what;
    return 0;
}

static void close_fd(struct handoff *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

int handoff_readable(struct handoff *h)
{
    char c;
    ssize_t n = h->fd >= 0 ? read(h->fd, &c, 1) : 0;

    if (n == 1 && c == READY_BYTE && h->pid) {
        h->succeeded = 1;
        close_fd(h);
        return 1;
    }
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return 0;
    close_fd(h);
    return -1;
}

int handoff_reaped(struct handoff *h, pid_t pid, int status)
{
    if (pid != h->pid || pid == 0)
        return 0;
    if (!h->succeeded) {
        char why[64];
        if (WIFEXITED(status))
            snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            snprintf(why, sizeof(why), "was killed by signal %d", WTERMSIG(status));
        else
            snprintf(why, sizeof(why), "stopped");
        log_error("%s failed: the new master (pid %d) %s before serving; "
                  "still serving", h->what, (int)pid, why);
    }
    h->pid = 0;
    h->succeeded = 0;
    close_fd(h);
    return 1;
}

void handoff_abort(struct handoff *h, const char *why)
{
    if (!handoff_pending(h))
        return;
    log_error("%s: stopping the new master (pid %d): %s", h->what, (int)h->pid,
              why);
    kill(h->pid, SIGTERM);
    close_fd(h);
}

int handoff_check_deadline(struct handoff *h, int64_t now_ms)
{
    if (!handoff_pending(h) || h->fd < 0 || now_ms < h->deadline)
        return 0;
    handoff_abort(h, "it did not serve in time; still serving");
    return 1;
}

void handoff_close_in_child(struct handoff *h)
{
    close_fd(h);
    h->pid = 0;
}

int handoff_ready_fd(void)
{
    const char *v = getenv(HANDOFF_READY_ENV);
    int fd = v ? atoi(v) : -1;

    unsetenv(HANDOFF_READY_ENV);
    if (fd < 3 || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
        return -1;
    return fd;
}

void handoff_signal_ready(int fd)
{
    char c = READY_BYTE;
    if (fd < 0)
        return;
    (void)write(fd, &c, 1);
    close(fd);
}
