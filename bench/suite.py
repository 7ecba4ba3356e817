#!/usr/bin/python3
"""The stampd benchmark suite: stampd against its peers, in one run.

Every server runs pinned to CPU 0 (taskset), the client on CPU 1.  Each
scenario runs every server in turn, `--reps` times, interleaved so that noise
on this shared machine spreads evenly; medians and min-max spread are
reported.  Server CPU per request is the on-CPU time the server's processes
(stampd: its worker) gained between stampbench's '#start' and '#end' markers,
from /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat utime+stime is
recorded too, in 10 ms ticks), divided by the replies verified in the window.

Every server is started by this script and stopped by its PID; every wait is
bounded.  Results: bench/results/results.{json,md}, throughput.png,
latency.png.

    suite.py --build build [--quick] [--smoke] [--only S1,S2,...,idle,scale,saturation]
"""
import argparse
import datetime
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import tempfile
import sys
import threading
import time

# Started as root, stampd runs its workers only as a user it is told.
ROOT_USER = ["--user", "root"] if os.geteuid() == 0 else []
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
NOFILE = 20000

SCENARIOS = [
    # name, stampbench args, servers skipped (why)
    ("S1", ["-c", "100", "-P", "16", "-s", "32"],
     {"seed": "measured at -P 1 (S2) and -c 1000 (time)"}),
    ("S2", ["-c", "100", "-P", "1", "-s", "32"], {}),
    ("S3", ["-c", "5000", "-P", "1", "-s", "32"],
     {"seed": "one thread per connection: 5,000 threads"}),
    ("S4", ["-c", "15000", "-P", "1", "-s", "32"],
     {"redis": "compared with the baseline loop only",
      "memcached": "compared with the baseline loop only",
      "seed": "one thread per connection: 15,000 threads"}),
    ("L1", ["-c", "1", "-P", "1", "-s", "32"],
     {"seed": "its latency is measured at -c 1000 (time)"}),
    ("L1000", ["-c", "1000", "-P", "1", "-s", "32"], {}),
]
# Seconds measured per run (after 1 s of warm-up): the matrix's runs, the
# interleaved pairs, the saturation curve and the HTTP runs share `make bench`'s
# 20 minutes.
DURATION = 4
CONNS = {"L1": 1, "S2": 100, "L1000": 1000, "S3": 5000, "S4": 15000}
SERVERS = ["stampd", "baseline", "redis", "memcached", "seed"]


def log(*a):
    print(*a, flush=True)


def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not ready" % port)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def schedstat(pids):
    """(CPU ns, times scheduled in) of every thread of `pids`, from
    /proc/PID/task/*/schedstat: the second counts wake-ups.  A thread that
    ends while it is read is left out."""
    cpu = runs = 0
    for pid in pids:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    v = f.read().split()
                cpu += int(v[0])
                runs += int(v[2])
            except OSError:
                pass
    return cpu, runs


def take_turns(signal_to, end, slice_s, mark, alive=lambda: True):
    """Two clients take turns until `end` (time.monotonic()): side 0 runs,
    side 1 is already stopped; every slice_s seconds the running one gets
    SIGSTOP and the other SIGCONT (signal_to(side, sig)).  mark(side)
    samples a side at each of its resumptions.  Returns (the seconds each
    side ran, each side's complete turns as (mark at its resumption, mark
    at its next one, seconds it ran), the side running at the end), or
    earlier once alive() is false.  The caller resumes the stopped side."""
    now = time.monotonic()
    active, run = [0.0, 0.0], 0
    began, stopped, turns = [(now, mark(0)), None], [None, None], [[], []]
    while now < end and alive():
        time.sleep(max(0.0, min(slice_s, end - now)))
        t = time.monotonic()
        active[run] += min(t, end) - now
        now = t
        if now >= end:
            break
        signal_to(run, signal.SIGSTOP)
        stopped[run] = now
        run ^= 1
        m = mark(run)
        if began[run]:          # its previous turn is complete
            turns[run].append((began[run][1], m, stopped[run] - began[run][0]))
        began[run] = (now, m)
        signal_to(run, signal.SIGCONT)
    return active, turns, run


