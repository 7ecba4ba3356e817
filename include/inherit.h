/*
 * inherit.h - listening sockets handed to a new master instead of bound by
 * it: by the old master at a binary upgrade or reload (through exec, listed
 * in $STAMPD_INHERIT), or by systemd (socket activation, sysd.h).
 *
 * $STAMPD_INHERIT lists one entry per address, ';'-separated:
 *   KIND=FD,FD,...   one SO_REUSEPORT socket per worker, in worker order
 *   KIND*=FD         one socket shared by every worker (unix:, systemd)
 * KIND is line, http, udp or admin.  The address of each entry is read
 * from the socket itself (getsockname), so nothing in the text can disagree
 * with the kernel.
 */
#ifndef STAMPD_INHERIT_H
#define STAMPD_INHERIT_H

#include <stddef.h>
#include <sys/socket.h>

#include "addr.h"
#include "opts.h"

#define INHERIT_ENV "STAMPD_INHERIT"
#define INHERIT_MAX (3 * OPTS_MAX_ADDRS + 1)

enum inherit_kind { INHERIT_LINE = 0, INHERIT_HTTP, INHERIT_UDP, INHERIT_ADMIN };

struct inherited {
    enum inherit_kind kind;
    int shared;
    int nfd;
    int fds[OPTS_MAX_WORKERS];
    struct addr addr;          /* from getsockname of fds[0] */
    int claimed;               /* taken by a listener of the new master */
};

struct inherit_set {
    struct inherited e[INHERIT_MAX];
    int n;
};

/* Parse $STAMPD_INHERIT text into s (addresses not yet read).  0 or -1 with
 * a message in err. */
int inherit_parse(struct inherit_set *s, const char *text, char *err,
                  size_t errlen);

/* Read every entry's address from its socket and make its fds
 * close-on-exec.  0 or -1 with a message in err. */
int inherit_describe(struct inherit_set *s, char *err, size_t errlen);

/* Append one entry to buf (NUL-terminated; 0, or -1 when it does not fit). */
int inherit_format(char *buf, size_t len, enum inherit_kind kind, int shared,
                   const int *fds, int nfd);

/* The unclaimed entry of `kind` whose address is a (a port of 0 in a
 * matches any port: the first such entry is the one started with it), or
 * NULL.  The entry is marked claimed. */
struct inherited *inherit_take(struct inherit_set *s, enum inherit_kind kind,
                               const struct addr *a);

/* "line", "http", "udp", "admin" <-> kind (-1 if unknown). */
const char *inherit_kind_name(enum inherit_kind k);
int inherit_kind_parse(const char *name, size_t len);

#endif
