/*
 * addr.c - listen addresses as the command line spells them (see addr.h).
 *
 * Pure parsing: numeric literals only.  A host name other than "localhost"
 * is refused rather than resolved, because a listener bound to whatever a
 * resolver answered at start-up is a surprise nobody wants to debug, and
 * because DNS would make option parsing block and fail on a machine without
 * a network.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

#define ADDR_EXPECTED "expected HOST:PORT, [HOST]:PORT or unix:PATH"

static int fail(char *err, size_t errlen, const char *s, const char *why)
{
    if (errlen > 0)
        snprintf(err, errlen, "invalid address '%s' (%s)", s, why);
    return -1;
}

/* Strict decimal: digits only, no sign, no blanks, 0..65535. */
static int parse_port(const char *p, int *port)
{
    long v = 0;

    if (*p == '\0')
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -1;
    }
    *port = (int)v;
    return 0;
}

static int set_inet(struct addr *a, const char *host, size_t hostlen, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];

    if (hostlen == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (hostlen == sizeof("localhost") - 1 &&
               strncmp(host, "localhost", hostlen) == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        if (hostlen >= sizeof(buf))
            return -1;
        memcpy(buf, host, hostlen);
        buf[hostlen] = '\0';
        /* inet_pton accepts only the four-part dotted quad (no "127.1",
         * no hex, no octal), which is what we want to promise. */
        if (inet_pton(AF_INET, buf, &sin->sin_addr) != 1)
            return -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    a->family = AF_INET;
    a->len = sizeof(*sin);
    return 0;
}

static int parse_unix(struct addr *a, const char *s, char *err, size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
    const char *path = s + 5;
    size_t n = strlen(path);

    if (n == 0)
        return fail(err, errlen, s, "empty unix socket path");
    if (n >= sizeof(sun->sun_path)) {
        if (errlen > 0)
            snprintf(err, errlen, "invalid address '%s' (unix socket path is %zu bytes, "
                     "at most %zu fit)", s, n, sizeof(sun->sun_path) - 1);
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    a->family = AF_UNIX;
    /* Bind and connect with the exact length (path plus its NUL), as
     * unix(7) recommends for pathname sockets. */
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static int parse_v6(struct addr *a, const char *s, char *err, size_t errlen)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    const char *close = strchr(s, ']');
    char buf[INET6_ADDRSTRLEN];
    size_t hostlen;
    int port;

    if (close == NULL || close[1] != ':')
        return fail(err, errlen, s, ADDR_EXPECTED);
    hostlen = (size_t)(close - (s + 1));
    if (hostlen == 0 || hostlen >= sizeof(buf))
        return fail(err, errlen, s, "not an IPv6 address literal");
    memcpy(buf, s + 1, hostlen);
    buf[hostlen] = '\0';
    if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
        return fail(err, errlen, s, "not an IPv6 address literal");
    if (parse_port(close + 2, &port) != 0)
        return fail(err, errlen, s, "port must be a number from 0 to 65535");
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    a->family = AF_INET6;
    a->len = sizeof(*sin6);
    return 0;
}

int addr_parse(struct addr *a, const char *s, char *err, size_t errlen)
{
    const char *colon;
    int port;

    memset(a, 0, sizeof(*a));
    if (s == NULL || *s == '\0')
        return fail(err, errlen, "", ADDR_EXPECTED);

    if (strncmp(s, "unix:", 5) == 0) {
        if (parse_unix(a, s, err, errlen) != 0)
            return -1;
    } else if (s[0] == '[') {
        if (parse_v6(a, s, err, errlen) != 0)
            return -1;
    } else if (s[strspn(s, "0123456789")] == '\0') {
        /* A bare PORT. */
        if (parse_port(s, &port) != 0)
            return fail(err, errlen, s, "port must be a number from 0 to 65535");
        (void)set_inet(a, "", 0, port);
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return fail(err, errlen, s, ADDR_EXPECTED);
        if (memchr(s, ':', (size_t)(colon - s)) != NULL)
            return fail(err, errlen, s, "an IPv6 address needs brackets, as in [::1]:8009");
        if (parse_port(colon + 1, &port) != 0)
            return fail(err, errlen, s, "port must be a number from 0 to 65535");
        if (set_inet(a, s, (size_t)(colon - s), port) != 0)
            return fail(err, errlen, s, ADDR_EXPECTED
                        "; host names other than localhost are not resolved");
    }
    addr_format(a);
    return 0;
}

void addr_format(struct addr *a)
{
    char host[INET6_ADDRSTRLEN];

    switch (a->ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(a->text, sizeof(a->text), "%s:%u", host, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(a->text, sizeof(a->text), "[%s]:%u", host, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
        /* sun_path (108) + "unix:" fits ADDR_TEXT_MAX (128); %.*s keeps the
         * read inside sun_path even if it was filled without a NUL. */
        snprintf(a->text, sizeof(a->text), "unix:%.*s", (int)sizeof(sun->sun_path),
                 sun->sun_path);
        break;
    }
    default:
        snprintf(a->text, sizeof(a->text), "(family %d)", (int)a->ss.ss_family);
        break;
    }
}

int addr_port(const struct addr *a)
{
    switch (a->ss.ss_family) {
    case AF_INET:
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    case AF_INET6:
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    default:
        return -1;  /* unix sockets have no port */
    }
}

void addr_set_port(struct addr *a, int port)
{
    switch (a->ss.ss_family) {
    case AF_INET:
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
        break;
    case AF_INET6:
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
        break;
    default:
        break;
    }
}

/* --- listener suffixes ------------------------------------------------------ */

static const char *const flag_names[ADDR_NFLAGS] = ADDR_FLAG_NAMES;

const char *addr_flag_name(unsigned flag)
{
    for (int i = 0; i < ADDR_NFLAGS; i++)
        if (flag == 1u << i)
            return flag_names[i];
    return NULL;
}

/* The flag named by s[0..n), or 0. */
static unsigned flag_by_name(const char *s, size_t n)
{
    for (int i = 0; i < ADDR_NFLAGS; i++)
        if (strlen(flag_names[i]) == n && strncmp(s, flag_names[i], n) == 0)
            return 1u << i;
    return 0;
}

int addr_parse_listener(struct addr *a, const char *s, unsigned allowed,
                        char *err, size_t errlen)
{
    char buf[ADDR_TEXT_MAX + 64];
    unsigned flags = 0;
    size_t n = s ? strlen(s) : 0;

    if (n >= sizeof(buf))
        return fail(err, errlen, "", "address too long");
    memcpy(buf, s ? s : "", n + 1);
    for (;;) {
        char *comma = strrchr(buf, ',');
        unsigned f;

        if (comma == NULL)
            break;
        f = flag_by_name(comma + 1, strlen(comma + 1));
        if (f == 0)
            break;
        if (!(allowed & f)) {
            if (errlen > 0)
                snprintf(err, errlen, "'%s': this listener does not take ',%s'",
                         s, comma + 1);
            return -1;
        }
        flags |= f;
        *comma = '\0';
    }
    if (strchr(buf, ',') && strncmp(buf, "unix:", 5) != 0) {
        if (errlen > 0)
            snprintf(err, errlen, "invalid address '%s' (unknown suffix '%s')", s,
                     strchr(buf, ',') + 1);
        return -1;
    }
    if (addr_parse(a, buf, err, errlen) != 0)
        return -1;
    a->flags = flags;
    return 0;
}

void addr_describe(const struct addr *a, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%s", a->text);

    for (int i = 0; i < ADDR_NFLAGS && off < len; i++)
        if (a->flags & (1u << i))
            off += (size_t)snprintf(buf + off, len - off, ",%s", flag_names[i]);
}

/* --- networks ------------------------------------------------------------------ */

static int cidr_fail(char *err, size_t errlen, const char *s, const char *why)
{
    if (errlen > 0)
        snprintf(err, errlen, "invalid network '%s' (%s)", s, why);
    return -1;
}

int cidr_parse(struct cidr *c, const char *s, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *slash = strchr(s, '/');
    size_t hostlen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned maxbits, bits;
    char txt[INET6_ADDRSTRLEN];

    memset(c, 0, sizeof(*c));
    if (hostlen == 0 || hostlen >= sizeof(host))
        return cidr_fail(err, errlen, s, "expected ADDRESS/BITS, e.g. 10.0.0.0/8");
    memcpy(host, s, hostlen);
    host[hostlen] = '\0';
    if (inet_pton(AF_INET, host, c->net) == 1) {
        c->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, host, c->net) == 1) {
        c->family = AF_INET6;
        maxbits = 128;
    } else {
        return cidr_fail(err, errlen, s, "not an IPv4 or IPv6 address literal");
    }
    bits = maxbits;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3)
            return cidr_fail(err, errlen, s, "prefix length must be a number");
        bits = 0;
        for (; *p; p++)
            bits = bits * 10 + (unsigned)(*p - '0');
        if (bits > maxbits)
            return cidr_fail(err, errlen, s, c->family == AF_INET ?
                             "prefix length is at most 32" : "prefix length is at most 128");
    }
    for (unsigned i = bits; i < maxbits; i++)
        if (c->net[i / 8] & (0x80u >> (i % 8)))
            return cidr_fail(err, errlen, s, "host bits set after the prefix");
    c->bits = bits;
    inet_ntop(c->family, c->net, txt, sizeof(txt));
    snprintf(c->text, sizeof(c->text), "%s/%u", txt, bits);
    return 0;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[whole] ^ b[whole]) & (0xffu << (8 - rest)) & 0xffu) == 0;
}

int cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return c->family == AF_INET &&
               prefix_equal((const unsigned char *)&sin->sin_addr, c->net, c->bits);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *b = sin6->sin6_addr.s6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(b, c->net, c->bits);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            return prefix_equal(b + 12, c->net, c->bits);
    }
    return 0;
}

void addr_peer_text(char *buf, size_t size, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN];

    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else if (sa && sa->sa_family == AF_UNIX) {
        snprintf(buf, size, "unix");
    } else {
        snprintf(buf, size, "?");
    }
}
