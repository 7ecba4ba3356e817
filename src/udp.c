/*
 * udp.c - datagram requests, answered in batches (see udp.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <linux/sock_diag.h>
#endif

#include "compat.h"
#include "clientlog.h"
#include "log.h"
#include "reactor.h"
#include "reply.h"
#include "udp.h"

#define UDP_BATCH 64
#define UDP_BATCHES_PER_EVENT 4
#define UDP_BUF 65536

static const char ERR_TOO_LARGE[] = "ERR datagram too large";

struct udp_sock {
    int fd;
    poller_t *p;
    uint64_t tag;
    unsigned mask;
    uint32_t *drops_seen;         /* the socket's drop total counted so far */
    const struct addr *listener;  /* for --log-requests lines */
    struct stats_listener *lst;   /* its per-listener figures, or NULL */
    int npending, next;           /* replies [next, npending) not yet sent */
    char *bufs;                   /* UDP_BATCH receive buffers */
    struct sockaddr_storage from[UDP_BATCH];
    struct iovec riov[UDP_BATCH];
    struct iovec siov[UDP_BATCH][2];
    struct mmsghdr rmsg[UDP_BATCH];
    struct mmsghdr smsg[UDP_BATCH];
    char ctl[UDP_BATCH][CMSG_SPACE(sizeof(uint32_t))];
};

#if !COMPAT_HAVE_MMSG
/* No recvmmsg/sendmmsg (macOS, OpenBSD before 7.2): one call each. */
static int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, void *t)
{
    (void)t;
    unsigned i;
    for (i = 0; i < n; i++) {
        ssize_t r = recvmsg(fd, &v[i].msg_hdr, flags);
        if (r < 0)
            return i ? (int)i : -1;
        v[i].msg_len = (unsigned)r;
    }
    return (int)i;
}

static int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        ssize_t r = sendmsg(fd, &v[i].msg_hdr, flags);
        if (r < 0)
            return i ? (int)i : -1;
        v[i].msg_len = (unsigned)r;
    }
    return (int)i;
}
#endif

#ifdef SO_MEMINFO
/* The kernel's count of datagrams this socket dropped (receive queue
 * full): the figure SO_RXQ_OVFL reports too. */
static int socket_drops(int fd, uint32_t *drops)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t mlen = sizeof(mem);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &mlen) != 0 ||
        mlen <= SK_MEMINFO_DROPS * sizeof(uint32_t))
        return -1;
    *drops = mem[SK_MEMINFO_DROPS];
    return 0;
}
#endif

struct udp_sock *udp_create(int fd, poller_t *p, uint64_t tag)
{
    struct udp_sock *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    /* Pages of the receive buffers are touched only by datagrams that
     * reach them, so small datagrams keep this mostly virtual. */
    u->bufs = malloc((size_t)UDP_BATCH * UDP_BUF);
    if (!u->bufs) {
        free(u);
        return NULL;
    }
    u->fd = fd;
    u->p = p;
    u->tag = tag;
    u->mask = POLLER_READ;
#if !defined(SO_MEMINFO) && defined(SO_RXQ_OVFL)
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
#endif
    return u;
}

void udp_track_drops(struct udp_sock *u, uint32_t *seen)
{
    u->drops_seen = seen;
}

void udp_set_listener(struct udp_sock *u, const struct addr *listener)
{
    u->listener = listener;
}

void udp_track_listener(struct udp_sock *u, struct stats_listener *l)
{
    u->lst = l;
}

void udp_destroy(struct udp_sock *u)
{
    if (!u)
        return;
    free(u->bufs);
    free(u);
}

int udp_reply_fits(const struct opts *o, size_t len)
{
    size_t prefix = o->reply == REPLY_STAMP ? CLOCK_PREFIX_LEN : 0;
    return prefix + len <= UDP_MAX_REPLY;
}

/* The interest-update policy (reactor.h): the mask changes only when the
 * poller took it.  A socket whose change to write interest failed cannot
 * hold its replies until writability (it would spin on readability
 * meanwhile), so they are dropped and counted: 0 then, else 1. */
