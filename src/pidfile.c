/*
 * pidfile.c - the --pid-file (see pidfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pidfile.h"

/* The start of a small file, NUL-terminated; 0 if nothing could be read. */
static int read_start(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return 0;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return 1;
}

/* The pid the file names, 0 if none can be read. */
static pid_t read_pid(const char *path)
{
    char buf[32];

    if (!read_start(path, buf, sizeof(buf)))
        return 0;
    long v = strtol(buf, NULL, 10);
    return v > 0 ? (pid_t)v : 0;
}

/* A live process whose title or command starts with "stampd". */
static int is_stampd(pid_t pid)
{
    char path[64], buf[64];

    if (kill(pid, 0) == -1 && errno == ESRCH)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    if (!read_start(path, buf, sizeof(buf)))
        return 0;
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    return strncmp(base, "stampd", 6) == 0;
}

int pidfile_check(const char *path, pid_t allowed, char *err, size_t errlen)
{
    pid_t pid = read_pid(path);

    if (pid == 0 || pid == getpid() || pid == allowed || !is_stampd(pid))
        return 0;
    snprintf(err, errlen, "--pid-file %s: stampd is running as pid %d", path,
             (int)pid);
    return -1;
}

int pidfile_write(const char *path)
{
    char tmp[512], buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >=
        sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1)
        return -errno;
    if (write(fd, buf, (size_t)n) != n || close(fd) != 0) {
        int e = errno ? errno : EIO;
        (void)unlink(tmp);
        return -e;
    }
    if (rename(tmp, path) == -1) {
        int e = errno;
        (void)unlink(tmp);
        return -e;
    }
    return 0;
}

void pidfile_remove(const char *path)
{
    if (read_pid(path) == getpid())
        (void)unlink(path);
}
