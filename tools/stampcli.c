/*
 * stampcli - a client for stampd's line protocol (and its HTTP listener).
 *
 *   stampcli [OPTION]... [HOST:PORT | [V6]:PORT | unix:PATH] [LINE]
 *
 * Default 127.0.0.1:8009.  Each line read from stdin (or just LINE, when
 * given) is one request, empty lines included; its reply is printed.  Requests go one at a time (send,
 * wait for the reply), so the output is in the order of the input even for
 * a server that closes early.
 *
 * On a terminal, lines are read with libedit: editing, the arrow keys, and
 * a history kept across sessions in ~/.stampcli_history ($STAMPCLI_HISTORY
 * or --history FILE; --history '' keeps none); Ctrl-D quits.  In a pipe,
 * nothing but the replies is printed.  Replies going to a terminal have
 * their non-printable bytes shown as \xHH (a reply cannot move the cursor);
 * into a pipe or with --raw they are written as received.
 *
 * Exit status: 0 when every request got its reply, 1 when the server could
 * not be reached, closed the connection or did not answer in time, 2 usage.
 */
#include <editline/readline.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "sbuf.h"
#include "version.h"

#define HISTORY_LINES 1000
#define MAX_REPEAT 10000000L

static const char usage[] =
    "usage: stampcli [OPTION]... [HOST:PORT | [V6]:PORT | unix:PATH] [LINE]\n"
    "Send each line typed (or piped) to stampd and print its reply.\n"
    "Default address 127.0.0.1:8009.\n"
    "\n"
    "  LINE                send just this line (instead of reading stdin)\n"
    "  -n, --repeat N      send each line N times, printing the round-trip\n"
    "                      time of each and a min/avg/max/p99 summary\n"
    "      --http          the address is an HTTP listener: each line is\n"
    "                      sent as the body of a POST and the body printed\n"
    "      --raw           write replies as received even to a terminal\n"
    "                      (by default a terminal sees control bytes as \\xHH)\n"
    "      --history FILE  terminal history file (default $STAMPCLI_HISTORY,\n"
    "                      else ~/.stampcli_history; '' for none)\n"
    "  -t, --timeout S     wait at most S seconds for a reply (default 10)\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "On a terminal: line editing and history; Ctrl-D quits.\n"
    "Exit status: 0 every reply arrived, 1 the server could not be reached,\n"
    "closed or timed out, 2 usage.\n";

static struct {
    struct addr target;
    int fd;
    int timeout_ms;
    int http;
    int escape;          /* replies shown escaped (stdout is a terminal) */
    long repeat;         /* 0: no -n */
    char history[4096];  /* "" for none */
    char host[300];      /* Host header */
} g;

/* Received bytes not yet consumed. */
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

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Reply bytes to stdout, escaped for a terminal unless --raw. */
static void show(const char *p, size_t n)
{
    if (!g.escape) {
        fwrite(p, 1, n, stdout);
        return;
    }
    struct sbuf b = { 0 };
    cli_escape(&b, p, n);
    if (b.len)
        fwrite(b.buf, 1, b.len, stdout);
    sbuf_free(&b);
}

static void consume(size_t n)
{
    memmove(in.buf, in.buf + n, in.len - n);
    in.len -= n;
}

/* Read more into in.buf.  1 read something, 0 EOF, -1 error or timeout
 * (reported). */
static int fill(void)
{
    for (;;) {
        struct pollfd p = { g.fd, POLLIN, 0 };
        int rc = poll(&p, 1, g.timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            fprintf(stderr, "stampcli: no reply within %d ms\n", g.timeout_ms);
            return -1;
        }
        ssize_t r = read(g.fd, in.buf + in.len, sizeof(in.buf) - in.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "stampcli: connection closed by the server: %s\n",
                    strerror(errno));
            return -1;
        }
        in.len += (size_t)r;
        return r > 0;
    }
}

static void closed(void)
{
    fflush(stdout);
    fprintf(stderr, "stampcli: connection closed by the server\n");
}

/* One line reply (through its LF) to *out.  0, or -1 at EOF / error /
 * timeout (what arrived is still shown). */
