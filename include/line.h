/*
 * line.h - the line framer: pure, I/O-free splitting of a byte stream into
 * requests (section "Requests" of the protocol).
 *
 * A request is the bytes up to and including LF; if the byte before LF is CR
 * the terminator is CRLF.  The payload may hold any other byte.  The framer
 * keeps only an unfinished line between calls (struct line_buf), so a
 * connection between lines owns no input memory.
 *
 * Limit: max_line counts the terminator.  A line is too long as soon as
 * max_line bytes have arrived without an LF; a complete line of up to
 * max_line bytes (terminator included) is fine.
 *
 * Back-pressure: the sink may ask the framer to stop after the line it was
 * just given (LINE_PAUSE).  line_feed() then reports how much of `data` it
 * consumed and the caller keeps the rest (line_stash()) to feed again later;
 * at that point no partial line is held, so the stash is plain unparsed input.
 */
#ifndef STAMPD_LINE_H
#define STAMPD_LINE_H

#include <stddef.h>
#include <stdint.h>

struct line_buf {
    char *buf;     /* NULL when nothing is held */
    uint32_t len;
    uint32_t cap;
};

enum line_status {
    LINE_OK = 0,      /* all of data consumed (a partial line may be held) */
    LINE_PAUSE = 1,   /* the sink asked to stop; *consumed tells where */
    LINE_TOO_LONG = 2,/* a line exceeded max_line; *consumed = its start */
    LINE_NOMEM = 3,   /* could not hold a partial line */
    LINE_FAIL = 4,    /* the sink failed (it returned LINE_FAIL) */
};

/* Called once per complete request.  crlf is 1 for a CRLF terminator, else 0.
 * Returns LINE_OK to go on, LINE_PAUSE to stop after this line, LINE_FAIL to
 * abort. */
typedef int (*line_sink_fn)(void *ctx, const char *payload, size_t len,
                            int crlf);

/* Frame `data`: complete lines go to the sink in order, a trailing partial
 * line is appended to lb.  *consumed (may be NULL) receives the number of
 * bytes of data consumed; *lines (may be NULL) the number of complete lines
 * the sink accepted (a line it answered LINE_FAIL to is not counted).  On
 * LINE_TOO_LONG *consumed is where the offending line starts in data, or 0
 * if it began in an earlier call (its start is then lb's held fragment). */
int line_feed(struct line_buf *lb, const char *data, size_t n,
              size_t max_line, line_sink_fn sink, void *ctx,
              size_t *consumed, size_t *lines);

/* The stamp replies' fast path, for a connection holding no partial line:
 * frame the complete lines at the start of data[0..n) and write each one's
 * reply, `prefix` + payload + its own terminator (CRLF for a line ending
 * in CRLF, else LF), into dst, as long as the next reply fits in the
 * `room` bytes left.  It stops before a line without LF, a line longer
 * than max_line, or a reply that does not fit: those are line_feed()'s,
 * from *consumed on.  The bytes written are what line_feed() with a sink
 * building stamp replies would have produced for the same lines.  Returns
 * the bytes written; *consumed and *lines as line_feed()'s. */
size_t line_stamp_run(const char *data, size_t n, size_t max_line,
                      const char *prefix, size_t prefix_len, char *dst,
                      size_t room, size_t *consumed, size_t *lines);

/* End of input: hand a held fragment to the sink as a request terminated by
 * LF (the protocol's rule), then free lb.  Returns the sink's status or
 * LINE_OK when nothing was held. */
int line_finish(struct line_buf *lb, line_sink_fn sink, void *ctx);

/* Keep data (unparsed input after a LINE_PAUSE) in lb, replacing its content.
 * lb must hold no partial line.  Returns 0 or -ENOMEM. */
int line_stash(struct line_buf *lb, const char *data, size_t n);

/* Append data to what lb holds (bytes kept before framing starts, such as
 * an unfinished PROXY header).  Returns 0 or -ENOMEM. */
int line_append(struct line_buf *lb, const char *data, size_t n);

/* Detach lb's contents into (*buf, *n); lb becomes empty.  The caller frees
 * *buf. */
void line_take(struct line_buf *lb, char **buf, size_t *n);

void line_release(struct line_buf *lb);

#endif
