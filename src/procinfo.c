/*
 * procinfo.c - see procinfo.h.  proc(5): /proc/PID/stat fields 14-15
 * (utime, stime) and 22 (starttime) are in clock ticks, starttime since
 * boot; /proc/PID/statm field 2 is resident pages; /proc/PID/limits has
 * the soft limit in the first column after the name ("unlimited" is
 * left unknown).
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "procinfo.h"

static double boot_time_s(void)
{
    static double boot;
    if (boot == 0) {
        struct timespec now, up;
        clock_gettime(CLOCK_REALTIME, &now);
#ifdef CLOCK_BOOTTIME
        clock_gettime(CLOCK_BOOTTIME, &up);
#else
        clock_gettime(CLOCK_MONOTONIC, &up); /* only read with /proc */
#endif
        boot = (double)now.tv_sec - (double)up.tv_sec +
               (double)(now.tv_nsec - up.tv_nsec) / 1e9;
    }
    return boot;
}

static int64_t count_fds(const char *path, pid_t pid);

void procinfo_read(pid_t pid, struct proc_info *pi)
{
    char path[64], buf[1024];
    FILE *f;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

    memset(pi, 0, sizeof(*pi));
    pi->pid = pid;
    pi->rss_bytes = -1;
    pi->open_fds = -1;

    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    if ((f = fopen(path, "re"))) {
        long size, rss;
        if (fscanf(f, "%ld %ld", &size, &rss) == 2)
            pi->rss_bytes = (int64_t)rss * page;
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "re"))) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* The command name may hold spaces and parentheses: fields start
         * after the last ')'. */
        char *p = strrchr(buf, ')');
        unsigned long long ut = 0, stt = 0, start = 0;
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                        "%*d %*d %*d %*d %*d %*d %llu",
                        &ut, &stt, &start) == 3 && tick > 0) {
            pi->cpu_seconds = (double)(ut + stt) / (double)tick;
            pi->start_time_s = boot_time_s() + (double)start / (double)tick;
        }
    }
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    pi->open_fds = count_fds(path, pid);
}

/* Open descriptors of pid.  Linux 6.2 and later report the count as the
 * size of /proc/PID/fd, one stat() whatever the count; older kernels say 0
 * there, and the directory is read (about a microsecond an entry, which at
 * a million connections is seconds of a master that must stay responsive). */
static int64_t count_fds(const char *path, pid_t pid)
{
    struct stat st;

    if (stat(path, &st) == 0 && st.st_size > 0)
        return (int64_t)st.st_size;
    DIR *d = opendir(path);
    if (d) {
        int64_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        return n - (pid == getpid()); /* our own opendir() fd */
    }
    return -1;
}

int64_t procinfo_max_fds(pid_t pid)
{
    static const char key[] = "Max open files";
    char path[64], line[256];
    int64_t max = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        long long soft;
        if (strncmp(line, key, sizeof(key) - 1) == 0 &&
            sscanf(line + sizeof(key) - 1, "%lld", &soft) == 1)
            max = soft;
    }
    fclose(f);
    return max;
}

