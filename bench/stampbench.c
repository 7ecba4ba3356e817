/*
 * stampbench - a load generator for stampd's line protocol (and any server
 * that answers one line per request line), built to stay off the critical
 * path: one epoll reactor per thread over the server's own poller backend,
 * no allocation per request, every reply verified.
 *
 * Phases, driven by the main thread through one atomic: CONNECT (open every
 * connection, throttled), WARMUP (load, not recorded), MEASURE (recorded),
 * DONE.  Workers read the phase once per poller wakeup and wake at least
 * every 50 ms, so every loop ends by itself at the deadline.
 *
 * Closed loop (default): each connection keeps -P requests in flight and
 * sends one more per reply.  Open loop (--rate): request k of a thread is
 * due at t0 + k / rate_thread and goes to its connections in turn; latency
 * counts from that intended time, so a stalled server is charged for the
 * requests it delayed (coordinated omission, corrected as wrk2 does).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "poller.h"
#include "sbcore.h"
#include "sbuf.h"
#include "version.h"

/* PH_VERIFY (--verify-all): no new load; one more round trip on every
 * connection, after the measured time.  PH_CLOSE (--wait-close): the
 * connections wait for the server to close them. */
enum phase { PH_CONNECT = 0, PH_WARMUP, PH_MEASURE, PH_VERIFY, PH_CLOSE,
             PH_DONE };

#define RBUF_SIZE (256 * 1024)
#define MAX_CONNECTING 256      /* in-progress connects per thread */
#define MAX_INFLIGHT_OPEN 4096  /* open loop: requests queued per connection */
#define MAX_REPORTS 10          /* mismatch lines printed */
#define MAX_LINE_REPLY 65536    /* line mode: longest reply accepted */

struct options {
    struct addr target;
    int conns, threads, pipeline, src_ips;
    size_t size;
    double duration, warmup, rate, connect_timeout;
    int crlf, json, connect_only;
    int verify_all;             /* --verify-all */
    double interval;            /* --interval SECS; 0: none */
    double wait_close;          /* --wait-close SECS; 0: none */
    int start_on_signal;        /* --start-on-signal: SIGUSR1 ends the warm-up */
    const char *hist_out;       /* --hist-out FILE, or NULL */
    const char *count_file;     /* --count-file FILE, or NULL */
    enum sb_mode mode;
    int fmt;                    /* -1: detect from the first reply */
    const char *request, *expect;
};

enum cstate { C_IDLE = 0, C_CONNECTING, C_OPEN, C_DEAD };
/* --verify-all: the final round trip of a connection. */
enum vstate { V_NONE = 0, V_PENDING, V_OK, V_FAILED };

struct conn {
    int fd;
    enum cstate state;
    unsigned mask;
    int index;                  /* global connection number */
    uint32_t sent, recvd;       /* request sequence numbers */
    uint32_t cap;               /* power of two: size of the time rings */
    int64_t *due;               /* latency origin per in-flight request */
    int64_t *sent_ns;           /* actual send time (monotonic) */
    char *part;                 /* unfinished reply line */
    uint32_t part_len, part_cap;
    char *out;                  /* request bytes the kernel did not take */
    uint32_t out_len, out_cap;
    int64_t connect_start;
    uint32_t verify_until;      /* V_PENDING: verified once recvd gets here */
    enum vstate vstate;
};

struct counters {
    uint64_t requests, bytes_in, bytes_out, errors, mismatches, late;
    uint64_t verdicts[SB_VERDICTS];
};

struct thread {
    pthread_t tid;
    int id;
    const struct options *o;
    struct conn *conns;
    int nconns;
    poller_t *poller;
    char *rbuf, *wbuf, *expect_buf;
    size_t wbuf_cap;
    int fmt;
    struct sb_stamp_cache cache;
    struct counters c;          /* MEASURE phase only, except errors */
    struct sb_hist lat, conn_lat;
    int connected, connect_failed, connecting, next_connect;
    int64_t first_connect_ns, last_connect_ns;
    uint64_t progress_requests;      /* relaxed-atomic copy for the ticker */
    uint64_t *count_slot;            /* --count-file: this thread's counter */
    /* The progress line's view of this thread: copied by the thread when
     * g_snap_gen moves on, read by the main thread, both under the lock. */
    pthread_mutex_t snap_lock;
    struct sb_hist *snap;            /* NULL: no progress line */
    uint64_t snap_errors;
    int snap_gen;
    int done_connecting;             /* relaxed-atomic flag */
    int verify_started;              /* relaxed-atomic flag */
    int verify_pending;              /* relaxed-atomic: V_PENDING conns */
    int verified;                    /* V_OK conns */
    int open;                        /* relaxed-atomic: C_OPEN conns */
    int closed_by_server;            /* EOFs in PH_CLOSE */
    int64_t wall_off;                /* wall - mono, refreshed per wakeup */
    int measuring;                   /* phase is MEASURE, per wakeup */
    uint64_t open_k;                 /* open loop: next request number */
    int64_t open_t0;
    double open_interval_ns;
};

static int g_phase;
static int g_reports;
static int g_snap_gen;    /* bumped by the main thread once a second */

static int64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int phase_get(void)
{
    return __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE);
}

static void report(const struct conn *c, const char *what, const char *line,
                   size_t len)
{
    if (__atomic_fetch_add(&g_reports, 1, __ATOMIC_RELAXED) >= MAX_REPORTS)
        return;
    char shown[160];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < sizeof(shown); i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            shown[k++] = (char)ch;
        else
            k += (size_t)snprintf(shown + k, sizeof(shown) - k, "\\x%02x", ch);
    }
    shown[k] = 0;
    fprintf(stderr, "stampbench: %s: connection %d request %u: \"%s\"%s\n",
            what, c->index, c->recvd, shown, len > k ? "..." : "");
}

/* --- requests ------------------------------------------------------------ */

static size_t request_len(const struct options *o)
{
    size_t body = o->mode == SB_LINE ? strlen(o->request) : o->size;
    return body + (o->crlf ? 2 : 1);
}

static size_t request_write(const struct options *o, char *dst, uint32_t seq)
{
    size_t n;
    if (o->mode == SB_LINE) {
        n = strlen(o->request);
        memcpy(dst, o->request, n);
    } else {
        n = o->size;
        sb_payload(dst, n, seq);
    }
    if (o->crlf)
        dst[n++] = '\r';
    dst[n++] = '\n';
    return n;
}

