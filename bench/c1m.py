#!/usr/bin/python3
"""One million concurrent connections: stampd holds N connections (default
1,000,000) from many stampbench processes, keeps every one of them active at
one line per connection per 60 s, then stops gracefully.

    c1m.py --build build [--conns N] [--hold SEC] [--out DIR]
    C1M_CONNS=50000 make bench-c1m

Phases:
  1. Kernel settings the run needs are raised (ephemeral ports, accept and
     SYN backlogs, descriptor and TCP memory limits) and restored at the end.
  2. stampd starts with enough workers for N at --max-conns 19000 each (every
     process has 20,000 descriptors); the idle worker RSS is recorded.
  3. ceil(N / 17,000) stampbench processes start at once, each opening its
     share over --src-ips source addresses, then sending open-loop at
     share/60 requests per second (each connection one line per 60 s: the
     requests go to the connections in turn).  That load is not recorded
     until every client has connected: then all of them are told to start
     measuring (SIGUSR1, stampbench --start-on-signal), for --hold seconds.  Each client
     runs under a pseudo-terminal so that its once-a-second progress line
     (requests, rate, errors, p99 so far) can be sampled.
  4. Every --sample seconds: connections open (admin /stats), worker RSS
     (/proc), kernel TCP memory (/proc/net/sockstat), the clients' request
     rate and p99, the time a GET /stats takes, and the listen/SYN counters
     of /proc/net/netstat (ListenOverflows, ListenDrops, TCPReqQFullDrop,
     TCPReqQFullDoCookies, TCPSynRetrans).
  5. Each client, its --hold seconds measured, stops its load and makes one
     more round trip on every one of its connections (stampbench
     --verify-all), then holds them (--wait-close).  Once every client has
     verified, SIGTERM to stampd, timed against --shutdown-timeout (exit 0:
     all drained); the clients count the connections the server closed.

Every process is started here and stopped by its PID; every wait is bounded.
Results: DIR/c1m.json, DIR/c1m.md, DIR/c1m.png (gnuplot).
"""
import argparse
import json
import math
import os
import pty
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402  (helpers: free_port, children, merge_latency)

# The master's lead over its workers (stampd --master-priority, 5 by
# default): with 56 workers and 59 clients runnable on two CPUs, the
# scheduler's share for the master grows with its weight, and its admin
# port must answer within 100 ms.  10 levels were not enough when the
# million verification requests arrive within a second (GET /stats 105
# ms): the most there is, 19.
MASTER_PRIORITY = 19

