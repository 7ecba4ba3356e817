/*
 * admin.h - the admin port (docs/protocol.md, "The admin port"), served by
 * the master's own loop on the same poller as its signal pipe.  Read-only:
 * it renders the shared stats table and never touches the workers.
 *
 * Every admin fd is registered with a tag that has TAG_ADMIN set (tags.h);
 * the master hands such events to admin_event().  Connections are small
 * HTTP/1.1 exchanges with a request-size limit and a timeout.  Accepting
 * follows the reactor's rule (reactor.h): out of descriptors, the listener
 * leaves the poller for a pause, counted in the table's
 * admin_accept_pauses.
 */
#ifndef STAMPD_ADMIN_H
#define STAMPD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "opts.h"
#include "poller.h"
#include "stats.h"
#include "tags.h"

struct admin;

/* Serve the listening socket lfd (non-blocking) and register it.  The
 * caller keeps lfd and closes it after admin_destroy(), which closes only
 * the connections.  NULL with a message in err. */
struct admin *admin_create(poller_t *p, int lfd, const struct opts *o,
                           struct stats_table *t, char *err, size_t errlen);
void admin_destroy(struct admin *a);

/* Serve GET /chat (the operator console) through con; NULL: 404. */
struct console;
void admin_set_console(struct admin *a, struct console *con);

void admin_event(struct admin *a, uint64_t tag, unsigned mask, int64_t now_ms);
/* The turn's work: answer buffered requests (within a time budget),
 * expire idle or slow connections, resume accepting after a pause. */
void admin_tick(struct admin *a, int64_t now_ms);
/* Milliseconds until admin_tick() has work, -1 if none. */
int64_t admin_next_timeout_ms(const struct admin *a, int64_t now_ms);

#endif
