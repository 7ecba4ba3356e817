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
 * The master does no client I/O.  Its loop waits on a self-pipe fed by the
 * signal handlers (SIGCHLD: reap and respawn; SIGTERM/SIGINT: forward and
 * wait for the workers to drain) and, with issue 3, the admin port.
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
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "compat.h"
#include "leakcheck.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "poller.h"
#include "stats.h"
#include "worker.h"

#define FD_RESERVE 512        /* listeners, poller, pipes, lingering refusals */
#define RESPAWN_INTERVAL_MS 1000
#define KILL_GRACE_MS 2000    /* after --shutdown-timeout, before SIGKILL */
#define TAG_MASTER_SIGNAL 1

struct slot {
    pid_t pid;
    int64_t spawned_ms;
    int64_t respawn_at;       /* 0: none scheduled */
};

struct master {
    struct opts *o;
    struct listener *ls;      /* [worker * nl + j] */
    int nl;
    struct stats_table *t;
    struct slot *slots;
    poller_t *p;
    struct admin *admin;
    int admin_fd;
    int sigpipe[2];
    int unix_bound[3 * OPTS_MAX_ADDRS]; /* ours to remove at exit */
    int stopping;
    int failed;
    int64_t kill_at;
    pid_t pid;
};

static volatile sig_atomic_t got_stop, got_child;
static int master_signal_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGCHLD)
        got_child = 1;
    else
        got_stop = 1;
    if (master_signal_fd >= 0)
        (void)write(master_signal_fd, "x", 1);
    errno = saved;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static int open_listeners(struct master *m, char *err, size_t errlen)
{
    struct opts *o = m->o;
    int nw = o->workers;
    int per_worker = compat_reuseport_balances();
    struct addr *addrs[3 * OPTS_MAX_ADDRS];
    enum listener_kind kinds[3 * OPTS_MAX_ADDRS];

    m->nl = listener_addrs(o, addrs, kinds);
    m->ls = calloc((size_t)nw * (size_t)(m->nl ? m->nl : 1), sizeof(*m->ls));
    if (!m->ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < nw * m->nl; i++)
        m->ls[i].fd = -1;

    /* The plain bind first: a port someone else holds fails here with a
     * clear message instead of silently joining their SO_REUSEPORT group. */
    for (int j = 0; j < m->nl; j++) {
        if (kinds[j] == LISTEN_UDP && addrs[j]->family == AF_UNIX) {
            snprintf(err, errlen, "--udp: unix sockets are not supported: %s",
                     addrs[j]->text);
            return -1;
        }
    }
    for (int j = 0; j < m->nl; j++)
        if (net_probe(addrs[j], kinds[j] == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM,
                      err, errlen) != 0)
            return -1;

    for (int j = 0; j < m->nl; j++) {
        const struct addr *a = addrs[j];
        int type = kinds[j] == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
        int shared = a->family == AF_UNIX || !per_worker;
        for (int w = 0; w < nw; w++) {
            struct listener *l = &m->ls[w * m->nl + j];
            l->kind = kinds[j];
            l->addr = a;
            l->shared = shared;
            if (shared && w > 0) {
                l->fd = m->ls[j].fd;
                continue;
            }
            l->fd = net_listen(a, type, !shared, err, errlen);
            if (l->fd < 0)
                return -1;
            if (a->family == AF_UNIX)
                m->unix_bound[j] = 1;
        }
    }
    return 0;
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

static void log_listening(const struct master *m)
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
    log_info("listening on %s with %d worker%s (%s)", buf, o->workers,
             o->workers == 1 ? "" : "s", poller_backend());
}

