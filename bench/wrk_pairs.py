#!/usr/bin/python3
"""Interleaved wrk pairs: two HTTP servers loaded by two wrk processes that
take turns (one stopped with SIGSTOP while the other runs, swapping every
SLICE seconds), so that whatever else the shared machine does in those
seconds lands on both.  A server whose wrk is stopped answers what is in
flight and idles.

    wrk_pairs.py LABEL CONNS PAIRS SECONDS SLICE A B [WRK ARGS...]
        A, B: NAME,PID,URL (PID: the process whose CPU time counts)

One tab-separated row per server and pair on stdout: label, pair, the
server that ran first (it alternates), name, server CPU microseconds per
response (its schedstat time from before the pair's wrk processes started
to after both ended, over the responses its wrk counted), responses, non-2xx
responses, socket errors, and the server's CPU microseconds per response
in each of its turns (comma-separated; a turn runs from its wrk's
resumption to the next one, the responses counted by the bytes wrk read
in it).  Each wrk runs SECONDS of wall time, half of them stopped.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import schedstat, take_turns  # noqa: E402


def cpu_ns(pid):
    return schedstat([pid])[0]


def rchar(pid):
    """Bytes that pid has read (/proc/PID/io): wrk reads its responses with
    read(), so over a turn this counts the responses' bytes."""
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse(out):
    """(responses, bytes read, non-2xx, socket errors) from wrk's report."""
    m = re.search(r"^\s*(\d+) requests in [^,]*, ([\d.]+)([KMG]?B) read", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", out)
    return (int(m.group(1)) if m else 0,
            float(m.group(2)) * UNITS[m.group(3)] if m else 0.0,
            int(non2xx.group(1)) if non2xx else 0,
            sum(int(x) for x in errs.groups()) if errs else 0)


def pair(servers, conns, seconds, slice_s, extra):
    """One pair, servers[0]'s wrk first: {name: (server CPU ns, wrk's
    report, its exit status, its turns as (server CPU ns, bytes read))}."""
    before = [cpu_ns(pid) for _, pid, _ in servers]
    procs = []
    try:
        for k, (_, _, url) in enumerate(servers):
            procs.append(subprocess.Popen(
                ["taskset", "-c", "1", "wrk", "-t1", "-c%d" % conns,
                 "-d%ds" % seconds, "--timeout", "10s"] + extra + [url],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            if k == 1:
                procs[1].send_signal(signal.SIGSTOP)

        def mark(i):
            return cpu_ns(servers[i][1]), rchar(procs[i].pid)
        _, sides, _ = take_turns(lambda i, sig: procs[i].send_signal(sig),
                                 time.monotonic() + seconds, slice_s, mark,
                                 alive=lambda: all(p.poll() is None for p in procs))
        turns = [[(m[0] - b[0], m[1] - b[1]) for b, m, _ in side
                  if None not in b + m] for side in sides]
        for p in procs:
            p.send_signal(signal.SIGCONT)
        outs = [p.communicate(timeout=seconds + 30)[0] for p in procs]
    finally:
        for p in procs:         # on any error: nobody left stopped
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()
    after = [cpu_ns(pid) for _, pid, _ in servers]
    return {s[0]: (a - b, out, p.returncode, t)
            for s, a, b, out, p, t in zip(servers, after, before, outs, procs, turns)}


def main():
    label, conns, pairs, seconds, slice_s = sys.argv[1], int(sys.argv[2]), \
        int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    servers = []
    for spec in sys.argv[6:8]:
        name, pid, url = spec.split(",", 2)
        servers.append((name, int(pid), url))
    extra = sys.argv[8:]
    for k in range(pairs):
        order = servers if k % 2 == 0 else servers[::-1]
        res = pair(order, conns, seconds, slice_s, extra)
        for name, _, _ in servers:
            ns, out, rc, turns = res[name]
            n, nbytes, non2xx, errs = parse(out)
            if rc != 0 or n == 0 or nbytes == 0:
                sys.exit("wrk_pairs.py: wrk against %s failed (exit %s): %s"
                         % (name, rc, out[-300:]))
            # A turn's responses: the bytes wrk read in it over the bytes
            # of one response (wrk's total over its count).
            per = nbytes / n
            tv = ",".join("%.4f" % (t_ns / 1e3 / (b / per)) for t_ns, b in turns if b > 0)
            print("%s\t%d\t%s\t%s\t%.4f\t%d\t%d\t%d\t%s" % (
                label, k, order[0][0], name, ns / 1e3 / n, n, non2xx, errs,
                tv or "-"), flush=True)


if __name__ == "__main__":
    main()
