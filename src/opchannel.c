/*
 * opchannel.c - the operator console's messages and text (see
 * opchannel.h).  Pure.
 */
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "opchannel.h"

/* The packet head: type, addr length, data length, id.  Both ends are
 * processes of one host and one binary: host byte order. */
struct ophead {
    uint8_t type;
    uint8_t addr_len;
    uint16_t data_len;
    uint32_t id;
};
_Static_assert(sizeof(struct ophead) == OPMSG_HEAD, "packet head size");
_Static_assert(OPMSG_DATA_MAX <= 65535, "data length fits the head");

size_t opmsg_encode(char *buf, const struct opmsg *m)
{
    size_t alen = strnlen(m->addr, OPMSG_ADDR_MAX - 1);
    size_t dlen = m->len > OPMSG_DATA_MAX ? OPMSG_DATA_MAX : m->len;
    struct ophead h = { (uint8_t)m->type, (uint8_t)alen, (uint16_t)dlen, m->id };
    uint32_t full = m->type == OPM_LINE ? (uint32_t)m->len : 0;

    memcpy(buf, &h, sizeof(h));
    memcpy(buf + OPMSG_HEAD, m->addr, alen);
    if (dlen)
        memcpy(buf + OPMSG_HEAD + alen, m->data, dlen);
    size_t n = OPMSG_HEAD + alen + dlen;
    if (m->type == OPM_LINE) { /* the uncut length follows the data */
        memcpy(buf + n, &full, sizeof(full));
        n += sizeof(full);
    }
    return n;
}

int opmsg_decode(const char *buf, size_t n, struct opmsg *m)
{
    struct ophead h;

    if (n < OPMSG_HEAD)
        return -1;
    memcpy(&h, buf, sizeof(h));
    size_t tail = h.type == OPM_LINE ? sizeof(uint32_t) : 0;
    if (h.type < OPM_CONNECT || h.type >= OPM_NTYPES ||
        h.addr_len >= OPMSG_ADDR_MAX || h.data_len > OPMSG_DATA_MAX ||
        OPMSG_HEAD + (size_t)h.addr_len + h.data_len + tail != n ||
        memchr(buf + OPMSG_HEAD, '\0', h.addr_len))
        return -1;
    memset(m, 0, sizeof(*m));
    m->type = (enum opmsg_type)h.type;
    m->id = h.id;
    memcpy(m->addr, buf + OPMSG_HEAD, h.addr_len);
    m->addr[h.addr_len] = '\0';
    m->data = buf + OPMSG_HEAD + h.addr_len;
    m->len = h.data_len;
    m->full_len = (uint32_t)m->len;
    if (tail)
        memcpy(&m->full_len, buf + n - tail, tail);
    if (m->full_len < m->len)
        return -1;
    return 0;
}

uint32_t opchan_id(unsigned slot, uint32_t serial, unsigned nworkers)
{
    return (serial - 1) * nworkers + slot + 1;
}

unsigned opchan_slot(uint32_t id, unsigned nworkers)
{
    return (id - 1) % nworkers;
}

int opconsole_parse(const char *line, size_t n, uint32_t *id,
                    const char **text, size_t *tlen)
{
    size_t i = 0;

    if (n && line[n - 1] == '\r')
        n--;
    if (n == 0)
        return -1;
    *text = line;
    *tlen = n;
    if (n >= 2 && line[0] == '.' && line[1] == ' ') {
        *text = line + 2;
        *tlen = n - 2;
        return 0;
    }
    if (line[0] == '#')
        i = 1;
    size_t digits = i;
    uint64_t v = 0;
    while (digits < n && line[digits] >= '0' && line[digits] <= '9' &&
           digits - i < 10) {
        v = v * 10 + (uint64_t)(line[digits] - '0');
        digits++;
    }
    /* An id is a whole first word of digits. */
    if (digits == i || v == 0 || v > UINT32_MAX ||
        (digits < n && line[digits] != ' '))
        return 0;
    *id = (uint32_t)v;
    *text = line + digits + (digits < n);
    *tlen = n - digits - (digits < n);
    return 1;
}

void opconsole_format(struct sbuf *out, const struct opmsg *m)
{
    switch (m->type) {
    case OPM_CONNECT:
        sbuf_printf(out, "+ #%u connected from %s\n", m->id, m->addr);
        break;
    case OPM_LINE:
        sbuf_printf(out, "[#%u %s] ", m->id, m->addr);
        sbuf_append(out, m->data, m->len);
        if (m->full_len > m->len)
            sbuf_printf(out, " ...(%u bytes)", m->full_len);
        sbuf_puts(out, "\n");
        break;
    case OPM_CLOSED:
        sbuf_printf(out, "- #%u closed\n", m->id);
        break;
    case OPM_TIMEOUT:
        sbuf_printf(out, "! #%u timed out: sent \"ERR no operator\"\n", m->id);
        break;
    case OPM_FULL:
        sbuf_printf(out, "! #%u queue full: sent \"ERR operator queue full\"\n",
                    m->id);
        break;
    case OPM_NOLINE:
        sbuf_printf(out, "? #%u has no waiting line\n", m->id);
        break;
    default:
        break;
    }
}

int opchan_loopback(const struct addr *a)
{
    if (a->family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&a->ss;
        return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->ss;
        if (IN6_IS_ADDR_LOOPBACK(&s->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&s->sin6_addr) && s->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* Compare without an early exit, so the time taken does not tell how
 * much of a guess was right. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i < lb ? i : 0]);
    return d == 0;
}

int opchan_admit(const struct addr *admin, const char *token,
                 const char *presented, const char **why)
{
    static const char bearer[] = "Bearer ";

    if (token[0]) {
        if (!presented || strncasecmp(presented, bearer, sizeof(bearer) - 1) != 0) {
            *why = "the chat channel needs the admin token (--admin-token)";
            return 403;
        }
        if (!same_secret(token, presented + sizeof(bearer) - 1)) {
            *why = "wrong admin token";
            return 403;
        }
        return 0;
    }
    if (admin->family == AF_UNIX || opchan_loopback(admin))
        return 0;
    *why = "the chat channel is served only on a unix or loopback admin "
           "address, or with --admin-token";
    return 403;
}

int opchan_wanted(const struct opts *o)
{
    int any = o->reply == REPLY_OPERATOR;
    for (int i = 0; i < o->nlisten; i++)
        any |= (o->listen[i].flags & ADDR_OPERATOR) != 0;
    return any;
}
