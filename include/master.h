#ifndef STAMPD_MASTER_H
#define STAMPD_MASTER_H

#include "opts.h"

/* Create the sockets, fork and supervise the workers, stop gracefully on
 * SIGTERM/SIGINT.  Returns the exit status (0, 1). */
int master_run(struct opts *o);

#endif
