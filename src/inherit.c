/*
 * inherit.c - sockets handed over through exec (see inherit.h).
 */
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "inherit.h"

static const char *const kind_names[] = { "line", "http", "udp", "admin" };

const char *inherit_kind_name(enum inherit_kind k)
{
    return (unsigned)k < 4 ? kind_names[k] : "?";
}

int inherit_kind_parse(const char *name, size_t len)
{
    for (int k = 0; k < 4; k++)
        if (strlen(kind_names[k]) == len && memcmp(kind_names[k], name, len) == 0)
            return k;
    return -1;
}

int inherit_parse(struct inherit_set *s, const char *text, char *err,
                  size_t errlen)
{
    const char *p = text;

    memset(s, 0, sizeof(*s));
    while (*p) {
        size_t klen = strcspn(p, "*=");
        int kind = inherit_kind_parse(p, klen);
        if (kind < 0 || s->n >= INHERIT_MAX)
            goto bad;
        struct inherited *e = &s->e[s->n++];
        e->kind = (enum inherit_kind)kind;
        p += klen;
        if (*p == '*') {
            e->shared = 1;
            p++;
        }
        if (*p++ != '=')
            goto bad;
        for (;;) {
            char *end;
            long fd = strtol(p, &end, 10);
            if (end == p || fd < 0 || fd > 1 << 24 || e->nfd >= OPTS_MAX_WORKERS)
                goto bad;
            e->fds[e->nfd++] = (int)fd;
            p = end;
            if (*p != ',')
                break;
            p++;
        }
        if (*p == ';')
            p++;
        else if (*p)
            goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "$%s: malformed near '%.20s'", INHERIT_ENV, p);
    return -1;
}

int inherit_describe(struct inherit_set *s, char *err, size_t errlen)
{
    for (int i = 0; i < s->n; i++) {
        struct inherited *e = &s->e[i];
        struct addr *a = &e->addr;
        /* Workers accept until EAGAIN; systemd hands blocking sockets. */
        for (int j = 0; j < e->nfd; j++) {
            int fl = fcntl(e->fds[j], F_GETFL);
            if (fcntl(e->fds[j], F_SETFD, FD_CLOEXEC) == -1 || fl == -1 ||
                fcntl(e->fds[j], F_SETFL, fl | O_NONBLOCK) == -1) {
                snprintf(err, errlen, "inherited %s socket fd %d: %s",
                         inherit_kind_name(e->kind), e->fds[j], strerror(errno));
                return -1;
            }
        }
        memset(a, 0, sizeof(*a));
        a->len = sizeof(a->ss);
        if (getsockname(e->fds[0], (struct sockaddr *)&a->ss, &a->len) == -1) {
            snprintf(err, errlen, "inherited %s socket fd %d: %s",
                     inherit_kind_name(e->kind), e->fds[0], strerror(errno));
            return -1;
        }
        a->family = a->ss.ss_family;
        addr_format(a);
    }
    return 0;
}

int inherit_format(char *buf, size_t len, enum inherit_kind kind, int shared,
                   const int *fds, int nfd)
{
    size_t off = strlen(buf);
    int n = snprintf(buf + off, len - off, "%s%s%s=", off ? ";" : "",
                     inherit_kind_name(kind), shared ? "*" : "");
    for (int j = 0; n >= 0 && (size_t)n < len - off && j < nfd; j++) {
        off += (size_t)n;
        n = snprintf(buf + off, len - off, "%s%d", j ? "," : "", fds[j]);
    }
    return n < 0 || (size_t)n >= len - off ? -1 : 0;
}

static int same_addr(const struct addr *have, const struct addr *want)
{
    if (have->family != want->family)
        return 0;
    switch (want->family) {
    case AF_INET: {
        const struct sockaddr_in *h = (const void *)&have->ss, *w = (const void *)&want->ss;
        return h->sin_addr.s_addr == w->sin_addr.s_addr &&
               (w->sin_port == 0 || w->sin_port == h->sin_port);
    }
    case AF_INET6: {
        const struct sockaddr_in6 *h = (const void *)&have->ss, *w = (const void *)&want->ss;
        return memcmp(&h->sin6_addr, &w->sin6_addr, sizeof(h->sin6_addr)) == 0 &&
               (w->sin6_port == 0 || w->sin6_port == h->sin6_port);
    }
    case AF_UNIX:
        return strcmp(have->text, want->text) == 0;
    default:
        return 0;
    }
}

struct inherited *inherit_take(struct inherit_set *s, enum inherit_kind kind,
                               const struct addr *a)
{
    for (int i = 0; i < s->n; i++) {
        struct inherited *e = &s->e[i];
        if (!e->claimed && e->kind == kind && same_addr(&e->addr, a)) {
            e->claimed = 1;
            return e;
        }
    }
    return NULL;
}
