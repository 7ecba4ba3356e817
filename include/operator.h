/*
 * operator.h - operator mode inside a worker: client lines held for the
 * person at `stampctl chat` (docs/operator.md).  Internal to the reactor.
 *
 * A connection on an operator listener (--reply operator, or ADDR,operator)
 * is marked CF_OPERATOR.  Each line it sends is not answered but held: the
 * worker sends it to the master over its channel (opchannel.h), which shows
 * it to the attached console, and keeps only a small record (which
 * connection, its terminator, when it is due).  Records sit in one FIFO
 * per worker; every record has the same timeout (--line-timeout), so the
 * FIFO is also in expiry order and its head is the next timer.
 *
 * A connection's answers leave in the order of its lines: the operator's
 * reply for connection N answers N's oldest held line, a timeout answers
 * the oldest line of all (which is also its connection's oldest), and a
 * line refused for a full queue is answered right away only when its
 * connection holds nothing, else it is counted on the connection's newest
 * record and answered after it.
 *
 * Answers:
 *   operator's text   "[" TIMESTAMP "] " text + the line's terminator
 *   no console        "ERR no operator\n" at once (also after a detach,
 *                     for every held line, and at a graceful stop)
 *   --line-timeout    "ERR no operator\n"; the connection stays open
 *   queue full        "ERR operator queue full\n" (--operator-queue lines
 *                     per worker), the connection stays open
 * A connection whose held lines (payload and terminator bytes, plus the
 * refusals owed) exceed --max-output is not read until they fall below
 * half, as back-pressure works for unread replies.
 */
#ifndef STAMPD_OPERATOR_H
#define STAMPD_OPERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

#include "tags.h"

/* Set up w->op when the worker has an operator listener (cfg->op_fd >= 0
 * or not: without a channel every line gets "ERR no operator").  0 or a
 * negative errno. */
int operator_init(struct worker *w);
void operator_free(struct worker *w);

/* The channel is readable (TAG_IPC). */
void operator_event(struct worker *w);

/* A CF_OPERATOR connection opened, or is closing (its held lines are
 * forgotten: nobody is left to read their answers). */
void operator_opened(struct worker *w, struct conn *c);
void operator_closed(struct worker *w, struct conn *c);

/* The framer's sink for a CF_OPERATOR connection: hold the line (tlen:
 * its terminator's length, 0 for a chunk).  LINE_OK, LINE_PAUSE over
 * --max-output, LINE_FAIL when no room for an error line. */
int operator_line(struct worker *w, struct conn *c, const char *payload,
                  size_t len, int tlen);

/* Lines c holds for the operator (its close waits for their answers). */
unsigned operator_held(const struct worker *w, const struct conn *c);
/* May a paused c be read again (its held bytes below half --max-output)? */
int operator_may_resume(const struct worker *w, const struct conn *c);
/* Answer every line c holds with "ERR no operator" (before an error line
 * that closes c, so that it owes nothing). */
void operator_release(struct worker *w, struct conn *c);

/* Timers: milliseconds until operator_expire() has work, -1 if none. */
int64_t operator_next_ms(const struct worker *w, int64_t now_ms);
void operator_expire(struct worker *w);

/* A graceful stop: answer everything held, hold nothing from now on. */
void operator_drain(struct worker *w);

#endif
