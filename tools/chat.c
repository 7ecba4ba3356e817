/*
 * chat.c - `stampctl chat`: the operator console (docs/operator.md).
 *
 * Attaches with `GET /chat` + `Upgrade: stampd-chat` (and the admin token
 * as `Authorization: Bearer`, when given), then relays lines both ways:
 * what the operator types goes to the server as it is ("ID text" or
 * "text"), and every line the server sends (client lines, connects,
 * disconnects, timeouts) is printed as it arrives.
 *
 * On a terminal the typed line is edited with libedit (readline's
 * callback interface, so that events print above the prompt while a line
 * is being typed) and client bytes are shown escaped (cli_escape); in a
 * pipe every stdin line is sent and events are written as received.  At
 * the end of stdin (Ctrl-D, or a pipe's end) the console detaches; the
 * server then answers every waiting line "ERR no operator".
 */
#include <editline/readline.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "sbuf.h"
#include "version.h"

#define HEAD_MAX 8192

static struct {
    int fd;
    int tty;            /* stdin is a terminal: libedit */
    int escape;         /* stdout is a terminal: escape client bytes */
    int stdin_done;
    int line_done;      /* libedit handed over a line (typed()) */
    struct sbuf in;     /* server bytes not yet printed (a partial line) */
    struct sbuf pend;   /* typed lines not yet sent */
} g;

