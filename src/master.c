/*
 * master.c - the supervising process.
 *
 * The master owns every listening socket: for each --listen address it
 * creates one SO_REUSEPORT socket per worker (the kernel spreads new
 * connections across the group), keeps all of them open, and forks workers
 * that each use only their own.  Because the master still holds a dead
 * worker's socket, connections waiting in its accept queue survive until the
 * replacement (forked onto the same socket) accepts them.
 *
 * The master does no client I/O.  Its loop (built on reactor.h, like the
 * workers') waits on a self-pipe fed by the signal handlers and on the
 * admin port.  Signals set flags; the loop acts:
 *   SIGCHLD            reap, count the dead worker's connections as closed
 *                      ("crash"), respawn (at most once a second per slot)
 *   SIGTERM/INT/QUIT   graceful stop: the workers drain, nothing respawns
 *   SIGHUP             reload: check the --config file, then hand over to a
 *                      new master running the same binary (handoff.c)
 *   SIGUSR2            binary upgrade: the same handoff to the binary now at
 *                      the path this one was started from
 *   SIGUSR1            reopen --log-file, and have the workers do the same
 *   SIGWINCH           ignored
 * Every turn also supervises: a worker whose heartbeat (stats.h) has not
 * advanced for --worker-timeout is killed and replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "compat.h"
#include "console.h"
#include "opchannel.h"
#include "config.h"
#include "cpus.h"
#include "handoff.h"
#include "inherit.h"
#include "leakcheck.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "pidfile.h"
#include "poller.h"
#include "priority.h"
#include "privs.h"
#include "reactor.h"
#include "proctitle.h"
#include "stats.h"
#include "sdnotify.h"
#include "worker.h"

#define FD_RESERVE 512        /* listeners, poller, pipes, lingering refusals */
#define RESPAWN_INTERVAL_MS 1000
#define KILL_GRACE_MS 2000    /* after --shutdown-timeout, before SIGKILL */
#define SUPERVISE_MS 250      /* heartbeat checks */
#define READY_POLL_MS 20      /* until every worker serves */
#define STATUS_MS 5000        /* systemd STATUS= updates */
#define MASTER_WAIT_MAX_MS 60000

struct slot {
    pid_t pid;
    int64_t spawned_ms;
    int64_t respawn_at;       /* 0: none scheduled */
    int64_t deaths[STATS_CRASHLOOP_DEATHS]; /* ring of recent death times */
    unsigned ndeaths;
};

struct master {
    struct opts *o;
    struct listener *ls;      /* [worker * nl + j] */
    int nl;
    struct stats_table *t;
    struct slot *slots;
    poller_t *p;
    struct admin *admin;
    struct console *console;  /* operator mode only (console.h) */
    int admin_fd;
    struct reactor_signals sigs;
    int unix_bound[3 * OPTS_MAX_ADDRS]; /* ours to remove at exit */
    int stopping;
    int failed;
    int64_t kill_at;
    pid_t pid;
    struct privs privs;
    struct inherit_set *inh;  /* sockets handed to us, NULL if none */
    int inherit_only;         /* the handed sockets are the listeners */
    int ready;                /* every worker has served */
    struct handoff ho;        /* a new master we started */
    int handed_over;          /* our successor serves: we only drain */
    int64_t next_supervise, next_status, next_watchdog;
    int64_t watchdog_ms;      /* half the systemd watchdog period, 0: none */
    long long wait_log;       /* rate limit of poller_wait failures */
    int64_t term_at;          /* --drain-delay: when the workers get SIGTERM */
    char stop_why[16];        /* the signal that began the stop */
    int ready_fd;             /* to the master we take over from, -1 */
    pid_t parent_master;      /* that master's pid, 0 if none */
    char **argv;              /* as we were started (reload, re-exec) */
    char exe[4096];           /* our binary's path at start (upgrade) */
};

static volatile sig_atomic_t got_stop, got_child, got_hup, got_usr1, got_usr2;

static void on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD: got_child = 1; break;
    case SIGHUP: got_hup = 1; break;
    case SIGUSR1: got_usr1 = 1; break;
    case SIGUSR2: got_usr2 = 1; break;
    default: got_stop = sig; break;
    }
    reactor_signal_wake();
}

/* --- set-up -------------------------------------------------------------- */

/* Like Redis for maxclients: take the hard limit; if even that cannot hold
 * --max-conns plus a reserve, serve fewer connections and say so. */
static void raise_nofile(struct opts *o)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    rlim_t need = (rlim_t)o->max_conns + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        unsigned fit = rl.rlim_cur > 2 * FD_RESERVE
                           ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                           : (unsigned)(rl.rlim_cur / 2);
        if (fit < 1)
            fit = 1;
        log_warn("open file limit is %llu, too low for --max-conns %u; "
                 "serving at most %u connections per worker "
                 "(raise the hard limit, e.g. ulimit -Hn)",
                 (unsigned long long)rl.rlim_cur, o->max_conns, fit);
        o->max_conns = fit;
    }
}

/* Every address of every kind, in the order the log line names them. */
static int listener_addrs(struct opts *o, struct addr **a, enum listener_kind *k)
{
    int n = 0;
    for (int j = 0; j < o->nlisten; j++, n++)
        a[n] = &o->listen[j], k[n] = LISTEN_LINE;
    for (int j = 0; j < o->nhttp; j++, n++)
        a[n] = &o->http[j], k[n] = LISTEN_HTTP;
    for (int j = 0; j < o->nudp; j++, n++)
        a[n] = &o->udp[j], k[n] = LISTEN_UDP;
    return n;
}

