/*
 * http_floor.h - what the two HTTP floors (http_floor.c, epoll, and
 * http_floor_uring.c, io_uring) share: the response they send and the
 * way they count requests.  Header-only so that each floor stays one
 * self-contained object with nothing of stampd in it.
 */
#ifndef STAMPD_BENCH_HTTP_FLOOR_H
#define STAMPD_BENCH_HTTP_FLOOR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static volatile sig_atomic_t floor_stop; /* SIGTERM or SIGINT seen */

static inline void floor_on_signal(int sig)
{
    (void)sig;
    floor_stop = 1;
}

/*
 * Ignore SIGPIPE, stop on SIGTERM/SIGINT, and listen on 127.0.0.1:port
 * (type: SOCK_STREAM plus flags).  Returns the socket, or -1 with errno.
 */
static inline int floor_listen(const char *port, int type)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, floor_on_signal);
    signal(SIGINT, floor_on_signal);
    int fd = socket(AF_INET, type, 0), one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((unsigned short)atoi(port)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0)
        return -1;
    return fd;
}

/*
 * Write into buf the bytes stampd sends for "GET /" at second sec:
 * Server, Date (IMF-fixdate), Content-Type, Content-Length and the body
 * "[ctime] /\n".  Returns the length, 0 if cap is too small.
 */
static inline size_t floor_response(char *buf, size_t cap, time_t sec)
{
    struct tm g, l;
    char date[64], stamp[64];
    gmtime_r(&sec, &g);
    localtime_r(&sec, &l);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &g);
    strftime(stamp, sizeof(stamp), "[%a %b %e %H:%M:%S %Y] /\n", &l);
    int n = snprintf(buf, cap,
                     "HTTP/1.1 200 OK\r\nServer: stampd\r\nDate: %s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     date, strlen(stamp), stamp);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/*
 * Rebuild the response in buf when the second has changed since *sec;
 * returns 1 when it did (and *len, *sec are new), 0 otherwise.
 */
static inline int floor_refresh(char *buf, size_t cap, size_t *len, time_t *sec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec == *sec)
        return 0;
    *len = floor_response(buf, cap, ts.tv_sec);
    *sec = ts.tv_sec;
    return 1;
}

/*
 * The requests that n more bytes complete: a request is whatever ends
 * with an empty line (wrk's GETs carry no body).  *state is how far into
 * "\r\n\r\n" the connection has matched, kept between reads.
 */
static inline size_t floor_count(unsigned char *state, const char *b, size_t n)
{
    static const char end[] = "\r\n\r\n";
    unsigned m = *state;
    size_t reqs = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == end[m])
            m++;
        else
            m = b[i] == '\r' ? 1 : 0;
        if (m == 4) {
            reqs++;
            m = 0;
        }
    }
    *state = (unsigned char)m;
    return reqs;
}

#endif
