/*
 * cli.h - the pure half of stampcli: how a reply is shown, the HTTP request
 * it sends with --http and the response it reads, and the round-trip
 * summary of -n.  No sockets, no terminal: tests/unit/test_cli.c.
 */
#ifndef STAMPD_CLI_H
#define STAMPD_CLI_H

#include <stddef.h>

#include "sbuf.h"

/* Append reply bytes p[0..n) for a terminal: printable ASCII and valid
 * UTF-8 as they are, every other byte (controls such as ESC or CR, DEL,
 * C1 controls, bytes that are not UTF-8) as \xHH, so a reply cannot move
 * the cursor or change the terminal's state.  A final LF stays a line
 * break. */
void cli_escape(struct sbuf *out, const char *p, size_t n);

/* The --http request for one input line: `POST / HTTP/1.1` with the line
 * (without its LF) as the body; stampd answers with the body stamped. */
void cli_http_request(struct sbuf *out, const char *host, const char *line,
                      size_t n);

/* Read an HTTP/1.x response head at buf[0..len).  1 when more bytes are
 * needed; 0 when the head is complete, with the status code, the offset
 * of the body and its Content-Length (-1 when absent: the body runs to the
 * connection's end); -1 when malformed (or a head over 64 KiB). */
int cli_http_head(const char *buf, size_t len, int *status, size_t *body_off,
                  long long *body_len);

struct cli_rtt {
    double min, avg, max, p99;   /* microseconds */
};

/* Summarise n > 0 round-trip times (us); sorts v.  p99 is the
 * ceil(0.99 n)-th smallest (nearest rank). */
void cli_rtt_summary(double *v, size_t n, struct cli_rtt *out);

#endif