/* A pending final round trip ends as `v`. */
static void verify_end(struct thread *t, struct conn *c, enum vstate v)
{
    if (c->vstate != V_PENDING)
        return;
    c->vstate = v;
    t->verified += v == V_OK;
    __atomic_store_n(&t->verify_pending, t->verify_pending - 1, __ATOMIC_RELAXED);
}

static void conn_kill(struct thread *t, struct conn *c, int count_error)
{
    if (c->state == C_DEAD)
        return;
    if (count_error)
        t->c.errors++;
    verify_end(t, c, V_FAILED);
    if (c->state == C_OPEN)
        __atomic_store_n(&t->open, t->open - 1, __ATOMIC_RELAXED);
    if (c->state == C_CONNECTING)
        t->connecting--;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_DEAD;
    free(c->part);
    free(c->out);
    free(c->due);
    free(c->sent_ns);
    c->part = c->out = NULL;
    c->due = c->sent_ns = NULL;
}

static int ring_grow(struct conn *c, uint32_t need)
{
    if (need <= c->cap)
        return 0;
    uint32_t cap = c->cap ? c->cap : 4;
    while (cap < need)
        cap *= 2;
    int64_t *due = malloc(cap * sizeof(*due));
    int64_t *sent = malloc(cap * sizeof(*sent));
    if (!due || !sent) {
        free(due);
        free(sent);
        return -1;
    }
    for (uint32_t s = c->recvd; s != c->sent; s++) {
        due[s & (cap - 1)] = c->due[s & (c->cap - 1)];
        sent[s & (cap - 1)] = c->sent_ns[s & (c->cap - 1)];
    }
    free(c->due);
    free(c->sent_ns);
    c->due = due;
    c->sent_ns = sent;
    c->cap = cap;
    return 0;
}

static int set_mask(struct thread *t, struct conn *c, unsigned mask)
{
    int rc = poller_mod(t->poller, c->fd, c->mask, mask,
                        (uint64_t)(c - t->conns));
    if (rc == 0)
        c->mask = mask;
    return rc;
}

/* Write out[] then the new bytes; keep what the kernel refuses. */
static void conn_write(struct thread *t, struct conn *c, const char *data,
                       size_t n)
{
    if (c->out_len) {
        if (c->out_len + n > c->out_cap) {
            uint32_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < c->out_len + n)
                cap *= 2;
            char *p = realloc(c->out, cap);
            if (!p) {
                conn_kill(t, c, 1);
                return;
            }
            c->out = p;
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, data, n);
        c->out_len += (uint32_t)n;
        return;   /* the write handler flushes when the socket drains */
    }
    ssize_t w = write(c->fd, data, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_kill(t, c, 1);
            return;
        }
        w = 0;
    }
    if (t->measuring)
        t->c.bytes_out += (uint64_t)w;
    if ((size_t)w == n)
        return;
    size_t rest = n - (size_t)w;
    if (rest > c->out_cap) {
        char *p = realloc(c->out, rest);
        if (!p) {
            conn_kill(t, c, 1);
            return;
        }
        c->out = p;
        c->out_cap = (uint32_t)rest;
    }
    memcpy(c->out, data + w, rest);
    c->out_len = (uint32_t)rest;
    if (set_mask(t, c, POLLER_READ | POLLER_WRITE) != 0)
        conn_kill(t, c, 1);
}

static void conn_flush(struct thread *t, struct conn *c)
{
    if (!c->out_len) {
        set_mask(t, c, POLLER_READ);
        return;
    }
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_kill(t, c, 1);
        return;
    }
    if (t->measuring)
        t->c.bytes_out += (uint64_t)w;
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (uint32_t)w;
    if (!c->out_len && set_mask(t, c, POLLER_READ) != 0)
        conn_kill(t, c, 1);
}

/* Send n requests now; `due` is their latency origin (intended time in the
 * open loop, the send time otherwise). */
static void conn_send(struct thread *t, struct conn *c, unsigned n,
                      int64_t due, int64_t now)
{
    const struct options *o = t->o;
    size_t one = request_len(o);

    if (ring_grow(c, c->sent - c->recvd + n) != 0) {
        conn_kill(t, c, 1);
        return;
    }
    if (n * one > t->wbuf_cap) {
        char *p = realloc(t->wbuf, n * one);
        if (!p) {
            conn_kill(t, c, 1);
            return;
        }
        t->wbuf = p;
        t->wbuf_cap = n * one;
    }
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t s = c->sent++;
        c->due[s & (c->cap - 1)] = due;
        c->sent_ns[s & (c->cap - 1)] = now;
        len += request_write(o, t->wbuf + len, s);
    }
    conn_write(t, c, t->wbuf, len);
}

/* --- replies --------------------------------------------------------------- */

static size_t max_reply(const struct options *o)
{
    return o->mode == SB_LINE ? MAX_LINE_REPLY : CLOCK_PREFIX_LEN + o->size + 2;
}

/* One reply line; 0, or -1 when the connection must go. */
static int on_reply(struct thread *t, struct conn *c, const char *line,
                    size_t len, int64_t now, int64_t wall, int measuring)
{
    const struct options *o = t->o;

    if (c->recvd == c->sent) {
        report(c, "unsolicited reply", line, len);
        t->c.mismatches++;
        return -1;
    }
    uint32_t s = c->recvd;
    if (o->mode == SB_STAMP && t->fmt < 0 && len > CLOCK_PREFIX_LEN)
        t->fmt = (int)sb_detect_format(line + 1);
    sb_payload(t->expect_buf, o->mode == SB_LINE ? 0 : o->size, s);
    struct sb_expect e = {
        .mode = o->mode,
        .fmt = t->fmt < 0 ? TIME_CTIME : (enum time_format)t->fmt,
        .crlf = o->crlf,
        .payload = t->expect_buf,
        .payload_len = o->mode == SB_LINE ? 0 : o->size,
        .expect = o->expect,
        .expect_len = o->expect ? strlen(o->expect) : 0,
        .send_ns = c->sent_ns[s & (c->cap - 1)] + t->wall_off,
        .recv_ns = wall,
    };
    enum sb_verdict v = sb_check(&e, line, len, &t->cache);
    if (v != SB_OK) {
        t->c.verdicts[v]++;
        t->c.mismatches++;
        report(c, sb_verdict_name(v), line, len);
        verify_end(t, c, V_FAILED);
    } else if (s + 1 == c->verify_until) {
        verify_end(t, c, V_OK);
    }
    if (measuring) {
        int64_t lat = now - c->due[s & (c->cap - 1)];
        sb_hist_add(&t->lat, lat > 0 ? (uint64_t)lat : 0);
        t->c.requests++;
    }
    c->recvd++;
    return 0;
}

