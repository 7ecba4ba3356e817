/*
 * clientlog.h - the info lines that name a client, rate-limited per worker
 * process so that a flood of bad clients cannot flood the log:
 *
 *   info: line too long: client 203.0.113.7:51234 on 0.0.0.0:8009,proxy
 *   info: request from 127.0.0.2:40312 on 127.0.0.1:8009: "hello"
 *   info: 37 similar lines suppressed
 *
 * Enforcements (a limit or a protocol rule closing a connection) pass at
 * most CLIENTLOG_ENFORCE_PER_S lines a second, request lines
 * (--log-requests) at most CLIENTLOG_REQUESTS_PER_S; past that a window's
 * lines are counted and reported as one summary line when the window has
 * ended (at the next such line, or at the next clientlog_tick()).
 *
 * The client is the address a PROXY header named when there was one, else
 * the socket's peer; a unix-socket client shows as "unix".
 */
#ifndef STAMPD_CLIENTLOG_H
#define STAMPD_CLIENTLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

#define CLIENTLOG_ENFORCE_PER_S 10
#define CLIENTLOG_REQUESTS_PER_S 100
#define CLIENTLOG_ADDR_MAX ADDR_PEER_MAX
#define CLIENTLOG_PAYLOAD_MAX 200 /* request bytes shown, escaped */

enum clientlog_kind { CLIENTLOG_ENFORCE = 0, CLIENTLOG_REQUEST };

/* May one more line of this kind be logged now?  1: yes (a summary of an
 * ended window is logged first if one is due); 0: it is counted as
 * suppressed.  Call it before looking the client's address up, so that a
 * suppressed line costs no system call; then call exactly one of the two
 * functions below. */
int clientlog_allow(enum clientlog_kind kind);

/* One enforcement: "WHAT: client ADDR on LISTENER" (after
 * clientlog_allow(CLIENTLOG_ENFORCE)). */
void clientlog_enforce(const char *what, const struct sockaddr *client,
                       const struct addr *listener);

/* One request (--log-requests, after clientlog_allow(CLIENTLOG_REQUEST)):
 * "request from ADDR on LISTENER: "BYTES""
 * with the payload escaped (\n, \r, \t, \\, \", \xHH) and cut at
 * CLIENTLOG_PAYLOAD_MAX bytes; payload NULL leaves the quote out (HTTP). */
void clientlog_request(const struct sockaddr *client,
                       const struct addr *listener, const char *payload,
                       size_t len);

/* Report what an ended window suppressed; the worker loop calls this each
 * turn (at least every STATS_HEARTBEAT_MS). */
void clientlog_tick(int64_t now_ms);

#endif
