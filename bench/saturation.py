#!/usr/bin/python3
"""The tail at saturation: stampd --workers 4 against the baseline loop
(bench-baseline --workers 4: forked processes, one SO_REUSEPORT listener
each), 40,000 connections from 3 stampbench processes over 4 source
addresses, open-loop (latency counted from each request's intended send
time).

  1. Steps: the total rate rises (60,000, 70,000, ... requests/s, 6 s each
     after 2 s of warm-up, 5 s with --quick); at each
     step both servers run in turn, a fresh server and fresh connections
     each, until both servers' p99 has been past 50 ms at two steps in a
     row (or the last step).  Then (not with --quick) one more step halfway
     between the two around each server's knee, and the rates then around
     either knee once more, both servers each time; a rate measured twice
     counts with the geometric mean of its p99s.  p50/p99 are those of every request of the 3 processes
     (their histograms merged).  The knee of a server is the rate at which
     its p99 crosses 50 ms for good (the last crossing from below, so that
     one noisy step does not decide), interpolated linearly between the two
     steps around it; the knee ratio is stampd's knee / the baseline's.
  2. Heartbeat: one line per connection per second (40,000 requests/s),
     three windows of 20 s a server, in the order stampd, baseline,
     baseline, stampd, stampd, baseline (--quick: one window of 15 s
     each), a fresh server and fresh connections each; a server's p99 is
     the median of its windows' (a burst from another process on this
     shared machine lands in one window of one server), and the target is
     the ratio of the two medians.

The figures need a quiet machine: on a shared one, other processes' CPU
time becomes queueing delay for whichever server is running.

    saturation.py --build build [--quick] [--out DIR]
Results: DIR/saturation.{json,md,png}.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402

CONNS, CLIENTS, WORKERS, SRC_IPS = 40000, 3, 4, 4
KNEE_US = 50000
OUT = os.path.join(suite.ROOT, "bench", "results", "saturation")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def start(name, build):
    """stampd or the baseline with WORKERS processes, not pinned (the two
    cores are shared by the server and the clients, as in the scale run).
    Its CPU time is that of every process of it: the parent and its
    WORKERS children (stampd's master, the baseline's waiting parent)."""
    srv = suite.Server(name, build, cpu=None, workers=WORKERS,
                       extra=["--workers", str(WORKERS)] if name == "baseline" else [])
    end = time.monotonic() + 5
    while len(suite.children(srv.proc.pid)) < WORKERS and time.monotonic() < end:
        time.sleep(0.05)
    srv.measured = [srv.proc.pid] + suite.children(srv.proc.pid)
    return srv


def load(build, srv, rate, dur, warmup):
    """CLIENTS stampbench processes at `rate` requests/s in total; the merged
    result (or an "error" entry)."""
    arglists = []
    for i in range(CLIENTS):
        c = CONNS // CLIENTS + (i < CONNS % CLIENTS)
        arglists.append(["-c", str(c), "--rate", "%.1f" % (rate * c / CONNS),
                         "-d", str(dur), "-w", str(warmup),
                         "--src-ips", str(SRC_IPS), "--connect-timeout", "60"])
    res = {"server": srv.name, "rate": rate}
    res.update(suite.run_clients(build, srv, arglists, timeout=dur + warmup + 120))
    return res


def one(build, name, rate, dur, warmup):
    srv = start(name, build)
    try:
        c0 = srv.cpu_ns()
        r = load(build, srv, rate, dur, warmup)
        # Over the whole step (connections, warm-up and measured time), per
        # request offered in the warm-up and the measured time.
        r["server_cpu_s"] = round((srv.cpu_ns() - c0) / 1e9, 3)
        r["cpu_us_per_req"] = round(r["server_cpu_s"] * 1e6 / (rate * (dur + warmup)), 3)
    finally:
        err = srv.stop()
    r["server_rc"] = srv.proc.returncode
    if err.strip():
        r["server_stderr"] = err[-500:]
    log("%-8s rate %6d: %s" % (name, rate, json.dumps(
        {k: r.get(k) for k in ("rps", "p50_us", "p99_us", "errors", "mismatches",
                               "late", "connected", "cpu_us_per_req", "error")})))
    return r


def knee(points):
    """The rate at which p99 crosses KNEE_US for good: the last crossing
    from below (linear between the two steps around it), so that one noisy
    step does not decide; 0.0 when every step is past it, None when p99
    stays below."""
    k, prev = None, None
    for rate, p99 in points:
        above = p99 is None or p99 >= KNEE_US
        if above and (prev is None or prev[1] < KNEE_US):
            if prev is None:
                k = 0.0
            else:
                r0, q0 = prev
                k = r0 + (rate - r0) * (KNEE_US - q0) / (p99 - q0) if p99 else float(r0)
        elif not above:
            k = None
        prev = (rate, p99 if p99 is not None else float("inf"))
    return k


def step_pair(build, res, rate, step_s, warm, above=None):
    """Both servers at `rate`, the first of them alternating from one pair
    to the next so that drifting noise spreads; `above` counts each one's
    consecutive steps past 50 ms."""
    order = ["stampd", "baseline"] if len(res["steps"]) % 4 == 0 else \
        ["baseline", "stampd"]
    for name in order:
        r = one(build, name, rate, step_s, warm)
        res["steps"].append(r)
        if above is not None:
            past = "error" in r or (r.get("p99_us") or 0) >= KNEE_US
            above[name] = above[name] + 1 if past else 0


def curve(res, name):
    """(rate, p99) of one server, in rate order; a rate measured more than
    once gets the geometric mean of its p99s (a failed run counts as
    infinitely late)."""
    by = {}
    for r in res["steps"]:
        if r["server"] == name:
            by.setdefault(r["rate"], []).append(r.get("p99_us") or float("inf"))
    return [(rate, math.exp(sum(math.log(v) for v in vs) / len(vs)))
            for rate, vs in sorted(by.items())]


def knees(res):
    return {n: knee(curve(res, n)) for n in ("stampd", "baseline")}


def around(k, rates):
    """The measured rates on either side of knee k: ([lower], [upper])."""
    return [r for r in rates if r <= k][-1:], [r for r in rates if r > k][:1]


def median_window(runs):
    """The window with the median p99 (a failed one counts as the worst)."""
    ranked = sorted(runs, key=lambda r: r.get("p99_us") or math.inf)
    return ranked[(len(ranked) - 1) // 2]


def run_scenario(build, quick=False, out=OUT, steps=None, max_rate=400000):
    step_s, warm = (5, 1) if quick else (6, 2)
    hb_s, hb_runs = (15, 1) if quick else (20, 3)
    # From 60,000 requests/s: under it neither server is anywhere near its
    # knee on this machine (the heartbeat measures 40,000 on its own).
    rates = steps or list(range(60000, max_rate + 1, 10000))
    res = {"connections": CONNS, "clients": CLIENTS, "workers": WORKERS,
           "step_s": step_s, "heartbeat_s": hb_s, "heartbeat_windows": hb_runs,
           "quick": quick,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_before": os.getloadavg(), "steps": []}
    above = {"stampd": 0, "baseline": 0}   # consecutive steps past 50 ms
    for rate in rates:
        step_pair(build, res, rate, step_s, warm, above)
        if above["baseline"] >= 2 and above["stampd"] >= 2:
            break
    if not steps and not quick:
        # One step's p99 near a knee moves by tens of milliseconds from one
        # run to the next on a shared machine.  So: a step halfway between
        # the two around each knee, then every rate around either knee once
        # more (both servers each time), and the knee from the geometric
        # mean of each rate's p99s.
        done = sorted({r["rate"] for r in res["steps"]})
        mids = set()
        for k in knees(res).values():
            if k:
                lo, hi = around(k, done)
                if lo and hi:
                    mids.add((lo[0] + hi[0]) // 2)
        for rate in sorted(mids):
            step_pair(build, res, rate, step_s, warm)
        done = sorted({r["rate"] for r in res["steps"]})
        again = set()
        for k in knees(res).values():
            if k:
                lo, hi = around(k, done)
                again.update(lo + hi)
        for rate in sorted(again):
            step_pair(build, res, rate, step_s, warm)
    pts = {n: curve(res, n) for n in ("stampd", "baseline")}
    res["knee_rate"] = {n: knee(p) for n, p in pts.items()}
    ks, kb = res["knee_rate"]["stampd"], res["knee_rate"]["baseline"]
    res["knee_ratio"] = round(ks / kb, 3) if ks is not None and kb else None
    below = min(k for k in res["knee_rate"].values() if k is not None) \
        if any(k is not None for k in res["knee_rate"].values()) else float("inf")
    cpu = {}
    for r in res["steps"]:
        if r.get("cpu_us_per_req") and r["rate"] < below:
            cpu.setdefault(r["rate"], {})[r["server"]] = r["cpu_us_per_req"]
    q = [v["stampd"] / v["baseline"] for v in cpu.values() if len(v) == 2]
    res["cpu_ratio_below_knee"] = round(statistics.median(q), 3) if q else None
    runs = {"stampd": [], "baseline": []}
    for i in range(hb_runs):
        for n in (("stampd", "baseline") if i % 2 == 0 else ("baseline", "stampd")):
            runs[n].append(one(build, n, CONNS, hb_s, warm))
    res["heartbeat_windows_p99_us"] = {n: [r.get("p99_us") for r in rs]
                                       for n, rs in runs.items()}
    res["heartbeat"] = {n: median_window(rs) for n, rs in runs.items()}
    hs, hb = (res["heartbeat"][n].get("p99_us") for n in ("stampd", "baseline"))
    res["heartbeat_p99_ratio"] = round(hs / hb, 3) if hs and hb else None
    res["load_after"] = os.getloadavg()
    res["targets"] = [
        {"target": "knee ratio (stampd / baseline rate at p99 = 50 ms) >= 0.95",
         "value": res["knee_ratio"], "met": bool(res["knee_ratio"] and
                                                  res["knee_ratio"] >= 0.95)},
        {"target": "heartbeat at 40,000 req/s: stampd p99 <= 1.5 x baseline",
         "value": res["heartbeat_p99_ratio"], "met": bool(
             res["heartbeat_p99_ratio"] and res["heartbeat_p99_ratio"] <= 1.5)}]
    write(res, out)
    return res


def write(res, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "saturation.json"), "w") as f:
        json.dump(res, f, indent=1)
    dat = {}
    for n in ("stampd", "baseline"):
        dat[n] = os.path.join(out, "saturation-%s.dat" % n)
        with open(dat[n], "w") as f:
            f.write("# rate achieved_rps p50_ms p99_ms\n")
            for r in res["steps"]:
                if r["server"] == n and "p99_us" in r:
                    f.write("%d %.0f %.3f %.3f\n" % (r["rate"], r["rps"],
                                                     r["p50_us"] / 1e3, r["p99_us"] / 1e3))
    script = """set terminal pngcairo size 900,560 font ",10"