ROOT = suite.ROOT
NOFILE = 20000
PER_WORKER = 19000     # --max-conns: under the descriptor limit
PER_CLIENT = 17000     # connections per stampbench process
NETSTAT_KEYS = ["ListenOverflows", "ListenDrops", "TCPReqQFullDrop",
                "TCPReqQFullDoCookies", "TCPSynRetrans", "SyncookiesSent",
                "TCPTimeouts"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# --- kernel settings ------------------------------------------------------------


def sysctl_path(name):
    return "/proc/sys/" + name.replace(".", "/")


def sysctl_get(name):
    with open(sysctl_path(name)) as f:
        return f.read().strip()


def sysctl_set(name, value):
    with open(sysctl_path(name), "w") as f:
        f.write(value)


def kernel_plan(conns):
    """The settings N connection pairs need, as {name: value}, only where
    the current value is short (values are written whitespace-separated)."""
    want = {}
    lo, hi = (int(x) for x in sysctl_get("net.ipv4.ip_local_port_range").split())
    if hi - lo < 40000:
        want["net.ipv4.ip_local_port_range"] = "10000 64999"
    if int(sysctl_get("net.core.somaxconn")) < 65535:
        want["net.core.somaxconn"] = "65535"
    if int(sysctl_get("net.ipv4.tcp_max_syn_backlog")) < 65535:
        want["net.ipv4.tcp_max_syn_backlog"] = "65535"
    fmax = int(sysctl_get("fs.file-max"))
    if fmax < 2 * conns + 600000:       # room for everything else running
        want["fs.file-max"] = str(2 * conns + 800000)
    # TCP memory (pages): an idle loopback pair costs a few KiB of socket
    # buffers, more while they close; allow 2 pages a socket at the upper
    # limit (16 GiB for a million pairs).
    mem = [int(x) for x in sysctl_get("net.ipv4.tcp_mem").split()]
    need = 4 * conns + 200000
    if mem[2] < need:
        want["net.ipv4.tcp_mem"] = "%d %d %d" % (max(mem[0], need // 2),
                                                 max(mem[1], need * 3 // 4), need)
    return want


def apply_kernel(plan):
    saved = {}
    for k, v in plan.items():
        try:
            saved[k] = sysctl_get(k)
            sysctl_set(k, v)
            log("sysctl %s = %s (was %s)" % (k, v, saved[k]))
        except OSError as e:
            log("sysctl %s: %s (not changed)" % (k, e))
            saved.pop(k, None)
    return saved


def restore_kernel(saved):
    for k, v in saved.items():
        try:
            sysctl_set(k, v)
        except OSError as e:
            log("restore %s: %s" % (k, e))


# --- samples --------------------------------------------------------------------


def netstat_counters():
    out = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            for k, v in zip(names.split()[1:], values.split()[1:]):
                if k in NETSTAT_KEYS:
                    out[k] = int(v)
    return out


def sockstat():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                p = line.split()
                d = dict(zip(p[1::2], (int(x) for x in p[2::2])))
                return {"tcp_inuse": d.get("inuse", 0),
                        "tcp_mem_pages": d.get("mem", 0)}
    return {}


def rss(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def get_stats(admin_port, timeout=15.0):
    """(seconds the GET /stats took, connections_active summed over workers,
    (fewest, most) connections any one worker had); the sum is None when the
    request failed."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % admin_port,
                                    timeout=timeout) as r:
            body = r.read()
        dt = time.monotonic() - t0
        st = json.loads(body)
        per = [w.get("connections_active", 0) for w in st.get("workers", [])]
        return dt, sum(per), (min(per, default=0), max(per, default=0))
    except (OSError, ValueError):
        return time.monotonic() - t0, None, (None, None)


def probe_main(admin_port, lead):
    """The probe process (c1m.py --probe PORT LEAD): one GET /stats per line
    on stdin, its result as one JSON line on stdout.  It runs apart from this
    script's threads, whose interpreter lock (held through a client's report
    being parsed) would otherwise be timed as the server's latency, and LEAD
    nice levels above it, at the master's priority: the time measured is the
    server's, not this process's own wait for a CPU among a hundred busy
    processes (as a scraper on another host would see it).  Unprivileged, it
    stays where it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) - lead)
    except OSError:
        pass
    for _ in sys.stdin:
        dt, conns, spread = get_stats(admin_port)
        print(json.dumps({"dt": dt, "conns": conns, "spread": spread}), flush=True)


class Probe:
    """The probe process, shared by the sampler thread and the main one."""

    def __init__(self, admin_port):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--probe", str(admin_port),
             str(MASTER_PRIORITY)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lock = threading.Lock()

    def get(self):
        """As get_stats()."""
        with self.lock:
            try:
                self.proc.stdin.write("\n")
                self.proc.stdin.flush()
                r = json.loads(self.proc.stdout.readline())
            except (OSError, ValueError):
                return None, None, (None, None)
        return r["dt"], r["conns"], tuple(r["spread"])

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

# --- clients --------------------------------------------------------------------

PROGRESS = re.compile(r"(\d+) s\s+requests (\d+)\s+rate (\d+)/s\s+errors (\d+)"
                      r"\s+p99 ([\d.]+) us")


class Client:
    """One stampbench process; stderr on a pseudo-terminal (progress line),
    stdout (the --json report) on a pipe."""

    def __init__(self, build, port, n, rate, hold, warmup, src_ips, cto, close_wait):
        cmd = [os.path.join(ROOT, build, "stampbench"), "--json", "-c", str(n),
               "--rate", "%.3f" % rate, "-d", str(hold), "-w", str(warmup),
               "--src-ips", str(src_ips), "--connect-timeout", str(cto),
               "--verify-all", "--wait-close", str(close_wait),
               "--start-on-signal",
               "127.0.0.1:%d" % port]
        self.n = n
        self.master_fd, slave = pty.openpty()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=suite.limit_fds)
        os.close(slave)
        self.connected_at = self.start_at = self.verified_at = None
        self.progress = None          # (sec, requests, rate, errors, p99_us)
        self.other = []
        self.out = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.outreader = threading.Thread(target=self._read_out, daemon=True)
        self.outreader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.master_fd, 4096)
            except OSError:
                break           # EIO: the process closed its terminal
            if not chunk:
                break
            buf += chunk
            parts = re.split(rb"[\r\n]", buf)
            buf = parts.pop()
            for p in parts:
                self._line(p.decode(errors="replace").replace("\033[K", "").strip())

    def _line(self, s):
        if s == "#connected":
            self.connected_at = time.monotonic()
        elif s == "#start":
            self.start_at = time.monotonic()
        elif s == "#verified":
            self.verified_at = time.monotonic()
        elif s in ("#end", ""):
            pass
        else:
            m = PROGRESS.search(s)
            if m:
                self.progress = (int(m.group(1)), int(m.group(2)), int(m.group(3)),
                                 int(m.group(4)), float(m.group(5)))
            elif len(self.other) < 20:
                self.other.append(s)

    def _read_out(self):
        self.out = self.proc.stdout.read()

    def finish(self, timeout):
        try:
            self.proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.outreader.join(timeout=10)
        self.reader.join(timeout=2)
        os.close(self.master_fd)
        try:
            return json.loads(self.out)
        except ValueError:
            return None