static void conn_read(struct thread *t, struct conn *c, int ph)
{
    const struct options *o = t->o;
    size_t keep = c->part_len;
    if (keep)   /* part is NULL until a reply is first split */
        memcpy(t->rbuf, c->part, keep);
    ssize_t n = read(c->fd, t->rbuf + keep, RBUF_SIZE - keep);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (ph == PH_CLOSE && n == 0 && !keep) {   /* what --wait-close waits for */
            t->closed_by_server++;
            conn_kill(t, c, 0);
            return;
        }
        if (ph != PH_DONE) {
            report(c, n == 0 ? "closed by the server" : strerror(errno),
                   t->rbuf, keep);
        }
        conn_kill(t, c, ph != PH_DONE);
        return;
    }
    int64_t now = now_ns(CLOCK_MONOTONIC);
    int64_t wall = now_ns(CLOCK_REALTIME);
    int measuring = ph == PH_MEASURE;
    if (measuring)
        t->c.bytes_in += (uint64_t)n;
    if (o->connect_only && ph != PH_VERIFY) {
        report(c, "unexpected data", t->rbuf + keep, (size_t)n);
        t->c.mismatches++;
        conn_kill(t, c, 0);
        return;
    }

    const char *p = t->rbuf, *end = t->rbuf + keep + (size_t)n;
    unsigned done = 0;
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (on_reply(t, c, p, (size_t)(nl + 1 - p), now, wall, measuring)) {
            conn_kill(t, c, 0);
            return;
        }
        done++;
        p = nl + 1;
    }
    size_t rest = (size_t)(end - p);
    if (rest > max_reply(o)) {
        report(c, "reply too long", p, rest);
        t->c.mismatches++;
        conn_kill(t, c, 0);
        return;
    }
    if (rest > c->part_cap) {
        char *q = realloc(c->part, rest);
        if (!q) {
            conn_kill(t, c, 1);
            return;
        }
        c->part = q;
        c->part_cap = (uint32_t)rest;
    }
    if (rest)
        memmove(c->part, p, rest);
    c->part_len = (uint32_t)rest;
    if (done && o->rate <= 0 && (ph == PH_WARMUP || ph == PH_MEASURE))
        conn_send(t, c, done, now, now);
}

/* --- connecting -------------------------------------------------------------- */

static void conn_start(struct thread *t, struct conn *c)
{
    const struct options *o = t->o;
    int fd = socket(o->target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0) {
        t->connect_failed++;
        t->c.errors++;
        c->state = C_DEAD;
        return;
    }
    if (o->target.family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (o->src_ips > 0 && o->target.family == AF_INET) {
        /* Choose the port at connect() time, per 4-tuple, so each source
         * address gets its own ephemeral range (ip(7)). */
        int one = 1;
        struct sockaddr_in sin = { .sin_family = AF_INET };
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        sin.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->index % o->src_ips));
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
            close(fd);
            t->connect_failed++;
            t->c.errors++;
            c->state = C_DEAD;
            return;
        }
    }
    c->fd = fd;
    c->connect_start = now_ns(CLOCK_MONOTONIC);
    if (!t->first_connect_ns)
        t->first_connect_ns = c->connect_start;
    int rc = connect(fd, (const struct sockaddr *)&o->target.ss, o->target.len);
    if (rc != 0 && errno == EAGAIN && o->target.family == AF_UNIX) {
        /* A full Unix backlog refuses instead of queueing: retry later. */
        close(fd);
        c->fd = -1;
        c->state = C_IDLE;
        return;
    }
    if (rc != 0 && errno != EINPROGRESS) {
        if (__atomic_fetch_add(&g_reports, 1, __ATOMIC_RELAXED) < MAX_REPORTS)
            fprintf(stderr, "stampbench: connect %s: %s\n", o->target.text,
                    strerror(errno));
        close(fd);
        c->fd = -1;
        c->state = C_DEAD;
        t->connect_failed++;
        t->c.errors++;
        return;
    }
    c->state = C_CONNECTING;
    t->connecting++;
    c->mask = 0;
    if (set_mask(t, c, POLLER_WRITE) != 0)
        conn_kill(t, c, 1);
}

static void conn_established(struct thread *t, struct conn *c, int ph)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        if (__atomic_fetch_add(&g_reports, 1, __ATOMIC_RELAXED) < MAX_REPORTS)
            fprintf(stderr, "stampbench: connect %s: %s\n",
                    t->o->target.text, strerror(err ? err : errno));
        t->connect_failed++;
        conn_kill(t, c, 1);
        return;
    }
    int64_t now = now_ns(CLOCK_MONOTONIC);
    sb_hist_add(&t->conn_lat, (uint64_t)(now - c->connect_start));
    t->last_connect_ns = now;
    t->connecting--;
    t->connected++;
    c->state = C_OPEN;
    __atomic_store_n(&t->open, t->open + 1, __ATOMIC_RELAXED);
    if (set_mask(t, c, POLLER_READ) != 0) {
        conn_kill(t, c, 1);
        return;
    }
    if (!t->o->connect_only && t->o->rate <= 0 &&
        (ph == PH_WARMUP || ph == PH_MEASURE))
        conn_send(t, c, (unsigned)t->o->pipeline, now, now);
}

static void connect_more(struct thread *t)
{
    while (t->connecting < MAX_CONNECTING && t->next_connect < t->nconns) {
        struct conn *c = &t->conns[t->next_connect];
        conn_start(t, c);
        if (c->state == C_IDLE)
            break;              /* Unix backlog full: retry next wakeup */
        t->next_connect++;
    }
    if (t->next_connect == t->nconns && t->connecting == 0)
        __atomic_store_n(&t->done_connecting, 1, __ATOMIC_RELEASE);
}

/* --- the loop ---------------------------------------------------------------- */

static void start_load(struct thread *t, int64_t now)
{
    const struct options *o = t->o;
    if (o->connect_only)
        return;
    if (o->rate > 0) {
        t->open_t0 = now;
        t->open_k = 0;
        double rate_t = o->rate * t->nconns / o->conns;
        t->open_interval_ns = 1e9 / rate_t;
        return;
    }
    for (int i = 0; i < t->nconns; i++)
        if (t->conns[i].state == C_OPEN)
            conn_send(t, &t->conns[i], (unsigned)o->pipeline, now, now);
}