/* The handed-over entry for an address, with the address taken from the
 * socket (a configured port 0 becomes the port it really has). */
static struct inherited *take_inherited(struct master *m, enum inherit_kind kind,
                                        struct addr *a)
{
    struct inherited *e = m->inh ? inherit_take(m->inh, kind, a) : NULL;
    if (e) {
        unsigned flags = a->flags;
        *a = e->addr;
        a->flags = flags;
    }
    return e;
}

static int open_listeners(struct master *m, char *err, size_t errlen)
{
    struct opts *o = m->o;
    int nw = o->workers;
    int per_worker = compat_reuseport_balances();
    struct addr *addrs[3 * OPTS_MAX_ADDRS];
    enum listener_kind kinds[3 * OPTS_MAX_ADDRS];
    struct inherited *from[3 * OPTS_MAX_ADDRS];

    m->nl = listener_addrs(o, addrs, kinds);
    m->ls = calloc((size_t)nw * (size_t)(m->nl ? m->nl : 1), sizeof(*m->ls));
    if (!m->ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < nw * m->nl; i++)
        m->ls[i].fd = -1;

    for (int j = 0; j < m->nl; j++) {
        if (kinds[j] == LISTEN_UDP && addrs[j]->family == AF_UNIX) {
            snprintf(err, errlen, "--udp: unix sockets are not supported: %s",
                     addrs[j]->text);
            return -1;
        }
    }
    /* LISTEN_* kinds and INHERIT_* kinds share their values. */
    for (int j = 0; j < m->nl; j++)
        from[j] = take_inherited(m, (enum inherit_kind)kinds[j], addrs[j]);
    /* The plain bind first: a port someone else holds fails here with a
     * clear message instead of silently joining their SO_REUSEPORT group.
     * A handed-over socket is ours already. */
    for (int j = 0; j < m->nl; j++)
        if (!from[j] &&
            net_probe(addrs[j], kinds[j] == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM,
                      err, errlen) != 0)
            return -1;

    for (int j = 0; j < m->nl; j++) {
        const struct addr *a = addrs[j];
        struct inherited *e = from[j];
        int type = kinds[j] == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
        int shared = e ? e->shared || a->family == AF_UNIX
                       : a->family == AF_UNIX || !per_worker;
        for (int w = 0; w < nw; w++) {
            struct listener *l = &m->ls[w * m->nl + j];
            l->kind = kinds[j];
            l->addr = a;
            l->shared = shared;
            if (shared && w > 0) {
                l->fd = m->ls[j].fd;
                continue;
            }
            if (e && w < e->nfd) {
                l->fd = e->fds[w];
                e->fds[w] = -1;
                continue;
            }
            /* More workers than handed sockets: join their group. */
            l->fd = net_listen(a, type, !shared, err, errlen);
            if (l->fd < 0)
                return -1;
        }
        if (a->family == AF_UNIX)
            m->unix_bound[j] = 1;
    }
    return 0;
}

static int open_admin(struct master *m, char *err, size_t errlen)
{
    struct opts *o = m->o;
    struct inherited *e = take_inherited(m, INHERIT_ADMIN, &o->admin);

    if (e) {
        m->admin_fd = e->fds[0];
        e->fds[0] = -1;
        return 0;
    }
    if (net_probe(&o->admin, SOCK_STREAM, err, errlen) != 0)
        return -1;
    /* SO_REUSEPORT so that `stampd -t` can check the address beside us. */
    m->admin_fd = net_listen(&o->admin, SOCK_STREAM, 1, err, errlen);
    return m->admin_fd < 0 ? -1 : 0;
}

/* Handed sockets no listener took: an address removed from the
 * configuration, or a worker socket beyond our worker count.  Closing our
 * copy is safe: the old workers keep theirs until they have accepted what
 * is queued (with net.ipv4.tcp_migrate_req=1 the kernel also moves
 * connections still queued on a closing SO_REUSEPORT socket to another
 * socket of its group; see docs/operations.md). */
static void close_unclaimed(struct master *m)
{
    int n = 0;
    if (!m->inh)
        return;
    for (int i = 0; i < m->inh->n; i++) {
        struct inherited *e = &m->inh->e[i];
        for (int j = 0; j < e->nfd; j++)
            if (e->fds[j] >= 0) {
                close(e->fds[j]);
                e->fds[j] = -1;
                n++;
            }
    }
    if (n)
        log_info("closed %d handed-over socket%s the configuration no longer "
                 "uses", n, n == 1 ? "" : "s");
    m->inh = NULL;
}

static void close_listeners(struct master *m)
{
    for (int i = 0; i < m->o->workers * m->nl; i++) {
        struct listener *l = &m->ls[i];
        if (l->fd >= 0 && !(l->shared && i >= m->nl))
            close(l->fd);
        l->fd = -1;
    }
}

static void unlink_unix_paths(const struct master *m)
{
    if (!m->ls)
        return;
    for (int j = 0; j < m->nl; j++)
        if (m->unix_bound[j])
            (void)unlink(((const struct sockaddr_un *)&m->ls[j].addr->ss)->sun_path);
}

static void log_listening(const struct master *m, const char *prio)
{
    char buf[2048];
    size_t off = 0;
    const struct opts *o = m->o;

    static const char *const kind_name[] = { "line", "http", "udp" };

    for (int j = 0; j < m->nl && off < sizeof(buf); j++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s %s",
                                j ? ", " : "", kind_name[m->ls[j].kind],
                                m->ls[j].addr->text);
    if (o->admin_on && off < sizeof(buf))
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, ", admin %s",
                                o->admin.text);
    if (off >= sizeof(buf))
        off = sizeof(buf) - 1;
    buf[off] = '\0';
    log_info("listening on %s with %d worker%s (%s); workers: %s; master: %s",
             buf, o->workers, o->workers == 1 ? "" : "s", poller_backend(),
             cpus_reason(), prio);
}

