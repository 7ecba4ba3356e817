/*
 * console.c - the operator console, master side (see console.h).
 *
 * Everything here runs in the master's loop, so nothing may block it: the
 * channels and the console's socket are non-blocking, a burst of worker
 * messages is read in bounded batches, and a console that does not read
 * its events is detached once CONSOLE_MAX_OUTPUT bytes wait for it
 * (its clients then get "ERR no operator", as with no console at all).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clientlog.h"
#include "compat.h"
#include "console.h"
#include "log.h"
#include "opchannel.h"
#include "reactor.h"

#define CONSOLE_MAX_OUTPUT (4u << 20)
#define CONSOLE_MAX_INPUT 8192      /* one typed line, LF included */
#define CHANNEL_BUDGET 256          /* packets read per readable event */
#define CHANNEL_SNDBUF (1 << 20)    /* room for bursts of held lines */
#define HOLDER_MAX 128

/* A line shown to the console and not answered yet. */
struct waiting {
    struct waiting *next;
    uint32_t id;
};

struct console {
    poller_t *p;
    const struct opts *o;
    unsigned nworkers;
    int *chan;                  /* master's end per slot, -1: none */
    uint32_t *serials;          /* shared with the workers, per slot */
    int fd;                     /* the attached console, -1: none */
    uint32_t gen;
    unsigned mask;
    struct sbuf out;
    size_t out_off;
    char in[CONSOLE_MAX_INPUT];
    size_t in_len;
    int skipping;               /* dropping the rest of an overlong line */
    char holder[HOLDER_MAX];    /* who is attached, and since when */
    struct waiting *head, *tail;
    char pkt[OPMSG_MAX];
};

static uint64_t conn_tag(const struct console *con)
{
    return TAG_IPC | (uint64_t)con->gen << 16;
}

static uint64_t chan_tag(int slot)
{
    return TAG_IPC | (uint64_t)(slot + 1);
}

/* --- the waiting lines ---------------------------------------------------------- */

static void wait_add(struct console *con, uint32_t id)
{
    struct waiting *wt = malloc(sizeof(*wt));
    if (!wt)
        return;  /* not listed: only "text" without an id misses it */
    wt->next = NULL;
    wt->id = id;
    if (con->tail)
        con->tail->next = wt;
    else
        con->head = wt;
    con->tail = wt;
}

/* Drop the oldest entry of `id` (all of them if `all`), or every entry
 * of worker slot `slot` when id is 0. */
static void wait_drop(struct console *con, uint32_t id, int all, int slot)
{
    struct waiting **pp = &con->head, *prev = NULL;

    while (*pp) {
        struct waiting *wt = *pp;
        int match = id ? wt->id == id
                       : (int)opchan_slot(wt->id, con->nworkers) == slot;
        if (!match) {
            prev = wt;
            pp = &wt->next;
            continue;
        }
        *pp = wt->next;
        if (con->tail == wt)
            con->tail = prev;
        free(wt);
        if (id && !all)
            return;
    }
}

static void wait_clear(struct console *con)
{
    while (con->head) {
        struct waiting *wt = con->head;
        con->head = wt->next;
        free(wt);
    }
    con->tail = NULL;
}

/* --- the attached console ---------------------------------------------------- */