static int read_line_reply(struct sbuf *out)
{
    for (;;) {
        char *lf = memchr(in.buf, '\n', in.len);
        if (lf) {
            size_t n = (size_t)(lf - in.buf) + 1;
            sbuf_append(out, in.buf, n);
            consume(n);
            return 0;
        }
        if (in.len == sizeof(in.buf)) {
            /* A reply longer than the buffer: keep what we have. */
            sbuf_append(out, in.buf, in.len);
            in.len = 0;
        }
        int r = fill();
        if (r <= 0) {
            if (in.len) { /* a final reply without LF */
                sbuf_append(out, in.buf, in.len);
                sbuf_puts(out, "\n");
                in.len = 0;
            }
            if (r == 0)
                closed();
            return -1;
        }
    }
}

/* One HTTP response: the body to *out, preceded by "HTTP <code>" when the
 * status is not 200. */
static int read_http_reply(struct sbuf *out)
{
    int status;
    size_t off;
    long long blen;
    int rc;
    while ((rc = cli_http_head(in.buf, in.len, &status, &off, &blen)) == 1) {
        int r = fill();
        if (r <= 0) {
            if (r == 0)
                closed();
            return -1;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "stampcli: malformed HTTP response\n");
        return -1;
    }
    if (status != 200)
        sbuf_printf(out, "HTTP %d\n", status);
    consume(off);
    /* No Content-Length: the body runs to the end of the connection. */
    size_t want = blen < 0 ? SIZE_MAX : (size_t)blen;
    while (want) {
        size_t n = in.len < want ? in.len : want;
        sbuf_append(out, in.buf, n);
        consume(n);
        want -= n;
        if (!want)
            break;
        int r = fill();
        if (r < 0 || (r == 0 && blen >= 0)) {
            if (r == 0)
                closed();
            return -1;
        }
        if (r == 0)
            break;
    }
    if (out->len && out->buf[out->len - 1] != '\n')
        sbuf_puts(out, "\n");
    return 0;
}

static int send_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(g.fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "stampcli: send: %s\n", strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send one request (line without its LF) and read its reply into *reply.
 * 0, or -1 (reported). */
static int request(const char *line, size_t n, struct sbuf *reply)
{
    struct sbuf req = { 0 };
    if (g.http) {
        cli_http_request(&req, g.host, line, n);
    } else {
        sbuf_append(&req, line, n);
        sbuf_puts(&req, "\n");
    }
    int rc = sbuf_failed(&req) ? -1 : send_all(req.buf, req.len);
    sbuf_free(&req);
    sbuf_reset(reply);
    if (rc == 0)
        rc = g.http ? read_http_reply(reply) : read_line_reply(reply);
    return rc;
}

/* A line without -n: its reply, printed (even a partial one). */
static int one(const char *line, size_t n)
{
    struct sbuf reply = { 0 };
    int rc = request(line, n, &reply);
    if (reply.len)
        show(reply.buf, reply.len);
    fflush(stdout);
    sbuf_free(&reply);
    return rc;
}

/* -n N: N round trips of one line, each printed with its time, then the
 * summary. */
static int repeated(const char *line, size_t n)
{
    double *rtt = malloc((size_t)g.repeat * sizeof(*rtt));
    struct sbuf reply = { 0 };
    long done = 0;
    int rc = 0;
    if (!rtt) {
        fprintf(stderr, "stampcli: out of memory\n");
        return -1;
    }
    for (; done < g.repeat; done++) {
        double t0 = mono_us();
        rc = request(line, n, &reply);
        double us = mono_us() - t0;
        printf("%ld  %.1f us  ", done + 1, us);
        if (reply.len)
            show(reply.buf, reply.len);
        else
            putchar('\n');
        if (rc != 0)
            break;
        rtt[done] = us;
    }
    if (done > 0) {
        struct cli_rtt s;
        cli_rtt_summary(rtt, (size_t)done, &s);
        printf("%ld requests  min %.1f us  avg %.1f us  max %.1f us  p99 %.1f us\n",
               done, s.min, s.avg, s.max, s.p99);
    }
    fflush(stdout);
    sbuf_free(&reply);
    free(rtt);
    return rc;
}

static int handle(const char *line, size_t n)
{
    return g.repeat ? repeated(line, n) : one(line, n);
}

/* Piped input: every line is a request, empty ones too; a last line
 * without LF counts. */
static int run_pipe(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        if (handle(line, (size_t)n) != 0) {
            rc = 1;
            break;
        }
    }
    free(line);
    return rc;
}