static int setup_signals(struct master *m)
{
    /* SIGQUIT too is a graceful stop, never a core dump. */
    static const int handled[] = { SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGHUP,
                                   SIGUSR1, SIGUSR2, 0 };
    static const int ignored[] = { SIGPIPE, SIGWINCH, 0 };

    int rc = reactor_signals_open(&m->sigs);
    if (rc < 0)
        return rc;
    reactor_signals_handle(on_signal, SA_RESTART, handled);
    reactor_signals_handle(SIG_IGN, 0, ignored);
    return 0;
}

/* --- workers -------------------------------------------------------------- */

/* In the child: keep only this worker's sockets, then run the reactor. */
static void run_worker(struct master *m, int id, int op_fd, uint32_t *op_serial)
{
    static char role[32];
    struct opts *o = m->o;
    struct worker_cfg cfg;

    snprintf(role, sizeof(role), "worker %d", id);
    log_set_role(role);
    char title[48];
    snprintf(title, sizeof(title), "stampd: %s", role);
    proctitle_set(title);

    /* If the master dies (even by SIGKILL), stop gracefully rather than
     * serve unsupervised; checking the parent closes the race with a
     * master that died before the request was made. */
    (void)compat_parent_death_signal(SIGTERM);
    if (getppid() != m->pid)
        _exit(1);

    reactor_signals_close(&m->sigs);
    poller_destroy(m->p);
    if (m->admin_fd >= 0)
        close(m->admin_fd);
    console_close_in_child(m->console);
    handoff_close_in_child(&m->ho);
    if (m->ready_fd >= 0)
        close(m->ready_fd);
    for (int w = 0; w < o->workers; w++) {
        if (w == id)
            continue;
        for (int j = 0; j < m->nl; j++) {
            struct listener *l = &m->ls[w * m->nl + j];
            if (!l->shared && l->fd >= 0)
                close(l->fd);
        }
    }
    if (o->pin) {
        int rc = compat_pin_cpu(id);
        if (rc < 0)
            log_warn("cannot pin to CPU %d: %s", id, strerror(-rc));
    }
    int prc = priority_child_reset();
    if (prc < 0)
        log_warn("cannot reset the nice value: %s", strerror(-prc));
    prc = privs_drop(&m->privs);
    if (prc < 0) {
        log_error("cannot become user %s: %s", m->privs.name, strerror(-prc));
        _exit(2);
    }

    struct stats_slot *st = &m->t->slot[id];
    STAT_SET(st, pid, getpid());
    STAT_SET(st, started_unix_ms, clock_wall_ms());

    memset(&cfg, 0, sizeof(cfg));
    cfg.id = id;
    cfg.o = o;
    cfg.ls = &m->ls[id * m->nl];
    cfg.nls = m->nl;
    cfg.st = st;
    cfg.op_fd = op_fd;
    cfg.op_serial = op_serial;
    /* _exit() skips LeakSanitizer's exit-time check: run it here. */
    _exit(leakcheck_worker_exit(worker_main(&cfg)));
}

static int spawn(struct master *m, int id)
{
    sigset_t all, old;
    uint32_t *op_serial = NULL;
    int op_fd = m->console ? console_channel(m->console, id, &op_serial) : -1;

    /* Blocked across fork so that the child cannot run the master's
     * handlers before installing its own. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        run_worker(m, id, op_fd, op_serial); /* does not return */
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (op_fd >= 0)
        close(op_fd);
    if (pid < 0) {
        log_error("fork worker %d: %s", id, strerror(errno));
        return -1;
    }
    m->slots[id].pid = pid;
    m->slots[id].spawned_ms = clock_mono_ms();
    m->slots[id].respawn_at = 0;
    STAT_SET(&m->t->slot[id], pid, pid);
    return 0;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "stopped (status 0x%x)", status);
}

/* A death that counts towards crash-looping; updates respawns_recent. */
static void count_death(struct master *m, int id, int64_t now)
{
    struct slot *s = &m->slots[id];
    s->deaths[s->ndeaths++ % STATS_CRASHLOOP_DEATHS] = now;
}

static void update_crashloop(struct master *m, int64_t now)
{
    for (int i = 0; i < m->o->workers; i++) {
        const struct slot *s = &m->slots[i];
        uint32_t n = 0;
        for (unsigned k = 0; k < STATS_CRASHLOOP_DEATHS && k < s->ndeaths; k++)
            n += now - s->deaths[k] < STATS_CRASHLOOP_WINDOW_MS;
        __atomic_store_n(&m->t->slot[i].respawns_recent, n, __ATOMIC_RELAXED);
    }
}

/* The connections a dead worker held were closed by the kernel with it:
 * count them, as "crash", so that accepted = closed + active holds.  The
 * worker is gone and its replacement not yet forked, so the master is the
 * slot's only writer here. */
static void count_lost_connections(struct master *m, int id)
{
    struct stats_slot *st = &m->t->slot[id];
    uint64_t lost = STAT_GET(st, conns_active);
    if (lost) {
        STAT_ADD(st, closed_crash, lost);
        STAT_SET(st, conns_active, 0);
    }
}