static int send_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(g.fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int connect_admin(const struct addr *admin, double timeout_s)
{
    struct timeval tv = { (time_t)timeout_s,
                          (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6) };
    int fd = socket(admin->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&admin->ss, admin->len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Send the upgrade request and read the answer's head.  0 on 101 (bytes
 * after the head left in g.in), else 1 with the refusal printed. */
static int attach(const struct addr *admin, const char *token)
{
    struct sbuf req = { 0 };
    char buf[HEAD_MAX];
    size_t len = 0;
    int status = 0;
    size_t body_off = 0;
    long long body_len = -1;

    sbuf_printf(&req, "GET /chat HTTP/1.1\r\nHost: stampd\r\n"
                "User-Agent: stampctl/%s\r\nUpgrade: stampd-chat\r\n"
                "Connection: Upgrade\r\n", STAMPD_VERSION);
    if (token && *token)
        sbuf_printf(&req, "Authorization: Bearer %s\r\n", token);
    sbuf_puts(&req, "\r\n");
    int rc = send_all(req.buf, req.len);
    sbuf_free(&req);
    if (rc != 0) {
        fprintf(stderr, "stampctl: %s: send: %s\n", admin->text, strerror(errno));
        return 1;
    }
    for (;;) {
        ssize_t r = read(g.fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "stampctl: %s: no answer to the chat request%s%s\n",
                    admin->text, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return 1;
        }
        len += (size_t)r;
        int h = cli_http_head(buf, len, &status, &body_off, &body_len);
        if (h < 0 || (h > 0 && len == sizeof(buf))) {
            fprintf(stderr, "stampctl: %s: malformed answer\n", admin->text);
            return 1;
        }
        if (h == 0)
            break;
    }
    if (status == 101) {
        sbuf_append(&g.in, buf + body_off, len - body_off);
        return 0;
    }
    /* A refusal: its body (one line) says why; Connection: close. */
    while (body_len > 0 && len - body_off < (size_t)body_len && len < sizeof(buf)) {
        ssize_t r = read(g.fd, buf + len, sizeof(buf) - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    size_t blen = len - body_off;
    while (blen && buf[body_off + blen - 1] == '\n')
        blen--;
    fprintf(stderr, "stampctl: chat refused by %s: HTTP %d: %.*s\n", admin->text,
            status, (int)blen, buf + body_off);
    return 1;
}

/* --- output ------------------------------------------------------------------ */

static void print_line(const char *p, size_t n)
{
    if (!g.escape) {
        fwrite(p, 1, n, stdout);
        return;
    }
    struct sbuf b = { 0 };
    cli_escape(&b, p, n);
    if (g.tty) /* above the line being typed: clear it, print, redraw */
        fputs("\r\033[K", stdout);
    fwrite(b.buf, 1, b.len, stdout);
    sbuf_free(&b);
}

/* Print every whole line of g.in; the prompt is redrawn after them. */
static void print_events(void)
{
    size_t start = 0;
    int printed = 0;

    for (;;) {
        const char *lf = g.in.len ? memchr(g.in.buf + start, '\n', g.in.len - start) : NULL;
        if (!lf)
            break;
        size_t n = (size_t)(lf - (g.in.buf + start)) + 1;
        print_line(g.in.buf + start, n);
        start += n;
        printed = 1;
    }
    if (start) {
        memmove(g.in.buf, g.in.buf + start, g.in.len - start);
        g.in.len -= start;
    }
    fflush(stdout);
    if (printed && g.tty && !g.stdin_done)
        rl_forced_update_display();
}

/* --- input ------------------------------------------------------------------- */

static void typed(char *line)
{
    if (!line) {  /* Ctrl-D */
        g.stdin_done = 1;
        rl_callback_handler_remove();
        fputc('\n', stdout);
        return;
    }
    g.line_done = 1;
    if (*line)
        add_history(line);
    sbuf_puts(&g.pend, line);
    sbuf_puts(&g.pend, "\n");
    free(line);
}

/* A pipe: every whole line read is sent; the end of input ends it. */
static void read_pipe(void)
{
    char buf[4096];
    ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));

    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0) {
        g.stdin_done = 1;
        return;
    }
    sbuf_append(&g.pend, buf, (size_t)r);
}

/* Send the whole lines typed so far. */
static int send_pending(void)
{
    const char *last = g.pend.len ? memrchr(g.pend.buf, '\n', g.pend.len) : NULL;
    if (!last)
        return 0;
    size_t n = (size_t)(last - g.pend.buf) + 1;
    if (send_all(g.pend.buf, n) != 0)
        return -1;
    memmove(g.pend.buf, g.pend.buf + n, g.pend.len - n);
    g.pend.len -= n;
    return 0;
}

static int session(void)
{
    int rc = 0, shut = 0;

    if (g.tty)
        rl_callback_handler_install("chat> ", typed);
    print_events();
    for (;;) {
        struct pollfd p[2] = { { g.fd, POLLIN, 0 },
                               { STDIN_FILENO, POLLIN, 0 } };
        int n = poll(p, g.stdin_done ? 1 : 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = 1;
            break;
        }
        if (!g.stdin_done && (p[1].revents & (POLLIN | POLLHUP))) {
            if (g.tty) {
                rl_callback_read_char();
                /* libedit leaves the terminal in cooked mode after a
                 * line until its next read: raw again, and a new prompt. */
                if (g.line_done && !g.stdin_done)
                    rl_callback_handler_install("chat> ", typed);
                g.line_done = 0;
            } else
                read_pipe();
            if (send_pending() != 0) {
                fprintf(stderr, "stampctl: the server closed the console\n");
                rc = 1;
                break;
            }
        }
        if (g.stdin_done && !shut) {
            /* Detach: the server closes once it has read everything. */
            (void)shutdown(g.fd, SHUT_WR);
            shut = 1;
        }
        if (p[0].revents) {
            char buf[16384];
            ssize_t r = read(g.fd, buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (g.in.len) /* a last line without LF */
                    sbuf_puts(&g.in, "\n");
                print_events();
                if (!shut) {
                    fprintf(stderr, "%sstampctl: the server closed the console\n",
                            g.tty ? "\r\033[K" : "");
                    rc = 1;
                }
                break;
            }
            sbuf_append(&g.in, buf, (size_t)r);
            print_events();
        }
    }
    if (g.tty && !g.stdin_done)
        rl_callback_handler_remove();
    return rc;
}

int chat_run(const struct addr *admin, const char *token, double timeout_s)
{
    int rc;

    g.fd = connect_admin(admin, timeout_s);
    if (g.fd < 0) {
        fprintf(stderr, "stampctl: cannot connect to the admin port %s: %s\n",
                admin->text, strerror(errno));
        return 1;
    }
    g.tty = isatty(STDIN_FILENO);
    g.escape = isatty(STDOUT_FILENO);
    rc = attach(admin, token);
    if (rc == 0) {
        /* Events come whenever they happen: no read timeout from here. */
        struct timeval none = { 0, 0 };
        (void)setsockopt(g.fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
        if (g.tty) {
            rl_instream = stdin;
            rl_outstream = stdout;
            using_history();
            rl_bind_key('\t', rl_insert);
        }
        rc = session();
    }
    close(g.fd);
    sbuf_free(&g.in);
    sbuf_free(&g.pend);
    return rc;
}
