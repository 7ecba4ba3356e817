/*
 * cli.c - see cli.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "http.h"

#define MAX_HEAD 65536

/* Length of the valid UTF-8 sequence at p (n bytes left) that is not a C1
 * control, 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
        (cp >= 0x80 && cp < 0xa0))
        return 0;
    return len;
}

void cli_escape(struct sbuf *out, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t body = n && s[n - 1] == '\n' ? n - 1 : n;
    size_t i = 0;
    while (i < body) {
        size_t run = i;
        while (run < body && s[run] >= 0x20 && s[run] < 0x7f)
            run++;
        if (run > i) {
            sbuf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        size_t u = s[i] >= 0x80 ? utf8_len(s + i, body - i) : 0;
        if (u) {
            sbuf_append(out, s + i, u);
            i += u;
        } else {
            sbuf_printf(out, "\\x%02x", s[i]);
            i++;
        }
    }
    if (body < n)
        sbuf_puts(out, "\n");
}

void cli_http_request(struct sbuf *out, const char *host, const char *line,
                      size_t n)
{
    sbuf_printf(out, "POST / HTTP/1.1\r\nHost: %s\r\nUser-Agent: stampcli\r\n"
                "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                host, n);
    sbuf_append(out, line, n);
}

int cli_http_head(const char *buf, size_t len, int *status, size_t *body_off,
                  long long *body_len)
{
    size_t scan = len < MAX_HEAD ? len : MAX_HEAD;
    const char *end = memmem(buf, scan, "\r\n\r\n", 4);
    if (!end)
        return len >= MAX_HEAD ? -1 : 1;
    int code = http_status_code(buf, (size_t)(end - buf));
    if (code < 0)
        return -1;
    *status = code;
    *body_off = (size_t)(end + 4 - buf);
    *body_len = -1;
    static const char cl[] = "content-length:";
    for (const char *p = memchr(buf, '\n', (size_t)(end - buf)); p && p < end; ) {
        p++;
        const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if ((size_t)(eol - p) > sizeof(cl) - 1 &&
            strncasecmp(p, cl, sizeof(cl) - 1) == 0) {
            char *e;
            long long v = strtoll(p + sizeof(cl) - 1, &e, 10);
            while (*e == ' ' || *e == '\t')
                e++;
            if (v < 0 || e != eol)
                return -1;
            *body_len = v;
        }
        p = eol + 1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void cli_rtt_summary(double *v, size_t n, struct cli_rtt *out)
{
    double sum = 0;
    qsort(v, n, sizeof(*v), cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    size_t rank = (size_t)ceil(0.99 * (double)n);
    out->min = v[0];
    out->max = v[n - 1];
    out->avg = sum / (double)n;
    out->p99 = v[(rank ? rank : 1) - 1];
}