static void reap(struct master *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == m->ho.pid) {
            int served = m->ho.succeeded;
            (void)handoff_reaped(&m->ho, pid, status);
            /* systemd waits for READY=1 after RELOADING=1. */
            if (!served && !m->stopping)
                (void)sdnotify_send("READY=1");
            continue;
        }
        int id = -1;
        for (int i = 0; i < m->o->workers; i++)
            if (m->slots[i].pid == pid)
                id = i;
        if (id < 0)
            continue;
        char why[96];
        describe_exit(status, why, sizeof(why));
        m->slots[id].pid = 0;
        count_lost_connections(m, id);
        STAT_SET(&m->t->slot[id], pid, 0);
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        int hung = (int)__atomic_load_n(&m->t->slot[id].hung, __ATOMIC_RELAXED);
        __atomic_store_n(&m->t->slot[id].hung, 0, __ATOMIC_RELAXED);

        /* A process-group or cgroup-wide SIGTERM reaches the workers and
         * us at once, and a worker may be reaped before the loop has seen
         * our own signal: a stop is a stop either way. */
        if (m->stopping || got_stop) {
            if (!clean) {
                m->failed = 1;
                log_warn("worker %d (pid %d) %s", id, (int)pid, why);
            }
            continue;
        }
        /* At most one fork per slot per second, so a worker that dies at
         * start cannot turn the master into a fork loop. */
        int64_t now = clock_mono_ms();
        int64_t at = m->slots[id].spawned_ms + RESPAWN_INTERVAL_MS;
        m->slots[id].respawn_at = at > now ? at : now;
        int looping = stats_slot_crash_looping(&m->t->slot[id]);
        count_death(m, id, now);
        update_crashloop(m, now);
        log_warn("worker %d (pid %d) %s%s; respawning%s", id, (int)pid, why,
                 hung ? " (hung)" : "", at > now ? " in under a second" : "");
        if (!looping && stats_slot_crash_looping(&m->t->slot[id]))
            log_warn("worker %d is crash-looping: %d deaths within %d s",
                      id, STATS_CRASHLOOP_DEATHS, STATS_CRASHLOOP_WINDOW_MS / 1000);
    }
}

/* Fork a replacement into slot `id`, which keeps counting in the slot. */
static int respawn(struct master *m, int id)
{
    stats_slot_reset_gauges(&m->t->slot[id]);
    STAT_INC(&m->t->slot[id], worker_restarts);
    return spawn(m, id);
}

static void respawn_due(struct master *m)
{
    int64_t now = clock_mono_ms();
    for (int i = 0; i < m->o->workers; i++) {
        struct slot *s = &m->slots[i];
        if (s->pid || !s->respawn_at || now < s->respawn_at)
            continue;
        if (respawn(m, i) != 0)
            s->respawn_at = now + RESPAWN_INTERVAL_MS;
    }
}

static int live_workers(const struct master *m)
{
    int n = 0;
    for (int i = 0; i < m->o->workers; i++)
        n += m->slots[i].pid != 0;
    return n;
}

/* Send the workers their SIGTERM and close our copies of the sockets. */
static void stop_workers(struct master *m, const char *why)
{
    m->term_at = 0;
    for (int i = 0; i < m->o->workers; i++) {
        struct slot *s = &m->slots[i];
        /* A slot waiting to be re-forked has clients in its accept queue
         * that only our copy of its sockets keeps: fork it now, so that it
         * serves them as it drains (it takes the SIGTERM once its handlers
         * are in place; spawn() forks with signals blocked). */
        if (!s->pid && s->respawn_at)
            (void)respawn(m, i);
        s->respawn_at = 0;
        if (s->pid)
            kill(s->pid, SIGTERM);
    }
    log_info("stopping: draining %d worker%s (timeout %us; %s)",
             live_workers(m), live_workers(m) == 1 ? "" : "s",
             m->o->shutdown_timeout, why);
    /* The workers accept what is queued, then close their copies; ours must
     * go too, or the sockets would stay open and queue clients nobody
     * serves.  After a handoff the new master holds the same sockets, so
     * closing ours loses nothing. */
    close_listeners(m);
    m->kill_at = clock_mono_ms() + (int64_t)m->o->shutdown_timeout * 1000 +
                 KILL_GRACE_MS;
}

/* A graceful stop.  With --drain-delay, /readyz turns 503 first and the
 * workers keep serving until the delay has passed, so that a load balancer
 * stops sending before any listener closes. */
static void begin_stop(struct master *m, const char *why)
{
    m->stopping = 1;
    __atomic_store_n(&m->t->draining, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&m->t->ready_state, STATS_DRAINING, __ATOMIC_RELAXED);
    if (!m->handed_over)
        (void)sdnotify_send("STOPPING=1");
    /* A successor still starting would be left serving alone. */
    handoff_abort(&m->ho, "the old master is stopping");
    snprintf(m->stop_why, sizeof(m->stop_why), "%s", why);
    if (!m->handed_over && m->o->drain_delay > 0) {
        m->term_at = clock_mono_ms() + (int64_t)m->o->drain_delay * 1000;
        m->kill_at = m->term_at + (int64_t)m->o->shutdown_timeout * 1000 +
                     KILL_GRACE_MS;
        log_info("stopping: /readyz fails now; the workers stop in %us "
                 "(--drain-delay; %s)", m->o->drain_delay, why);
        return;
    }
    stop_workers(m, why);
}

/* --- supervision ------------------------------------------------------------ */

/* Kill a worker whose loop has not turned for --worker-timeout: stopped
 * (SIGSTOP), spinning or blocked, it still owns its SO_REUSEPORT socket and
 * would take its share of new connections without ever answering.  The
 * replacement is forked on the same socket and serves what queued there. */
