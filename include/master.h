#ifndef STAMPD_MASTER_H
#define STAMPD_MASTER_H

#include "opts.h"

/* Create the sockets (or adopt those handed over by systemd or by the
 * master we take over from, see inherit.h and handoff.h), fork and
 * supervise the workers, and act on signals until a graceful stop or a
 * handover to a new master completes.  Returns the exit status: 0; 1 on a
 * runtime failure (an address in use, connections cut at the stop); 2 when
 * the options cannot be served (--user).  proctitle_init() must have run. */
int master_run(struct opts *o);

#endif
