/*
 * baseline.c - the thinnest correct epoll stamp loop: the benchmark's
 * reference for what the kernel costs on this machine.
 *
 * It does the same work as stampd's line protocol and nothing more: one
 * thread, level-triggered epoll, one recv() per readable event, every
 * complete line answered with "[" ctime "] " payload and the request's own
 * terminator (LF or CRLF), pipelined lines answered in order with one send()
 * per read, partial lines kept until their LF, the stamp string rebuilt
 * only when the second changes (the clock is read once per wakeup, after
 * epoll_wait).  A short send keeps the rest and waits for EPOLLOUT without
 * reading more.  No limits beyond a 64 KiB line, no timeouts, no
 * statistics: that is what makes it the floor.
 *
 * With --workers N it forks N such processes, each with its own
 * SO_REUSEPORT listener (the kernel spreads connections over them, as it
 * does over stampd's workers); a unix socket is shared instead.  The parent
 * only waits, and passes TERM/INT on.
 *
 *   bench-baseline [--workers N] HOST:PORT|unix:PATH     (IPv4 literal)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_LEN 27           /* "[Mon Sep  5 22:29:12 2016] " */
#define MAX_LINE 65536
#define RBUF 65536

struct bconn {
    char *part;                 /* unfinished line */
    size_t part_len;
    char *out;                  /* reply bytes the kernel did not take */
    size_t out_len, out_off;
};

static struct bconn *conns;     /* indexed by fd */
static int nconns_max;
static char prefix[PREFIX_LEN + 1];
static time_t prefix_sec = -1;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void clock_refresh(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec == prefix_sec)
        return;
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    char tmp[64];
    localtime_r(&ts.tv_sec, &tm);
    snprintf(tmp, sizeof(tmp), "[%.3s %.3s %2d %02d:%02d:%02d %04d] ",
             days + 3 * tm.tm_wday, months + 3 * tm.tm_mon, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
    memcpy(prefix, tmp, PREFIX_LEN);
    prefix_sec = ts.tv_sec;
}

static void conn_close(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd].part);
    free(conns[fd].out);
    memset(&conns[fd], 0, sizeof(conns[fd]));
}

/* Writable: send the rest of out[] once (0 when all gone, 1 when some
 * remains, -1 on error). */
static int conn_flush(int fd, struct bconn *c)
{
    ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
    c->out_off += (size_t)w;
    if (c->out_off < c->out_len)
        return 1;
    c->out_off = c->out_len = 0;
    return 0;
}

/* Append one reply to the output being built. */
static int put_reply(char **out, size_t *len, size_t *cap, const char *payload,
                     size_t n, int crlf)
{
    size_t need = *len + PREFIX_LEN + n + 2;
    if (need > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < need)
            c *= 2;
        char *p = realloc(*out, c);
        if (!p)
            return -1;
        *out = p;
        *cap = c;
    }
    char *d = *out + *len;
    memcpy(d, prefix, PREFIX_LEN);
    memcpy(d + PREFIX_LEN, payload, n);
    d += PREFIX_LEN + n;
    if (crlf)
        *d++ = '\r';
    *d++ = '\n';
    *len = (size_t)(d - *out);
    return 0;
}

/* Read once, answer every complete line; -1 closes the connection. */
static int conn_read(int ep, int fd, struct bconn *c, char *rbuf)
{
    static char *out;
    static size_t out_cap;
    size_t out_len = 0;

    ssize_t n = recv(fd, rbuf, RBUF, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    const char *p = rbuf, *end = rbuf + n;
    if (n == 0) {
        /* EOF: a final fragment is a request terminated by LF. */
        if (c->part_len &&
            put_reply(&out, &out_len, &out_cap, c->part, c->part_len, 0) != 0)
            return -1;
        c->part_len = 0;
        end = p;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            size_t rest = (size_t)(end - p);
            if (c->part_len + rest >= MAX_LINE)
                return -1;
            char *q = realloc(c->part, c->part_len + rest);
            if (!q)
                return -1;
            memcpy(q + c->part_len, p, rest);
            c->part = q;
            c->part_len += rest;
            break;
        }
        const char *line = p;
        size_t len = (size_t)(nl - p);
        if (c->part_len) {
            /* Join the held fragment with the rest of its line. */
            char *q = realloc(c->part, c->part_len + len);
            if (!q)
                return -1;
            memcpy(q + c->part_len, p, len);
            c->part = q;
            line = q;
            len += c->part_len;
            c->part_len = 0;
        }
        int crlf = len && line[len - 1] == '\r';
        if (put_reply(&out, &out_len, &out_cap, line, len - (size_t)crlf,
                      crlf) != 0)
            return -1;
        p = nl + 1;
    }
    if (out_len) {
        ssize_t w = send(fd, out, out_len, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        size_t off = w < 0 ? 0 : (size_t)w;
        if (off < out_len) {
            c->out = malloc(out_len - off);
            if (!c->out)
                return -1;
            memcpy(c->out, out + off, out_len - off);
            c->out_len = out_len - off;
            c->out_off = 0;
            struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
            if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
                return -1;
        }
    }
    return n == 0 && !c->out_len ? -1 : 0;
}

static int listen_on(const char *spec, int reuseport)
{
    int fd;
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", spec + 5);
        unlink(sun.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            return -1;
    } else {
        char host[64];
        const char *colon = strrchr(spec, ':');
        struct sockaddr_in sin = { .sin_family = AF_INET };
        if (!colon || (size_t)(colon - spec) >= sizeof(host))
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = 0;
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
            return -1;
        sin.sin_port = htons((uint16_t)atoi(colon + 1));
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd < 0)
            return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuseport &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
            return -1;
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
            return -1;
    }
    if (listen(fd, 4096) != 0)
        return -1;
    return fd;
}