static void chan_send(struct console *con, int slot, const struct opmsg *m,
                      int *ok)
{
    int fd = con->chan[slot];
    size_t n;
    ssize_t r;

    *ok = 0;
    if (fd < 0)
        return;
    n = opmsg_encode(con->pkt, m);
    do
        r = send(fd, con->pkt, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    *ok = r == (ssize_t)n;
}

static void broadcast(struct console *con, enum opmsg_type type)
{
    struct opmsg m = { .type = type };
    int ok;
    for (unsigned i = 0; i < con->nworkers; i++)
        chan_send(con, (int)i, &m, &ok);
}

static void detach(struct console *con, const char *why);

/* The reactor's interest policy: a console the poller will not take the
 * new interest of is detached. */
static void set_mask(struct console *con, unsigned mask)
{
    if (reactor_interest(con->p, con->fd, &con->mask, mask, conn_tag(con)) != 0)
        detach(con, "the poller refused its interest change");
}

static void detach(struct console *con, const char *why)
{
    if (con->fd < 0)
        return;
    log_info("operator console %s detached (%s)", con->holder, why);
    close(con->fd);  /* removes it from the poller */
    con->fd = -1;
    con->mask = 0;
    con->gen = (con->gen + 1) & 0xffffffu;
    sbuf_free(&con->out);
    con->out_off = 0;
    con->in_len = 0;
    con->skipping = 0;
    con->holder[0] = '\0';
    wait_clear(con);
    broadcast(con, OPM_DETACH);
}

/* Write what is pending; keep write interest while some remains. */
static void flush(struct console *con)
{
    while (con->fd >= 0 && con->out.len > con->out_off) {
        ssize_t w = send(con->fd, con->out.buf + con->out_off,
                         con->out.len - con->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            con->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            set_mask(con, POLLER_READ | POLLER_WRITE);
            return;
        }
        detach(con, "write failed");
        return;
    }
    if (con->fd < 0)
        return;
    sbuf_reset(&con->out);
    con->out_off = 0;
    set_mask(con, POLLER_READ);
}

/* Flush after appending; a console that reads nothing is dropped. */
static void emit_done(struct console *con)
{
    if (sbuf_failed(&con->out) || con->out.len - con->out_off > CONSOLE_MAX_OUTPUT) {
        detach(con, "it does not read its events");
        return;
    }
    flush(con);
}

static void say(struct console *con, const char *line)
{
    if (con->fd < 0)
        return;
    sbuf_puts(&con->out, line);
    emit_done(con);
}

/* --- the operator's lines ------------------------------------------------------ */

static void route_reply(struct console *con, uint32_t id, const char *text,
                        size_t len)
{
    unsigned slot = opchan_slot(id, con->nworkers);
    struct opmsg m = { .type = OPM_REPLY, .id = id, .data = text, .len = len };
    char msg[160];
    int ok;

    if (len > OPMSG_DATA_MAX) {
        snprintf(msg, sizeof(msg), "? a reply is at most %d bytes: not sent\n",
                 OPMSG_DATA_MAX);
        say(con, msg);
        return;
    }
    chan_send(con, (int)slot, &m, &ok);
    if (!ok) {
        snprintf(msg, sizeof(msg), "? #%u: its worker is not taking replies "
                 "now: not sent\n", id);
        say(con, msg);
        return;
    }
    /* The worker answers id's oldest line: that one is not waiting any
     * more (if it timed out meanwhile, the reply answers the next one, and
     * the timeout's event drops that). */
    wait_drop(con, id, 0, -1);
}

static void on_line(struct console *con, const char *line, size_t n)
{
    uint32_t id = 0;
    const char *text;
    size_t tlen;
    int rc = opconsole_parse(line, n, &id, &text, &tlen);

    if (rc < 0)
        return;
    if (rc == 0) {
        if (!con->head) {
            say(con, "? no line is waiting\n");
            return;
        }
        id = con->head->id;
    }
    route_reply(con, id, text, tlen);
}

static void console_read(struct console *con)
{
    ssize_t r = read(con->fd, con->in + con->in_len, sizeof(con->in) - con->in_len);

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        detach(con, r == 0 ? "closed by the console" : "read failed");
        return;
    }
    con->in_len += (size_t)r;
    size_t start = 0;
    for (;;) {
        char *lf = memchr(con->in + start, '\n', con->in_len - start);
        if (!lf)
            break;
        size_t n = (size_t)(lf - (con->in + start));
        if (!con->skipping)
            on_line(con, con->in + start, n);
        con->skipping = 0;
        start += n + 1;
        if (con->fd < 0)
            return;
    }
    memmove(con->in, con->in + start, con->in_len - start);
    con->in_len -= start;
    if (con->in_len == sizeof(con->in)) {
        say(con, "? line too long: dropped\n");
        con->in_len = 0;
        con->skipping = 1;
    }
}

/* --- the channels ---------------------------------------------------------------- */

static void chan_closed(struct console *con, int slot)
{
    char msg[96];

    close(con->chan[slot]);
    con->chan[slot] = -1;
    wait_drop(con, 0, 1, slot);
    snprintf(msg, sizeof(msg), "! worker %d stopped: its connections are gone\n",
             slot);
    say(con, msg);
}

static void on_message(struct console *con, const struct opmsg *m)
{
    switch (m->type) {
    case OPM_LINE:
        wait_add(con, m->id);
        break;
    case OPM_TIMEOUT:
        wait_drop(con, m->id, 0, -1);
        break;
    case OPM_CLOSED:
        wait_drop(con, m->id, 1, -1);
        break;
    default:
        break;
    }
    if (con->fd >= 0) {
        opconsole_format(&con->out, m);
        emit_done(con);
    }
}

static void chan_read(struct console *con, int slot)
{
    struct opmsg m;

    for (int i = 0; i < CHANNEL_BUDGET && con->chan[slot] >= 0; i++) {
        ssize_t r = recv(con->chan[slot], con->pkt, sizeof(con->pkt), MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            chan_closed(con, slot);
            return;
        }
        /* With no console attached, messages are stale (a worker that
         * has not heard of the detach yet answers its lines itself). */
        if (opmsg_decode(con->pkt, (size_t)r, &m) == 0 && con->fd >= 0)
            on_message(con, &m);
    }
}

/* --- the interface -------------------------------------------------------------- */