# --- the run --------------------------------------------------------------------


def meminfo_field(name):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    return 0


def mem_available():
    return meminfo_field("MemAvailable:")


MEM_FLOOR = 2 << 30     # below this much available memory the run is aborted


class Sampler(threading.Thread):
    """Samples every `every` seconds; kills the server and the clients (by
    PID) if the machine runs short of memory."""

    def __init__(self, probe, workers, clients, every, server=None):
        super().__init__(daemon=True)
        self.server = server
        self.aborted = False
        self.probe, self.workers, self.clients = probe, workers, clients
        self.every = every
        self.rows = []
        self.stop_ev = threading.Event()
        self.t0 = time.monotonic()
        self.phase = "load"     # "stop" once SIGTERM is sent

    def sample(self):
        t = round(time.monotonic() - self.t0, 2)     # when the sample began
        dt, conns, spread = self.probe.get()
        prog = [c.progress for c in self.clients if c.progress]
        row = {"t": t, "phase": self.phase,
               "stats_ms": round(dt * 1e3, 2) if dt is not None else None,
               "conns": conns, "worker_conns_min_max": spread,
               "worker_rss": rss(self.workers),
               "rate": sum(p[2] for p in prog),
               "requests": sum(p[1] for p in prog),
               "errors": sum(p[3] for p in prog),
               "p99_us_max": max((p[4] for p in prog), default=None),
               "clients_connected": sum(1 for c in self.clients if c.connected_at),
               "clients_loaded": len(prog)}
        # The master's time waiting for a CPU so far (schedstat, ns): what
        # --master-priority shortens when workers and clients saturate them.
        try:
            with open("/proc/%d/schedstat" % self.server.pid) as f:
                row["master_runq_wait_ms"] = round(int(f.read().split()[1]) / 1e6, 1)
        except (OSError, AttributeError, IndexError, ValueError):
            row["master_runq_wait_ms"] = None
        row.update(sockstat())
        row.update(netstat_counters())
        row["mem_available"] = mem_available()
        row["slab"] = meminfo_field("Slab:")
        self.rows.append(row)
        if row["mem_available"] < MEM_FLOOR and not self.aborted:
            self.aborted = True
            log("ABORT: %d MiB of memory available" % (row["mem_available"] >> 20))
            for p in [self.server] + [c.proc for c in self.clients]:
                if p is not None and p.poll() is None:
                    p.kill()
        return row

    def run(self):
        while not self.stop_ev.wait(self.every):
            r = self.sample()
            log("t=%5.0f conns %s rss %.0f MiB sock %d pages rate %d p99 %s "
                "stats %s ms (master waited %s ms for a CPU so far) overflows %d" % (
                    r["t"], r["conns"], r["worker_rss"] / 2**20,
                    r.get("tcp_mem_pages", 0), r["rate"], r["p99_us_max"],
                    r["stats_ms"], r.get("master_runq_wait_ms"),
                    r.get("ListenOverflows", 0)))


