/*
 * udp.h - the UDP side of a worker (docs/protocol.md, "UDP"): each datagram is
 * one request, answered by one datagram to its sender.
 *
 * Datagrams are read and answered in batches (recvmmsg/sendmmsg, where the
 * platform has them).  A reply is gathered from iovecs that point at the
 * cached stamp prefix and at the request still in its receive buffer, so no
 * reply is copied.  When the socket's send buffer is full the unsent
 * replies of the batch stay pending (bounded: one batch), reading stops and
 * write interest is armed; nothing spins and nothing is lost on our side.
 * Reply modes: stamp, echo and upper answer with the datagram (prefixed,
 * capitalised); ok with "OK" and the datagram's own terminator (LF, CRLF
 * or none); none sends nothing (each datagram still counts as a request).
 * Drops the server sees (failed sends, and receive-queue overflows: the
 * socket's drop total, as SO_RXQ_OVFL or SO_MEMINFO report it) are counted
 * in udp_drops, so datagrams received == requests_udp + udp_drops.
 */
#ifndef STAMPD_UDP_H
#define STAMPD_UDP_H

#include <stdint.h>

#include "clock.h"
#include "opts.h"
#include "poller.h"
#include "stats.h"

#define UDP_MAX_REPLY 65507  /* the largest IPv4 UDP payload */

struct udp_sock;

/* Set up batching state for a bound, non-blocking datagram socket that is
 * already registered with `p` for POLLER_READ under `tag`.  NULL + errno. */
struct udp_sock *udp_create(int fd, poller_t *p, uint64_t tag);
/* Where the socket's kernel drop total already counted is kept (in the
 * worker's shared stats slot, so that it outlives the worker); without it
 * drops are not counted. */
void udp_track_drops(struct udp_sock *u, uint32_t *seen);
void udp_destroy(struct udp_sock *u);
/* The listener named by --log-requests lines (ls->addr; kept, not copied). */
void udp_set_listener(struct udp_sock *u, const struct addr *listener);
/* The listener's figures in the worker's stats slot (stats.h): requests
 * answered, and as last client the source of each batch's last datagram;
 * NULL: none kept. */
void udp_track_listener(struct udp_sock *u, struct stats_listener *l);

/* Handle readiness (either kind: `mask` is not needed, what is pending
 * says what to do): send what is pending, then read and answer batches
 * (a bounded number per call, for fairness with TCP connections).  A
 * failed interest change drops the held replies and counts them
 * (poller_errors, udp_drops). */
void udp_event(struct udp_sock *u, unsigned mask, const struct opts *o,
               const struct clock_cache *clk, struct stats_slot *st);

/* The reply rule, pure: whether the reply to a datagram of `len` bytes
 * (the stamp prefix, if the reply mode has one, and the datagram) fits one
 * datagram. */
int udp_reply_fits(const struct opts *o, size_t len);

#endif
