/*
 * stampctl - look at a running stampd through its admin port.
 *
 *   stampctl [--admin ADDR] [--timeout S] stats     readable summary
 *   stampctl [--admin ADDR] [--json] [stats]        the raw /stats JSON
 *   stampctl [--admin ADDR] metrics                 the raw /metrics text
 *   stampctl [--admin ADDR] health                  exit 0 if ready, else 1
 *   stampctl [--admin ADDR] top [--interval S] [--count N]
 *   stampctl [--admin ADDR] [--token TOKEN] chat   the operator console
 *
 * Exit status: 0 ok, 1 the server is unreachable, unhealthy or answered
 * something unreadable, 2 usage.  The HTTP side is a blocking HTTP/1.0
 * GET that reads until the server closes; everything it reads is parsed
 * and rendered by ctl.c.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "chat.h"
#include "ctl.h"
#include "version.h"

#define MAX_RESPONSE (64u << 20)

static const char usage[] =
    "usage: stampctl [--admin ADDR] [--timeout SECONDS] [--json] [COMMAND]\n"
    "  stats                  (the default) every figure: per listener, totals, per worker\n"
    "  top [--interval S] [--count N]\n"
    "                         per-worker table every S seconds (default 1),\n"
    "                         N times (default: until interrupted)\n"
    "  health                 exit 0 if the server answers /readyz with 200\n"
    "  metrics                print /metrics (Prometheus text format)\n"
    "  chat [--token TOKEN]   the operator console (--reply operator): see\n"
    "                         client lines, answer \"ID text\" or \"text\";\n"
    "                         the token may come from $STAMPCTL_TOKEN\n"
    "  --json                 with stats: print the raw /stats JSON object\n"
    "  --admin ADDR           admin address (default 127.0.0.1:8010;\n"
    "                         HOST:PORT, [V6]:PORT or unix:PATH)\n";

static struct {
    struct addr admin;
    double timeout_s;
} g;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET path; the whole response in *out.  0, or -1 with a message in err. */
static int http_get(const char *path, struct sbuf *out, char *err, size_t errlen)
{
    struct timeval tv = { (time_t)g.timeout_s,
                          (suseconds_t)((g.timeout_s - (double)(time_t)g.timeout_s) * 1e6) };
    int fd = socket(g.admin.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* Linux applies SO_SNDTIMEO to connect() as well (socket(7)). */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&g.admin.ss, g.admin.len) != 0) {
        snprintf(err, errlen, "cannot connect to the admin port %s: %s",
                 g.admin.text, strerror(errno));
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: stampd\r\nUser-Agent: stampctl/%s\r\n\r\n",
                     path, STAMPD_VERSION);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "%s: send: %s", g.admin.text, strerror(errno));
        close(fd);
        return -1;
    }
    sbuf_reset(out);
    for (;;) {
        char buf[65536];
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
            sbuf_append(out, buf, (size_t)r);
            if (out->len > MAX_RESPONSE || sbuf_failed(out)) {
                snprintf(err, errlen, "%s: response too large", g.admin.text);
                close(fd);
                return -1;
            }
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: read: %s", g.admin.text,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            close(fd);
            return -1;
        }
        break;
    }
    close(fd);
    return 0;
}