def wait_for(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def run(a):
    n = a.conns
    workers = a.workers or max(2, min(56, math.ceil(n / (PER_WORKER * 0.9))))
    nclients = max(1, math.ceil(n / PER_CLIENT))
    src_ips = min(254, max(4, math.ceil(n / 20000)))
    res = {"connections": n, "workers": workers, "clients": nclients,
           "src_ips": src_ips, "hold_s": a.hold, "shutdown_timeout": a.shutdown_timeout,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_before": os.getloadavg(), "nproc": os.cpu_count()}
    with open("/proc/meminfo") as f:
        mem = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f}
    need = n * 2 * 4096   # two sockets a connection, a few KiB each
    res["mem_available_before"] = mem["MemAvailable"]
    if mem["MemAvailable"] < need * 1.5:
        raise SystemExit("c1m: %d connections need about %.1f GiB; %.1f GiB available"
                         % (n, need / 2**30, mem["MemAvailable"] / 2**30))
    saved = apply_kernel(kernel_plan(n))
    res["sysctl"] = {k: sysctl_get(k) for k in saved}
    port, aport = suite.free_port(), suite.free_port()
    srv = subprocess.Popen(
        [os.path.join(ROOT, a.build, "stampd"), "--workers", str(workers),
         "--listen", "127.0.0.1:%d" % port, "--admin", "127.0.0.1:%d" % aport,
         "--max-conns", str(PER_WORKER), "--idle-timeout", "0",
         "--shutdown-timeout", str(a.shutdown_timeout), "--log-level", "warn",
         "--master-priority", str(MASTER_PRIORITY)]
        + suite.ROOT_USER + a.stampd_arg,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=suite.limit_fds)
    clients, sampler, probe = [], None, None
    try:
        suite.wait_port(port, srv, timeout=30)
        if not wait_for(lambda: len(suite.children(srv.pid)) >= workers, 30):
            raise RuntimeError("workers did not start")
        wpids = suite.children(srv.pid)
        time.sleep(1.0)
        res["worker_rss_idle"] = rss(wpids)
        probe = Probe(aport)
        res["stats_ms_idle"] = round(probe.get()[0] * 1e3, 2)
        net0 = netstat_counters()
        sampler = Sampler(probe, wpids, clients, a.sample, srv)
        t_start = time.monotonic()
        for i in range(nclients):
            c = n // nclients + (i < n % nclients)
            # Verified early, a client waits for the others and the stop.
            clients.append(Client(a.build, port, c, c / 60.0, a.hold, a.warmup,
                                  src_ips, a.connect_timeout,
                                  a.tail + a.connect_timeout + a.shutdown_timeout))
        log("%d clients started for %d connections over %d workers" % (
            nclients, n, workers))
        sampler.start()
        # Connect phase: every client connected (or timed out).
        wait_for(lambda: all(c.connected_at or c.proc.poll() is not None
                             for c in clients), a.connect_timeout + 30, 0.5)
        t_conn = time.monotonic()
        res["connect_phase_s"] = round(t_conn - t_start, 2)
        dt, active, spread = probe.get()
        res["conns_at_connected"] = active
        res["worker_conns_min_max_at_connected"] = spread
        res["rss_at_connected"] = rss(wpids)
        log("connect phase %.1f s: %s open at the server" % (t_conn - t_start, active))
        # Every connection is open: the heartbeat load, running unrecorded
        # in each client since its own connections opened, is measured from
        # now on in all of them (stampbench --start-on-signal).
        time.sleep(a.warmup)
        for c in clients:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGUSR1)
        # Load phase: until every client has measured for --hold seconds.
        wait_for(lambda: all((c.start_at and time.monotonic() - c.start_at >= a.hold)
                             or c.proc.poll() is not None for c in clients),
                 a.hold + a.warmup + 60, 0.5)
        time.sleep(1.2)       # one more progress line from each
        before = sampler.sample()
        # Every client's final round trip on each of its connections.
        wait_for(lambda: all(c.verified_at or c.proc.poll() is not None
                             for c in clients), a.tail + a.connect_timeout, 0.5)
        res["verify_s"] = round(time.monotonic() - t_conn, 2)
        res["before_stop"] = before
        res["per_client_before_stop"] = [c.progress for c in clients]
        res["worker_rss_loaded"] = rss(wpids)
        # Graceful stop.
        t_stop = time.monotonic()
        res["stop_at_t"] = round(t_stop - sampler.t0, 2)
        sampler.phase = "stop"
        srv.send_signal(signal.SIGTERM)
        try:
            code = srv.wait(timeout=a.shutdown_timeout + 30)
        except subprocess.TimeoutExpired:
            code = None
        res["stop_s"] = round(time.monotonic() - t_stop, 3)
        res["stop_exit"] = code
        log("graceful stop: exit %s after %.2f s" % (code, res["stop_s"]))
        sampler.stop_ev.set()
        sampler.join(timeout=10)
        parts = [c.finish(60) for c in clients]
        res["client_rcs"] = [c.proc.returncode for c in clients]
        res["client_stderr"] = [c.other for c in clients if c.other][:5]
        ok = [p for p in parts if p]
        res["client_reports"] = len(ok)
        res["connected"] = sum(p["connected"] for p in ok)
        res["connect_failed"] = sum(p["connect_failed"] for p in ok)
        res["mismatches"] = sum(p["mismatches"] for p in ok)
        res["late"] = sum(p["late"] for p in ok)
        res["errors_with_stop"] = sum(p["errors"] for p in ok)
        # The clients' own counts: a connection the stop closes is not an
        # error (--wait-close), so these cover the whole run.
        res["errors_before_stop"] = before["errors"]
        res["errors"] = res["errors_with_stop"]
        res["verified"] = sum(p.get("verified", 0) for p in ok)
        res["closed_by_server"] = sum(p.get("closed_by_server", 0) for p in ok)
        res["requests_before_stop"] = before["requests"]
        res["connect_s_max"] = max((p["connect_s"] for p in ok), default=0)
        res["connect_rate"] = round(res["connected"] / res["connect_phase_s"], 1)
        if ok:
            lat = suite.merge_latency(ok)
            res["latency"] = {k: v for k, v in lat.items() if k != "histogram"}
            cl = suite.merge_hists([p["connect_latency"]["histogram"] for p in ok])
            res["connect_latency_p99_us"] = round(suite.hist_quantile(cl, 0.99) / 1e3, 1)
            res["connect_latency_max_us"] = round(cl["max"] / 1e3, 1)
        net1 = netstat_counters()
        res["netstat_delta"] = {k: net1.get(k, 0) - net0.get(k, 0) for k in NETSTAT_KEYS}
        res["samples"] = sampler.rows
        res["aborted_low_memory"] = sampler.aborted
        res["mem_available_min"] = min((r["mem_available"] for r in sampler.rows),
                                       default=None)
        loaded = res["worker_rss_loaded"] - res["worker_rss_idle"]
        res["rss_bytes_per_conn"] = round(loaded / max(1, before["conns"] or 1), 1)
        # /stats while the connections are open; during the stop, apart.
        res["stats_ms_max"] = max((r["stats_ms"] for r in sampler.rows
                                   if r["phase"] != "stop" and r["stats_ms"] is not None),
                                  default=None)
        res["stats_failed"] = sum(1 for r in sampler.rows
                                  if r["phase"] != "stop" and r["conns"] is None)
        res["stats_ms_max_stopping"] = max((r["stats_ms"] for r in sampler.rows
                                            if r["phase"] == "stop" and
                                            r["stats_ms"] is not None), default=None)
        res["stop_close_rate"] = round((before["conns"] or 0) / res["stop_s"], 1) \
            if res["stop_s"] else None
        res["server_stderr"] = srv.stderr.read().decode(errors="replace")[-2000:]
    finally:
        if sampler:
            sampler.stop_ev.set()
        if probe:
            probe.close()
        for c in clients:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait(timeout=10)
        if srv.poll() is None:
            srv.kill()
            srv.wait(timeout=10)
        restore_kernel(saved)
    res["load_after"] = os.getloadavg()
    res["targets"] = targets(res)
    return res