static void supervise(struct master *m, int64_t now)
{
    int64_t limit = (int64_t)m->o->worker_timeout * 1000;

    if (!limit || m->stopping)
        return;
    for (int i = 0; i < m->o->workers; i++) {
        struct slot *s = &m->slots[i];
        struct stats_slot *st = &m->t->slot[i];
        if (!s->pid || __atomic_load_n(&st->hung, __ATOMIC_RELAXED))
            continue;
        int64_t hb = __atomic_load_n(&st->heartbeat_ms, __ATOMIC_RELAXED);
        int64_t last = hb ? hb : s->spawned_ms;
        if (now - last <= limit)
            continue;
        log_warn("worker %d (pid %d) has not run its loop for %lld ms "
                 "(--worker-timeout %us); killing it", i, (int)s->pid,
                 (long long)(now - last), m->o->worker_timeout);
        __atomic_store_n(&st->hung, 1, __ATOMIC_RELAXED);
        STAT_INC(st, worker_hangs);
        kill(s->pid, SIGKILL);
    }
}

static int all_serving(const struct master *m)
{
    for (int i = 0; i < m->o->workers; i++)
        if (!m->slots[i].pid ||
            !__atomic_load_n(&m->t->slot[i].heartbeat_ms, __ATOMIC_RELAXED))
            return 0;
    return 1;
}

/* A new master after an upgrade or reload: systemd is to follow us. */
static void notify_ready_as_main(void)
{
    char msg[SDNOTIFY_MSG_MAX];
    int n = sdnotify_fmt_mainpid(msg, sizeof(msg), getpid());
    if (n > 0 && (size_t)n + sizeof("\n" SDNOTIFY_READY) <= sizeof(msg)) {
        memcpy(msg + n, "\n" SDNOTIFY_READY, sizeof("\n" SDNOTIFY_READY));
        (void)sdnotify_send(msg);
    }
}

/* Every worker serves for the first time: tell systemd, and the master we
 * take over from. */
static void became_ready(struct master *m)
{
    m->ready = 1;
    if (m->ready_fd >= 0) {
        /* The pid file names us before the old master starts leaving. */
        if (m->o->pid_file[0] && pidfile_write(m->o->pid_file) < 0)
            log_error("--pid-file %s: %s", m->o->pid_file, strerror(errno));
        notify_ready_as_main();
        handoff_signal_ready(m->ready_fd);
        m->ready_fd = -1;
    } else {
        (void)sdnotify_send("READY=1");
    }
    if (m->next_status)
        m->next_status = clock_mono_ms();  /* a first STATUS= right away */
    log_info("ready: %d worker%s serving", m->o->workers,
             m->o->workers == 1 ? "" : "s");
}

static void notify_status(struct master *m)
{
    uint64_t conns = 0, reqs = 0;
    for (unsigned i = 0; i < m->t->nworkers; i++) {
        const struct stats_slot *st = &m->t->slot[i];
        conns += STAT_GET(st, conns_active);
        reqs += STAT_GET(st, requests_line) + STAT_GET(st, requests_http) +
                STAT_GET(st, requests_udp);
    }
    char text[128], msg[SDNOTIFY_MSG_MAX];
    snprintf(text, sizeof(text), "%s: %llu connections open, %llu requests answered",
             m->stopping ? "stopping" : m->ready ? "serving" : "starting",
             (unsigned long long)conns, (unsigned long long)reqs);
    if (sdnotify_fmt_status(msg, sizeof(msg), text) < (int)sizeof(msg))
        (void)sdnotify_send(msg);
}

static void publish_state(struct master *m)
{
    uint32_t st = m->stopping ? STATS_DRAINING
                : handoff_pending(&m->ho) ? STATS_UPGRADING
                : m->ready ? STATS_READY : STATS_STARTING;
    __atomic_store_n(&m->t->ready_state, st, __ATOMIC_RELAXED);
}

/* --- upgrade and reload ------------------------------------------------------ */

/* $STAMPD_INHERIT for our sockets, and the list of their fds. */
static int describe_sockets(const struct master *m, char *buf, size_t len,
                            int *keep, int *nkeep)
{
    int fds[OPTS_MAX_WORKERS];

    buf[0] = '\0';
    *nkeep = 0;
    for (int j = 0; j < m->nl; j++) {
        const struct listener *l0 = &m->ls[j];
        int n = l0->shared ? 1 : m->o->workers;
        for (int w = 0; w < n; w++) {
            fds[w] = m->ls[w * m->nl + j].fd;
            keep[(*nkeep)++] = fds[w];
        }
        if (inherit_format(buf, len, (enum inherit_kind)l0->kind, l0->shared,
                           fds, n) != 0)
            return -1;
    }
    if (m->admin_fd >= 0) {
        keep[(*nkeep)++] = m->admin_fd;
        if (inherit_format(buf, len, INHERIT_ADMIN, 0, &m->admin_fd, 1) != 0)
            return -1;
    }
    return 0;
}

