/*
 * http_floor.c - the thinnest epoll HTTP responder: the floor that any
 * readiness-based server pays on this machine for one keep-alive request
 * and its response, measured beside stampd --http and nginx by
 * bench/http.sh.
 *
 * One thread, level-triggered epoll, one read per readiness event and one
 * write for every response that read completed.  It does not parse: a
 * request is whatever ends with an empty line (wrk's GETs carry no body),
 * and each is answered with the same bytes stampd sends for "GET /"
 * (Server, Date, Content-Type, Content-Length, "[ctime] /\n"), the two
 * dates rebuilt only when the second changes.  No limits, no timeouts, no
 * statistics, no partial-write buffering (a short write closes the
 * connection, which wrk would count as an error): it is a measuring
 * stick, not a server.
 *
 *   bench-http-floor PORT          (listens on 127.0.0.1)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_floor.h"

#define RBUF 65536
#define MAX_BATCH 256           /* responses per write */

static char resp[512];
static size_t resp_len;
static time_t resp_sec = -1;
/* The state of one connection is how far into "\r\n\r\n" it has matched. */
static unsigned char *match;

static int conn_read(int fd, char *rbuf, char *out)
{
    ssize_t n = read(fd, rbuf, RBUF);
    if (n <= 0)
        return n < 0 && errno == EAGAIN ? 0 : -1;
    size_t reqs = floor_count(&match[fd], rbuf, (size_t)n);
    while (reqs) {
        size_t k = reqs < MAX_BATCH ? reqs : MAX_BATCH, len = 0;
        for (size_t i = 0; i < k; i++, len += resp_len)
            memcpy(out + len, resp, resp_len);
        if (write(fd, out, len) != (ssize_t)len)
            return -1;
        reqs -= k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int lfd = floor_listen(argv[1], SOCK_STREAM | SOCK_NONBLOCK);
    if (lfd < 0) {
        perror("http_floor: listen");
        return 1;
    }
    match = calloc(1 << 20, 1);
    char *rbuf = malloc(RBUF), *out = malloc(MAX_BATCH * sizeof(resp));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[512];
    if (!match || !rbuf || !out || ep < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("http_floor");
        return 1;
    }
    while (!floor_stop) {
        int n = epoll_wait(ep, evs, 512, 1000);
        floor_refresh(resp, sizeof(resp), &resp_len, &resp_sec);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = { .events = EPOLLIN, .data.fd = c };
                    if (c >= (1 << 20) || epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev))
                        close(c);
                    else
                        match[c] = 0;
                }
            } else if (conn_read(fd, rbuf, out) != 0) {
                close(fd);
            }
        }
    }
    close(ep);
    close(lfd);
    free(match);
    free(rbuf);
    free(out);
    return 0;
}
