/*
 * checkconf.h - `stampd -t`: check a configuration without starting.
 */
#ifndef STAMPD_CHECKCONF_H
#define STAMPD_CHECKCONF_H

#include "opts.h"

/* Check what the options need from the system (addresses, user, pid and
 * log files), print "configuration ok" on stdout or "stampd: ERROR" on
 * stderr, and return the exit status: 0 or 2.
 *
 * Each TCP or UDP address is bound, without listening, by a socket with
 * SO_REUSEADDR and SO_REUSEPORT, then closed.  That finds addresses that
 * are not local (EADDRNOTAVAIL), ports the user may not bind (EACCES) and
 * ports held by a program that does not share them, but not a running
 * stampd of the same user, whose sockets allow sharing: so -t can check
 * the file a running server is about to reload.  A unix: address checks
 * that its directory exists and is writable. */
int checkconf_run(struct opts *o);

#endif