static int serve(int lfd)
{
    nconns_max = (int)sysconf(_SC_OPEN_MAX);
    conns = calloc((size_t)nconns_max, sizeof(*conns));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    if (!conns || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("bench-baseline");
        return 1;
    }
    static char rbuf[RBUF];
    struct epoll_event evs[512];
    while (!stop) {
        int n = epoll_wait(ep, evs, 512, 1000);
        clock_refresh();
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (int k = 0; k < 64; k++) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (c < 0)
                        break;
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                    if (c >= nconns_max ||
                        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0)
                        close(c);
                }
                continue;
            }
            struct bconn *c = &conns[fd];
            int rc = 0;
            if (c->out_len) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                    rc = conn_flush(fd, c);
                    if (rc == 0) {
                        free(c->out);
                        c->out = NULL;
                        struct epoll_event rev = { .events = EPOLLIN, .data.fd = fd };
                        rc = epoll_ctl(ep, EPOLL_CTL_MOD, fd, &rev);
                    } else if (rc == 1) {
                        rc = 0;
                    }
                }
            } else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                rc = conn_read(ep, fd, c, rbuf);
            }
            if (rc < 0)
                conn_close(ep, fd);
        }
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-baseline [--workers N] HOST:PORT|unix:PATH\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    int workers = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            workers = atoi(argv[++i]);
            if (workers < 1 || workers > 1024)
                usage();
        } else if (!spec && argv[i][0] != '-') {
            spec = argv[i];
        } else {
            usage();
        }
    }
    if (!spec)
        usage();
    /* No SA_RESTART: the parent's waitpid() must return to pass the
     * signal on. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int is_unix = strncmp(spec, "unix:", 5) == 0;
    int shared = -1;
    if (workers == 1 || is_unix) {
        /* One listener, in this process or shared by the forked ones. */
        shared = listen_on(spec, 0);
        if (shared < 0) {
            perror("bench-baseline: listen");
            return 1;
        }
        if (workers == 1)
            return serve(shared);
    }
    /* The children's listeners are bound before any of them serves, so
     * the port is fully open once the parent's first child is up; each
     * child binds its own (SO_REUSEPORT) to get its share of the
     * connections. */
    pid_t *pids = calloc((size_t)workers, sizeof(*pids));
    int *lfds = calloc((size_t)workers, sizeof(*lfds));
    if (!pids || !lfds)
        return 1;
    for (int i = 0; i < workers; i++) {
        lfds[i] = is_unix ? -1 : listen_on(spec, 1);
        if (!is_unix && lfds[i] < 0) {
            perror("bench-baseline: listen");
            return 1;
        }
    }
    for (int i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("bench-baseline: fork");
            return 1;
        }
        if (pids[i] == 0) {
            for (int j = 0; j < workers; j++)
                if (j != i && lfds[j] >= 0)
                    close(lfds[j]);
            _exit(serve(is_unix ? shared : lfds[i]));
        }
    }
    for (int i = 0; i < workers; i++)
        if (lfds[i] >= 0)
            close(lfds[i]);
    int status = 0, left = workers, forwarded = 0;
    while (left > 0) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) {
            if (errno != EINTR)
                break;
            if (stop && !forwarded) {
                for (int i = 0; i < workers; i++)
                    kill(pids[i], SIGTERM);
                forwarded = 1;
            }
            continue;
        }
        left--;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            status = 1;
    }
    return status;
}