static int set_mask(struct udp_sock *u, unsigned mask, struct stats_slot *st)
{
    static long long failure_log;
    int rc = reactor_interest(u->p, u->fd, &u->mask, mask, u->tag);
    if (rc == 0)
        return 1;
    STAT_INC(st, poller_errors);
    log_ratelimited(LOG_WARN, &failure_log, 10000,
                    "poller: interest change on UDP fd %d: %s; dropping %d "
                    "replies", u->fd, strerror(-rc), u->npending - u->next);
    STAT_ADD(st, udp_drops, u->npending - u->next);
    u->next = u->npending = 0;
    return 0;
}

/* Send replies [next, npending).  Returns 1 when all went (or were
 * dropped), 0 when the socket buffer is full.  A datagram counts as a
 * request once its reply is sent, or as a drop, never both, so that
 * datagrams received == requests_udp + udp_drops. */
static int flush(struct udp_sock *u, struct stats_slot *st)
{
    while (u->next < u->npending) {
        int n = sendmmsg(u->fd, &u->smsg[u->next],
                         (unsigned)(u->npending - u->next), MSG_DONTWAIT);
        if (n > 0) {
            for (int i = 0; i < n; i++)
                STAT_ADD(st, bytes_out, u->smsg[u->next + i].msg_len);
            STAT_ADD(st, requests_udp, n);
            if (u->lst)
                STAT_ADD(u->lst, requests, n);
            u->next += n;
            continue;
        }
        /* EAGAIN: the send buffer is full and write readiness will say
         * when it is not.  ENOBUFS (a full device queue) has no readiness
         * event, so waiting for one would spin: drop that reply instead. */
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        /* This reply cannot go (e.g. the peer's port is unreachable):
         * count it and go on with the next. */
        STAT_INC(st, udp_drops);
        u->next++;
    }
    u->next = u->npending = 0;
    return 1;
}

/* Receive-queue overflows.  Linux: read the socket's drop total once per
 * event that received anything (one cheap getsockopt).  SO_RXQ_OVFL's
 * per-datagram copy of the same total was the first choice, but on Linux
 * 6.18 under contention it lags the real figure (a test saw 9189 of 11403
 * drops), so it is only the fallback where SO_MEMINFO does not exist. */
static void count_drops(struct udp_sock *u, struct stats_slot *st)
{
#ifdef SO_MEMINFO
    uint32_t total;
    if (u->drops_seen && socket_drops(u->fd, &total) == 0 &&
        total != *u->drops_seen) {
        STAT_ADD(st, udp_drops, total - *u->drops_seen);
        *u->drops_seen = total;
    }
#else
    (void)u; (void)st;
#endif
}

static void count_overflow(struct udp_sock *u, struct msghdr *h,
                           struct stats_slot *st)
{
#if !defined(SO_MEMINFO) && defined(SO_RXQ_OVFL)
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t total;
            memcpy(&total, CMSG_DATA(c), sizeof(total));
            if (u->drops_seen && total != *u->drops_seen) {
                STAT_ADD(st, udp_drops, total - *u->drops_seen);
                *u->drops_seen = total;
            }
        }
    }
#else
    (void)u; (void)h; (void)st;
#endif
}

/* The bytes of LF or CRLF ending a datagram (0 when none does). */
static size_t udp_term_len(const char *d, size_t len)
{
    if (len >= 2 && d[len - 2] == '\r' && d[len - 1] == '\n')
        return 2;
    return len >= 1 && d[len - 1] == '\n' ? 1 : 0;
}

