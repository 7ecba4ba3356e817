/*
 * sbuf.h - a growable byte buffer for rendered text (admin pages, JSON,
 * reports).  Pure.  An allocation failure is sticky: later appends do
 * nothing and sbuf_failed() says so, so renderers check once at the end.
 */
#ifndef STAMPD_SBUF_H
#define STAMPD_SBUF_H

#include <stddef.h>

struct sbuf {
    char *buf;     /* NUL-terminated while len > 0 */
    size_t len;
    size_t cap;
    int failed;
};

void sbuf_append(struct sbuf *b, const void *data, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append s as the inside of a JSON string (quotes not included). */
void sbuf_json_str(struct sbuf *b, const char *s);
static inline int sbuf_failed(const struct sbuf *b) { return b->failed; }
void sbuf_reset(struct sbuf *b);  /* len = 0, keep the memory */
void sbuf_free(struct sbuf *b);

#endif