static int setup_signals(struct master *m)
{
    if (compat_pipe(m->sigpipe) != 0)
        return -errno;
    master_signal_fd = m->sigpipe[1];

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

/* --- workers -------------------------------------------------------------- */

/* In the child: keep only this worker's sockets, then run the reactor. */
static void run_worker(struct master *m, int id)
{
    static char role[32];
    struct opts *o = m->o;
    struct worker_cfg cfg;

    snprintf(role, sizeof(role), "worker %d", id);
    log_set_role(role);

    /* If the master dies (even by SIGKILL), stop gracefully rather than
     * serve unsupervised; checking the parent closes the race with a
     * master that died before the request was made. */
    (void)compat_parent_death_signal(SIGTERM);
    if (getppid() != m->pid)
        _exit(1);

    master_signal_fd = -1;
    close(m->sigpipe[0]);
    close(m->sigpipe[1]);
    poller_destroy(m->p);
    if (m->admin_fd >= 0)
        close(m->admin_fd);
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

    struct stats_slot *st = &m->t->slot[id];
    STAT_SET(st, pid, getpid());
    STAT_SET(st, started_unix_ms, wall_ms());

    memset(&cfg, 0, sizeof(cfg));
    cfg.id = id;
    cfg.o = o;
    cfg.ls = &m->ls[id * m->nl];
    cfg.nls = m->nl;
    cfg.st = st;
    cfg.table = m->t;
    /* _exit() skips LeakSanitizer's exit-time check: run it here. */
    _exit(leakcheck_worker_exit(worker_main(&cfg)));
}

static int spawn(struct master *m, int id)
{
    sigset_t all, old;

    /* Blocked across fork so that the child cannot run the master's
     * handlers before installing its own. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        run_worker(m, id); /* does not return */
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        log_error("fork worker %d: %s", id, strerror(errno));
        return -1;
    }
    m->slots[id].pid = pid;
    m->slots[id].spawned_ms = mono_ms();
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

static void reap(struct master *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int id = -1;
        for (int i = 0; i < m->o->workers; i++)
            if (m->slots[i].pid == pid)
                id = i;
        if (id < 0)
            continue;
        char why[96];
        describe_exit(status, why, sizeof(why));
        m->slots[id].pid = 0;
        STAT_SET(&m->t->slot[id], pid, 0);
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

        if (m->stopping) {
            if (!clean) {
                m->failed = 1;
                log_warn("worker %d (pid %d) %s", id, (int)pid, why);
            }
            continue;
        }
        /* At most one fork per slot per second, so a worker that dies at
         * start cannot turn the master into a fork loop. */
        int64_t now = mono_ms();
        int64_t at = m->slots[id].spawned_ms + RESPAWN_INTERVAL_MS;
        m->slots[id].respawn_at = at > now ? at : now;
        log_warn("worker %d (pid %d) %s; respawning%s", id, (int)pid, why,
                 at > now ? " in under a second" : "");
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
    int64_t now = mono_ms();
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

static void begin_stop(struct master *m)
{
    m->stopping = 1;
    __atomic_store_n(&m->t->draining, 1, __ATOMIC_RELAXED);
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
    log_info("stopping: draining %d worker%s (timeout %us)", live_workers(m),
             live_workers(m) == 1 ? "" : "s", m->o->shutdown_timeout);
    /* The workers accept what is queued, then close their copies; ours must
     * go too, or the sockets would stay open and queue clients nobody
     * serves. */
    close_listeners(m);
    m->kill_at = mono_ms() + (int64_t)m->o->shutdown_timeout * 1000 +
                 KILL_GRACE_MS;
}

/* --- the loop --------------------------------------------------------------- */

static int next_timeout(const struct master *m)
{
    int64_t now = mono_ms(), t = -1;

    for (int i = 0; i < m->o->workers; i++) {
        int64_t at = m->slots[i].respawn_at;
        if (at && (t < 0 || at - now < t))
            t = at > now ? at - now : 0;
    }
    if (m->stopping) {
        int64_t k = m->kill_at > now ? m->kill_at - now : 0;
        if (t < 0 || k < t)
            t = k;
    }
    if (m->admin) {
        int64_t a = admin_next_timeout_ms(m->admin, now);
        if (a >= 0 && (t < 0 || a < t))
            t = a;
    }
    return t < 0 ? -1 : (int)(t > 60000 ? 60000 : t + 1);
}

static int master_loop(struct master *m)
{
    struct poller_event ev[64];

    for (;;) {
        int n = poller_wait(m->p, ev, 64, next_timeout(m));
        int64_t now = mono_ms();
        for (int i = 0; i < n; i++) {
            if (ev[i].data == TAG_MASTER_SIGNAL) {
                char buf[64];
                while (read(m->sigpipe[0], buf, sizeof(buf)) > 0)
                    ;
            } else if (m->admin && (ev[i].data & ADMIN_TAG)) {
                admin_event(m->admin, ev[i].data, ev[i].mask, now);
            }
        }
        if (got_child) {
            got_child = 0;
            reap(m);
        }
        if (got_stop && !m->stopping)
            begin_stop(m);
        if (m->admin)
            admin_tick(m->admin, now);
        if (!m->stopping) {
            respawn_due(m);
            continue;
        }
        if (live_workers(m) == 0)
            break;
        if (mono_ms() >= m->kill_at) {
            log_error("workers did not stop in time; killing them");
            for (int i = 0; i < m->o->workers; i++)
                if (m->slots[i].pid)
                    kill(m->slots[i].pid, SIGKILL);
            m->failed = 1;
            m->kill_at = mono_ms() + 60000;
        }
    }
    return m->failed ? 1 : 0;
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
    m.sigpipe[0] = m.sigpipe[1] = -1;

    raise_nofile(o);
    if (setup_signals(&m) != 0) {
        log_error("signal pipe: %s", strerror(errno));
        return 1;
    }
    if (open_listeners(&m, err, sizeof(err)) != 0)
        goto fail;
    if (o->admin_on) {
        if (net_probe(&o->admin, SOCK_STREAM, err, sizeof(err)) != 0)
            goto fail;
        m.admin_fd = net_listen(&o->admin, SOCK_STREAM, 0, err, sizeof(err));
        if (m.admin_fd < 0)
            goto fail;
    }
    m.t = stats_table_create((unsigned)o->workers);
    m.slots = calloc((size_t)o->workers, sizeof(*m.slots));
    m.p = poller_create(64);
    if (!m.t || !m.slots || !m.p) {
        snprintf(err, sizeof(err), "cannot start: %s", strerror(errno));
        goto fail;
    }
    m.t->start_unix_ms = wall_ms();
    if (poller_add(m.p, m.sigpipe[0], POLLER_READ, TAG_MASTER_SIGNAL) != 0) {
        snprintf(err, sizeof(err), "poller: %s", strerror(errno));
        goto fail;
    }
    if (m.admin_fd >= 0) {
        m.admin = admin_create(m.p, m.admin_fd, o, m.t, err, sizeof(err));
        if (!m.admin)
            goto fail;
    }

    log_listening(&m);
    for (int i = 0; i < o->workers; i++)
        if (spawn(&m, i) != 0) {
            /* Whoever did start is stopped the normal way. */
            got_stop = 1;
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
    if (m.ls)
        close_listeners(&m);
    if (m.admin_fd >= 0)
        close(m.admin_fd);
    unlink_unix_paths(&m);
    return rc;
}