def targets(r):
    lat = r.get("latency", {})
    t = []

    def add(name, value, ok):
        t.append({"target": name, "value": value, "met": bool(ok)})
    add("every connection established", "%d of %d (%.0f/s over %.1f s)" % (
        r.get("connected", 0), r["connections"], r.get("connect_rate", 0),
        r.get("connect_phase_s", 0)), r.get("connected") == r["connections"])
    bs = (r.get("before_stop") or {}).get("conns")
    add("every connection still open at the stop", "%s of %d" % (bs, r["connections"]),
        bs == r["connections"])
    add("0 errors (the whole run, the stop included)", r.get("errors"), r.get("errors") == 0)
    add("0 mismatches", r.get("mismatches"), r.get("mismatches") == 0)
    add("every connection answered: one more round trip verified on each "
        "(stampbench --verify-all), none late",
        "%s of %d verified, %s late" % (r.get("verified"), r["connections"], r.get("late")),
        r.get("verified") == r["connections"] and r.get("late") == 0)
    add("heartbeat p99 < 100 ms", "%s us" % lat.get("p99_us"),
        lat.get("p99_us") is not None and lat["p99_us"] < 100000)
    add("worker memory <= 128 B/conn", "%s B" % r.get("rss_bytes_per_conn"),
        r.get("rss_bytes_per_conn") is not None and r["rss_bytes_per_conn"] <= 128)
    add("GET /stats < 100 ms throughout (until the stop)", "max %s ms (%s ms while "
        "stopping), %s failed" % (r.get("stats_ms_max"), r.get("stats_ms_max_stopping"),
                                  r.get("stats_failed")),
        r.get("stats_ms_max") is not None and r["stats_ms_max"] < 100 and
        r.get("stats_failed") == 0)
    add("graceful stop within --shutdown-timeout, exit 0",
        "exit %s in %s s (%s connections/s closed), timeout %s s" % (
            r.get("stop_exit"), r.get("stop_s"), r.get("stop_close_rate"),
            r["shutdown_timeout"]),
        r.get("stop_exit") == 0 and (r.get("stop_s") or 1e9) <= r["shutdown_timeout"])
    add("every connection closed by the stop (seen by the clients)",
        "%s of %d" % (r.get("closed_by_server"), r["connections"]),
        r.get("closed_by_server") == r["connections"])
    return t


