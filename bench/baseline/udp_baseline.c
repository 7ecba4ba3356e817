/*
 * udp_baseline.c - the UDP yardstick for bench/http.sh, self-contained (no
 * stampd code):
 *
 *   udp_baseline server PORT
 *       the least a datagram stamp server can do: one blocking recvmmsg of
 *       up to 64 datagrams, a fixed 27-byte prefix gathered in front of
 *       each, one sendmmsg back.  No clock, no stats, no poller.
 *   udp_baseline client PORT SOCKETS WINDOW SECONDS
 *       closed-loop load: each of SOCKETS sockets sends WINDOW datagrams,
 *       then collects the replies (50 ms per wait; a lost one is given up),
 *       and again.  Prints "sent N received N seconds S".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static const char PREFIX[] = "[Mon Sep  5 22:29:12 2016] ";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_server(int port)
{
    static char bufs[BATCH][2048];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct sockaddr_in from[BATCH];
    struct iovec riov[BATCH], siov[BATCH][2];
    struct mmsghdr rm[BATCH], sm[BATCH];
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("bind");
        return 1;
    }
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            riov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
            rm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
                .msg_namelen = sizeof(from[i]), .msg_iov = &riov[i], .msg_iovlen = 1 };
        }
        int n = recvmmsg(fd, rm, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            siov[i][0] = (struct iovec){ (void *)PREFIX, sizeof(PREFIX) - 1 };
            siov[i][1] = (struct iovec){ bufs[i], rm[i].msg_len };
            sm[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
                .msg_namelen = rm[i].msg_hdr.msg_namelen, .msg_iov = siov[i],
                .msg_iovlen = 2 };
        }
        (void)sendmmsg(fd, sm, (unsigned)n, 0);
    }
}

static int run_client(int port, int nsock, int window, double seconds)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    static char rbuf[BATCH][2048];
    static const char msg[] = "udp bench datagram\n";
    struct mmsghdr sm[BATCH], rm[BATCH];
    struct iovec siov = { (void *)msg, sizeof(msg) - 1 }, riov[BATCH];
    struct timeval tv = { 0, 50000 };
    int *fds = calloc((size_t)nsock, sizeof(int));
    unsigned long long sent = 0, got = 0;

    if (window > BATCH)
        window = BATCH;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int s = 0; s < nsock; s++) {
        fds[s] = socket(AF_INET, SOCK_DGRAM, 0);
        if (fds[s] < 0 || connect(fds[s], (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("connect");
            return 1;
        }
        setsockopt(fds[s], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    for (int i = 0; i < BATCH; i++) {
        sm[i].msg_hdr = (struct msghdr){ .msg_iov = &siov, .msg_iovlen = 1 };
        riov[i] = (struct iovec){ rbuf[i], sizeof(rbuf[i]) };
        rm[i].msg_hdr = (struct msghdr){ .msg_iov = &riov[i], .msg_iovlen = 1 };
    }
    double t0 = now(), end = t0 + seconds;
    while (now() < end) {
        for (int s = 0; s < nsock; s++) {
            int n = sendmmsg(fds[s], sm, (unsigned)window, 0);
            if (n > 0)
                sent += (unsigned)n;
        }
        for (int s = 0; s < nsock; s++) {
            int want = window;
            while (want > 0) {
                int n = recvmmsg(fds[s], rm, (unsigned)want, MSG_WAITFORONE, NULL);
                if (n <= 0)
                    break; /* timed out: the rest were lost */
                got += (unsigned)n;
                want -= n;
            }
        }
    }
    printf("sent %llu received %llu seconds %.3f\n", sent, got, now() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "server") == 0)
        return run_server(atoi(argv[2]));
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return run_client(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                          atof(argv[5]));
    fprintf(stderr, "usage: udp_baseline server PORT | "
                    "client PORT SOCKETS WINDOW SECONDS\n");
    return 2;
}