set output '%s'
set title "Tail at saturation: 40,000 connections, 4 workers (%s, load %.1f)"
set xlabel "offered rate (requests/s)"
set ylabel "latency (ms, from the intended send time)"
set logscale y
set key left top
set grid
plot '%s' u 1:4 w lp lw 2 pt 7 t 'stampd p99', \\
     '%s' u 1:4 w lp lw 2 pt 5 t 'baseline p99', \\
     '%s' u 1:3 w lp dt 2 pt 6 t 'stampd p50', \\
     '%s' u 1:3 w lp dt 2 pt 4 t 'baseline p50', \\
     50 w l lc rgb 'gray' t '50 ms'
""" % (os.path.join(out, "saturation.png"), res["started"], res["load_before"][0],
       dat["stampd"], dat["baseline"], dat["stampd"], dat["baseline"])
    suite.gnuplot(script)
    with open(os.path.join(out, "saturation.md"), "w") as f:
        f.write("# Tail at saturation (%s, load %.1f before, %s)\n\n" % (
            res["started"], res["load_before"][0],
            "quick" if res["quick"] else "%d s steps" % res["step_s"]))
        f.write("| rate | server | achieved req/s | p50 ms | p99 ms | errors | late "
                "| server CPU us/request |\n|---|---|---|---|---|---|---|---|\n")
        for r in res["steps"]:
            if "p99_us" in r:
                f.write("| %d | %s | %.0f | %.2f | %.2f | %d | %d | %s |\n" % (
                    r["rate"], r["server"], r["rps"], r["p50_us"] / 1e3,
                    r["p99_us"] / 1e3, r["errors"] + r["mismatches"], r["late"],
                    r.get("cpu_us_per_req", "")))
            else:
                f.write("| %d | %s | failed | | | | | |\n" % (r["rate"], r["server"]))
        f.write("\nServer CPU per request: every process of the server over the "
                "whole step (connecting, warm-up, measured time) divided by the "
                "requests offered in the warm-up and the measured time.  Its median "
                "ratio over the steps below both knees (stampd / baseline): %s\n"
                % res.get("cpu_ratio_below_knee"))
        f.write("\nThe knee: the last crossing of 50 ms from below.  0 means past "
                "50 ms from the first step; None, never crossed.  Achieved below the offered rate: the requests "
                "waited (in the server, the kernel or the client).\n")
        f.write("\nKnee (p99 = 50 ms): stampd %s req/s, baseline %s req/s, ratio %s\n\n"
                % (res["knee_rate"]["stampd"], res["knee_rate"]["baseline"],
                   res["knee_ratio"]))
        for n, r in res["heartbeat"].items():
            f.write("Heartbeat, %s (the window of median p99; every window's p99: "
                    "%s us): %s req/s achieved, p50 %s us, p99 %s us, "
                    "%s errors+mismatches\n\n" % (
                n, ", ".join(str(p) for p in res["heartbeat_windows_p99_us"][n]),
                r.get("rps"), r.get("p50_us"), r.get("p99_us"),
                (r.get("errors") or 0) + (r.get("mismatches") or 0)))
        f.write("Heartbeat p99 ratio (stampd / baseline): %s\n\n" % res["heartbeat_p99_ratio"])
        for t in res["targets"]:
            f.write("- %s: %s (%s)\n" % (t["target"], t["value"],
                                         "met" if t["met"] else "NOT met"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", help="comma-separated rates instead of 20k, 40k, ...")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    suite.limit_fds()
    steps = [int(x) for x in a.steps.split(",")] if a.steps else None
    res = run_scenario(a.build, a.quick, a.out, steps)
    with open(os.path.join(a.out, "saturation.md")) as f:
        print(f.read())
    sys.exit(0 if all(t["met"] for t in res["targets"]) else 1)


if __name__ == "__main__":
    main()