/* A terminal: libedit's readline, history loaded and saved after every
 * line (so a killed session keeps what it typed). */
static int run_terminal(void)
{
    int rc = 0;
    char *line;
    /* The prompt and the echo of what is typed belong to the terminal:
     * with stdout redirected they go to stderr, so the file gets only
     * the replies. */
    rl_instream = stdin;
    rl_outstream = isatty(STDOUT_FILENO) ? stdout : stderr;
    using_history();
    rl_bind_key('\t', rl_insert);   /* a tab is text, not file completion */
    stifle_history(HISTORY_LINES);
    if (g.history[0])
        (void)read_history(g.history);
    while ((line = readline(">>> ")) != NULL) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n) {
            add_history(line);
            if (g.history[0] && write_history(g.history) != 0) {
                fprintf(stderr, "stampcli: cannot write the history file %s\n",
                        g.history);
                g.history[0] = '\0';   /* said once */
            }
        }
        int r = handle(line, n);
        free(line);
        if (r != 0) {
            rc = 1;
            break;
        }
    }
    if (rc == 0)
        fputc('\n', rl_outstream);   /* after Ctrl-D, leave the prompt's line */
    return rc;
}

static void default_history(void)
{
    const char *env = getenv("STAMPCLI_HISTORY");
    const char *home = getenv("HOME");
    if (env)
        snprintf(g.history, sizeof(g.history), "%s", env);
    else if (home && *home)
        snprintf(g.history, sizeof(g.history), "%s/.stampcli_history", home);
}

static int parse_options(int argc, char **argv, int *raw)
{
    enum { O_HTTP = 256, O_RAW, O_HIST };
    static const struct option lo[] = {
        { "timeout", required_argument, NULL, 't' },
        { "repeat", required_argument, NULL, 'n' },
        { "http", no_argument, NULL, O_HTTP },
        { "raw", no_argument, NULL, O_RAW },
        { "history", required_argument, NULL, O_HIST },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "t:n:hV", lo, NULL)) != -1) {
        switch (c) {
        case 't': {
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s > 0 && s <= 86400)) {
                fprintf(stderr, "stampcli: --timeout: expected seconds, got '%s'\n", optarg);
                return 2;
            }
            g.timeout_ms = (int)(s * 1000);
            break;
        }
        case 'n':
            errno = 0;
            g.repeat = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || g.repeat < 1 ||
                g.repeat > MAX_REPEAT) {
                fprintf(stderr, "stampcli: -n: expected 1 to %ld, got '%s'\n",
                        MAX_REPEAT, optarg);
                return 2;
            }
            break;
        case O_HTTP:
            g.http = 1;
            break;
        case O_RAW:
            *raw = 1;
            break;
        case O_HIST:
            snprintf(g.history, sizeof(g.history), "%s", optarg);
            break;
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
    return -1;
}

int main(int argc, char **argv)
{
    int raw = 0, rc;
    char err[256];

    g.timeout_ms = 10000;
    default_history();
    if ((rc = parse_options(argc, argv, &raw)) >= 0)
        return rc;
    if (argc - optind > 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *target = optind < argc ? argv[optind] : "127.0.0.1:8009";
    const char *given = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (given && strchr(given, '\n')) {
        fprintf(stderr, "stampcli: LINE must not contain a newline\n");
        return 2;
    }
    if (resolve(target, &g.target, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampcli: %s\n", err);
        return 2;
    }
    snprintf(g.host, sizeof(g.host), "%s",
             g.target.family == AF_UNIX ? "localhost" : target);
    g.escape = !raw && isatty(STDOUT_FILENO);
    (void)signal(SIGPIPE, SIG_IGN);
    g.fd = socket(g.target.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g.fd < 0 || connect(g.fd, (struct sockaddr *)&g.target.ss, g.target.len) != 0) {
        fprintf(stderr, "stampcli: cannot connect to %s: %s\n", g.target.text,
                strerror(errno));
        return 1;
    }
    if (given)
        rc = handle(given, strlen(given)) == 0 ? 0 : 1;
    else
        rc = isatty(STDIN_FILENO) ? run_terminal() : run_pipe();
    close(g.fd);
    return rc;
}
