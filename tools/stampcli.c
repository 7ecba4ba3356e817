/*
 * stampcli - an interactive client for stampd's line protocol.
 *
 *   stampcli [--timeout SECONDS] [HOST:PORT | [V6]:PORT | unix:PATH]
 *
 * Default 127.0.0.1:8009.  Each line read from stdin is sent and its reply
 * printed; an empty line or EOF quits.  The `>>> ` prompt is shown only
 * when stdin is a terminal (as python and sqlite3 do), so piped input gives
 * exactly the replies: `printf 'a\nb\n' | stampcli` prints two lines.
 * Requests go one at a time (send, wait for the reply): the order of the
 * output is the order of the input even for a server that closes early.
 *
 * Exit status: 0 at an empty line or EOF, 1 when the server closed the
 * connection, did not answer in time or could not be reached, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "version.h"

static const char usage[] =
    "usage: stampcli [--timeout SECONDS] [HOST:PORT | [V6]:PORT | unix:PATH]\n"
    "  sends each line typed (or piped) to stampd and prints its reply;\n"
    "  an empty line or end of input quits.  Default 127.0.0.1:8009.\n";

/* Received bytes not yet printed (the part after the last reply's LF). */
static struct {
    char buf[65536];
    size_t len;
} in;

/* The address as addr_parse reads it, else HOST:PORT through the resolver
 * (a client may name hosts; the server's addresses are literal on purpose). */
static int resolve(const char *s, struct addr *a, char *err, size_t errlen)
{
    if (addr_parse(a, s, err, errlen) == 0)
        return 0;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || s[0] == '[')
        return -1;
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", s, gai_strerror(rc));
        return -1;
    }
    memset(a, 0, sizeof(*a));
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    a->family = res->ai_family;
    snprintf(a->text, sizeof(a->text), "%s", s);
    freeaddrinfo(res);
    return 0;
}

/* Print one reply (through its LF).  0, or -1 at EOF / error / timeout. */
static int read_reply(int fd, int timeout_ms)
{
    for (;;) {
        char *lf = memchr(in.buf, '\n', in.len);
        if (lf) {
            size_t n = (size_t)(lf - in.buf) + 1;
            fwrite(in.buf, 1, n, stdout);
            fflush(stdout);
            memmove(in.buf, in.buf + n, in.len - n);
            in.len -= n;
            return 0;
        }
        if (in.len == sizeof(in.buf)) {
            /* A reply longer than the buffer: pass the part we have on. */
            fwrite(in.buf, 1, in.len, stdout);
            in.len = 0;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        int rc = poll(&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            fprintf(stderr, "stampcli: no reply within %d ms\n", timeout_ms);
            return -1;
        }
        ssize_t r = read(fd, in.buf + in.len, sizeof(in.buf) - in.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (in.len) { /* a final reply without LF */
                fwrite(in.buf, 1, in.len, stdout);
                putchar('\n');
                in.len = 0;
            }
            fflush(stdout);
            fprintf(stderr, "stampcli: connection closed by the server%s%s\n",
                    r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return -1;
        }
        in.len += (size_t)r;
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int timeout_ms = 10000, c;
    char err[256];

    while ((c = getopt_long(argc, argv, "t:hV", lo, NULL)) != -1) {
        switch (c) {
        case 't': {
            char *end;
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s > 0 && s <= 86400)) {
                fprintf(stderr, "stampcli: --timeout: expected seconds, got '%s'\n", optarg);
                return 2;
            }
            timeout_ms = (int)(s * 1000);
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("stampcli %s\n", STAMPD_VERSION);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (argc - optind > 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *target = optind < argc ? argv[optind] : "127.0.0.1:8009";
    struct addr a;
    if (resolve(target, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampcli: %s\n", err);
        return 2;
    }
    (void)signal(SIGPIPE, SIG_IGN);
    int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a.ss, a.len) != 0) {
        fprintf(stderr, "stampcli: cannot connect to %s: %s\n", a.text,
                strerror(errno));
        return 1;
    }

    int interactive = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (interactive) {
            fputs(">>> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n <= 0)
            break;                    /* EOF */
        if (line[n - 1] != '\n')
            line[n++] = '\n';         /* getline leaves room for the NUL */
        if (n == 1 || (n == 2 && line[0] == '\r'))
            break;                    /* an empty line */
        if (send_all(fd, line, (size_t)n) != 0) {
            fprintf(stderr, "stampcli: send: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (read_reply(fd, timeout_ms) != 0) {
            rc = 1;
            break;
        }
    }
    if (interactive && rc == 0 && feof(stdin))
        putchar('\n');
    free(line);
    close(fd);
    return rc;
}
