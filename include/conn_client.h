/*
 * conn_client.h - who a connection's client is: the PROXY protocol header
 * on ,proxy listeners, the address it named, and the log lines that name
 * the client (clientlog.h).  Internal to the reactor (conn.c).
 *
 * A ,proxy connection starts with CF_PROXY set: every byte it sends goes
 * to conn_proxy_feed() until the header is complete.  Bytes of an
 * unfinished header are held in the connection's input buffer (c->in, the
 * buffer an unfinished line uses later); a header that is complete in the
 * first read costs nothing.  The header must be complete within
 * --line-timeout (the connection sits in the line-timeout queue meanwhile).
 *
 * The client address a header names lives in a per-worker side table
 * indexed by fd (struct conn_peer, 16 bytes: IPv4 as an IPv4-mapped IPv6
 * address), allocated at the first proxied connection; its port sits in
 * struct conn's padding.  The table's pages are touched only by fds that
 * carry a PROXY source, so struct conn does not grow (112 bytes) and a
 * proxied connection costs 128 bytes in all.  A v2 UNIX source is kept as
 * the unspecified address "::" (no TCP client has it) and logged "unix".  LOCAL headers (a balancer's health check), v1 UNKNOWN and
 * v2 UNSPEC keep the socket's own peer address.
 */
#ifndef STAMPD_CONN_CLIENT_H
#define STAMPD_CONN_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn.h"

struct conn_peer {
    uint8_t addr[16];   /* IPv6, IPv4-mapped, or :: for a unix source */
};

enum proxy_verdict {
    CPROXY_MORE = 0,  /* all of data held; the header is not complete */
    CPROXY_BAD,       /* malformed, too long or from an untrusted source */
    CPROXY_OK,        /* header done; *rest / *nrest is the data after it */
};

/* 1 when the socket's peer may send a PROXY header: inside a --proxy-from
 * network, or a unix-socket peer (the socket file's mode decides who may
 * connect); 0 otherwise; -1 when the peer is already gone (a balancer's
 * health check may reset its connection before it is accepted). */
int conn_proxy_trusted(const struct worker *w, int fd);

/* Feed data[0..n) to a connection whose header is not complete.  On
 * CPROXY_OK the bytes after the header are (*rest, *nrest), inside data or
 * inside *owned (then the caller frees *owned after using them; else
 * *owned is NULL), and the client address is recorded (also as the
 * listener's last client).  *why gets a short
 * reason on CPROXY_BAD. */
enum proxy_verdict conn_proxy_feed(struct worker *w, struct conn *c,
                                   const char *data, size_t n,
                                   const char **rest, size_t *nrest,
                                   char **owned, const char **why);

/* The client's address into *ss: the PROXY source if any, else the
 * socket's peer.  Returns 0, or -1 (ss is then AF_UNSPEC). */
int conn_client_addr(const struct worker *w, const struct conn *c,
                     struct sockaddr_storage *ss);

/* A socket accepted on listener lidx from *peer (the socket's own peer),
 * before conn_open() or, when refused by --max-conns, conn_refuse():
 * records it as the listener's last client (not on ,proxy listeners: the
 * header names the client), or counts the refusal as the listener's
 * enforcement and *peer as its last enforced client (stats.h). */
void conn_client_accepted(const struct worker *w, int lidx,
                          const struct sockaddr_storage *peer, int refused);

/* Rate-limited info lines (clientlog.h) naming c's client and listener.
 * conn_log_enforce() is called at every enforcement against a connection:
 * it also counts it on the listener and records the client as the
 * listener's last enforced one, logged or not. */
void conn_log_enforce(const struct worker *w, const struct conn *c,
                      const char *what);
void conn_log_request(const struct worker *w, const struct conn *c,
                      const char *payload, size_t len);
/* Before a connection exists: the refusal of fd on listener lidx. */
void conn_log_refused(const struct worker *w, int fd, int lidx,
                      const char *what);

#endif
