/*
 * console.h - the operator console, master side: one channel per worker
 * (opchannel.h) and at most one attached `stampctl chat` session, both on
 * the master's poller.  Exists only when some listener is in operator mode
 * (opchan_wanted()).
 *
 * A console attaches through the admin port (admin.c checks the request:
 * `GET /chat` with `Upgrade: stampd-chat`, console_check() decides) and is
 * then handed over here: "101 Switching Protocols", then lines both ways.
 * The master keeps the waiting lines' ids in arrival order, so that a
 * reply without an id goes to the oldest line of all, and routes a reply
 * to the worker whose slot the id names.  Attaching and detaching are
 * broadcast to the workers; a worker that starts while a console is
 * attached is told at once.
 */
#ifndef STAMPD_CONSOLE_H
#define STAMPD_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "opts.h"
#include "poller.h"
#include "sbuf.h"

#include "tags.h"

struct console;

/* NULL with a message in err (out of memory). */
struct console *console_create(poller_t *p, const struct opts *o, char *err,
                               size_t errlen);
/* Close the channels and the attached console. */
void console_destroy(struct console *con);

/* Before forking worker `slot`: a fresh channel (the previous one of the
 * slot, if any, is closed).  Returns the worker's end (the caller closes
 * it after the fork), or -1 when none could be made (the worker then
 * answers "ERR no operator"); *serial gets the slot's shared counter. */
int console_channel(struct console *con, int slot, uint32_t **serial);
/* In a forked worker: close every descriptor of the master's side. */
void console_close_in_child(struct console *con);

void console_event(struct console *con, uint64_t tag, unsigned mask);

/* May a console attach now?  `auth` is the request's Authorization
 * header ("" if none); `admin` the admin address.  0, or 403 / 409 with
 * the response body (one line) in *why. */
int console_check(struct console *con, const char *auth, struct sbuf *why);
/* Take over an admin connection whose request console_check() allowed;
 * `early` holds bytes that followed the request. */
void console_take(struct console *con, int fd, const char *early, size_t n);

#endif