/* --verify-all: one more request on every open connection; its reply (and
 * those still owed before it) must verify. */
static void start_verify(struct thread *t, int64_t now)
{
    for (int i = 0; i < t->nconns; i++) {
        struct conn *c = &t->conns[i];
        if (c->state != C_OPEN)
            continue;
        c->vstate = V_PENDING;
        c->verify_until = c->sent + 1;
        __atomic_store_n(&t->verify_pending, t->verify_pending + 1,
                         __ATOMIC_RELAXED);
        conn_send(t, c, 1, now, now);
    }
    __atomic_store_n(&t->verify_started, 1, __ATOMIC_RELEASE);
}

/* Open loop: issue every request due by now; return ms until the next. */
static int open_loop_tick(struct thread *t, int64_t now, int ph)
{
    for (;;) {
        int64_t due = t->open_t0 + (int64_t)(t->open_k * t->open_interval_ns);
        if (due > now)
            return (int)((due - now + 999999) / 1000000);
        struct conn *c = &t->conns[t->open_k % (uint64_t)t->nconns];
        t->open_k++;
        if (c->state != C_OPEN)
            continue;       /* already counted as an error when it died */
        if (c->sent - c->recvd >= MAX_INFLIGHT_OPEN) {
            if (ph == PH_MEASURE)
                t->c.late++;
            continue;
        }
        conn_send(t, c, 1, due, now);
    }
}

/* Copy the histogram for the progress line when the main thread asks
 * (about once a second: a 58 KiB copy, off the per-request path). */
static void snapshot(struct thread *t)
{
    int gen = __atomic_load_n(&g_snap_gen, __ATOMIC_RELAXED);
    if (!t->snap || gen == t->snap_gen || !t->measuring)
        return;
    pthread_mutex_lock(&t->snap_lock);
    memcpy(t->snap, &t->lat, sizeof(*t->snap));
    t->snap_errors = t->c.errors + t->c.mismatches;
    pthread_mutex_unlock(&t->snap_lock);
    t->snap_gen = gen;
}

static void *thread_main(void *arg)
{
    struct thread *t = arg;
    struct poller_event evs[512];
    int ph = PH_CONNECT, last = PH_CONNECT;

    while (ph != PH_DONE) {
        int timeout = 50;
        if (ph == PH_CONNECT)
            connect_more(t);
        else if ((ph == PH_WARMUP || ph == PH_MEASURE) && t->o->rate > 0 &&
                 !t->o->connect_only) {
            int ms = open_loop_tick(t, now_ns(CLOCK_MONOTONIC), ph);
            if (ms < timeout)
                timeout = ms;
        }
        int n = poller_wait(t->poller, evs, 512, timeout);
        t->wall_off = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
        ph = phase_get();
        t->measuring = ph == PH_MEASURE;
        if (ph != last) {
            if (ph == PH_MEASURE) {
                uint64_t errors = t->c.errors;
                memset(&t->c, 0, sizeof(t->c));
                t->c.errors = errors;
                sb_hist_reset(&t->lat);
            }
            if (last == PH_CONNECT && (ph == PH_WARMUP || ph == PH_MEASURE))
                start_load(t, now_ns(CLOCK_MONOTONIC));
            if (ph == PH_VERIFY)
                start_verify(t, now_ns(CLOCK_MONOTONIC));
            last = ph;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &t->conns[evs[i].data];
            if (c->state == C_CONNECTING) {
                if (evs[i].mask & (POLLER_WRITE | POLLER_READ))
                    conn_established(t, c, ph);
                continue;
            }
            if (c->state != C_OPEN)
                continue;
            if (evs[i].mask & POLLER_READ)
                conn_read(t, c, ph);
            if (c->state == C_OPEN && (evs[i].mask & POLLER_WRITE))
                conn_flush(t, c);
        }
        __atomic_store_n(&t->progress_requests, t->c.requests,
                         __ATOMIC_RELAXED);
        if (t->count_slot)
            __atomic_store_n(t->count_slot, t->c.requests, __ATOMIC_RELAXED);
        snapshot(t);
    }
    return NULL;
}

