/*
 * clock_edge.c - the second-boundary alarm (see clock_edge.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "clock_edge.h"

#define STEP_NS (100 * 1000000LL) /* a wall-clock move that re-arms */

#if defined(TIMER_ABSTIME) && defined(SIGEV_SIGNAL)
static timer_t edge_timer;
static int64_t armed_wall_mono_ns;

static void on_alarm(int sig)
{
    (void)sig;
    clock_edge_near = 1;
}

/* The timer's first expiry: CLOCK_EDGE_LEAD_MS before the next second
 * boundary that is still ahead of `now`; then every second. */
static int arm(int64_t wall_mono_ns)
{
    struct timespec now;
    struct itimerspec it;

    clock_gettime(CLOCK_REALTIME, &now);
    memset(&it, 0, sizeof(it));
    it.it_value.tv_sec = now.tv_sec + (clock_edge_within(&now) ? 1 : 0);
    it.it_value.tv_nsec = 1000000000L - CLOCK_EDGE_LEAD_MS * 1000000L;
    it.it_interval.tv_sec = 1;
    if (timer_settime(edge_timer, TIMER_ABSTIME, &it, NULL) != 0)
        return -errno;
    armed_wall_mono_ns = wall_mono_ns;
    /* Whatever the alarm missed while it was being set: check once. */
    clock_edge_near = 1;
    return 0;
}

int clock_edge_start(struct clock_cache *c)
{
    struct sigaction sa;
    struct sigevent sev;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(CLOCK_EDGE_SIGNAL, &sa, NULL) != 0)
        return -errno;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = CLOCK_EDGE_SIGNAL;
    if (timer_create(CLOCK_REALTIME, &sev, &edge_timer) != 0)
        return -errno;
    int rc = arm(c->wall_mono_ns);
    if (rc < 0) {
        timer_delete(edge_timer);
        return rc;
    }
    c->edge = 1;
    return 0;
}

void clock_edge_follow(struct clock_cache *c)
{
    int64_t moved = c->wall_mono_ns - armed_wall_mono_ns;

    if (c->edge && (moved > STEP_NS || moved < -STEP_NS) &&
        arm(c->wall_mono_ns) != 0) {
        /* The timer is off its grid now: read the clock at every check. */
        timer_delete(edge_timer);
        c->edge = 0;
    }
}
#else
int clock_edge_start(struct clock_cache *c)
{
    (void)c;
    return -ENOSYS;
}

void clock_edge_follow(struct clock_cache *c)
{
    (void)c;
}
#endif
