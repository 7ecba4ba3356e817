/*
 * proxy.c - PROXY protocol v1/v2 header parser (see proxy.h).  Pure.
 *
 * Stateless by design: every call re-reads the header from its first byte.
 * A header is at most PROXY_MAX_LEN bytes and arrives in a read or two, so
 * re-reading costs nothing worth a state machine, and "the verdict on a
 * prefix never contradicts the whole" follows from every check on a prefix
 * being one the whole would make too.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "proxy.h"

static const uint8_t v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char v1_sig[] = "PROXY ";
#define V1_SIG_LEN (sizeof(v1_sig) - 1)

/* v2 byte 13: address family (high nibble) and transport (low nibble). */
enum {
    FAM_UNSPEC = 0x00,
    FAM_TCP4 = 0x11, FAM_UDP4 = 0x12,
    FAM_TCP6 = 0x21, FAM_UDP6 = 0x22,
    FAM_UNIX_STREAM = 0x31, FAM_UNIX_DGRAM = 0x32,
};
#define V2_INET_LEN 12     /* 2 x 4 address bytes, 2 x 2 port bytes */
#define V2_INET6_LEN 36    /* 2 x 16, 2 x 2 */
#define V2_UNIX_LEN 216    /* 2 x 108 */
#define V2_UNIX_PATH 108
#define TLV_HEAD 3         /* type, 16-bit length */

static enum proxy_status fail(struct proxy_result *r, const char *why)
{
    r->error = why;
    return PROXY_ERROR;
}

static enum proxy_status more(struct proxy_result *r, size_t need)
{
    r->need = need;
    return PROXY_NEED_MORE;
}

/* --- version 1 -------------------------------------------------------- */

/* A decimal port, 0..65535, 1 to 5 digits. */
static int v1_port(const char *s, size_t n, uint16_t *port)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* An address literal of the family into ss (port set later). */
static int v1_addr(const char *s, size_t n, int family,
                   struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        return inet_pton(AF_INET, tmp, &sin->sin_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    return inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1 ? 0 : -1;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* "SRC DST SPORT DPORT" after "PROXY TCP4 " or "PROXY TCP6 ". */
static enum proxy_status v1_fields(const char *s, size_t n, int family,
                                   struct proxy_result *r)
{
    const char *f[4];
    size_t flen[4];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (nf == 4)
            return fail(r, "too many v1 fields");
        f[nf] = s + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 4)
        return fail(r, "too few v1 fields");
    uint16_t sport, dport;
    if (v1_addr(f[0], flen[0], family, &r->src) < 0 ||
        v1_addr(f[1], flen[1], family, &r->dst) < 0)
        return fail(r, "bad v1 address");
    if (v1_port(f[2], flen[2], &sport) < 0 || v1_port(f[3], flen[3], &dport) < 0)
        return fail(r, "bad v1 port");
    set_port(&r->src, sport);
    set_port(&r->dst, dport);
    return PROXY_DONE;
}

/* The line without its CRLF, n bytes, known to start with "PROXY ". */
static enum proxy_status v1_line(const char *s, size_t n,
                                 struct proxy_result *r)
{
    const char *p = s + V1_SIG_LEN;
    size_t left = n - V1_SIG_LEN;
    r->version = 1;
    r->command = PROXY_CMD_PROXY;
    r->transport = SOCK_STREAM;
    /* UNKNOWN: the rest of the line is to be ignored (the spec's words). */
    if (left >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (left == 7 || p[7] == ' ')) {
        r->keep_addr = 1;
        return PROXY_DONE;
    }
    if (left < 5 || memcmp(p, "TCP", 3) != 0 || (p[3] != '4' && p[3] != '6') ||
        p[4] != ' ')
        return fail(r, "bad v1 protocol");
    return v1_fields(p + 5, left - 5, p[3] == '4' ? AF_INET : AF_INET6, r);
}

/* Could b[0..len) (no CR in it) still begin a valid v1 line? */
static int v1_prefix_ok(const char *b, size_t len)
{
    static const char *const protos[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
    size_t k = len - V1_SIG_LEN;     /* bytes after "PROXY " */
    const char *p = b + V1_SIG_LEN;
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        size_t plen = strlen(protos[i]);
        size_t m = k < plen ? k : plen;
        if (memcmp(p, protos[i], m) != 0)
            continue;
        if (i == 2)                       /* UNKNOWN: anything but LF */
            return memchr(p, '\n', k) == NULL;
        for (size_t j = m; j < k; j++) {
            char c = p[j];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F') || c == '.' || c == ':' || c == ' '))
                return 0;
        }
        return 1;
    }
    return 0;
}

static enum proxy_status v1(const char *b, size_t len, struct proxy_result *r)
{
    size_t lim = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    const char *cr = memchr(b, '\r', lim);
    size_t i = cr ? (size_t)(cr - b) : len;
    /* Checked whatever follows, so that an error on a prefix stays one. */
    if (!v1_prefix_ok(b, i < lim ? i : lim))
        return fail(r, "bad v1 header");
    if (!cr) {
        if (len >= PROXY_V1_MAX)
            return fail(r, "v1 line too long");
        return more(r, len + 1);
    }
    if (i + 2 > PROXY_V1_MAX)
        return fail(r, "v1 line too long");
    if (i + 1 >= len)
        return more(r, i + 2);
    if (b[i + 1] != '\n')
        return fail(r, "bad v1 line end");
    r->consumed = i + 2;
    return v1_line(b, i, r);
}

/* --- version 2 -------------------------------------------------------- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Length of the address block a family byte needs; -1: invalid family. */
static int v2_addr_len(uint8_t fam)
{
    switch (fam) {
    case FAM_UNSPEC:                       return 0;
    case FAM_TCP4: case FAM_UDP4:          return V2_INET_LEN;
    case FAM_TCP6: case FAM_UDP6:          return V2_INET6_LEN;
    case FAM_UNIX_STREAM: case FAM_UNIX_DGRAM: return V2_UNIX_LEN;
    default:                               return -1;
    }
}

static void v2_addrs(const uint8_t *a, uint8_t fam, struct proxy_result *r)
{
    switch (fam >> 4) {
    case 1: {
        struct sockaddr_in *s = (struct sockaddr_in *)&r->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&r->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);     /* both in network order */
        memcpy(&d->sin_port, a + 10, 2);
        break;
    }
    case 2: {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&r->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        break;
    }
    default: {
        struct sockaddr_un *s = (struct sockaddr_un *)&r->src;
        struct sockaddr_un *d = (struct sockaddr_un *)&r->dst;
        _Static_assert(sizeof(s->sun_path) == V2_UNIX_PATH, "sun_path size");
        s->sun_family = d->sun_family = AF_UNIX;
        memcpy(s->sun_path, a, V2_UNIX_PATH);
        memcpy(d->sun_path, a + V2_UNIX_PATH, V2_UNIX_PATH);
        break;
    }
    }
}

