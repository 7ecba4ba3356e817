/*
 * conn_client.c - the PROXY header of a connection and the address of its
 * client (see conn_client.h).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "clientlog.h"
#include "conn_client.h"
#include "proxy.h"

int conn_proxy_trusted(const struct worker *w, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return proxy_peer_allowed(w->o->proxy_from, (size_t)w->o->nproxy_from,
                              (const struct sockaddr *)&ss);
}

static const uint8_t V4MAPPED[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int record_peer(struct worker *w, struct conn *c,
                       const struct sockaddr_storage *src)
{
    if (!w->peers && !(w->peers = calloc((size_t)w->nconns, sizeof(*w->peers))))
        return -1;
    struct conn_peer *p = &w->peers[c->fd];
    memset(p, 0, sizeof(*p));
    c->peer_port = 0;
    if (src->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)src;
        memcpy(p->addr, V4MAPPED, 12);
        memcpy(p->addr + 12, &a->sin_addr, 4);
        c->peer_port = a->sin_port;
    } else if (src->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)src;
        memcpy(p->addr, &a->sin6_addr, 16);
        c->peer_port = a->sin6_port;
    }
    c->flags |= CF_PEER;
    struct stats_listener *sl = stats_listener(w->st, c->lidx);
    if (sl)
        stats_client_store(&sl->last_client, (const struct sockaddr *)src,
                           w->clock.mono_ms);
    return 0;
}

/* A header is done: record its source (unless the socket's peer stays). */
static enum proxy_verdict accept_header(struct worker *w, struct conn *c,
                                        const struct proxy_result *r,
                                        const char **why)
{
    c->flags &= (uint16_t)~CF_PROXY;
    if (r->keep_addr || r->command == PROXY_CMD_LOCAL)
        return CPROXY_OK;
    if (record_peer(w, c, &r->src) != 0) {
        *why = "out of memory";
        return CPROXY_BAD;
    }
    return CPROXY_OK;
}

enum proxy_verdict conn_proxy_feed(struct worker *w, struct conn *c,
                                   const char *data, size_t n,
                                   const char **rest, size_t *nrest,
                                   char **owned, const char **why)
{
    struct proxy_result r;
    const char *buf = data;
    size_t len = n;

    *owned = NULL;
    *why = NULL;
    if (c->in.len > 0) { /* the start of the header came earlier */
        /* What is held is a header's unfinished prefix, so shorter than
         * PROXY_MAX_LEN (the parser says ERROR beyond): holding one more
         * read is bounded, and the data after the header stays whole. */
        if (line_append(&c->in, data, n) != 0) {
            *why = "out of memory";
            return CPROXY_BAD;
        }
        buf = c->in.buf;
        len = c->in.len;
    }
    switch (proxy_parse(buf, len, &r)) {
    case PROXY_NEED_MORE:
        if (buf == data && line_append(&c->in, data, n) != 0) {
            *why = "out of memory";
            return CPROXY_BAD;
        }
        return CPROXY_MORE;
    case PROXY_ERROR:
        *why = r.error ? r.error : "malformed";
        return CPROXY_BAD;
    default:
        break;
    }
    if (accept_header(w, c, &r, why) != CPROXY_OK)
        return CPROXY_BAD;
    if (buf != data) {
        size_t held;
        line_take(&c->in, owned, &held);
        buf = *owned;
    }
    *rest = buf + r.consumed;
    *nrest = len - r.consumed;
    return CPROXY_OK;
}

int conn_client_addr(const struct worker *w, const struct conn *c,
                     struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if ((c->flags & CF_PEER) && w->peers) {
        const struct conn_peer *p = &w->peers[c->fd];
        static const uint8_t any[16];
        if (memcmp(p->addr, any, 16) == 0) {
            ss->ss_family = AF_UNIX;
        } else if (memcmp(p->addr, V4MAPPED, 12) == 0) {
            struct sockaddr_in *a = (void *)ss;
            a->sin_family = AF_INET;
            a->sin_port = c->peer_port;
            memcpy(&a->sin_addr, p->addr + 12, 4);
        } else {
            struct sockaddr_in6 *a = (void *)ss;
            a->sin6_family = AF_INET6;
            a->sin6_port = c->peer_port;
            memcpy(&a->sin6_addr, p->addr, 16);
        }
        return 0;
    }
    socklen_t len = sizeof(*ss);
    if (getpeername(c->fd, (struct sockaddr *)ss, &len) != 0) {
        ss->ss_family = AF_UNSPEC;
        return -1;
    }
    return 0;
}

static const struct addr *listener_addr(const struct worker *w, int lidx)
{
    return w->cfg->ls[lidx].addr;
}

/* Info lines are written at all, and this one is within the rate. */
static int may_log(const struct worker *w, enum clientlog_kind kind)
{
    return w->o->log_level <= LOG_INFO && clientlog_allow(kind);
}

void conn_client_accepted(const struct worker *w, int lidx,
                          const struct sockaddr_storage *peer, int refused)
{
    struct stats_listener *sl = stats_listener(w->st, (unsigned)lidx);

    if (!sl)
        return;
    if (refused) {
        STAT_INC(sl, enforcements);
        stats_client_store(&sl->last_enforced, (const struct sockaddr *)peer,
                           w->clock.mono_ms);
    } else if (!(w->cfg->ls[lidx].addr->flags & ADDR_PROXY)) {
        stats_client_store(&sl->last_client, (const struct sockaddr *)peer,
                           w->clock.mono_ms);
    }
}

void conn_log_enforce(const struct worker *w, const struct conn *c,
                      const char *what)
{
    struct sockaddr_storage ss;
    struct stats_listener *sl = stats_listener(w->st, c->lidx);
    int logged = may_log(w, CLIENTLOG_ENFORCE);

    if (sl)
        STAT_INC(sl, enforcements);
    if (!logged && !sl)
        return;
    conn_client_addr(w, c, &ss);
    if (sl)
        stats_client_store(&sl->last_enforced, (const struct sockaddr *)&ss,
                           w->clock.mono_ms);
    if (!logged)
        return;
    clientlog_enforce(what, (const struct sockaddr *)&ss,
                      listener_addr(w, c->lidx));
}

void conn_log_request(const struct worker *w, const struct conn *c,
                      const char *payload, size_t len)
{
    struct sockaddr_storage ss;

    if (!may_log(w, CLIENTLOG_REQUEST))
        return;
    conn_client_addr(w, c, &ss);
    clientlog_request((const struct sockaddr *)&ss, listener_addr(w, c->lidx),
                      payload, len);
}

void conn_log_refused(const struct worker *w, int fd, int lidx,
                      const char *what)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (!may_log(w, CLIENTLOG_ENFORCE))
        return;
    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC;
    clientlog_enforce(what, (const struct sockaddr *)&ss,
                      listener_addr(w, lidx));
}
