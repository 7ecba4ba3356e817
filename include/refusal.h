/*
 * refusal.h - the bytes a connection gets when stampd refuses it before any
 * request is answered (pure, no I/O): too many connections, or a bad PROXY
 * protocol header.
 *
 * Line and chunk listeners get one protocol error line; an HTTP listener
 * gets a whole response the client's HTTP library can read, always with
 * `Connection: close` (the connection is closed after it):
 *
 *   too many connections   "ERR too many connections\n" | 503, body
 *                          "too many connections\n"
 *   bad PROXY header       "ERR bad proxy header\n"     | 400, body
 *                          "bad proxy header\n"
 */
#ifndef STAMPD_REFUSAL_H
#define STAMPD_REFUSAL_H

#include <stddef.h>

enum refusal { REFUSE_TOO_MANY = 0, REFUSE_BAD_PROXY };

/* Longest refusal refusal_build() writes (with a 29-byte HTTP date). */
#define REFUSAL_MAX 256

/* Write the refusal into buf (at least REFUSAL_MAX bytes); `date` is the
 * IMF-fixdate for the HTTP Date header (ignored unless http).  Returns the
 * number of bytes written. */
size_t refusal_build(char *buf, enum refusal r, int http, const char *date,
                     size_t date_len);

#endif
