/*
 * net.h - listening sockets.  Startup code: failures fill `err` with one line
 * naming the address so the user sees one clear message (Redis anetSetError).
 */
#ifndef STAMPD_NET_H
#define STAMPD_NET_H

#include <stddef.h>
#include "addr.h"

/* Bind a plain socket (no SO_REUSEPORT) to a TCP or UDP address to find out
 * whether anything else holds it; the socket is closed again.  If the port
 * is 0 the kernel's choice is written back into *a.  Returns 0, or -1 with
 * "address already in use: ADDR" (or another reason) in err. */
int net_probe(struct addr *a, int socktype, char *err, size_t errlen);

/* A non-blocking, close-on-exec listening (SOCK_STREAM) or bound (SOCK_DGRAM)
 * socket for a, with SO_REUSEADDR, SO_REUSEPORT when `reuseport`, and
 * IPV6_V6ONLY for IPv6.  Unix paths: a stale socket file (nobody accepting)
 * is replaced; a live one is "address already in use".  fd or -1. */
int net_listen(const struct addr *a, int socktype, int reuseport, char *err,
               size_t errlen);

#endif