/* --- options, report ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
"Usage: stampbench [OPTION]... HOST:PORT|unix:PATH\n"
"Drive a line server with verified requests and report throughput and latency.\n"
"\n"
"  -c, --connections N    connections (default 10)\n"
"  -t, --threads N        threads, each an epoll loop (default 1)\n"
"  -P, --pipeline N       requests in flight per connection (default 1)\n"
"  -s, --size BYTES       payload size (default 32)\n"
"  -d, --duration SEC     measured time (default 5)\n"
"  -w, --warmup SEC       unrecorded load before it (default 1)\n"
"  -R, --rate N           open loop: N requests/s in total, latency from the\n"
"                         intended send time (default: closed loop)\n"
"      --crlf             terminate requests with CRLF (default LF)\n"
"      --src-ips N        bind connections to 127.0.0.1 .. 127.0.0.N\n"
"      --mode stamp|echo|line   expected replies (default stamp)\n"
"      --time-format auto|ctime|iso8601   stamp format (default auto)\n"
"      --request TEXT     line mode: the request line (default PING)\n"
"      --expect TEXT      line mode: the exact reply (default: any line)\n"
"      --connect-only     open and hold the connections idle for -d seconds\n"
"      --connect-timeout SEC   give up connecting after SEC (default 30)\n"
"      --json             one JSON object on stdout, with the latency\n"
"                         histogram's buckets (mergeable across processes)\n"
"      --hist-out FILE    write the latency percentile distribution to FILE\n"
"                         in HdrHistogram's text format (as wrk2), in ms\n"
"      --interval SEC     every SEC seconds print '#interval t=... requests=...\n"
"                         rate=... errors=... p50_us=... p99_us=...' on stderr,\n"
"                         percentiles of that interval's requests alone\n"
"      --verify-all       after the measured time, one more round trip on every\n"
"                         connection; a connection whose reply does not verify\n"
"                         (or never comes, within --connect-timeout) fails\n"
"                         the run; '#verified' on stderr when done\n"
"      --wait-close SEC   at the end, keep the connections until the server\n"
"                         closes them (a graceful stop); fail if any is still\n"
"                         open after SEC seconds\n"
"      --start-on-signal  keep the warm-up load going (unrecorded) after -w\n"
"                         until SIGUSR1 arrives (at most --connect-timeout),\n"
"                         so that several processes measure the same period\n"
"      --count-file FILE  keep the count of replies verified in the measured\n"
"                         time in FILE, updated at every wake-up: one native\n"
"                         64-bit counter per thread (their sum is the count),\n"
"                         readable while stampbench runs or is stopped\n"
"  -h, --help\n"
"  -V, --version\n"
"\n"
"Exit status: 0 when every reply verified and nothing failed, 1 otherwise,\n"
"2 for invalid options.  Markers '#connected', '#start', '#end' go to\n"
"stderr as the phases change, for scripts sampling the server.  On a\n"
"terminal, stderr also shows a progress line once a second (replaced by\n"
"the '#interval' lines when --interval is given).\n");
}

static int num(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

static int parse_options(struct options *o, int argc, char **argv)
{
    enum { O_CRLF = 256, O_SRC, O_MODE, O_FMT, O_REQ, O_EXP, O_CONLY, O_CTO,
           O_JSON, O_HIST, O_IVAL, O_VERIFY, O_WCLOSE, O_SIGSTART,
           O_COUNT };
    static const struct option longs[] = {
        { "connections", 1, 0, 'c' }, { "threads", 1, 0, 't' },
        { "pipeline", 1, 0, 'P' }, { "size", 1, 0, 's' },
        { "duration", 1, 0, 'd' }, { "warmup", 1, 0, 'w' },
        { "rate", 1, 0, 'R' }, { "crlf", 0, 0, O_CRLF },
        { "src-ips", 1, 0, O_SRC }, { "mode", 1, 0, O_MODE },
        { "time-format", 1, 0, O_FMT }, { "request", 1, 0, O_REQ },
        { "expect", 1, 0, O_EXP }, { "connect-only", 0, 0, O_CONLY },
        { "connect-timeout", 1, 0, O_CTO }, { "json", 0, 0, O_JSON },
        { "hist-out", 1, 0, O_HIST }, { "interval", 1, 0, O_IVAL },
        { "verify-all", 0, 0, O_VERIFY }, { "wait-close", 1, 0, O_WCLOSE },
        { "start-on-signal", 0, 0, O_SIGSTART }, { "count-file", 1, 0, O_COUNT },
        { "help", 0, 0, 'h' },
        { "version", 0, 0, 'V' }, { 0, 0, 0, 0 },
    };
    double v;
    int ch;

    *o = (struct options){ .conns = 10, .threads = 1, .pipeline = 1,
                           .size = 32, .duration = 5, .warmup = 1,
                           .connect_timeout = 30, .fmt = -1,
                           .request = "PING" };
    while ((ch = getopt_long(argc, argv, "c:t:P:s:d:w:R:hV", longs, NULL)) != -1) {
        const char *bad = NULL;
        switch (ch) {
        case 'c': if (num(optarg, 1, 1000000, &v)) bad = "-c"; o->conns = (int)v; break;
        case 't': if (num(optarg, 1, 256, &v)) bad = "-t"; o->threads = (int)v; break;
        case 'P': if (num(optarg, 1, 4096, &v)) bad = "-P"; o->pipeline = (int)v; break;
        case 's': if (num(optarg, 0, 1 << 20, &v)) bad = "-s"; o->size = (size_t)v; break;
        case 'd': if (num(optarg, 0.1, 86400, &v)) bad = "-d"; o->duration = v; break;
        case 'w': if (num(optarg, 0, 3600, &v)) bad = "-w"; o->warmup = v; break;
        case 'R': if (num(optarg, 0.001, 1e9, &v)) bad = "--rate"; o->rate = v; break;
        case O_CRLF: o->crlf = 1; break;
        case O_SRC: if (num(optarg, 1, 254, &v)) bad = "--src-ips"; o->src_ips = (int)v; break;
        case O_MODE:
            if (!strcmp(optarg, "stamp")) o->mode = SB_STAMP;
            else if (!strcmp(optarg, "echo")) o->mode = SB_ECHO;
            else if (!strcmp(optarg, "line")) o->mode = SB_LINE;
            else bad = "--mode";
            break;
        case O_FMT:
            if (!strcmp(optarg, "auto")) o->fmt = -1;
            else if ((o->fmt = time_format_parse(optarg)) < 0) bad = "--time-format";
            break;
        case O_REQ: o->request = optarg; break;
        case O_EXP: o->expect = optarg; break;
        case O_CONLY: o->connect_only = 1; break;
        case O_CTO: if (num(optarg, 0.1, 3600, &v)) bad = "--connect-timeout"; o->connect_timeout = v; break;
        case O_JSON: o->json = 1; break;
        case O_HIST: o->hist_out = optarg; break;
        case O_COUNT: o->count_file = optarg; break;
        case O_IVAL: if (num(optarg, 0.5, 3600, &v)) bad = "--interval"; o->interval = v; break;
        case O_VERIFY: o->verify_all = 1; break;
        case O_WCLOSE: if (num(optarg, 0.1, 86400, &v)) bad = "--wait-close"; o->wait_close = v; break;
        case O_SIGSTART: o->start_on_signal = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("stampbench %s\n", STAMPD_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
        if (bad) {
            fprintf(stderr, "stampbench: invalid value for %s: %s\n", bad, optarg);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "stampbench: one target (HOST:PORT or unix:PATH) expected\n");
        return -1;
    }
    char err[128];
    if (addr_parse(&o->target, argv[optind], err, sizeof(err)) != 0) {
        fprintf(stderr, "stampbench: %s: %s\n", argv[optind], err);
        return -1;
    }
    if (strchr(o->request, '\n')) {
        fprintf(stderr, "stampbench: --request must not contain a newline\n");
        return -1;
    }
    if (o->threads > o->conns)
        o->threads = o->conns;
    return 0;
}

static void sleep_until(int64_t deadline)
{
    int64_t now = now_ns(CLOCK_MONOTONIC);
    if (deadline > now) {
        struct timespec ts = { (time_t)((deadline - now) / 1000000000),
                               (long)((deadline - now) % 1000000000) };
        nanosleep(&ts, NULL);
    }
}

static void marker(const char *m)
{
    fprintf(stderr, "#%s\n", m);
    fflush(stderr);
}

static void lat_json(struct sbuf *b, const char *name, const struct sb_hist *h)
{
    sbuf_printf(b, "\"%s\":{\"count\":%llu,\"mean_us\":%.2f,\"p50_us\":%.2f,"
                "\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
                "\"max_us\":%.2f,\"histogram\":", name, (unsigned long long)h->count,
                h->count ? h->sum / (double)h->count / 1e3 : 0.0,
                sb_hist_quantile(h, 0.5) / 1e3, sb_hist_quantile(h, 0.9) / 1e3,
                sb_hist_quantile(h, 0.99) / 1e3,
                sb_hist_quantile(h, 0.999) / 1e3, h->max / 1e3);
    /* The buckets, so that runs of several processes can be merged. */
    sb_hist_json(b, h);
    sbuf_puts(b, "}");
}

