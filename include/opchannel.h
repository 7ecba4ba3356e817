/*
 * opchannel.h - the operator console's messages and text (pure, no I/O).
 *
 * Operator mode (--reply operator, or a listener written ADDR,operator)
 * holds every client line for a person attached with `stampctl chat`.  Three
 * parties talk:
 *
 *   worker <-> master   one SOCK_SEQPACKET socketpair per worker; one
 *                       message per packet, encoded by opmsg_encode()
 *   master <-> console  the admin connection after "101 Switching
 *                       Protocols": lines both ways; the master writes
 *                       the event lines of opconsole_format() and reads
 *                       the operator's lines with opconsole_parse()
 *
 * Connection ids are unique within one master and short to type: worker
 * slot s (0 .. W-1) numbers its operator connections with a serial n = 1,
 * 2, ... that survives the worker's respawns, and the id is
 * (n - 1) * W + s + 1.  So with two workers, worker 0 has ids 1, 3, 5 ...
 * and worker 1 has 2, 4, 6 ..., and the slot is (id - 1) % W.
 */
#ifndef STAMPD_OPCHANNEL_H
#define STAMPD_OPCHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "opts.h"
#include "sbuf.h"

/* Message types.  Worker -> master: */
enum opmsg_type {
    OPM_CONNECT = 1, /* an operator connection opened (addr) */
    OPM_LINE,        /* a client line is held (addr, data) */
    OPM_CLOSED,      /* the connection closed; its held lines are gone */
    OPM_TIMEOUT,     /* its oldest held line got "ERR no operator" */
    OPM_FULL,        /* a line was refused: "ERR operator queue full" */
    OPM_NOLINE,      /* a reply found no held line (the id is gone) */
    /* Master -> worker: */
    OPM_ATTACH,      /* a console is attached: hold lines */
    OPM_DETACH,      /* none is: answer held lines "ERR no operator" */
    OPM_REPLY,       /* answer the oldest held line of `id` with data */
    OPM_NTYPES,
};

/* A client line is shown to the console cut to this many bytes (the
 * client's reply is not affected); a packet is never larger than
 * OPMSG_MAX. */
#define OPMSG_DATA_MAX 4096
#define OPMSG_ADDR_MAX 64           /* "[v6]:port", "unix" */
#define OPMSG_HEAD 8
/* head, address, data, and OPM_LINE's uncut length (4 bytes) */
#define OPMSG_MAX (OPMSG_HEAD + OPMSG_ADDR_MAX + OPMSG_DATA_MAX + 4)

struct opmsg {
    enum opmsg_type type;
    uint32_t id;
    uint32_t full_len;   /* OPM_LINE: the line's length before any cut */
    char addr[OPMSG_ADDR_MAX]; /* NUL-terminated, may be "" */
    const char *data;    /* decoded: points into the packet */
    size_t len;
};

/* Write m into buf (at least OPMSG_MAX bytes); data beyond OPMSG_DATA_MAX
 * is cut.  Returns the packet's length. */
size_t opmsg_encode(char *buf, const struct opmsg *m);

/* Read one packet.  0, or -1 when it is malformed (short, unknown type,
 * lengths that do not add up, a NUL inside the address). */
int opmsg_decode(const char *buf, size_t n, struct opmsg *m);

/* The id of serial n (>= 1) of worker slot s of w workers, and back. */
uint32_t opchan_id(unsigned slot, uint32_t serial, unsigned nworkers);
unsigned opchan_slot(uint32_t id, unsigned nworkers);

/* One line the operator typed (without its LF; a CR before it is
 * ignored):
 *   "12 text", "#12 text"  answer connection 12 (its oldest held line)
 *   "text"                 answer the oldest held line of all
 *   ". text"               the same, for text that starts with a number
 * Returns 1 with *id set for an addressed reply, 0 for the oldest line,
 * -1 for an empty line (nothing to send).  *text / *tlen is the reply text
 * ("12" alone answers with an empty text). */
int opconsole_parse(const char *line, size_t n, uint32_t *id,
                    const char **text, size_t *tlen);

/* Append the console's line for a worker message, LF included:
 *   + #12 connected from 127.0.0.1:5555
 *   [#12 127.0.0.1:5555] hello          (the client's bytes as they are)
 *   - #12 closed
 *   ! #12 timed out: sent "ERR no operator"
 *   ! #12 queue full: sent "ERR operator queue full"
 *   ? #12 has no waiting line
 * Nothing for the master -> worker types. */
void opconsole_format(struct sbuf *out, const struct opmsg *m);

/* May a console attach through an admin port bound to `admin`?  Without
 * --admin-token (`token` ""), only a unix or loopback admin address
 * serves the chat channel; with one, every attach must present it
 * (`presented`, the Authorization header's "Bearer TOKEN" value, may be
 * NULL).  0 when allowed, else 403 with a reason for the response body. */
int opchan_admit(const struct addr *admin, const char *token,
                 const char *presented, const char **why);

/* 1 when some listener is in operator mode (--reply operator, or a
 * --listen ADDR,operator): the master sets up the channels and the
 * console only then. */
int opchan_wanted(const struct opts *o);

/* 1 for a loopback IPv4/IPv6 address (an IPv4-mapped one counts). */
int opchan_loopback(const struct addr *a);

#endif
