/*
 * refusal.c - refusal texts for line and HTTP listeners (see refusal.h).
 * Pure.
 */
#include <stdio.h>
#include <string.h>

#include "refusal.h"

struct refusal_text {
    const char *line;     /* line protocol */
    int status;           /* HTTP */
    const char *reason;   /* HTTP reason phrase */
    const char *body;     /* HTTP body */
};

static const struct refusal_text texts[] = {
    [REFUSE_TOO_MANY] = { "ERR too many connections\n", 503,
                          "Service Unavailable", "too many connections\n" },
    [REFUSE_BAD_PROXY] = { "ERR bad proxy header\n", 400, "Bad Request",
                           "bad proxy header\n" },
};

size_t refusal_build(char *buf, enum refusal r, int http, const char *date,
                     size_t date_len)
{
    const struct refusal_text *t = &texts[r];

    if (!http) {
        size_t n = strlen(t->line);
        memcpy(buf, t->line, n);
        return n;
    }
    if (date_len > 64)
        date_len = 64;
    int n = snprintf(buf, REFUSAL_MAX,
                     "HTTP/1.1 %d %s\r\nServer: stampd\r\nDate: %.*s\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     t->status, t->reason, (int)date_len, date,
                     strlen(t->body), t->body);
    return n < 0 ? 0 : n >= REFUSAL_MAX ? REFUSAL_MAX - 1 : (size_t)n;
}