/* Read one batch and queue its replies; returns the number of datagrams. */
static int read_batch(struct udp_sock *u, const struct opts *o,
                      const struct clock_cache *clk, struct stats_slot *st)
{
    for (int i = 0; i < UDP_BATCH; i++) {
        u->riov[i].iov_base = u->bufs + (size_t)i * UDP_BUF;
        u->riov[i].iov_len = UDP_BUF;
        struct msghdr *h = &u->rmsg[i].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_name = &u->from[i];
        h->msg_namelen = sizeof(u->from[i]);
        h->msg_iov = &u->riov[i];
        h->msg_iovlen = 1;
        h->msg_control = u->ctl[i];
        h->msg_controllen = sizeof(u->ctl[i]);
    }
    int n = recvmmsg(u->fd, u->rmsg, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0;
    if (u->lst)
        stats_client_store(&u->lst->last_client,
                           (const struct sockaddr *)&u->from[n - 1], clk->mono_ms);

    const char *prefix = clock_prefix(clk, o->time_format);
    int q = 0; /* replies queued: none in --reply none */
    for (int i = 0; i < n; i++) {
        struct msghdr *rh = &u->rmsg[i].msg_hdr;
        char *d = u->riov[i].iov_base;
        size_t len = u->rmsg[i].msg_len;
        struct msghdr *sh = &u->smsg[q].msg_hdr;
        struct iovec *v = u->siov[q];

        STAT_ADD(st, bytes_in, len);
        count_overflow(u, rh, st);
        if (o->log_requests && u->listener && o->log_level <= LOG_INFO &&
            clientlog_allow(CLIENTLOG_REQUEST))
            clientlog_request((const struct sockaddr *)&u->from[i],
                              u->listener, d, len);
        if (o->reply == REPLY_NONE) { /* answered by saying nothing */
            STAT_INC(st, requests_udp);
            if (u->lst)
                STAT_INC(u->lst, requests);
            continue;
        }
        q++;
        memset(sh, 0, sizeof(*sh));
        sh->msg_name = &u->from[i];
        sh->msg_namelen = rh->msg_namelen;
        sh->msg_iov = v;

        if ((rh->msg_flags & MSG_TRUNC) || !udp_reply_fits(o, len)) {
            v[0].iov_base = (void *)ERR_TOO_LARGE;
            v[0].iov_len = sizeof(ERR_TOO_LARGE) - 1;
            sh->msg_iovlen = 1;
            continue;
        }
        /* The request's own terminator ends the reply, so payload and
         * terminator go out as they came, after the prefix. */
        if (o->reply == REPLY_UPPER)
            reply_upcase(d, len);
        int k = 0;
        if (o->reply == REPLY_OK) { /* "OK" and the request's terminator */
            size_t t = udp_term_len(d, len);
            v[k].iov_base = (void *)"OK";
            v[k++].iov_len = 2;
            v[k].iov_base = d + len - t;
            v[k++].iov_len = t;
            sh->msg_iovlen = (size_t)k;
            continue;
        }
        if (o->reply == REPLY_STAMP) {
            v[k].iov_base = (void *)prefix;
            v[k++].iov_len = CLOCK_PREFIX_LEN;
        }
        v[k].iov_base = d;
        v[k++].iov_len = len;
        sh->msg_iovlen = (size_t)k;
    }
    u->next = 0;
    u->npending = q;
    return n;
}

void udp_event(struct udp_sock *u, unsigned mask, const struct opts *o,
               const struct clock_cache *clk, struct stats_slot *st)
{
    int got = 0;

    (void)mask;
    if (u->npending && !flush(u, st))
        return;
    for (int b = 0; b < UDP_BATCHES_PER_EVENT; b++) {
        int n = read_batch(u, o, clk, st);
        if (n == 0)
            break;
        got = 1;
        if (!flush(u, st)) {
            /* Hold this batch (its buffers are the replies) until the
             * socket can take it; stop reading meanwhile. */
            int held = set_mask(u, POLLER_WRITE, st);
            count_drops(u, st);
            if (held)
                return;
            continue;
        }
        if (n < UDP_BATCH)
            break;
    }
    /* Drops happen only while datagrams arrive, so an event that read
     * none has nothing new to count. */
    if (got)
        count_drops(u, st);
    (void)set_mask(u, POLLER_READ, st);
}
