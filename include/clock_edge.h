/*
 * clock_edge.h - the second-boundary alarm of a worker.
 *
 * A stamp must never be older than its request (clock.h), so a worker has
 * to notice a second boundary that passes in the middle of a busy loop
 * turn.  Reading the clock after every read costs a vDSO call per read;
 * instead (nginx's timer_resolution, used the other way round) a POSIX
 * timer on the wall clock fires CLOCK_EDGE_LEAD_MS before every second
 * boundary and its SIGALRM handler sets clock_edge_near.  clock_refresh()
 * reads the clock only while the flag is set, so a read costs one load for
 * the other 95 % of each second.
 *
 * The signal is blocked while the loop sleeps in the poller
 * (poller_block_signal()), so an idle worker is not woken once a second:
 * the flag is set on the way out of the wait instead.  A step of the wall
 * clock moves the timer's grid away from the seconds; clock_edge_follow(),
 * once per wake-up, re-arms it when the wall clock has moved against the
 * monotonic one.
 */
#ifndef STAMPD_CLOCK_EDGE_H
#define STAMPD_CLOCK_EDGE_H

#include "clock.h"

/* The signal the alarm raises. */
#define CLOCK_EDGE_SIGNAL SIGALRM

/* Install the handler and start the timer; set c->edge.  0, or a negative
 * errno (no POSIX timers here: c->edge stays 0 and every check reads the
 * clock). */
int clock_edge_start(struct clock_cache *c);
/* After clock_update(): re-arm if the wall clock stepped (more than
 * 100 ms against the monotonic clock since the timer was armed); should
 * that fail, c->edge is cleared. */
void clock_edge_follow(struct clock_cache *c);

#endif
