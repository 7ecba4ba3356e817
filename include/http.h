/*
 * http.h - the HTTP/1.x request handler (docs/protocol.md, "HTTP/1.1"):
 * pure, no I/O.
 *
 * Bytes go in with http_feed(); every complete request is answered, in
 * order, by one response written through the caller's sink.  The handler
 * keeps only what an unfinished request needs (parser state, the
 * request-target and body read so far), so the caller may hand it input
 * split anywhere, down to one byte at a time.
 *
 * Parsing is Node's http_parser 2.9 (Debian's libhttp-parser-dev): a
 * widely fuzzed push parser that already handles chunked bodies, keep-alive
 * rules and request smuggling checks (Transfer-Encoding together with
 * Content-Length); we add the protocol's limits and status codes on top.
 * A plain request (GET or HEAD of an origin-form target, HTTP/1.1, ordinary
 * header fields, no body) that arrives whole between requests is answered
 * without the parser, by a short scan that accepts only what the parser
 * would accept and answers it the same way; the fuzzer (tests/fuzz/
 * fuzz_http.c) feeds every input whole and split, which compares the two.
 * Upstream no longer maintains it (Node.js moved to llhttp, whose C output
 * is generated from TypeScript); it stays the choice because Debian 12
 * packages and patches it, while llhttp has no C library package there
 * (only node-llhttp, the sources for Node.js), and stampd takes its
 * dependencies from Debian only.  Debian builds it without
 * HTTP_PARSER_STRICT, so the strictness below is ours.
 *
 * Framing at the edges (RFC 9110 sections 7.8 and 9.3.6, RFC 9112 5.1):
 * - CONNECT asks for a tunnel; what follows its head is not HTTP and has
 *   no length we could know, so it gets 501 and nothing after it is read.
 * - A request with Upgrade (and "Connection: upgrade") is answered as an
 *   ordinary request, body framed as usual, but with Connection: close:
 *   the protocol does not switch (200, never 101), yet a client or proxy
 *   may already be sending the other protocol, and those bytes must never
 *   be answered as requests.
 * - Whitespace in a header name, before the colon included, is 400.
 * Input is never dropped unparsed except after the last response.
 *
 * Responses: `200 OK` with body `[` TIMESTAMP `] ` PAYLOAD LF (the reply
 * mode applies), PAYLOAD being the body when non-empty, else the raw
 * request-target; HEAD gets the same head without the body.  Errors
 * (400 malformed, 431 head > HTTP_REQUEST_HEAD_MAX, 413 body > max_body, 501
 * Transfer-Encoding other than chunked or CONNECT, 505 version not 1.x)
 * are written as a final `Connection: close` response after the earlier
 * ones; the handler then refuses further input.
 */
#ifndef STAMPD_HTTP_H
#define STAMPD_HTTP_H

#include <stddef.h>

#include "reply.h"

/* Limit on a request's head (request line + header fields + empty line):
 * larger is 431. */
#define HTTP_REQUEST_HEAD_MAX 8192
/* Upper bound of a response head we write (and of a whole error response):
 * callers size their buffers as HTTP_RESPONSE_HEAD_MAX + the largest reply
 * body. */
#define HTTP_RESPONSE_HEAD_MAX 256

enum http_result {
    HTTP_OK = 0,        /* all input consumed; keep reading */
    HTTP_PAUSE,         /* the sink asked to stop; *consumed tells where */
    HTTP_CLOSE,         /* last response written (Connection: close,
                           HTTP/1.0 or Upgrade); close after flushing,
                           ignore input */
    HTTP_ERR_LIMIT,     /* 413 or 431 written; close */
    HTTP_ERR_PROTOCOL,  /* 400, 501 or 505 written; close */
    HTTP_NOMEM,         /* the sink or the handler ran out of memory */
};

/* Per-call environment: the reply settings and the cached clock's strings. */
struct http_env {
    enum reply_mode reply;
    const char *prefix;    /* "[" TIMESTAMP "] " */
    size_t prefix_len;
    const char *date;      /* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" */
    size_t date_len;
    size_t max_body;       /* --max-line */
};

/* Where responses go.  reserve() returns n contiguous writable bytes for
 * one response (or NULL: out of memory); commit() takes the n bytes just
 * written and returns 0 to go on or 1 to stop after this request
 * (back-pressure: http_feed() then returns HTTP_PAUSE). */
struct http_sink {
    char *(*reserve)(void *ctx, size_t n);
    int (*commit)(void *ctx, size_t n);
    void *ctx;
};

struct http_conn;

/* A fresh connection's state; NULL when out of memory. */
struct http_conn *http_new(void);
void http_free(struct http_conn *h);

/* Parse data[0..n) and answer every request it completes.  *consumed gets
 * the bytes used (all of them except after HTTP_PAUSE: the rest must be fed
 * again later), *requests the number of 200 responses written.  After any
 * status other than HTTP_OK and HTTP_PAUSE the handler is dead: further
 * calls consume everything and return the same status without output. */
int http_feed(struct http_conn *h, const struct http_env *env,
              const char *data, size_t n, const struct http_sink *sink,
              size_t *consumed, size_t *requests);

/* True while part of a request has been read (for timers and EOF). */
int http_partial(const struct http_conn *h);

/* Heap bytes the state holds beyond its own struct (for gauges). */
size_t http_held(const struct http_conn *h);

/* The client side (stampctl, stampcli): the status code of a response
 * whose first len bytes begin "HTTP/1.x NNN", or -1 if they do not. */
int http_status_code(const char *buf, size_t len);

#endif
