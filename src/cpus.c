/*
 * cpus.c - see cpus.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

static char g_reason[80];

/* A decimal integer (optionally negative) and the rest of the text. */
static int parse_ll(const char *s, long long *v, const char **rest)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -1;
    *rest = end;
    return 0;
}

static int only_blank(const char *s)
{
    return s[strspn(s, " \t\n")] == '\0';
}

int cpus_parse_cpu_max(const char *text, double *cpus)
{
    const char *p = text + strspn(text, " \t");
    long long quota, period;
    if (strncmp(p, "max", 3) == 0) {
        p += 3;
        quota = -1;
    } else if (parse_ll(p, &quota, &p) != 0 || quota <= 0) {
        return -1;
    }
    if (*p != ' ' && *p != '\t')
        return -1;
    if (parse_ll(p, &period, &p) != 0 || period <= 0 || !only_blank(p))
        return -1;
    if (quota < 0)
        return 0;
    *cpus = (double)quota / (double)period;
    return 1;
}

int cpus_parse_cfs(const char *quota_text, const char *period_text,
                   double *cpus)
{
    long long quota, period;
    const char *p;
    if (parse_ll(quota_text, &quota, &p) != 0 || !only_blank(p) ||
        quota == 0 || quota < -1)
        return -1;
    if (parse_ll(period_text, &period, &p) != 0 || !only_blank(p) ||
        period <= 0)
        return -1;
    if (quota == -1)
        return 0;
    *cpus = (double)quota / (double)period;
    return 1;
}

/* Whether the comma-separated list [s, s+n) holds `name`. */
static int list_has(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    while (n) {
        const char *comma = memchr(s, ',', n);
        size_t w = comma ? (size_t)(comma - s) : n;
        if (w == k && memcmp(s, name, k) == 0)
            return 1;
        if (!comma)
            break;
        n -= w + 1;
        s = comma + 1;
    }
    return 0;
}

int cpus_cgroup_path(const char *proc_cgroup, const char *controller,
                     char *out, size_t len)
{
    for (const char *line = proc_cgroup; *line; ) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        /* hierarchy-ID:controller-list:cgroup-path (cgroups(7)) */
        const char *c1 = memchr(line, ':', n);
        const char *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            size_t clen = (size_t)(c2 - c1 - 1);
            int match = *controller
                            ? list_has(c1 + 1, clen, controller)
                            : (clen == 0 && c1 - line == 1 && line[0] == '0');
            size_t plen = n - (size_t)(c2 + 1 - line);
            if (match && plen > 0 && c2[1] == '/') {
                if (plen >= len)
                    return -1;
                memcpy(out, c2 + 1, plen);
                out[plen] = '\0';
                return 0;
            }
        }
        line += n + (eol != NULL);
    }
    return -1;
}

static void fmt_quota(char *out, size_t len, double q)
{
    snprintf(out, len, "%.2f", q);
    char *end = out + strlen(out);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
}

void cpus_choose(struct cpus_choice *c, int online, int affinity, double quota)
{
    const char *base = "CPUs in affinity mask";
    int n = affinity;
    if (n <= 0) {
        n = online > 0 ? online : 1;
        base = "online CPUs";
    }
    snprintf(c->reason, sizeof(c->reason), "%s", base);
    if (quota > 0) {
        /* Rounded up: a quota of 1.5 keeps two workers busy 75% each. */
        double up = ceil(quota - 1e-9);
        int q = up < 1 ? 1 : up > INT_MAX ? INT_MAX : (int)up;
        if (q < n) {
            char qs[32];
            fmt_quota(qs, sizeof(qs), quota);
            n = q;
            snprintf(c->reason, sizeof(c->reason), "cgroup CPU quota %s", qs);
        }
    }
    c->n = n;
}

/* --- reading the kernel's files ------------------------------------------- */

#if defined(__linux__)

/* The first `len - 1` bytes of a small file, NUL-terminated.  0 or -1. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    return got ? 0 : -1;
}

/* a + b + c into out; -1 when it does not fit. */
static int path_join(char *out, size_t len, const char *a, const char *b,
                     const char *c)
{
    int n = snprintf(out, len, "%s%s%s", a, b, c);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The smallest quota over `dir` and its ancestors up to `root` (a child
 * cgroup cannot use more than its parents allow); 0 for none. */
static double v2_quota(const char *root, const char *rel)
{
    char path[PATH_MAX], text[128], dir[PATH_MAX];
    double best = 0, q;

    snprintf(dir, sizeof(dir), "%s", rel);
    for (;;) {
        if (path_join(path, sizeof(path), root,
                      strcmp(dir, "/") == 0 ? "" : dir, "/cpu.max") == 0 &&
            read_small(path, text, sizeof(text)) == 0 &&
            cpus_parse_cpu_max(text, &q) == 1 && (best == 0 || q < best))
            best = q;
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            break;
        *slash = '\0';
    }
    return best;
}

static double v1_quota(const char *rel)
{
    static const char *const mounts[] = { "/sys/fs/cgroup/cpu",
                                          "/sys/fs/cgroup/cpu,cpuacct" };
    char path[PATH_MAX], qt[64], pt[64];
    double q;

    for (size_t m = 0; m < sizeof(mounts) / sizeof(mounts[0]); m++) {
        /* The process's own cgroup, then the mount's root (what a
         * container sees when its cgroup namespace hides the path). */
        for (int own = 1; own >= 0; own--) {
            const char *sub = own && rel && strcmp(rel, "/") != 0 ? rel : "";
            if (path_join(path, sizeof(path), mounts[m], sub,
                          "/cpu.cfs_quota_us") != 0 ||
                read_small(path, qt, sizeof(qt)) != 0)
                continue;
            if (path_join(path, sizeof(path), mounts[m], sub,
                          "/cpu.cfs_period_us") != 0 ||
                read_small(path, pt, sizeof(pt)) != 0)
                continue;
            if (cpus_parse_cfs(qt, pt, &q) == 1)
                return q;
        }
    }
    return 0;
}

static double cgroup_quota(void)
{
    char text[4096], rel[PATH_MAX];
    if (read_small("/proc/self/cgroup", text, sizeof(text)) != 0)
        return 0;
    /* A controller is bound to one hierarchy: a v1 line naming "cpu"
     * means the quota lives there, even when a v2 hierarchy is mounted
     * beside it (the "hybrid" layout: cgroup2 at /sys/fs/cgroup/unified,
     * without controllers). */
    if (cpus_cgroup_path(text, "cpu", rel, sizeof(rel)) == 0)
        return v1_quota(rel);
    if (cpus_cgroup_path(text, "", rel, sizeof(rel)) == 0)
        return v2_quota("/sys/fs/cgroup", rel);
    return 0;
}
#endif

void cpus_usable(struct cpus_choice *c)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int affinity = 0;
    double quota = 0;
#if defined(__linux__)
    /* Elsewhere neither the call nor cgroups exist: the online CPUs. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        affinity = CPU_COUNT(&set);
    quota = cgroup_quota();
#endif
    cpus_choose(c, online > 0 && online < INT_MAX ? (int)online : 1, affinity,
                quota);
    cpus_set_reason(c->reason);
}

const char *cpus_reason(void)
{
    return g_reason;
}

void cpus_set_reason(const char *reason)
{
    snprintf(g_reason, sizeof(g_reason), "%s", reason);
}