static void start_handoff(struct master *m, int reload)
{
    const char *what = reload ? "reload" : "upgrade";
    const char *sig = reload ? "SIGHUP" : "SIGUSR2";
    static char inherit[16384];
    static int keep[3 * OPTS_MAX_ADDRS * OPTS_MAX_WORKERS + 1];
    int nkeep;

    if (m->stopping) {
        log_warn("%s: %s ignored while stopping", sig, what);
        return;
    }
    if (handoff_pending(&m->ho)) {
        log_warn("%s: %s ignored: a new master (pid %d) is already starting",
                 sig, what, (int)m->ho.pid);
        return;
    }
    if (m->ready_fd >= 0) {  /* on_signals() waits for it */
        log_warn("%s: %s ignored: not serving yet", sig, what);
        return;
    }
    if (reload) {
        static struct opts check;
        char err[512];
        struct cpus_choice cpus = { .n = 1 };
        cpus_usable(&cpus);
        enum opts_result r = config_load(&check, proctitle_saved_argc(),
                                         m->argv, cpus.n,
                                         err, sizeof(err));
        if (r != OPTS_OK) {
            log_error("SIGHUP: reload refused: %s; still serving the running "
                      "configuration", r == OPTS_ERROR ? err : "--help or --version given");
            return;
        }
    }
    if (describe_sockets(m, inherit, sizeof(inherit), keep, &nkeep) != 0) {
        log_error("%s: %s: too many sockets to hand over; still serving", sig, what);
        return;
    }
    /* A reload runs this very binary (the /proc link reaches it even if
     * the file was replaced since); an upgrade, what is at our path now. */
    const char *path = reload ? "/proc/self/exe" : m->exe;
    if (handoff_start(&m->ho, what, path, m->argv, inherit, m->inherit_only,
                      keep, nkeep, clock_mono_ms()) != 0)
        return;
    if (poller_add(m->p, m->ho.fd, POLLER_READ, TAG_HANDOFF) != 0) {
        handoff_abort(&m->ho, "cannot watch its readiness pipe");
        return;
    }
    if (reload) {
        char msg[SDNOTIFY_MSG_MAX];
        if (sdnotify_fmt_reloading(msg, sizeof(msg),
                                   (uint64_t)clock_mono_ns() / 1000) < (int)sizeof(msg))
            (void)sdnotify_send(msg);
    }
    log_info("%s: %s: started a new master (pid %d) from %s; it takes over "
             "once its workers serve", sig, what, (int)m->ho.pid, path);
}

/* Our successor serves: drain, and leave it everything shared. */
static void hand_over(struct master *m)
{
    log_info("%s: the new master (pid %d) serves; stopping the old workers",
             m->ho.what, (int)m->ho.pid);
    m->handed_over = 1;
    m->next_status = 0;  /* the status is our successor's to tell */
    memset(m->unix_bound, 0, sizeof(m->unix_bound));
    if (m->admin) {
        admin_destroy(m->admin);
        m->admin = NULL;
    }
    console_destroy(m->console);  /* the old workers answer what they hold */
    m->console = NULL;
    if (m->admin_fd >= 0) {
        close(m->admin_fd);
        m->admin_fd = -1;
    }
    begin_stop(m, m->ho.what);
}

static void reopen_log(struct master *m)
{
    if (!m->o->log_file[0]) {
        log_info("SIGUSR1: no --log-file to reopen; ignored");
        return;
    }
    int rc = log_reopen();
    if (rc < 0) {
        log_error("SIGUSR1: cannot reopen %s: %s; still writing to the old file",
                  m->o->log_file, strerror(-rc));
        return;
    }
    log_info("SIGUSR1: reopened the log file %s", m->o->log_file);
    for (int i = 0; i < m->o->workers; i++)
        if (m->slots[i].pid)
            kill(m->slots[i].pid, SIGUSR1);
}

/* --- the loop --------------------------------------------------------------- */

static int next_timeout(const struct master *m)
{
    int64_t now = clock_mono_ms(), t = -1;

    for (int i = 0; i < m->o->workers; i++)
        reactor_timer_at(&t, m->slots[i].respawn_at, now);
    if (m->stopping) {
        reactor_timer_at(&t, m->kill_at, now);
        reactor_timer_at(&t, m->term_at, now);
    } else {
        reactor_timer_at(&t, m->next_supervise ? m->next_supervise : now, now);
        if (!m->ready)
            reactor_timer_in(&t, READY_POLL_MS);
    }
    reactor_timer_at(&t, m->next_status, now);
    reactor_timer_at(&t, m->next_watchdog, now);
    if (handoff_pending(&m->ho))
        reactor_timer_at(&t, m->ho.deadline, now);
    if (m->admin)
        reactor_timer_in(&t, admin_next_timeout_ms(m->admin, now));
    return reactor_wait_ms(t, MASTER_WAIT_MAX_MS);
}

static const char *stop_signal_name(int sig)
{
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    default: return "SIGTERM";
    }
}

static void timers(struct master *m, int64_t now)
{
    if (!m->stopping && now >= m->next_supervise) {
        supervise(m, now);
        update_crashloop(m, now);  /* old deaths leave the window */
        m->next_supervise = now + SUPERVISE_MS;
    }
    if (!m->ready && !m->stopping && all_serving(m))
        became_ready(m);
    if (m->next_status && now >= m->next_status) {
        notify_status(m);
        m->next_status = now + STATUS_MS;
    }
    if (m->next_watchdog && now >= m->next_watchdog) {
        (void)sdnotify_send("WATCHDOG=1");
        m->next_watchdog = now + m->watchdog_ms;
    }
    if (handoff_check_deadline(&m->ho, now))
        publish_state(m);
    if (m->stopping && m->term_at && now >= m->term_at)
        stop_workers(m, m->stop_why);
}

static void on_handoff_event(struct master *m)
{
    int r = handoff_readable(&m->ho);
    if (r == 1)
        hand_over(m);
}