struct console *console_create(poller_t *p, const struct opts *o, char *err,
                               size_t errlen)
{
    struct console *con = calloc(1, sizeof(*con));
    unsigned nw = (unsigned)o->workers;

    if (!con || !(con->chan = malloc(nw * sizeof(*con->chan)))) {
        free(con);
        snprintf(err, errlen, "operator console: out of memory");
        return NULL;
    }
    con->serials = mmap(NULL, nw * sizeof(*con->serials), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (con->serials == MAP_FAILED) {
        snprintf(err, errlen, "operator console: mmap: %s", strerror(errno));
        free(con->chan);
        free(con);
        return NULL;
    }
    con->p = p;
    con->o = o;
    con->nworkers = nw;
    con->fd = -1;
    for (unsigned i = 0; i < nw; i++)
        con->chan[i] = -1;
    return con;
}

void console_destroy(struct console *con)
{
    if (!con)
        return;
    detach(con, "the master stops serving it");
    for (unsigned i = 0; i < con->nworkers; i++)
        if (con->chan[i] >= 0)
            close(con->chan[i]);
    wait_clear(con);
    munmap(con->serials, con->nworkers * sizeof(*con->serials));
    free(con->chan);
    free(con);
}

int console_channel(struct console *con, int slot, uint32_t **serial)
{
    int sv[2];

    *serial = &con->serials[slot];
    if (con->chan[slot] >= 0) {
        close(con->chan[slot]);
        con->chan[slot] = -1;
        wait_drop(con, 0, 1, slot);
    }
    if (compat_socketpair(SOCK_SEQPACKET, sv) != 0) {
        log_warn("operator channel for worker %d: %s; its operator clients "
                 "get \"ERR no operator\"", slot, strerror(errno));
        return -1;
    }
    int big = CHANNEL_SNDBUF;
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (poller_add(con->p, sv[0], POLLER_READ, chan_tag(slot)) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    con->chan[slot] = sv[0];
    if (con->fd >= 0) {
        struct opmsg m = { .type = OPM_ATTACH };
        int ok;
        chan_send(con, slot, &m, &ok);
    }
    return sv[1];
}

void console_close_in_child(struct console *con)
{
    if (!con)
        return;
    for (unsigned i = 0; i < con->nworkers; i++)
        if (con->chan[i] >= 0)
            close(con->chan[i]);
    if (con->fd >= 0)
        close(con->fd);
}

void console_event(struct console *con, uint64_t tag, unsigned mask)
{
    unsigned idx = (unsigned)(tag & 0xffff);

    if (idx) {
        if (idx <= con->nworkers)
            chan_read(con, (int)idx - 1);
        return;
    }
    if (con->fd < 0 || tag != conn_tag(con))
        return;  /* detached earlier in this batch */
    if (mask & POLLER_WRITE)
        flush(con);
    if (con->fd >= 0 && (mask & POLLER_READ))
        console_read(con);
}

int console_check(struct console *con, const char *auth, struct sbuf *why)
{
    const char *reason;
    int st = opchan_admit(&con->o->admin, con->o->admin_token,
                          auth[0] ? auth : NULL, &reason);
    if (st) {
        sbuf_printf(why, "%s\n", reason);
        return st;
    }
    if (con->fd >= 0) {
        sbuf_printf(why, "the console is held by %s\n", con->holder);
        return 409;
    }
    return 0;
}

/* "pid 123 uid 0" for a unix peer (SO_PEERCRED), else its address; and
 * since when, in UTC. */
static void describe_holder(struct console *con, int fd)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof(ss);
    char who[80] = "?", when[32] = "";
    time_t now = time(NULL);
    struct tm tm;

    long pid = -1, uid = -1;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        ;  /* gone already: "?" */
    else if (ss.ss_family != AF_UNIX)
        addr_peer_text(who, sizeof(who), (struct sockaddr *)&ss);
    else if (compat_peer_cred(fd, &pid, &uid) == 0 && pid > 0)
        snprintf(who, sizeof(who), "pid %ld (uid %ld)", pid, uid);
    else if (uid >= 0)
        snprintf(who, sizeof(who), "uid %ld", uid);
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(con->holder, sizeof(con->holder), "%s since %s", who, when);
}

void console_take(struct console *con, int fd, const char *early, size_t n)
{
    con->fd = fd;
    con->mask = 0;
    describe_holder(con, fd);
    if (poller_add(con->p, fd, POLLER_READ, conn_tag(con)) != 0) {
        close(fd);
        con->fd = -1;
        return;
    }
    con->mask = POLLER_READ;
    log_info("operator console attached: %s", con->holder);
    broadcast(con, OPM_ATTACH);
    sbuf_printf(&con->out,
                "HTTP/1.1 101 Switching Protocols\r\n"
                "Upgrade: stampd-chat\r\nConnection: Upgrade\r\n\r\n"
                "* operator console of stampd (pid %d, %u worker%s): answer "
                "with \"ID text\", or \"text\" for the oldest waiting line\n",
                (int)getpid(), con->nworkers, con->nworkers == 1 ? "" : "s");
    emit_done(con);
    /* Lines sent along with the request are handled as if read now; an
     * unfinished one waits in in[] for the rest. */
    size_t i = 0;
    for (;;) {
        const char *lf = con->fd >= 0 ? memchr(early + i, '\n', n - i) : NULL;
        if (!lf)
            break;
        on_line(con, early + i, (size_t)(lf - (early + i)));
        i = (size_t)(lf - early) + 1;
    }
    if (con->fd >= 0 && n - i < sizeof(con->in)) {
        memcpy(con->in, early + i, n - i);
        con->in_len = n - i;
    }
}