def write_outputs(res, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "c1m.json"), "w") as f:
        json.dump(res, f, indent=1)
    rows = res.get("samples", [])
    dat = os.path.join(out, "c1m.dat")
    with open(dat, "w") as f:
        f.write("# t conns worker_rss_mib tcp_mem_mib rate p99_ms stats_ms run_mem_mib\n")
        base = res.get("mem_available_before", 0)
        for r in rows:
            f.write("%s %s %.1f %.1f %d %s %s %.0f\n" % (
                r["t"], r["conns"] if r["conns"] is not None else "NaN",
                r["worker_rss"] / 2**20, r.get("tcp_mem_pages", 0) * 4096 / 2**20,
                r["rate"], "%.3f" % (r["p99_us_max"] / 1e3)
                if r["p99_us_max"] is not None else "NaN",
                r["stats_ms"] if r["stats_ms"] is not None else "NaN",
                (base - r.get("mem_available", base)) / 2**20))
    script = """set terminal pngcairo size 1000,900 font ",9"
set output '%s'
set multiplot layout 3,1 title "stampd: %d connections, %d workers (%s)"
set xlabel "seconds"
set key left top
set ylabel "connections"
set yrange [0:%d]
set y2range [0:*]
set key left top
set y2label "MiB"
set y2tics
set ytics nomirror
plot '%s' u 1:2 w l lw 2 t 'connections (admin /stats)', \\
     '' u 1:3 w l axes x1y2 t 'worker RSS (MiB)', \\
     '' u 1:4 w l axes x1y2 t 'kernel TCP buffer memory, sockstat (MiB)', \\
     '' u 1:8 w l axes x1y2 t 'memory taken since the start, MemAvailable (MiB)'
unset y2label
unset y2tics
set autoscale y
set ytics mirror
set ylabel "requests/s"
plot '%s' u 1:5 w l lw 2 t 'heartbeat rate (all clients)'
set ylabel "ms"
set logscale y
plot '%s' u 1:6 w l lw 2 t 'p99 so far (worst client)', '' u 1:7 w lp t 'GET /stats'
unset multiplot
""" % (os.path.join(out, "c1m.png"), res["connections"], res["workers"],
       res["started"], res["connections"] * 1.6, dat, dat, dat)
    if res.get("stop_at_t"):    # the SIGTERM, on every panel
        script = script.replace('set xlabel "seconds"\n', 'set xlabel "seconds (dashed: '
                                'SIGTERM)"\nset arrow 1 from %s, graph 0 to %s, graph 1 '
                                'nohead dt 3 lc rgb "red"\n' % (res["stop_at_t"],
                                                                 res["stop_at_t"]))
    suite.gnuplot(script)
    with open(os.path.join(out, "c1m.md"), "w") as f:
        f.write("# %d connections (%s, load %.1f before, %d CPUs)\n\n" % (
            res["connections"], res["started"], res["load_before"][0], res["nproc"]))
        f.write("| target | value | met |\n|---|---|---|\n")
        for t in res["targets"]:
            f.write("| %s | %s | %s |\n" % (t["target"], t["value"],
                                            "yes" if t["met"] else "**no**"))
        f.write("\nlisten/SYN counters over the run: %s\n" % json.dumps(
            res.get("netstat_delta")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--conns", type=int,
                    default=int(os.environ.get("C1M_CONNS", "1000000")))
    ap.add_argument("--workers", type=int, default=0,
                    help="default: enough for --conns at 19,000 each (max 56)")
    ap.add_argument("--hold", type=float, default=125,
                    help="seconds of heartbeat load every client measures")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--tail", type=float, default=90,
                    help="how long the clients that verified first wait for the others: "
                    "more than the spread of the clients' connect phases")
    ap.add_argument("--connect-timeout", type=float, default=180)
    ap.add_argument("--shutdown-timeout", type=int, default=120,
                    help="stampd's; a million connections take up to a minute to close on 2 CPUs")
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--stampd-arg", action="append", default=[],
                    help="one more argument for stampd (repeatable), e.g. "
                         "--stampd-arg=--master-priority=0")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "c1m"))
    a = ap.parse_args()
    if a.conns < 1:
        ap.error("--conns must be positive")
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    res = run(a)
    write_outputs(res, a.out)
    for t in res["targets"]:
        log("%-4s %-60s %s" % ("ok" if t["met"] else "FAIL", t["target"], t["value"]))
    sys.exit(0 if all(t["met"] for t in res["targets"]) else 1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe_main(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