static void on_signals(struct master *m)
{
    if (got_stop && !m->stopping)
        begin_stop(m, stop_signal_name(got_stop));
    if (got_child) {
        got_child = 0;
        reap(m);
    }
    if (got_usr1) {
        got_usr1 = 0;
        reopen_log(m);
    }
    /* A successor asked to hand over before its workers serve waits until
     * they do: its own predecessor is still waiting for its word.  (A
     * master started on its own does not wait: a reload may be what fixes
     * workers that cannot start.) */
    if ((got_hup || got_usr2) && (m->ready_fd < 0 || m->stopping)) {
        int reload = got_hup != 0;
        got_hup = got_usr2 = 0;
        start_handoff(m, reload);
    }
}

/* Supervision comes first in every turn: signals, reaping and respawning
 * are handled before any admin request of the same turn is served, so
 * that admin traffic cannot delay the replacement of a dead worker. */
static int master_loop(struct master *m)
{
    struct poller_event ev[64];

    for (;;) {
        int n = poller_wait(m->p, ev, 64, next_timeout(m));
        if (n < 0 && n != -EINTR)
            log_ratelimited(LOG_ERROR, &m->wait_log, 10000, "poller_wait: %s",
                            strerror(-n));
        for (int i = 0; i < n; i++) {
            if (ev[i].data == TAG_SIGNAL)
                reactor_signals_drain(&m->sigs);
            else if (ev[i].data == TAG_HANDOFF)
                on_handoff_event(m);
        }
        on_signals(m);
        timers(m, clock_mono_ms());
        publish_state(m);
        if (!m->stopping)
            respawn_due(m);
        int64_t now = clock_mono_ms();
        for (int i = 0; i < n; i++) {
            if ((ev[i].data & TAG_ADMIN) && m->admin)
                admin_event(m->admin, ev[i].data, ev[i].mask, now);
            else if ((ev[i].data & TAG_IPC) && m->console)
                console_event(m->console, ev[i].data, ev[i].mask);
        }
        if (m->admin)
            admin_tick(m->admin, now);
        if (!m->stopping)
            continue;
        if (live_workers(m) == 0 && !m->term_at)
            break;
        if (clock_mono_ms() >= m->kill_at) {
            log_error("workers did not stop in time; killing them");
            for (int i = 0; i < m->o->workers; i++)
                if (m->slots[i].pid)
                    kill(m->slots[i].pid, SIGKILL);
            m->failed = 1;
            m->kill_at = clock_mono_ms() + 60000;
        }
    }
    return m->failed ? 1 : 0;
}

/* --- start --------------------------------------------------------------- */

/* Read every handed socket's address from the socket, and make it
 * close-on-exec and non-blocking (workers accept until EAGAIN; systemd
 * hands blocking sockets). */
static int inherit_describe(struct inherit_set *s, char *err, size_t errlen)
{
    for (int i = 0; i < s->n; i++) {
        struct inherited *e = &s->e[i];
        struct addr *a = &e->addr;
        for (int j = 0; j < e->nfd; j++) {
            int fl = fcntl(e->fds[j], F_GETFL);
            if (fcntl(e->fds[j], F_SETFD, FD_CLOEXEC) == -1 || fl == -1 ||
                fcntl(e->fds[j], F_SETFL, fl | O_NONBLOCK) == -1) {
                snprintf(err, errlen, "inherited %s socket fd %d: %s",
                         inherit_kind_name(e->kind), e->fds[j], strerror(errno));
                return -1;
            }
        }
        memset(a, 0, sizeof(*a));
        a->len = sizeof(a->ss);
        if (getsockname(e->fds[0], (struct sockaddr *)&a->ss, &a->len) == -1) {
            snprintf(err, errlen, "inherited %s socket fd %d: %s",
                     inherit_kind_name(e->kind), e->fds[0], strerror(errno));
            return -1;
        }
        a->family = a->ss.ss_family;
        addr_format(a);
    }
    return 0;
}

/* Sockets from systemd, or from the master we take over from. */
static int adopt_sockets(struct master *m, char *err, size_t errlen)
{
    static struct inherit_set set;
    static struct sdnotify_fd sd[INHERIT_MAX];
    const char *text = getenv(INHERIT_ENV);
    int n = sdnotify_listen_fds(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
                                getenv("LISTEN_FDNAMES"), getpid(), sd,
                                INHERIT_MAX, err, errlen);

    /* Meant for us or not, children must not take them for theirs. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n < 0)
        return -1;
    memset(&set, 0, sizeof(set));
    if (n > 0) {
        for (int i = 0; i < n; i++) {
            const char *name = sd[i].name;
            int k = name[0] && strcmp(name, "unknown") != 0
                        ? inherit_kind_parse(name, strlen(name))
                        : INHERIT_LINE;
            if (k < 0) {
                snprintf(err, errlen, "socket activation: unknown socket name "
                         "'%s' (expected line, http, udp or admin)", name);
                return -1;
            }
            struct inherited *e = &set.e[set.n++];
            e->kind = (enum inherit_kind)k;
            e->shared = 1;
            e->nfd = 1;
            e->fds[0] = sd[i].fd;
        }
        m->inherit_only = 1;
    } else if (text) {
        if (inherit_parse(&set, text, err, errlen) != 0)
            return -1;
        m->inherit_only = getenv(HANDOFF_ONLY_ENV) != NULL;
        m->ready_fd = handoff_ready_fd();
        m->parent_master = getppid();
    } else {
        return 0;
    }
    unsetenv(INHERIT_ENV);
    unsetenv(HANDOFF_ONLY_ENV);
    if (inherit_describe(&set, err, errlen) != 0)
        return -1;
    m->inh = &set;
    if (!m->inherit_only)
        return 0;
    /* The handed sockets are the listeners: replace the configured ones. */
    struct opts *o = m->o;
    o->nlisten = o->nhttp = o->nudp = 0;
    for (int i = 0; i < set.n; i++) {
        struct inherited *e = &set.e[i];
        switch (e->kind) {
        case INHERIT_LINE: if (o->nlisten < OPTS_MAX_ADDRS) o->listen[o->nlisten++] = e->addr; break;
        case INHERIT_HTTP: if (o->nhttp < OPTS_MAX_ADDRS) o->http[o->nhttp++] = e->addr; break;
        case INHERIT_UDP: if (o->nudp < OPTS_MAX_ADDRS) o->udp[o->nudp++] = e->addr; break;
        case INHERIT_ADMIN: o->admin = e->addr; o->admin_on = 1; break;
        }
    }
    return 0;
}