class Server:
    """One peer, started pinned to `cpu`; `measured` are the PIDs whose CPU
    and memory count (stampd: the worker, not the idle master)."""

    def __init__(self, name, build, cpu="0", workers=1, extra=()):
        self.name = name
        self.port = free_port()
        p = str(self.port)
        bindir = os.path.join(ROOT, build)
        cmd = {
            "stampd": [os.path.join(bindir, "stampd"), "--workers", str(workers),
                       "--listen", "127.0.0.1:" + p, "--admin", "off",
                       "--idle-timeout", "0", "--max-conns", "19000",
                       "--log-level", "warn"] + ROOT_USER,
            "baseline": [os.path.join(bindir, "bench-baseline"), "127.0.0.1:" + p],
            "redis": ["redis-server", "--port", p, "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--maxclients", "19000",
                      "--protected-mode", "no", "--loglevel", "warning",
                      "--daemonize", "no"],
            "memcached": ["memcached", "-p", p, "-U", "0", "-l", "127.0.0.1",
                          "-c", "19000", "-t", "1", "-m", "64"] +
                         (["-u", "root"] if os.geteuid() == 0 else []),
            "seed": [sys.executable, os.path.join(ROOT, "bench", "seed_server.py"),
                     "127.0.0.1", p],
        }[name] + list(extra)
        if cpu is not None:
            cmd = ["taskset", "-c", cpu] + cmd
        self.proc = subprocess.Popen(cmd, preexec_fn=limit_fds,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_port(self.port, self.proc)
        self.measured = [self.proc.pid]
        if name == "stampd":
            end = time.monotonic() + 5
            while len(children(self.proc.pid)) < workers and time.monotonic() < end:
                time.sleep(0.05)
            self.measured = children(self.proc.pid)

    def sched(self):
        """(CPU ns, times scheduled in) of the measured PIDs (schedstat())."""
        return schedstat(self.measured)

    def cpu_ns(self):
        if self.name == "seed":
            # Its threads come and go with connections, and an ended
            # thread's schedstat vanishes; the process's utime+stime keeps
            # them (10 ms ticks).
            return self.cpu_ticks() * 1000000000 // os.sysconf("SC_CLK_TCK")
        return schedstat(self.measured)[0]

    def cpu_ticks(self):
        total = 0
        for pid in self.measured:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime
        return total

    def rss_bytes(self):
        total = 0
        for pid in self.measured:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return err


def client_args(server, extra):
    if server.name == "redis":
        return ["--mode", "line", "--request", "PING", "--expect", "+PONG",
                "--crlf"] + extra
    if server.name == "memcached":
        return ["--mode", "line", "--request", "version", "--crlf"] + extra
    return extra


class Client:
    """One stampbench --json run against `server`.  Its stderr is read in a
    thread that samples the server at each phase marker (and sets the
    marker's event, for a caller that must act on it); stdout in another:
    a --json report with many histogram buckets outgrows a pipe, and the
    client would block before closing stderr."""

    MARKERS = ("connected", "start", "end")

    def __init__(self, build, server, args, cpu="1", on_start=None,
                 on_connected=None, count_file=None):
        self.count_file = count_file
        if count_file:
            args = ["--count-file", count_file] + list(args)
        cmd = [os.path.join(ROOT, build, "stampbench"), "--json"] + args + \
            ["127.0.0.1:%d" % server.port]
        if cpu is not None:
            cmd = ["taskset", "-c", cpu] + cmd
        self.server = server
        self.on_start, self.on_connected = on_start, on_connected
        self.samples, self.errs, self.out = {}, [], []
        self.events = {m: threading.Event() for m in self.MARKERS}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=limit_fds)
        self.threads = [threading.Thread(target=self._stderr),
                        threading.Thread(target=lambda: self.out.append(
                            self.proc.stdout.read()))]
        for t in self.threads:
            t.start()

    def _stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            m = line[1:] if line.startswith("#") else None
            if m not in self.events:
                self.errs.append(line)
                continue
            if m == "connected" and self.on_connected:
                self.samples["connected"] = self.on_connected()
            elif m in ("start", "end"):
                self.samples[m] = (self.server.cpu_ns(), self.server.cpu_ticks(),
                                   time.monotonic())
                if m == "start" and self.on_start:
                    self.samples["on_start"] = self.on_start()
            self.events[m].set()

    def count(self):
        """The replies verified so far in the measured time (--count-file):
        the sum of its per-thread counters; 0 before the file exists."""
        try:
            with open(self.count_file, "rb") as f:
                raw = f.read()
        except OSError:
            return 0
        return sum(struct.unpack("=%dQ" % (len(raw) // 8), raw[:len(raw) // 8 * 8]))

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """(json or None, exit status, stderr text, samples); a client still
        running after `timeout` seconds is killed."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=5)
        for t in self.threads:
            t.join(timeout=10)
        try:
            data = json.loads(b"".join(self.out).decode())
        except ValueError:
            data = None
        return data, rc, "\n".join(self.errs[:20]), self.samples


def run_client(build, server, args, cpu="1", on_start=None, on_connected=None,
               timeout=300):
    """Run stampbench --json; sample the server at its markers.  Returns
    (json or None, exit status, stderr text, samples)."""
    return Client(build, server, args, cpu, on_start, on_connected).wait(timeout)


# --- stampbench output -------------------------------------------------------


def hist_quantile(hist, q):
    """The value (ns) at quantile q of a stampbench histogram object, by
    stampbench's own rule (sb_hist_quantile): the upper bound of the bucket
    holding the ceil(q * count)-th sample, clamped to the maximum seen."""
    count = hist["count"]
    if count == 0:
        return 0
    rank = max(1, math.ceil(q * count))
    seen = 0
    for lower, upper, n in hist["buckets"]:
        seen += n
        if seen >= rank:
            return min(upper, hist["max"])
    return hist["max"]


def merge_hists(hists):
    """One histogram holding every sample of `hists` (stampbench --json
    "histogram" objects of the same resolution)."""
    if len({h["sub_bits"] for h in hists}) > 1:
        raise ValueError("histograms of different resolutions")
    counts = {}
    for h in hists:
        for lower, upper, n in h["buckets"]:
            counts[(lower, upper)] = counts.get((lower, upper), 0) + n
    nonempty = [h for h in hists if h["count"]]
    return {"unit": "ns", "sub_bits": hists[0]["sub_bits"],
            "count": sum(h["count"] for h in hists),
            "min": min((h["min"] for h in nonempty), default=0),
            "max": max((h["max"] for h in hists), default=0),
            "sum": sum(h["sum"] for h in hists),
            "buckets": [[lo, hi, n] for (lo, hi), n in sorted(counts.items())]}


def merge_latency(parts):
    """The "latency" summary of several stampbench processes' --json
    objects as if one process had made every request: percentiles of the
    merged histogram (the p99 of all requests, not the largest of the
    processes' p99s)."""
    h = merge_hists([p["latency"]["histogram"] for p in parts])
    us = lambda ns: round(ns / 1e3, 2)
    return {"count": h["count"],
            "mean_us": us(h["sum"] / h["count"]) if h["count"] else 0.0,
            "p50_us": us(hist_quantile(h, 0.5)), "p90_us": us(hist_quantile(h, 0.9)),
            "p99_us": us(hist_quantile(h, 0.99)),
            "p999_us": us(hist_quantile(h, 0.999)), "max_us": us(h["max"]),
            "histogram": h}


def one_run(build, server, scen, args, quick):
    d, w = ("2", "0.5") if quick else (str(DURATION), "1")
    data, rc, errs, s = run_client(build, server,
                                   client_args(server, args + ["-d", d, "-w", w]))
    r = {"server": server.name, "scenario": scen, "rc": rc}
    if data is None or "start" not in s or "end" not in s:
        r["error"] = errs or "no result"
        return r
    # The buckets stay out of results.json; the summary is kept.
    lat = {k: v for k, v in data["latency"].items() if k != "histogram"}
    r.update(rps=data["rps"], requests=data["requests"], errors=data["errors"],
             mismatches=data["mismatches"], latency=lat,
             mb_in_s=data["mb_in_s"], mb_out_s=data["mb_out_s"])
    cpu_ns = s["end"][0] - s["start"][0]
    r["cpu_s"] = cpu_ns / 1e9
    r["cpu_ticks"] = s["end"][1] - s["start"][1]
    r["cpu_us_per_req"] = cpu_ns / 1e3 / data["requests"] if data["requests"] else None
    r["server_cpu_util"] = cpu_ns / 1e9 / (s["end"][2] - s["start"][2])
    if rc != 0:
        r["error"] = errs
    return r


# The send path's targets compare stampd with the baseline loop alone, within
# 3 %: closer than this shared machine drifts between two runs a few seconds
# apart (5-25 % at -c 5000, both ways).  So those ratios come from
# interleaved pairs (interleaved_pair()): both servers loaded at once, each by
# its own client, the two clients taking turns every SLICE_S seconds, so
# that whatever the machine does during the pair lands on both.  The
# matrix's runs back to back are still reported, as information.
PAIRED = ("stampd", "baseline")
PAIRED_SCENARIOS = ("S1", "S2", "S3", "S4")
INTERLEAVED_PAIRS = 5
INTERLEAVED_S = 6       # measured seconds per pair: half of them each
SLICE_S = 0.5


def interleaved_pair(build, servers, args, duration, slice_s):
    """Both servers loaded at once: each client connects and warms up, the
    measured time starts for both at one signal, and from then on one client
    runs while the other is stopped (SIGSTOP), swapping every slice_s
    seconds; a stopped client's server finishes the requests already in
    flight and then idles.  Server CPU per request: each server's CPU over
    its client's measured window over the replies verified in it (a server
    that idles costs nothing); throughput: those replies over the seconds its
    client ran.

    Each turn is also measured alone ("slices"): from a client's resumption
    to its next one, the server's CPU (the requests left in flight at the
    stop included) and the replies the client verified (its --count-file),
    and the seconds it ran.  A server's i-th turn and the other's i-th turn
    are neighbours in time: their ratio is one sample that a neighbour's
    burst on the shared machine hits alone."""
    tmp = tempfile.mkdtemp(prefix="stampd-pair-")
    files = [os.path.join(tmp, "count%d" % i) for i in range(2)]
    cl = [Client(build, s, ["--start-on-signal"] + args +
                 ["-d", str(duration), "-w", "1"], count_file=f)
          for s, f in zip(servers, files)]

    def mark(i):
        """At client i's resumption: its server's (CPU, wake-ups), replies."""
        return servers[i].sched() + (cl[i].count(),)
    try:
        for c in cl:
            if not c.events["connected"].wait(60):
                raise RuntimeError("%s client did not connect" % c.server.name)
        time.sleep(1.2)         # both past their 1 s warm-up
        t_sig = time.monotonic()
        for c in cl:
            c.signal(signal.SIGUSR1)
        for c in cl:
            if not c.events["start"].wait(10):
                raise RuntimeError("%s client did not start" % c.server.name)
        cl[1].signal(signal.SIGSTOP)
        both = time.monotonic() - t_sig     # both ran until now
        active, turns, run = take_turns(lambda i, sig: cl[i].signal(sig),
                                        t_sig + duration, slice_s, mark)
        cl[run ^ 1].signal(signal.SIGCONT)
        active = [a + both for a in active]
        slices = [[{"cpu_ns": m[0] - b[0], "wakeups": m[1] - b[1],
                    "replies": m[2] - b[2], "active_s": secs}
                   for b, m, secs in side] for side in turns]
        out = {}
        for c, act, sl in zip(cl, active, slices):
            d, rc, errs, smp = c.wait(timeout=60)
            if rc != 0 or not d or "start" not in smp or "end" not in smp:
                raise RuntimeError("%s client: exit %s %s" % (
                    c.server.name, rc, errs.replace("\n", " | ")[-300:]))
            if c.count() != d["requests"]:
                raise RuntimeError("%s client: --count-file says %d replies, "
                                   "the report %d" % (c.server.name, c.count(),
                                                      d["requests"]))
            cpu = smp["end"][0] - smp["start"][0]
            out[c.server.name] = {
                "requests": d["requests"], "errors": d["errors"],
                "mismatches": d["mismatches"], "active_s": act,
                "cpu_s": cpu / 1e9,
                "cpu_us_per_req": cpu / 1e3 / d["requests"] if d["requests"] else None,
                "rps": d["requests"] / act if act else None,
                "slices": sl}
        return out
    finally:
        for c in cl:            # on any error: nobody left stopped
            c.signal(signal.SIGCONT)
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


def run_interleaved(build, servers, only, quick):
    pairs, out = (1, []) if quick else (INTERLEAVED_PAIRS, [])
    duration = 2 if quick else INTERLEAVED_S
    if not all(s in servers for s in PAIRED):
        return out
    for name, args, _ in SCENARIOS:
        if name not in PAIRED_SCENARIOS or name not in only:
            continue
        for k in range(pairs):
            # Every other pair the other one measures first.
            order = PAIRED if k % 2 == 0 else PAIRED[::-1]
            r = {"scenario": name, "pair": k, "first": order[0]}
            try:
                r.update(interleaved_pair(build, [servers[n] for n in order],
                                          args, duration, SLICE_S))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                r["error"] = str(e)
            out.append(r)
            a, b = (r.get(n, {}) for n in PAIRED)
            log("%-6s pair %d (%s first): cpu %s / %s us/req, %s / %s req/s%s" % (
                name, k, order[0],
                *("%.3f" % x["cpu_us_per_req"] if x.get("cpu_us_per_req") else "-"
                  for x in (a, b)),
                *("%.0f" % x["rps"] if x.get("rps") else "-" for x in (a, b)),
                "  ERROR " + r["error"][:200] if "error" in r else ""))
    return out


def run_matrix(build, reps, quick, only):
    """The matrix's runs, and the interleaved pairs of the same servers."""
    runs, pairs = [], []
    scen = [x for x in SCENARIOS if x[0] in only]
    if not scen:
        return runs, pairs
    servers = {}
    try:
        for name in SERVERS:
            try:
                servers[name] = Server(name, build)
            except (RuntimeError, OSError) as e:
                log("%s did not start: %s" % (name, e))
        for rep in range(reps):
            # Every other repetition the other way round, so that neither
            # server of a pair always runs on the heels of the other.
            order = SERVERS if rep % 2 == 0 else SERVERS[::-1]
            for name, args, skip in scen:
                for sname in order:
                    if sname in skip or sname not in servers:
                        continue
                    r = one_run(build, servers[sname], name, args, quick)
                    r["rep"] = rep
                    runs.append(r)
                    log("%-6s %-9s rep %d: %10.0f req/s  cpu %6s us/req  p99 %8.1f us%s" % (
                        name, sname, rep, r.get("rps", 0),
                        "%.3f" % r["cpu_us_per_req"] if r.get("cpu_us_per_req") else "-",
                        r.get("latency", {}).get("p99_us", 0),
                        "  ERROR " + str(r["error"])[:200] if "error" in r else ""))
        pairs = run_interleaved(build, servers, {x[0] for x in scen}, quick)
    finally:
        for s in servers.values():
            err = s.stop()
            if err.strip():
                log("%s stderr: %s" % (s.name, err.strip()[:500]))
    return runs, pairs


def run_idle(build, quick):
    """RSS growth per idle connection, fresh server each, 15,000 conns held
    by one client process (under the 20,000-fd limit of each side)."""
    n = 15000
    out = {}
    for name in ["stampd", "baseline", "redis", "memcached"]:
        srv = Server(name, build)
        try:
            time.sleep(0.3)
            before = srv.rss_bytes()
            hold = "4" if quick else "6"

            def sample():
                time.sleep(1.0)
                return srv.rss_bytes()
            data, rc, errs, s = run_client(
                build, srv, ["--connect-only", "-c", str(n), "-d", hold,
                             "--connect-timeout", "60"], on_start=sample)
            after = s.get("on_start", before)
            held = data["held"] if data else 0
            out[name] = {"connections": n, "held": held, "rc": rc,
                         "rss_before": before, "rss_after": after,
                         "bytes_per_conn": (after - before) / held if held else None,
                         "connect_rate": data["connect_rate"] if data else None}
            log("idle   %-9s %d held, RSS %d -> %d: %s bytes/conn" % (
                name, held, before, after,
                "%.0f" % out[name]["bytes_per_conn"] if held else "-"))
        finally:
            srv.stop()
    out["seed"] = {"skipped": "one thread per connection: 15,000 threads"}
    return out


def run_clients(build, srv, arglists, timeout):
    """One stampbench process per argument list, all at once against srv;
    their figures summed and their latency histograms merged, or
    {"error": [each process's stderr]} if one of them gave no report."""
    outs = [None] * len(arglists)

    def go(i):
        outs[i] = run_client(build, srv, arglists[i], cpu=None, timeout=timeout)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(arglists))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parts = [o[0] for o in outs]
    if any(p is None for p in parts):
        return {"error": [o[2] for o in outs]}
    lat = merge_latency(parts)
    return dict(connected=sum(p["connected"] for p in parts),
                requests=sum(p["requests"] for p in parts),
                rps=round(sum(p["rps"] for p in parts), 1),
                errors=sum(p["errors"] for p in parts),
                mismatches=sum(p["mismatches"] for p in parts),
                late=sum(p["late"] for p in parts),
                rcs=[o[1] for o in outs],
                p50_us=lat["p50_us"], p90_us=lat["p90_us"], p99_us=lat["p99_us"],
                p999_us=lat["p999_us"], max_us=lat["max_us"])


def gnuplot(script):
    """Run a gnuplot script; a failure is logged, not raised (the figures
    stand without their plot)."""
    try:
        r = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True,
                           timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        log("gnuplot: %s" % e)
        return
    if r.returncode != 0:
        log("gnuplot: %s" % r.stderr.decode()[:1000])


def run_scale(build, quick):
    """40,000 connections, a line per second each: stampd --workers 4 (the
    fd limit is per process), 3 client processes over 4 source addresses."""
    total, procs = 40000, 3
    dur = "15" if quick else "60"
    srv = Server("stampd", build, cpu=None, workers=4)
    res = {"connections": total, "clients": procs, "duration_s": float(dur)}
    try:
        shares = [total // procs + (i < total % procs) for i in range(procs)]
        res.update(run_clients(build, srv, [
            ["-c", str(c), "--rate", str(c), "-d", dur, "-w", "2",
             "--src-ips", "4", "--connect-timeout", "60"] for c in shares],
            timeout=float(dur) + 120))
        log("scale  %s" % json.dumps(res))
    finally:
        srv.stop()
    return res


# --- summary --------------------------------------------------------------------


def summarise(runs):
    out = {}
    for r in runs:
        if "rps" not in r:
            continue
        k = out.setdefault(r["scenario"], {}).setdefault(r["server"], {
            "rps": [], "cpu": [], "p50": [], "p99": [], "p999": [],
            "p90": [], "errors": 0, "mismatches": 0})
        k["rps"].append(r["rps"])
        if r.get("cpu_us_per_req"):
            k["cpu"].append(r["cpu_us_per_req"])
        for q, key in (("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"),
                       ("p999", "p999_us")):
            k[q].append(r["latency"][key])
        k["errors"] += r["errors"]
        k["mismatches"] += r["mismatches"]
    for scen in out.values():
        for k in scen.values():
            for f in ("rps", "cpu", "p50", "p90", "p99", "p999"):
                v = k[f]
                k[f] = {"median": statistics.median(v) if v else None,
                        "min": min(v) if v else None,
                        "max": max(v) if v else None}
    return out


def ratio(summary, scen, a, b, field):
    try:
        x = summary[scen][a][field]["median"]
        y = summary[scen][b][field]["median"]
        return x / y if x is not None and y else None
    except KeyError:
        return None


RUN_FIELD = {"rps": "rps", "cpu": "cpu_us_per_req"}


def paired_ratio(runs, scen, a, b, field):
    """The median over repetitions of a's figure / b's in the same
    repetition (two runs back to back)."""
    by = {}
    for r in runs:
        v = r.get(RUN_FIELD[field])
        if r["scenario"] == scen and r["server"] in (a, b) and v and "error" not in r:
            by.setdefault(r["rep"], {})[r["server"]] = v
    q = [x[a] / x[b] for x in by.values() if a in x and b in x]
    return statistics.median(q) if q else None


def pair_ratios(pairs, scen, a, b, field):
    """Each interleaved pair's ratio a / b, in pair order; None for a pair
    that failed or lost a reply (a pair with errors measures nothing)."""
    q = []
    for r in pairs:
        if r["scenario"] != scen:
            continue
        x, y = r.get(a, {}), r.get(b, {})
        ok = "error" not in r and all(
            v.get(RUN_FIELD[field]) and v["errors"] == 0 and v["mismatches"] == 0
            for v in (x, y))
        q.append(x[RUN_FIELD[field]] / y[RUN_FIELD[field]] if ok else None)
    return q


def slice_ratios(pairs, scen, a, b, field):
    """The ratios a / b of the turns that were neighbours in time (a's i-th
    turn and b's i-th turn of a pair), over every pair that measured; None
    if a pair failed or lost a reply."""
    def value(x):
        if not (x["replies"] and x["active_s"] > 0):
            return None
        return x["cpu_ns"] / x["replies"] if field == "cpu" else \
            x["replies"] / x["active_s"]
    q = []
    for r, whole in zip([r for r in pairs if r["scenario"] == scen],
                        pair_ratios(pairs, scen, a, b, field)):
        if whole is None:
            return None
        for x, y in zip(r[a].get("slices", ()), r[b].get("slices", ())):
            vx, vy = value(x), value(y)
            if vx and vy:
                q.append(vx / vy)
    return q


def interleaved_ratio(pairs, scen, a, b, field):
    """The median of the neighbouring turns' ratios (slice_ratios()); None
    unless every pair measured."""
    q = slice_ratios(pairs, scen, a, b, field)
    return statistics.median(q) if q else None


def pairs_median(pairs, scen, a, b, field):
    """The median of the pairs' whole-window ratios; None unless every pair
    measured."""
    q = pair_ratios(pairs, scen, a, b, field)
    return statistics.median(q) if q and None not in q else None


def targets(summary, idle, scale, runs=(), pairs=(), http=None, saturation=None):
    t = []

    def add(text, value, ok, fmt="%.3fx"):
        t.append({"target": text,
                  "value": (fmt % value) if value is not None else "n/a",
                  "met": None if value is None else bool(ok(value))})

    def info(text, value, fmt="%.3fx"):
        t.append({"target": text, "info": True,
                  "value": (fmt % value) if value is not None else "n/a",
                  "met": None})
    add("S1 throughput >= 1.30 x redis", ratio(summary, "S1", "stampd", "redis", "rps"),
        lambda v: v >= 1.3)
    add("S1 CPU/request <= 0.75 x redis", ratio(summary, "S1", "stampd", "redis", "cpu"),
        lambda v: v <= 0.75)
    for s in ("S2", "S3"):
        for b, lim in (("redis", 1.0), ("memcached", 1.0)):
            add("%s throughput >= %.2f x %s" % (s, lim, b),
                ratio(summary, s, "stampd", b, "rps"), lambda v, lim=lim: v >= lim)
    # The send path's targets: against the thinnest correct loop, the same
    # CPU per request within 3 % and the same throughput within 3 %.
    for s in PAIRED_SCENARIOS:
        add("%s CPU/request <= 1.03 x baseline (interleaved)" % s,
            interleaved_ratio(pairs, s, *PAIRED, "cpu"), lambda v: v <= 1.03)
        add("%s throughput >= 0.97 x baseline (interleaved)" % s,
            interleaved_ratio(pairs, s, *PAIRED, "rps"), lambda v: v >= 0.97)
    for s in PAIRED_SCENARIOS:
        for f, what in (("cpu", "CPU/request"), ("rps", "throughput")):
            info("%s %s / baseline, median of the pairs' whole windows" % (s, what),
                 pairs_median(pairs, s, *PAIRED, f))
            info("%s %s / baseline, runs back to back" % (s, what),
                 paired_ratio(runs, s, *PAIRED, f))
    add("L1 (-c 1) p99 <= 1.1 x baseline", ratio(summary, "L1", "stampd", "baseline", "p99"),
        lambda v: v <= 1.1)
    add("L1000 (-c 1000) p99 <= redis", ratio(summary, "L1000", "stampd", "redis", "p99"),
        lambda v: v <= 1.0)
    if idle:
        add("idle memory <= 256 B/connection",
            idle.get("stampd", {}).get("bytes_per_conn"), lambda v: v <= 256, "%.0f B")
    if scale:
        ok = scale.get("errors") == 0 and scale.get("mismatches") == 0 and \
            scale.get("late") == 0 and scale.get("connected") == scale["connections"]
        add("scale: 40,000 conns, 0 errors/mismatches", None if "errors" not in scale
            else scale["errors"] + scale["mismatches"], lambda v: ok, "%d errors+mismatches")
        add("scale: p99 < 50 ms", scale.get("p99_us"), lambda v: v < 50000, "%.0f us")
    if saturation:
        for x in saturation.get("targets", ()):
            add("saturation: " + x["target"], x["value"],
                lambda v, met=x["met"]: met)
    if http:
        il = http.get("cpu_stampd_over_floor_interleaved", {})
        for run in ("c100", "c1000"):
            add("HTTP %s CPU/request <= 1.03 x http-floor (interleaved)" % run,
                il.get(run, {}).get("median"), lambda v: v <= 1.03)
        ref = http.get("ratios_stampd_over_reference", {})
        for run in ("c100", "c1000", "pipeline16"):
            add("HTTP %s CPU/request < nginx" % run,
                ref.get(run, {}).get("cpu_per_req"), lambda v: v < 1.0)
    return t


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC")}


def fmt_range(d, f="%.0f"):
    if d["median"] is None:
        return "-"
    return (f + " (" + f + "-" + f + ")") % (d["median"], d["min"], d["max"])


def write_markdown(res, path):
    m, summary = res["machine"], res["summary"]
    L = ["# stampd benchmark", "",
         "%s, %d CPUs (%s), Linux %s; servers pinned to CPU 0, client on CPU 1; "
         "%d repetition(s) of %s s (+%s s warm-up); medians (min-max)."
         % (m["date"], m["nproc"], m["cpu"], m["kernel"], res["reps"],
            res["duration"], res["warmup"]), ""]
    L += ["| scenario | server | req/s | server CPU us/req | p50 us | p99 us | p99.9 us | errors | mismatches |",
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for scen, args, skip in SCENARIOS:
        for s in SERVERS:
            k = summary.get(scen, {}).get(s)
            if not k:
                if s in skip:
                    L.append("| %s `%s` | %s | skipped: %s | | | | | | |" % (
                        scen, " ".join(args), s, skip[s]))
                continue
            L.append("| %s `%s` | %s | %s | %s | %s | %s | %s | %d | %d |" % (
                scen, " ".join(args), s, fmt_range(k["rps"]),
                fmt_range(k["cpu"], "%.2f"), fmt_range(k["p50"], "%.0f"),
                fmt_range(k["p99"], "%.0f"), fmt_range(k["p999"], "%.0f"),
                k["errors"], k["mismatches"]))
    if res.get("idle"):
        L += ["", "Idle memory: user-space RSS growth per idle connection "
              "(15,000 connections held by one client; stampd: its worker).", "",
              "| server | bytes/connection | held |", "| --- | ---: | ---: |"]
        for s, v in res["idle"].items():
            if "skipped" in v:
                L.append("| %s | skipped: %s | |" % (s, v["skipped"]))
            else:
                L.append("| %s | %s | %d |" % (s, "%.0f" % v["bytes_per_conn"]
                                               if v["bytes_per_conn"] is not None else "-",
                                               v["held"]))
    if res.get("scale"):
        sc = res["scale"]
        L += ["", "Scale: %d connections (stampd --workers 4, %d client processes "
              "with --src-ips 4), one line per second each for %.0f s%s: %s" % (
                  sc["connections"], sc["clients"], sc["duration_s"],
                  " (%s)" % sc["source"] if sc.get("source") else "",
                  "error: %s" % sc["error"] if "error" in sc else
                  "%d connected, %.0f req/s, %d errors, %d mismatches, %d late, "
                  "p99 %.0f us, max %.0f us" % (sc["connected"], sc["rps"],
                                                 sc["errors"], sc["mismatches"],
                                                 sc["late"], sc["p99_us"],
                                                 sc["max_us"]))]
    if res.get("http"):
        L += ["", "HTTP (bench/http.sh):", "", "```", res["http"].strip(), "```"]
    else:
        L += ["", "HTTP vs nginx: not part of this run (bench/http.sh, when "
              "present and selected, writes http.md and is quoted here)."]
    if res.get("pairs"):
        il = res["interleaved"]
        L += ["", "Interleaved pairs: stampd and the baseline loaded at once, each by "
              "its own client, the clients taking turns every %.1f s (the other one "
              "stopped) over %s s; server CPU per request over each client's "
              "measured window, req/s over the seconds it ran; the first one "
              "alternates." % (il["slice"], il["duration"]), "",
              "| scenario | pair | first | stampd CPU us/req | baseline CPU us/req "
              "| ratio | stampd req/s | baseline req/s | ratio |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for scen in PAIRED_SCENARIOS:
            rows = [r for r in res["pairs"] if r["scenario"] == scen]
            qc = pair_ratios(rows, scen, *PAIRED, "cpu")
            qr = pair_ratios(rows, scen, *PAIRED, "rps")
            for r, c, t in zip(rows, qc, qr):
                if "error" in r:
                    L.append("| %s | %d | %s | error: %s | | | | | |" % (
                        scen, r["pair"], r["first"], r["error"][:200]))
                    continue
                a, b = r[PAIRED[0]], r[PAIRED[1]]
                L.append("| %s | %d | %s | %.3f | %.3f | %s | %.0f | %.0f | %s |" % (
                    scen, r["pair"], r["first"], a["cpu_us_per_req"],
                    b["cpu_us_per_req"], "-" if c is None else "%.3f" % c,
                    a["rps"], b["rps"], "-" if t is None else "%.3f" % t))
        L += ["", "Turns: each client's turn measured alone, from its resumption to "
              "its next one (the server's CPU, the requests left in flight at the "
              "stop included, over the replies verified; those replies over the "
              "seconds it ran); stampd's i-th turn against the baseline's i-th "
              "turn of the same pair, its neighbour in time.  A burst of another "
              "process on this shared machine lands in one turn, and the median "
              "of the turns' ratios leaves it out: that median is the target.", "",
              "| scenario | turns | CPU ratio: median | quartiles | "
              "throughput ratio: median | quartiles |",
              "| --- | ---: | ---: | --- | ---: | --- |"]
        for scen in PAIRED_SCENARIOS:
            qc = slice_ratios(res["pairs"], scen, *PAIRED, "cpu")
            qr = slice_ratios(res["pairs"], scen, *PAIRED, "rps")
            if not qc or not qr:
                L.append("| %s | - | - | - | - | - |" % scen)
                continue

            def quartiles(q):
                return " ".join("%.3f" % x for x in statistics.quantiles(
                    q, n=4)[::2]) if len(q) >= 4 else "-"
            L.append("| %s | %d | %.3f | %s | %.3f | %s |" % (
                scen, len(qc), statistics.median(qc), quartiles(qc),
                statistics.median(qr), quartiles(qr)))
    L += ["", "## Targets (ratios from this run: of medians, or (interleaved) the "
          "median of the neighbouring turns' ratios)", "",
          "| target | stampd | met |", "| --- | ---: | --- |"]
    for t in res["targets"]:
        L.append("| %s | %s | %s |" % (t["target"], t["value"],
                                       "information" if t.get("info") else
                                       "n/a" if t["met"] is None else
                                       ("met" if t["met"] else "**missed**")))
    L += ["", "Plots: `throughput.png` (req/s vs connections, -P 1), "
          "`latency.png` (latency percentiles at -c 1 and -c 1000).", ""]
    with open(path, "w") as f:
        f.write("\n".join(L))


def plot(res, outdir):
    if not shutil.which("gnuplot"):
        log("gnuplot missing: no plots")
        return
    summary = res["summary"]
    tmp = os.path.join(outdir, "tmp")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "thr.dat"), "w") as f:
        for s in SERVERS:
            f.write('"%s"\n' % s)
            for scen, c in sorted(CONNS.items(), key=lambda x: x[1]):
                k = summary.get(scen, {}).get(s)
                if k and k["rps"]["median"]:
                    f.write("%d %f %f %f\n" % (c, k["rps"]["median"],
                                               k["rps"]["min"], k["rps"]["max"]))
            f.write("\n\n")
    with open(os.path.join(tmp, "lat.dat"), "w") as f:
        for scen in ("L1", "L1000"):
            for s in SERVERS:
                k = summary.get(scen, {}).get(s)
                f.write('"%s"\n' % s)
                if k:
                    for i, q in enumerate(("p50", "p90", "p99", "p999")):
                        f.write("%d %f\n" % (i, k[q]["median"]))
                f.write("\n\n")
    title = "%s, %d CPUs, %s" % (res["machine"]["date"], res["machine"]["nproc"],
                                 res["machine"]["cpu"])
    n = len(SERVERS)
    script = """
set terminal pngcairo size 900,560 font ',10'
set output '{out}/throughput.png'
set title 'Throughput vs connections (-P 1, -s 32), medians; {title}'
set logscale x
set xlabel 'connections'
set ylabel 'requests/s'
set key outside right
set grid
plot for [i=0:{last}] '{tmp}/thr.dat' index i using 1:2:3:4 with yerrorlines title columnheader(1) lw 2
set output '{out}/latency.png'
set terminal pngcairo size 1000,500 font ',10'
set multiplot layout 1,2 title 'Latency percentiles (-P 1), medians; {title}'
unset logscale x
set logscale y
set xtics ('p50' 0, 'p90' 1, 'p99' 2, 'p99.9' 3)
set xrange [-0.3:3.3]
set xlabel 'percentile'
set ylabel 'microseconds'
set key inside top left
set title '-c 1'
plot for [i=0:{last}] '{tmp}/lat.dat' index i using 1:2 with linespoints title columnheader(1) lw 2
set title '-c 1000'
plot for [i={n}:{last2}] '{tmp}/lat.dat' index i using 1:2 with linespoints title columnheader(1) lw 2
unset multiplot
""".format(out=outdir, tmp=tmp, title=title.replace("'", ""), last=n - 1, n=n,
           last2=2 * n - 1)
    gnuplot(script)
    shutil.rmtree(tmp, ignore_errors=True)


def smoke(build):
    """For `make test`: stampd and the baseline, S1 and S2, one short run
    each; any error or mismatch fails."""
    failed = 0
    for name in ("stampd", "baseline"):
        srv = Server(name, build, cpu=None)
        try:
            for args in (["-c", "50", "-P", "16"], ["-c", "50", "-P", "1", "--crlf"],
                         ["-c", "20", "-P", "4", "-s", "0"]):
                data, rc, errs, _ = run_client(build, srv, args + ["-d", "1", "-w", "0.2"],
                                               cpu=None, timeout=30)
                ok = rc == 0 and data and data["requests"] > 0 and \
                    data["errors"] == 0 and data["mismatches"] == 0
                log("smoke %-8s %-28s %s %s" % (name, " ".join(args),
                                               "ok" if ok else "FAILED",
                                               "" if ok else errs))
                failed += not ok
        finally:
            srv.stop()
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--only", default="S1,S2,S3,S4,L1,L1000,idle,scale,saturation,http")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--render", action="store_true",
                    help="only rebuild results.md and the plots from results.json")
    a = ap.parse_args()
    if a.render:
        with open(os.path.join(a.out, "results.json")) as f:
            res = json.load(f)
        res["targets"] = targets(res["summary"], res["idle"], res["scale"], res["runs"],
                                 res.get("pairs", ()), res.get("http_json"),
                                 res.get("saturation"))
        write_markdown(res, os.path.join(a.out, "results.md"))
        plot(res, a.out)
        return
    if a.smoke:
        sys.exit(smoke(a.build))
    only = set(a.only.split(","))
    reps = a.reps or (1 if a.quick else 3)
    t0 = time.monotonic()
    res = {"machine": machine(), "reps": reps,
           "duration": 2 if a.quick else DURATION, "warmup": 0.5 if a.quick else 1,
           "quick": a.quick,
           "interleaved": {"pairs": 1 if a.quick else INTERLEAVED_PAIRS,
                           "duration": 2 if a.quick else INTERLEAVED_S,
                           "slice": SLICE_S}}
    res["runs"], res["pairs"] = run_matrix(a.build, reps, a.quick, only)
    res["summary"] = summarise(res["runs"])
    res["idle"] = run_idle(a.build, a.quick) if "idle" in only else None
    res["scale"] = None
    if "saturation" in only:    # results in bench/results/saturation/
        import saturation
        res["saturation"] = saturation.run_scenario(
            a.build, a.quick, os.path.join(a.out, "saturation"))
        if "scale" in only:
            # Its heartbeat at 40,000 connections is the scale run: the same
            # servers, clients and load (run_scale()), not run twice.
            hb = res["saturation"]["heartbeat"]["stampd"]
            res["scale"] = dict(hb, connections=saturation.CONNS,
                                clients=saturation.CLIENTS,
                                duration_s=float(res["saturation"]["heartbeat_s"]),
                                source="the saturation run's heartbeat")
    if "scale" in only and res["scale"] is None:
        res["scale"] = run_scale(a.build, a.quick)
    http = os.path.join(ROOT, "bench", "http.sh")
    if "http" in only and os.path.exists(http):
        env = dict(os.environ, OUT=a.out)
        if a.quick:  # one short round of each wrk command, one short pair
            env.update(DURATION="2", ROUNDS="1", PAIRS="1", PAIR_S="3")
        r = subprocess.run(["bash", http, a.build], capture_output=True, timeout=900,
                           env=env)
        res["http"] = r.stdout.decode(errors="replace")[-8000:]
        try:
            with open(os.path.join(a.out, "http.json")) as f:
                res["http_json"] = json.load(f)
        except (OSError, ValueError):
            res["http_json"] = None
    res["targets"] = targets(res["summary"], res["idle"], res["scale"], res["runs"],
                             res.get("pairs", ()), res.get("http_json"),
                             res.get("saturation"))
    res["elapsed_s"] = time.monotonic() - t0
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_markdown(res, os.path.join(a.out, "results.md"))
    if res["summary"]:
        plot(res, a.out)
    log("elapsed %.0f s; results in %s" % (res["elapsed_s"], a.out))
    with open(os.path.join(a.out, "results.md")) as f:
        log(f.read())


if __name__ == "__main__":
    main()