/* What the threads' snapshots say: every measured request's latency so far
 * into *sum, the requests and the errors. */
static void gather(struct thread *th, int n, struct sb_hist *sum,
                   uint64_t *total, uint64_t *errors)
{
    *total = *errors = 0;
    sb_hist_reset(sum);
    for (int i = 0; i < n; i++) {
        *total += __atomic_load_n(&th[i].progress_requests, __ATOMIC_RELAXED);
        pthread_mutex_lock(&th[i].snap_lock);
        sb_hist_merge(sum, th[i].snap);
        *errors += th[i].snap_errors;
        pthread_mutex_unlock(&th[i].snap_lock);
    }
}

/* --interval: one line for the interval that just ended, its percentiles
 * from the difference of two cumulative snapshots. */
static void interval_line(struct thread *th, int n, double t, double secs)
{
    static struct sb_hist sum, prev, iv;
    static uint64_t prev_total;
    static int started;
    uint64_t total, errors;

    if (!started) {
        sb_hist_reset(&prev);
        started = 1;
    }
    gather(th, n, &sum, &total, &errors);
    sb_hist_sub(&iv, &sum, &prev);
    struct sbuf b = { 0 };
    sb_interval_line(&b, t, secs, total - prev_total, errors, &iv);
    if (!sbuf_failed(&b))
        fwrite(b.buf, 1, b.len, stderr);
    fflush(stderr);
    sbuf_free(&b);
    prev = sum;
    prev_total = total;
}

/* The progress line on a terminal: what the threads' snapshots say. */
static void progress(struct thread *th, int n, double secs, uint64_t *prev)
{
    static struct sb_hist sum;
    uint64_t total, errors;
    gather(th, n, &sum, &total, &errors);
    char p99[32] = "-";
    if (sum.count)
        snprintf(p99, sizeof(p99), "%.1f us", sb_hist_quantile(&sum, 0.99) / 1e3);
    fprintf(stderr, "\r%5.0f s  requests %llu  rate %.0f/s  errors %llu  p99 %s\033[K",
            secs, (unsigned long long)total, (double)(total - *prev),
            (unsigned long long)errors, p99);
    fflush(stderr);
    *prev = total;
}

/* --start-on-signal: SIGUSR1, caught from the start so that one sent
 * early is not lost, ends the warm-up. */
static volatile sig_atomic_t g_start_signal;

static void on_start_signal(int sig)
{
    (void)sig;
    g_start_signal = 1;
}

static void catch_start_signal(void)
{
    struct sigaction sa = { .sa_handler = on_start_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

/* Until SIGUSR1 has arrived or the deadline (CLOCK_MONOTONIC ns). */
static void wait_start_signal(int64_t deadline)
{
    while (!g_start_signal && now_ns(CLOCK_MONOTONIC) < deadline)
        sleep_until(now_ns(CLOCK_MONOTONIC) + 5000000);
}

/* --verify-all: until every thread has sent its final requests and every
 * one is answered (or failed), or the deadline. */
static void verify_wait(struct thread *th, int n, int64_t deadline)
{
    for (;;) {
        int busy = 0;
        for (int i = 0; i < n; i++)
            busy |= !__atomic_load_n(&th[i].verify_started, __ATOMIC_ACQUIRE) ||
                    __atomic_load_n(&th[i].verify_pending, __ATOMIC_RELAXED) > 0;
        if (!busy || now_ns(CLOCK_MONOTONIC) >= deadline)
            return;
        sleep_until(now_ns(CLOCK_MONOTONIC) + 2000000);
    }
}

/* --wait-close: until the server has closed every connection, or the
 * deadline. */
static void close_wait(struct thread *th, int n, int64_t deadline)
{
    for (;;) {
        int open = 0;
        for (int i = 0; i < n; i++)
            open += __atomic_load_n(&th[i].open, __ATOMIC_RELAXED);
        if (open == 0 || now_ns(CLOCK_MONOTONIC) >= deadline)
            return;
        sleep_until(now_ns(CLOCK_MONOTONIC) + 5000000);
    }
}

static FILE *open_hist_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "stampbench: --hist-out %s: %s\n", path, strerror(errno));
    return f;
}

static int write_hist_out(FILE *f, const char *path, const struct sb_hist *h)
{
    struct sbuf b = { 0 };
    sb_hist_hdr_text(&b, h, 1e6, 5);   /* ms, 5 ticks: as wrk2 --latency */
    int ok = !sbuf_failed(&b) && fwrite(b.buf, 1, b.len, f) == b.len;
    ok &= fclose(f) == 0;
    sbuf_free(&b);
    if (!ok)
        fprintf(stderr, "stampbench: --hist-out %s: write failed\n", path);
    return ok ? 0 : -1;
}

/* --count-file: FILE sized to one 64-bit counter per thread, all zero,
 * mapped shared; NULL (with the reason on stderr) when it cannot be. */
static uint64_t *map_count_file(const char *path, int threads)
{
    size_t len = (size_t)threads * sizeof(uint64_t);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    void *p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)len) == 0)
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        fprintf(stderr, "stampbench: --count-file %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/* Everything the threads held, after they are joined (so that a leak
 * checker sees only real leaks). */