/* Every TLV in t[0..n) must fit: type, 16-bit length, value. */
static int v2_tlvs_ok(const uint8_t *t, size_t n)
{
    while (n > 0) {
        if (n < TLV_HEAD)
            return 0;
        size_t vlen = be16(t + 1);
        if (n - TLV_HEAD < vlen)
            return 0;
        t += TLV_HEAD + vlen;
        n -= TLV_HEAD + vlen;
    }
    return 1;
}

static enum proxy_status v2(const uint8_t *b, size_t len, struct proxy_result *r)
{
    if (len <= 12)
        return more(r, PROXY_V2_HEAD);
    uint8_t ver = b[12] >> 4, cmd = b[12] & 0x0F;
    if (ver != 2)
        return fail(r, "bad v2 version");
    if (cmd > 1)
        return fail(r, "bad v2 command");
    int alen = 0;
    if (len > 13 && cmd == 1 && (alen = v2_addr_len(b[13])) < 0)
        return fail(r, "bad v2 address family");
    if (len < PROXY_V2_HEAD)
        return more(r, PROXY_V2_HEAD);
    size_t blen = be16(b + 14), total = PROXY_V2_HEAD + blen;
    if (total > PROXY_MAX_LEN)
        return fail(r, "v2 header too long");
    if (blen < (size_t)alen)
        return fail(r, "v2 address block too short");
    if (len < total)
        return more(r, total);
    r->version = 2;
    r->consumed = total;
    if (cmd == 0 || b[13] == FAM_UNSPEC) {
        /* LOCAL: the block, family included, is to be ignored; UNSPEC
         * carries no address.  Either way the socket's own addresses. */
        r->command = cmd == 0 ? PROXY_CMD_LOCAL : PROXY_CMD_PROXY;
        r->keep_addr = 1;
        return PROXY_DONE;
    }
    if (!v2_tlvs_ok(b + PROXY_V2_HEAD + alen, blen - (size_t)alen))
        return fail(r, "bad v2 TLV length");
    r->command = PROXY_CMD_PROXY;
    r->transport = (b[13] & 0x0F) == 1 ? SOCK_STREAM : SOCK_DGRAM;
    v2_addrs(b + PROXY_V2_HEAD, b[13], r);
    return PROXY_DONE;
}

/* --- dispatch --------------------------------------------------------- */

enum proxy_status proxy_parse(const void *buf, size_t len,
                              struct proxy_result *r)
{
    const uint8_t *b = buf;
    memset(r, 0, sizeof(*r));
    if (len == 0)
        return more(r, 1);
    size_t k1 = len < V1_SIG_LEN ? len : V1_SIG_LEN;
    size_t k2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    enum proxy_status st;
    if (memcmp(b, v1_sig, k1) == 0)
        st = len <= V1_SIG_LEN ? more(r, len + 1) : v1(buf, len, r);
    else if (memcmp(b, v2_sig, k2) == 0)
        st = v2(b, len, r);
    else
        st = fail(r, "not a PROXY header");
    if (st != PROXY_DONE) {
        /* Only the fields of the status returned are set. */
        struct proxy_result keep = *r;
        memset(r, 0, sizeof(*r));
        r->need = st == PROXY_NEED_MORE ? keep.need : 0;
        r->error = st == PROXY_ERROR ? keep.error : NULL;
    }
    return st;
}

int proxy_peer_allowed(const struct cidr *from, size_t n,
                       const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&from[i], sa))
            return 1;
    return 0;
}
