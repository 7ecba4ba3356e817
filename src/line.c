/*
 * line.c - the line framer (see line.h).  Pure: no I/O, no clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clock.h"
#include "line.h"

#define LINE_BUF_MIN 64u

/* Grow lb so that it can hold `need` bytes.  Capacities double from
 * LINE_BUF_MIN so a drip-fed line costs O(log n) reallocations. */
static int lb_reserve(struct line_buf *lb, size_t need)
{
    size_t cap;
    char *nb;

    if (need <= lb->cap)
        return 0;
    if (need > UINT32_MAX)
        return -ENOMEM;
    cap = lb->cap ? lb->cap : LINE_BUF_MIN;
    while (cap < need)
        cap *= 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    nb = realloc(lb->buf, cap);
    if (!nb)
        return -ENOMEM;
    lb->buf = nb;
    lb->cap = (uint32_t)cap;
    return 0;
}

static int lb_append(struct line_buf *lb, const char *data, size_t n)
{
    if (lb_reserve(lb, (size_t)lb->len + n) != 0)
        return -ENOMEM;
    memcpy(lb->buf + lb->len, data, n);
    lb->len += (uint32_t)n;
    return 0;
}

void line_release(struct line_buf *lb)
{
    free(lb->buf);
    lb->buf = NULL;
    lb->len = lb->cap = 0;
}

/* Hand one complete line (terminator included, `len` >= 1, last byte LF) to
 * the sink. */
static inline int deliver(const char *line, size_t len, line_sink_fn sink,
                          void *ctx)
{
    stampd_assert(len >= 1 && line[len - 1] == '\n');
    size_t plen = len - 1;
    int crlf = plen > 0 && line[plen - 1] == '\r';

    return sink(ctx, line, plen - (size_t)crlf, crlf);
}

int line_feed(struct line_buf *lb, const char *data, size_t n,
              size_t max_line, line_sink_fn sink, void *ctx,
              size_t *consumed, size_t *lines)
{
    size_t pos = 0, nlines = 0;
    int rc = LINE_OK;

    stampd_assert(max_line > 0);

    /* A held fragment is completed first; only the bytes up to its LF are
     * copied, the rest of the read is framed in place. */
    if (lb->len > 0) {
        const char *lf = memchr(data, '\n', n);
        size_t take = lf ? (size_t)(lf - data) + 1 : n;

        if ((size_t)lb->len + take > max_line ||
            (!lf && (size_t)lb->len + take >= max_line)) {
            rc = LINE_TOO_LONG;
            goto out;
        }
        if (lb_append(lb, data, take) != 0) {
            rc = LINE_NOMEM;
            goto out;
        }
        pos = take;
        if (!lf)
            goto out;
        rc = deliver(lb->buf, lb->len, sink, ctx);
        /* The completed line's storage is no longer needed: an idle
         * connection owns no input memory. */
        line_release(lb);
        if (rc != LINE_OK) {
            if (rc == LINE_PAUSE)
                nlines++;
            goto out;
        }
        nlines++;
    }

    while (pos < n) {
        const char *start = data + pos;
        size_t left = n - pos;
        const char *lf = memchr(start, '\n', left);
        size_t len;

        if (!lf) {
            if (left >= max_line) {
                rc = LINE_TOO_LONG;
                goto out;
            }
            if (lb_append(lb, start, left) != 0) {
                rc = LINE_NOMEM;
                goto out;
            }
            pos = n;
            break;
        }
        len = (size_t)(lf - start) + 1;
        if (len > max_line) {
            rc = LINE_TOO_LONG;
            goto out;
        }
        pos += len;
        rc = deliver(start, len, sink, ctx);
        if (rc != LINE_OK) {
            if (rc == LINE_PAUSE)
                nlines++;
            goto out;
        }
        nlines++;
    }
out:
    if (consumed)
        *consumed = pos;
    if (lines)
        *lines = nlines;
    return rc;
}

size_t line_stamp_run(const char *data, size_t n, size_t max_line,
                      const char *prefix, size_t prefix_len, char *dst,
                      size_t room, size_t *consumed, size_t *lines)
{
    size_t pos = 0, out = 0, nlines = 0;

    while (pos < n) {
        const char *start = data + pos;
        const char *lf = memchr(start, '\n', n - pos);
        if (!lf)
            break;
        size_t len = (size_t)(lf - start) + 1;  /* the LF included */
        if (len > max_line)
            break;
        /* The reply is the line with the prefix before it: the same
         * payload and terminator bytes, CR LF or LF. */
        if (prefix_len + len > room - out)
            break;
        if (prefix_len == CLOCK_PREFIX_LEN)   /* every stamp: a fixed-size copy */
            memcpy(dst + out, prefix, CLOCK_PREFIX_LEN);
        else
            memcpy(dst + out, prefix, prefix_len);
        memcpy(dst + out + prefix_len, start, len);
        out += prefix_len + len;
        pos += len;
        nlines++;
    }
    *consumed = pos;
    *lines = nlines;
    return out;
}

int line_finish(struct line_buf *lb, line_sink_fn sink, void *ctx)
{
    int rc = LINE_OK;

    if (lb->len > 0)
        rc = sink(ctx, lb->buf, lb->len, 0);
    line_release(lb);
    return rc;
}

int line_stash(struct line_buf *lb, const char *data, size_t n)
{
    lb->len = 0;
    if (n == 0) {
        line_release(lb);
        return 0;
    }
    return lb_append(lb, data, n) == 0 ? 0 : -ENOMEM;
}

void line_take(struct line_buf *lb, char **buf, size_t *n)
{
    *buf = lb->buf;
    *n = lb->len;
    lb->buf = NULL;
    lb->len = lb->cap = 0;
}

int line_append(struct line_buf *lb, const char *data, size_t n)
{
    return n == 0 || lb_append(lb, data, n) == 0 ? 0 : -ENOMEM;
}