static void free_threads(struct thread *th, int n)
{
    for (int i = 0; i < n; i++) {
        struct thread *t = &th[i];
        for (int k = 0; k < t->nconns; k++)
            conn_kill(t, &t->conns[k], 0);
        poller_destroy(t->poller);
        pthread_mutex_destroy(&t->snap_lock);
        free(t->conns);
        free(t->rbuf);
        free(t->wbuf);
        free(t->expect_buf);
        free(t->snap);
    }
    free(th);
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(&o, argc, argv) != 0)
        return 2;
    if (o.start_on_signal)
        catch_start_signal();
    /* Opened first: a path that cannot be written fails before the run. */
    FILE *hist_out = o.hist_out ? open_hist_out(o.hist_out) : NULL;
    if (o.hist_out && !hist_out)
        return 2;
    int tty = isatty(STDERR_FILENO) && !o.connect_only && !o.interval;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    struct thread *th = calloc((size_t)o.threads, sizeof(*th));
    if (!th)
        return 1;
    uint64_t *counts = NULL;
    if (o.count_file && !(counts = map_count_file(o.count_file, o.threads)))
        return 2;
    for (int i = 0; i < o.threads; i++) {
        struct thread *t = &th[i];
        t->id = i;
        t->o = &o;
        t->fmt = o.fmt;
        t->nconns = o.conns / o.threads + (i < o.conns % o.threads);
        t->count_slot = counts ? &counts[i] : NULL;
        t->conns = calloc((size_t)t->nconns, sizeof(*t->conns));
        t->poller = poller_create(t->nconns + 1);
        t->rbuf = malloc(RBUF_SIZE);
        t->wbuf_cap = 65536;
        t->wbuf = malloc(t->wbuf_cap);
        t->expect_buf = malloc(o.size + 1);
        if (!t->conns || !t->poller || !t->rbuf || !t->wbuf || !t->expect_buf) {
            fprintf(stderr, "stampbench: out of memory\n");
            return 1;
        }
        sb_hist_reset(&t->lat);
        sb_hist_reset(&t->conn_lat);
        pthread_mutex_init(&t->snap_lock, NULL);
        if ((tty || o.interval) && !(t->snap = malloc(sizeof(*t->snap)))) {
            fprintf(stderr, "stampbench: out of memory\n");
            return 1;
        }
        if (t->snap)
            sb_hist_reset(t->snap);
        for (int k = 0; k < t->nconns; k++) {
            t->conns[k].fd = -1;
            t->conns[k].index = k * o.threads + i;
        }
    }
    /* The threads block SIGUSR1, so that only this one takes it. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    for (int i = 0; i < o.threads; i++) {
        if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0) {
            fprintf(stderr, "stampbench: pthread_create failed\n");
            return 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    /* CONNECT: until every thread is done or the timeout. */
    int64_t t_connect = now_ns(CLOCK_MONOTONIC);
    int64_t deadline = t_connect + (int64_t)(o.connect_timeout * 1e9);
    for (;;) {
        int all = 1;
        for (int i = 0; i < o.threads; i++)
            all &= __atomic_load_n(&th[i].done_connecting, __ATOMIC_ACQUIRE);
        if (all || now_ns(CLOCK_MONOTONIC) >= deadline)
            break;
        sleep_until(now_ns(CLOCK_MONOTONIC) + 5000000);
    }
    marker("connected");
    __atomic_store_n(&g_phase, o.connect_only ? PH_MEASURE : PH_WARMUP,
                     __ATOMIC_RELEASE);
    if (!o.connect_only) {
        sleep_until(now_ns(CLOCK_MONOTONIC) + (int64_t)(o.warmup * 1e9));
        if (o.start_on_signal)
            wait_start_signal(now_ns(CLOCK_MONOTONIC) +
                              (int64_t)(o.connect_timeout * 1e9));
        __atomic_store_n(&g_phase, PH_MEASURE, __ATOMIC_RELEASE);
    }
    marker("start");
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    int64_t t_end = t0 + (int64_t)(o.duration * 1e9);
    uint64_t prev = 0;
    int drawn = 0;
    /* Ticks: the progress line's second, or --interval. */
    int64_t period = o.interval > 0 ? (int64_t)(o.interval * 1e9) : 1000000000;
    for (int k = 1; now_ns(CLOCK_MONOTONIC) < t_end; k++) {
        int64_t tick = t0 + (int64_t)k * period;
        if (tick > t_end || (tick == t_end && !o.interval)) {
            sleep_until(t_end);
            break;
        }
        /* Ask for the threads' histograms 100 ms early: each copies its
         * own at its next wakeup (at most 50 ms away). */
        sleep_until(tick - 100000000);
        __atomic_store_n(&g_snap_gen, k, __ATOMIC_RELAXED);
        sleep_until(tick);
        if (o.interval) {
            interval_line(th, o.threads, (double)(tick - t0) / 1e9,
                          (double)period / 1e9);
        } else if (tty) {
            progress(th, o.threads, (double)k, &prev);
            drawn = 1;
        }
    }
    __atomic_store_n(&g_phase, o.verify_all ? PH_VERIFY : PH_DONE,
                     __ATOMIC_RELEASE);
    double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    if (drawn)
        fputs("\r\033[K", stderr);   /* the final report replaces it */
    marker("end");
    if (o.verify_all) {
        verify_wait(th, o.threads, now_ns(CLOCK_MONOTONIC) +
                                   (int64_t)(o.connect_timeout * 1e9));
        marker("verified");
    }
    if (o.wait_close > 0) {
        __atomic_store_n(&g_phase, PH_CLOSE, __ATOMIC_RELEASE);
        close_wait(th, o.threads, now_ns(CLOCK_MONOTONIC) +
                                  (int64_t)(o.wait_close * 1e9));
    }
    __atomic_store_n(&g_phase, PH_DONE, __ATOMIC_RELEASE);
    for (int i = 0; i < o.threads; i++)
        pthread_join(th[i].tid, NULL);

    /* Totals. */
    struct counters sum = { 0 };
    static struct sb_hist lat, conn_lat;
    sb_hist_reset(&lat);
    sb_hist_reset(&conn_lat);
    int connected = 0, failed = 0, open_now = 0, verified = 0, closed = 0;
    int64_t first = 0, last = 0;
    for (int i = 0; i < o.threads; i++) {
        struct thread *t = &th[i];
        sum.requests += t->c.requests;
        if (t->count_slot)  /* the final count, as reported */
            __atomic_store_n(t->count_slot, t->c.requests, __ATOMIC_RELAXED);
        sum.bytes_in += t->c.bytes_in;
        sum.bytes_out += t->c.bytes_out;
        sum.errors += t->c.errors;
        sum.mismatches += t->c.mismatches;
        sum.late += t->c.late;
        for (int v = 0; v < SB_VERDICTS; v++)
            sum.verdicts[v] += t->c.verdicts[v];
        sb_hist_merge(&lat, &t->lat);
        sb_hist_merge(&conn_lat, &t->conn_lat);
        connected += t->connected;
        failed += t->connect_failed;
        verified += t->verified;
        closed += t->closed_by_server;
        if (t->first_connect_ns && (!first || t->first_connect_ns < first))
            first = t->first_connect_ns;
        if (t->last_connect_ns > last)
            last = t->last_connect_ns;
        for (int k = 0; k < t->nconns; k++)
            if (t->conns[k].state == C_OPEN)
                open_now++;
    }
    /* Never connected before the timeout: a failure too. */
    int never = o.conns - connected - failed;
    sum.errors += (uint64_t)never;
    double connect_s = last > first ? (double)(last - first) / 1e9 : 0;
    /* With --wait-close, "held" is what the close phase began with. */
    int held = o.wait_close > 0 ? closed + open_now : open_now;
    double rps = sum.requests / secs;
    int unverified = o.verify_all ? o.conns - verified : 0;

    struct sbuf b = { 0 };
    if (o.json) {
        sbuf_printf(&b, "{\"target\":\"");
        sbuf_json_str(&b, o.target.text);
        sbuf_printf(&b, "\",\"mode\":\"%s\",\"connections\":%d,\"threads\":%d,"
                    "\"pipeline\":%d,\"size\":%zu,\"rate\":%.1f,"
                    "\"connect_only\":%s,\"duration_s\":%.3f,"
                    "\"connected\":%d,\"connect_failed\":%d,\"held\":%d,"
                    "\"connect_s\":%.4f,\"connect_rate\":%.1f,",
                    o.mode == SB_STAMP ? "stamp" : o.mode == SB_ECHO ? "echo" : "line",
                    o.conns, o.threads, o.pipeline, o.size, o.rate,
                    o.connect_only ? "true" : "false", secs, connected,
                    failed + never, held, connect_s,
                    connect_s > 0 ? connected / connect_s : 0.0);
        lat_json(&b, "connect_latency", &conn_lat);
        sbuf_printf(&b, ",\"requests\":%llu,\"rps\":%.1f,\"mb_out_s\":%.3f,"
                    "\"mb_in_s\":%.3f,\"errors\":%llu,\"mismatches\":%llu,"
                    "\"late\":%llu,\"mismatch_kinds\":{",
                    (unsigned long long)sum.requests, rps,
                    sum.bytes_out / secs / 1e6, sum.bytes_in / secs / 1e6,
                    (unsigned long long)sum.errors,
                    (unsigned long long)sum.mismatches,
                    (unsigned long long)sum.late);
        for (int v = 1; v < SB_VERDICTS; v++)
            sbuf_printf(&b, "%s\"%s\":%llu", v > 1 ? "," : "",
                        sb_verdict_name(v), (unsigned long long)sum.verdicts[v]);
        sbuf_printf(&b, "},");
        if (o.verify_all)
            sbuf_printf(&b, "\"verify_all\":true,\"verified\":%d,\"unverified\":%d,",
                        verified, unverified);
        if (o.wait_close > 0)
            sbuf_printf(&b, "\"closed_by_server\":%d,\"not_closed\":%d,",
                        closed, open_now);
        lat_json(&b, "latency", &lat);
        sbuf_printf(&b, "}\n");
    } else {
        sbuf_printf(&b, "target %s  mode %s  connections %d  threads %d  "
                    "pipeline %d  size %zu  %s  %.2f s\n", o.target.text,
                    o.mode == SB_STAMP ? "stamp" : o.mode == SB_ECHO ? "echo" : "line",
                    o.conns, o.threads, o.pipeline, o.size,
                    o.rate > 0 ? "open loop" : "closed loop", secs);
        sbuf_printf(&b, "connect   %d ok, %d failed in %.3f s (%.0f/s); "
                    "latency p50 %.1f us  p99 %.1f us  max %.1f us\n",
                    connected, failed + never, connect_s,
                    connect_s > 0 ? connected / connect_s : 0.0,
                    sb_hist_quantile(&conn_lat, 0.5) / 1e3,
                    sb_hist_quantile(&conn_lat, 0.99) / 1e3, conn_lat.max / 1e3);
        if (o.connect_only) {
            sbuf_printf(&b, "held      %d of %d connections open at the end\n",
                        held, o.conns);
        } else {
            sbuf_printf(&b, "requests  %llu  %.0f req/s  out %.2f MB/s  in %.2f MB/s\n",
                        (unsigned long long)sum.requests, rps,
                        sum.bytes_out / secs / 1e6, sum.bytes_in / secs / 1e6);
            sbuf_printf(&b, "latency   p50 %.1f us  p90 %.1f us  p99 %.1f us  "
                        "p99.9 %.1f us  max %.1f us  mean %.1f us\n",
                        sb_hist_quantile(&lat, 0.5) / 1e3,
                        sb_hist_quantile(&lat, 0.9) / 1e3,
                        sb_hist_quantile(&lat, 0.99) / 1e3,
                        sb_hist_quantile(&lat, 0.999) / 1e3, lat.max / 1e3,
                        lat.count ? lat.sum / (double)lat.count / 1e3 : 0.0);
        }
        if (o.verify_all)
            sbuf_printf(&b, "verified  %d of %d connections (one more round trip "
                        "each after the run)\n", verified, o.conns);
        if (o.wait_close > 0)
            sbuf_printf(&b, "closed    %d by the server, %d still open after "
                        "--wait-close\n", closed, open_now);
        sbuf_printf(&b, "errors    %llu  mismatches %llu", (unsigned long long)sum.errors,
                    (unsigned long long)sum.mismatches);
        if (sum.late)
            sbuf_printf(&b, "  late (not sent: backlog full) %llu",
                        (unsigned long long)sum.late);
        sbuf_printf(&b, "\n");
    }
    if (b.len)
        fwrite(b.buf, 1, b.len, stdout);
    sbuf_free(&b);
    int hist_failed = hist_out && write_hist_out(hist_out, o.hist_out, &lat) != 0;
    int ok = !hist_failed && sum.errors == 0 && sum.mismatches == 0 && sum.late == 0 &&
             unverified == 0 && (o.wait_close <= 0 || open_now == 0) &&
             (!o.connect_only || held == o.conns) &&
             (o.connect_only || sum.requests > 0);
    free_threads(th, o.threads);
    if (counts)
        munmap(counts, (size_t)o.threads * sizeof(uint64_t));
    return ok ? 0 : 1;
}
