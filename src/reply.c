/*
 * reply.c - one reply from one request (see reply.h).  Pure.
 */
#include <string.h>

#include "reply.h"

static const char *const mode_names[REPLY_NMODES] = { REPLY_MODE_NAMES };

size_t reply_size(enum reply_mode mode, size_t prefix_len, size_t payload_len,
                  size_t term_len)
{
    switch (mode) {
    case REPLY_NONE:
        return 0;
    case REPLY_OK:
        return 2 + term_len;
    case REPLY_STAMP:
        return prefix_len + payload_len + term_len;
    default:
        return payload_len + term_len;
    }
}

void reply_upcase(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 'a' + 'A');
}

size_t reply_build(char *dst, enum reply_mode mode, const char *prefix,
                   size_t prefix_len, const char *payload, size_t payload_len,
                   const char *term, size_t term_len)
{
    char *p = dst;

    if (mode == REPLY_NONE)
        return 0;
    if (mode == REPLY_OK) {
        payload = "OK";
        payload_len = 2;
    }
    if (mode == REPLY_STAMP) {
        memcpy(p, prefix, prefix_len);
        p += prefix_len;
    }
    if (payload_len) {
        memcpy(p, payload, payload_len);
        if (mode == REPLY_UPPER)
            reply_upcase(p, payload_len);
        p += payload_len;
    }
    memcpy(p, term, term_len);
    p += term_len;
    return (size_t)(p - dst);
}

int reply_mode_parse(const char *s)
{
    for (int i = 0; i < REPLY_NMODES; i++)
        if (strcmp(s, mode_names[i]) == 0)
            return i;
    return -1;
}

const char *reply_mode_name(enum reply_mode mode)
{
    return (unsigned)mode < REPLY_NMODES ? mode_names[mode] : "?";
}