/* GET path expecting 200 unless `any_status`; body in *body. */
static int fetch(const char *path, struct sbuf *resp, const char **body,
                 size_t *blen, int *status, int any_status)
{
    char err[256];
    if (http_get(path, resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampctl: %s\n", err);
        return -1;
    }
    if (ctl_http_split(resp->buf ? resp->buf : "", resp->len, status, body,
                       blen) != 0) {
        fprintf(stderr, "stampctl: %s%s: malformed HTTP response\n",
                g.admin.text, path);
        return -1;
    }
    if (!any_status && *status != 200) {
        fprintf(stderr, "stampctl: %s%s: HTTP %d\n", g.admin.text, path, *status);
        return -1;
    }
    return 0;
}

static int snapshot(struct sbuf *resp, struct ctl_snap *s)
{
    const char *body;
    size_t blen;
    int status;
    char err[128];

    if (fetch("/stats", resp, &body, &blen, &status, 0) != 0)
        return -1;
    if (ctl_snap_parse(s, body, blen, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampctl: %s\n", err);
        return -1;
    }
    return 0;
}

static int write_out(const char *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n)
        return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

static int cmd_raw(const char *path)
{
    struct sbuf resp = { 0 };
    const char *body;
    size_t blen;
    int status;
    int rc = fetch(path, &resp, &body, &blen, &status, 0) == 0 &&
             write_out(body, blen) == 0 ? 0 : 1;
    sbuf_free(&resp);
    return rc;
}

/* Readiness, the question an operator or a script asks ("may it take
 * traffic?"): /readyz, which also fails while draining; /healthz answers
 * only whether the processes are alive. */
static int cmd_health(void)
{
    struct sbuf resp = { 0 };
    const char *body;
    size_t blen;
    int status, rc = 1;

    if (fetch("/readyz", &resp, &body, &blen, &status, 1) == 0) {
        printf("%d %.*s", status, (int)blen, body);
        if (blen == 0 || body[blen - 1] != '\n')
            putchar('\n');
        rc = status == 200 ? 0 : 1;
    }
    sbuf_free(&resp);
    return rc;
}

static int cmd_stats(void)
{
    struct sbuf resp = { 0 }, text = { 0 };
    static struct ctl_snap s;
    int rc = 1;

    if (snapshot(&resp, &s) == 0) {
        ctl_render_stats(&text, &s);
        rc = write_out(text.buf, text.len) == 0 ? 0 : 1;
    }
    sbuf_free(&resp);
    sbuf_free(&text);
    return rc;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cmd_top(double interval, long count)
{
    static struct ctl_snap snap[2];
    struct sbuf resp = { 0 }, text = { 0 };
    int tty = isatty(STDOUT_FILENO), cur = 0, rc = 0;

    if (snapshot(&resp, &snap[cur]) != 0) {
        sbuf_free(&resp);
        return 1;
    }
    double t_prev = mono_s(), next = t_prev + interval;
    for (long i = 0; count <= 0 || i < count; i++) {
        double now = mono_s();
        if (next > now)
            sleep_s(next - now);
        next += interval;
        if (snapshot(&resp, &snap[!cur]) != 0) {
            rc = 1;
            break;
        }
        double t = mono_s();
        char clock[32] = "";
        time_t wall = time(NULL);
        struct tm tm;
        if (localtime_r(&wall, &tm))
            strftime(clock, sizeof(clock), "%Y-%m-%d %H:%M:%S", &tm);
        sbuf_reset(&text);
        /* On a terminal, redraw in place; in a pipe or file, one screen
         * after another, separated by a blank line, with no escapes. */
        sbuf_puts(&text, tty ? "\033[H\033[2J" : (i ? "\n" : ""));
        ctl_render_top(&text, &snap[cur], &snap[!cur], t - t_prev, clock);
        if (write_out(text.buf, text.len) != 0) {
            rc = 1;
            break;
        }
        cur = !cur;
        t_prev = t;
    }
    sbuf_free(&resp);
    sbuf_free(&text);
    return rc;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.01 && v <= 86400))
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "admin", required_argument, NULL, 'a' },
        { "timeout", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },
        { "interval", required_argument, NULL, 'i' },
        { "count", required_argument, NULL, 'n' },
        { "token", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *admin = "127.0.0.1:8010";
    const char *token = getenv("STAMPCTL_TOKEN");
    double interval = 1.0;
    long count = 0;
    int json = 0, c;
    char err[256];

    g.timeout_s = 5;
    while ((c = getopt_long(argc, argv, "a:t:ji:n:k:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'a':
            admin = optarg;
            break;
        case 't':
            if (parse_seconds(optarg, &g.timeout_s) != 0) {
                fprintf(stderr, "stampctl: --timeout: expected seconds, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'i':
            if (parse_seconds(optarg, &interval) != 0) {
                fprintf(stderr, "stampctl: --interval: expected seconds, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n': {
            char *end;
            errno = 0;
            count = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || count < 1) {
                fprintf(stderr, "stampctl: --count: expected a positive number, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'k':
            token = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("stampctl %s\n", STAMPD_VERSION);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (addr_parse(&g.admin, admin, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampctl: --admin: %s\n", err);
        return 2;
    }
    if (argc - optind > 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = optind < argc ? argv[optind] : "stats";
    (void)signal(SIGPIPE, SIG_IGN);

    if (strcmp(cmd, "stats") == 0)
        return json ? cmd_raw("/stats") : cmd_stats();
    if (strcmp(cmd, "top") == 0)
        return cmd_top(interval, count);
    if (strcmp(cmd, "health") == 0)
        return cmd_health();
    if (strcmp(cmd, "metrics") == 0)
        return cmd_raw("/metrics");
    if (strcmp(cmd, "chat") == 0)
        return chat_run(&g.admin, token, g.timeout_s);
    fprintf(stderr, "stampctl: unknown command '%s'\n%s", cmd, usage);
    return 2;
}
