/*
 * proxy.h - the PROXY protocol header a load balancer (HAProxy, nginx
 * stream, AWS NLB) sends first on a connection to name the real client:
 * versions 1 (text) and 2 (binary), as specified in HAProxy's
 * doc/proxy-protocol.txt.  Pure: bytes in, a verdict out, no I/O.
 *
 * Incremental without state: call proxy_parse() with everything received
 * so far (from the connection's first byte) each time more arrives.  The
 * verdict on a prefix never contradicts the verdict on the whole:
 * NEED_MORE may become DONE or ERROR, ERROR and DONE are final, and DONE
 * reports the same header for every longer input.  The parser never reads
 * past len, and says ERROR as soon as the bytes so far cannot begin a
 * header (a client that speaks first without one is refused at its first
 * byte).
 *
 * Accepted:
 *   v1  "PROXY TCP4 SRC DST SPORT DPORT\r\n", likewise TCP6, and
 *       "PROXY UNKNOWN[ anything]\r\n"; at most PROXY_V1_MAX bytes with
 *       the CRLF; single spaces; ports 0..65535 in decimal.
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, family
 *       UNSPEC, INET, INET6 or UNIX with transport STREAM or DGRAM (UNSPEC
 *       only as UNSPEC/UNSPEC), then the address block and TLVs.  TLVs are
 *       skipped, but each must fit inside the declared length (a TLV cut
 *       short is an error).  A whole header is at most PROXY_MAX_LEN bytes.
 *   LOCAL (health checks from the balancer itself), UNSPEC and v1 UNKNOWN
 *   mean "keep the socket's own addresses" (keep_addr).
 */
#ifndef STAMPD_PROXY_H
#define STAMPD_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107      /* longest v1 line, CRLF included */
#define PROXY_V2_HEAD 16      /* signature, ver/cmd, fam, length */
/* Longest header accepted (v2 with TLVs); nginx uses the same bound. */
#define PROXY_MAX_LEN 4096

enum proxy_status {
    PROXY_NEED_MORE,   /* a prefix of a possible header: read more */
    PROXY_ERROR,       /* not a valid header: refuse the connection */
    PROXY_DONE,        /* a whole header in the first `consumed` bytes */
};

enum proxy_command {
    PROXY_CMD_LOCAL,   /* v2 LOCAL: the balancer's own connection */
    PROXY_CMD_PROXY,   /* relayed for a client (every v1 header) */
};

struct proxy_result {
    /* PROXY_NEED_MORE: the header, if valid, is at least this long
     * (always > len), so a DONE needs at least this many bytes; fewer may
     * already show an ERROR. */
    size_t need;
    /* PROXY_ERROR: a short reason for logs, e.g. "bad v1 address". */
    const char *error;
    /* PROXY_DONE: */
    size_t consumed;           /* header bytes; application data follows */
    int version;               /* 1 or 2 */
    enum proxy_command command;
    int keep_addr;             /* 1: use the socket's own addresses */
    int transport;             /* SOCK_STREAM, SOCK_DGRAM, 0 unknown */
    /* Unless keep_addr: the client (src) and the address it connected to
     * (dst), AF_INET, AF_INET6 or AF_UNIX (v2 only; sun_path as sent, an
     * abstract name starting with a NUL byte). */
    struct sockaddr_storage src, dst;
};

struct cidr;

/* May the peer at sa send a PROXY header?  1 when sa lies in one of the
 * n networks (--proxy-from), else 0; a Unix-socket peer (AF_UNIX) is
 * always allowed, being local by construction. */
int proxy_peer_allowed(const struct cidr *from, size_t n,
                       const struct sockaddr *sa);

/* Parse buf[0..len).  r is filled as described above for the returned
 * status (fields of the other statuses are zero). */
enum proxy_status proxy_parse(const void *buf, size_t len,
                              struct proxy_result *r);

#endif