static void resolve_exe(struct master *m)
{
    ssize_t n = readlink("/proc/self/exe", m->exe, sizeof(m->exe) - 1);
    if (n > 0) {
        m->exe[n] = '\0';
        return;
    }
    snprintf(m->exe, sizeof(m->exe), "%s", m->argv[0]);
}

int master_run(struct opts *o)
{
    static struct master m;
    char err[512];
    int rc = 1;

    memset(&m, 0, sizeof(m));
    m.o = o;
    m.pid = getpid();
    m.admin_fd = -1;
    m.ready_fd = -1;
    m.sigs.rd = m.sigs.wr = -1;
    m.argv = proctitle_saved_argv();
    handoff_init(&m.ho);
    resolve_exe(&m);
    proctitle_set("stampd: master");

    if (o->log_file[0]) {
        int lrc = log_open_file(o->log_file, (uid_t)-1);
        if (lrc < 0) {
            snprintf(err, sizeof(err), "--log-file %s: %s", o->log_file,
                     strerror(-lrc));
            goto fail;
        }
    }
    if (privs_resolve(&m.privs, o->user, err, sizeof(err)) != 0) {
        fprintf(stderr, "stampd: %s\n", err);
        return 2;  /* a configuration error, as for the options */
    }
    if (o->log_file[0] && m.privs.drop)
        (void)log_open_file(o->log_file, m.privs.uid);
    raise_nofile(o);
    int src = setup_signals(&m);
    if (src < 0) {
        log_error("signal pipe: %s", strerror(-src));
        return 1;
    }
    if (adopt_sockets(&m, err, sizeof(err)) != 0)
        goto fail;
    if (o->pid_file[0] &&
        pidfile_check(o->pid_file, m.parent_master, err, sizeof(err)) != 0)
        goto fail;
    if (open_listeners(&m, err, sizeof(err)) != 0)
        goto fail;
    if (o->admin_on && open_admin(&m, err, sizeof(err)) != 0)
        goto fail;
    close_unclaimed(&m);
    /* A new master writes it once it serves (became_ready). */
    if (o->pid_file[0] && m.ready_fd < 0 && pidfile_write(o->pid_file) < 0) {
        snprintf(err, sizeof(err), "--pid-file %s: %s", o->pid_file,
                 strerror(errno));
        goto fail;
    }
    m.t = stats_table_create((unsigned)o->workers);
    m.slots = calloc((size_t)o->workers, sizeof(*m.slots));
    m.p = poller_create(64);
    if (!m.t || !m.slots || !m.p) {
        snprintf(err, sizeof(err), "cannot start: %s", strerror(errno));
        goto fail;
    }
    m.t->start_unix_ms = clock_wall_ms();
    int prc = poller_add(m.p, m.sigs.rd, POLLER_READ, TAG_SIGNAL);
    if (prc < 0) {
        snprintf(err, sizeof(err), "poller: %s", strerror(-prc));
        goto fail;
    }
    if (m.admin_fd >= 0) {
        m.admin = admin_create(m.p, m.admin_fd, o, m.t, err, sizeof(err));
        if (!m.admin)
            goto fail;
    }
    /* The console attaches through the admin port (opts.c requires it). */
    if (m.admin && opchan_wanted(o)) {
        m.console = console_create(m.p, o, err, sizeof(err));
        if (!m.console)
            goto fail;
        admin_set_console(m.admin, m.console);
    }
    int64_t wd = sdnotify_watchdog_usec(getenv("WATCHDOG_USEC"),
                                        getenv("WATCHDOG_PID"), getpid());
    if (wd < 0)
        log_warn("ignoring a malformed $WATCHDOG_USEC or $WATCHDOG_PID");
    if (wd > 0) {
        m.watchdog_ms = wd / 2000 ? wd / 2000 : 1;
        m.next_watchdog = clock_mono_ms();
    }
    if (getenv("NOTIFY_SOCKET"))
        m.next_status = clock_mono_ms() + STATUS_MS;

    char prio[96];
    (void)priority_master_raise(o->master_priority, prio, sizeof(prio));
    log_listening(&m, prio);
    for (int i = 0; i < o->workers; i++)
        if (spawn(&m, i) != 0) {
            /* Whoever did start is stopped the normal way. */
            got_stop = SIGTERM;
            m.failed = 1;
            break;
        }
    rc = master_loop(&m);
    if (rc == 0)
        log_info("stopped");
    else
        log_warn("stopped; some connections were cut or a worker failed");
    goto out;

fail:
    fprintf(stderr, "stampd: %s\n", err);
    rc = 1;
out:
    if (m.admin)
        admin_destroy(m.admin);
    console_destroy(m.console);
    if (m.ls)
        close_listeners(&m);
    if (m.admin_fd >= 0)
        close(m.admin_fd);
    if (m.ready_fd >= 0)
        close(m.ready_fd);
    unlink_unix_paths(&m);
    if (o->pid_file[0])
        pidfile_remove(o->pid_file);
    return rc;
}
