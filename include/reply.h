/*
 * reply.h - building one reply from one request (pure, no I/O).
 *
 * Shared by the line protocol, UDP and HTTP bodies.  The timestamp prefix
 * ("[" TIMESTAMP "] ", 27 bytes) comes preformatted from the cached clock.
 */
#ifndef STAMPD_REPLY_H
#define STAMPD_REPLY_H

#include <stddef.h>

/* stamp: "[" TIMESTAMP "] " payload; echo: payload; upper: payload in
 * capitals; ok: "OK"; none: nothing at all (no terminator either).  Every
 * mode but none ends with the request's terminator.  operator: a person
 * types the reply (operator.h); reply_build() is not used for it, and it
 * applies to line and chunk listeners only. */
enum reply_mode { REPLY_STAMP = 0, REPLY_ECHO, REPLY_UPPER, REPLY_OK, REPLY_NONE,
                  REPLY_OPERATOR };
#define REPLY_MODE_NAMES "stamp", "echo", "upper", "ok", "none", "operator"
#define REPLY_NMODES 6

/* Bytes reply_build() will write. */
size_t reply_size(enum reply_mode mode, size_t prefix_len, size_t payload_len,
                  size_t term_len);

/* Write the reply for `payload` into dst (reply_size() bytes): the prefix
 * (stamp mode only), the payload (a-z mapped to A-Z in upper mode; "OK" in
 * ok mode), then the terminator; nothing in none mode.  Returns the number
 * of bytes written. */
size_t reply_build(char *dst, enum reply_mode mode, const char *prefix,
                   size_t prefix_len, const char *payload, size_t payload_len,
                   const char *term, size_t term_len);

/* Map ASCII a-z to A-Z in place (mode upper); other bytes are untouched. */
void reply_upcase(char *s, size_t n);

/* A REPLY_MODE_NAMES name and back; -1 for an unknown name. */
int reply_mode_parse(const char *s);
const char *reply_mode_name(enum reply_mode mode);

#endif
