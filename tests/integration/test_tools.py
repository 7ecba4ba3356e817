"""The operator tools against a real server: stampcli through a pty and
through a pipe, stampctl stats / health / top / --json / metrics."""
import json
import os
import re
import signal
import struct
import subprocess
import time

import pytest

from conftest import SLOW, STAMPD, STAMP_PREFIX_RE, Term, wait_for
from test_admin import stuck_client

BIN = os.path.dirname(STAMPD)
STAMPCTL = os.path.join(BIN, "stampctl")
STAMPCLI = os.path.join(BIN, "stampcli")


def run(argv, input=None, timeout=20):
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW)


def test_stampcli_tty(stampd, tmp_path):
    s = stampd(workers=1)
    t = Term([STAMPCLI, "--history", str(tmp_path / "hist"), s.addr()])
    t.prompt()
    t.send(b"hello python\r")
    # The terminal echoes the typed line, then the reply follows.
    m = t.expect(rb"(\[[^\]\r\n]{24}\] hello python)\r?\n")
    assert STAMP_PREFIX_RE.match(m.group(1))
    t.prompt()
    t.send(b"\x04")        # Ctrl-D quits
    assert t.wait() == 0
    assert wait_for(lambda: s.stats()["totals"]["requests_total"]["line"] == 1, 5, "one request")


def test_stampcli_pipe_prints_exactly_the_replies(stampd):
    s = stampd(workers=1)
    r = run([STAMPCLI, s.addr()], input=b"a\nb\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split(b"\n")
    assert len(lines) == 3 and lines[2] == b""
    assert [STAMP_PREFIX_RE.sub(b"", l) for l in lines[:2]] == [b"a", b"b"]
    assert all(STAMP_PREFIX_RE.match(l) for l in lines[:2])
    assert r.stderr == b""
    # A missing final LF still makes a request.
    r = run([STAMPCLI, s.addr()], input=b"no newline")
    assert r.returncode == 0 and r.stdout.endswith(b"] no newline\n")


def test_stampcli_pipe_sends_empty_lines(stampd):
    """`printf 'a\\n\\nb\\n' | stampcli`: three requests, three replies, in
    order, the empty line's reply being the bare stamp."""
    s = stampd(workers=1)
    r = run([STAMPCLI, s.addr()], input=b"a\n\nb\n")
    assert (r.returncode, r.stderr) == (0, b"")
    lines = r.stdout.split(b"\n")
    assert len(lines) == 4 and lines[3] == b""
    assert all(STAMP_PREFIX_RE.match(l) for l in lines[:3])
    assert [l[27:] for l in lines[:3]] == [b"a", b"", b"b"]
    wait_for(lambda: s.stats()["totals"]["requests_total"]["line"] == 3, 5, "three requests")
    # Only empty lines, CRLF input, and --raw changing nothing in a pipe.
    r = run([STAMPCLI, "--raw", s.addr()], input=b"\n\n")
    assert r.returncode == 0 and [l[27:] for l in r.stdout.split(b"\n")] == [b"", b"", b""]


def test_stampcli_pipe_reply_bytes_are_raw(stampd):
    """Into a pipe the reply's bytes come as the server sent them: an ESC
    in the echoed line reaches stdout unchanged."""
    s = stampd("--reply", "echo", workers=1)
    r = run([STAMPCLI, s.addr()], input=b"\x1b[31mred\x1b[0m\n")
    assert (r.returncode, r.stdout) == (0, b"\x1b[31mred\x1b[0m\n")


def test_stampcli_exit_status_counts_replies(stampd):
    """The exit status says whether every request got its reply: a server
    that closes after the first (max-line exceeded) leaves the rest
    unanswered, exit 1; one that never answers (a silent listener) times
    out, exit 1."""
    s = stampd("--max-line", "8", workers=1)
    r = run([STAMPCLI, s.addr()], input=b"ok\n" + b"y" * 20 + b"\nnever\n")
    assert r.returncode == 1
    assert r.stdout.endswith(b"] ok\nERR line too long\n")
    assert b"closed by the server" in r.stderr
    import socket
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        r = run([STAMPCLI, "--timeout", "0.3", "127.0.0.1:%d" % silent.getsockname()[1]],
                input=b"hello\n")
    finally:
        silent.close()
    assert r.returncode == 1 and r.stdout == b""
    assert b"no reply within 300 ms" in r.stderr


def test_stampcli_http_and_repeat(stampd):
    s = stampd("--http", "127.0.0.1:0", workers=1)
    r = run([STAMPCLI, "--http", s.addr("http")], input=b"over http\n\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split(b"\n")
    assert [l[27:] for l in lines] == [b"over http", b"/", b""]
    assert all(STAMP_PREFIX_RE.match(l) for l in lines[:2])
    wait_for(lambda: s.stats()["totals"]["requests_total"]["http"] == 2, 5, "two HTTP requests")
    # -n: each round trip with its time, then the summary.
    r = run([STAMPCLI, "-n", "5", s.addr(), "ping"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode().split("\n")
    assert len(out) == 7 and out[6] == ""
    for i, l in enumerate(out[:5]):
        assert re.match(r"%d  \d+\.\d us  \[[^\]]{24}\] ping$" % (i + 1), l), l
    m = re.match(r"5 requests  min ([\d.]+) us  avg ([\d.]+) us  max ([\d.]+) us"
                 r"  p99 ([\d.]+) us$", out[5])
    assert m, out[5]
    lo, avg, hi, p99 = map(float, m.groups())
    times = [float(l.split()[1]) for l in out[:5]]
    assert (lo, hi, p99) == (min(times), max(times), max(times))
    assert lo <= avg <= hi
    r = run([STAMPCLI, "-n", "2", "--http", s.addr("http")], input=b"a\n")
    assert r.returncode == 0 and r.stdout.count(b"] a\n") == 2
    assert run([STAMPCLI, "-n", "0", s.addr()]).returncode == 2
    r = run([STAMPCLI, "--version"])
    assert r.returncode == 0 and r.stdout.startswith(b"stampcli ")


def test_stampcli_unix_and_errors(stampd, tmp_path):
    path = str(tmp_path / "s.sock")
    stampd("--max-line", "16", workers=1, listen=["unix:" + path])
    r = run([STAMPCLI, "unix:" + path], input=b"over unix\n")
    assert r.returncode == 0 and r.stdout.endswith(b"] over unix\n")
    # The server's ERR line is shown and the closed connection is an error.
    r = run([STAMPCLI, "unix:" + path], input=b"x" * 40 + b"\nmore\n")
    assert r.returncode == 1
    assert r.stdout == b"ERR line too long\n"
    assert b"closed" in r.stderr
    r = run([STAMPCLI, "127.0.0.1:1"], input=b"a\n")
    assert r.returncode == 1 and b"cannot connect" in r.stderr
    assert run([STAMPCLI, "not an address"]).returncode == 2


def test_stampctl_stats_json_metrics(stampd):
    s = stampd(workers=2)
    r = run([STAMPCLI, s.addr()], input=b"one\ntwo\nthree\n")
    assert r.returncode == 0
    wait_for(lambda: s.stats()["totals"]["requests_total"]["line"] == 3, 5, "three requests")
    admin = ["--admin", s.admin]

    r = run([STAMPCTL] + admin + ["stats"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("stampd ") and "2/2 workers up  serving" in out
    assert re.search(r"^  requests +line=3 http=0 udp=0$", out, re.M)
    assert re.search(r"^  connections_accepted +1$", out, re.M)
    assert re.search(r"^  connections_closed +eof=1 reset=0 timeout=0 limit=0 "
                     r"protocol=0 shutdown=0 memory=0 crash=0$", out, re.M)
    rows = re.findall(r"^ +(\d) +(\d+) +(\d+) +(\d+) ", out, re.M)
    assert sorted(int(w) for w, *_ in rows) == [0, 1]
    assert sum(int(req) for *_, req in rows) == 3
    assert sorted(int(p) for _, p, *_ in rows) == sorted(s.children())

    r = run([STAMPCTL] + admin + ["--json"])
    assert r.returncode == 0
    page = json.loads(r.stdout)
    assert page["totals"]["requests_total"]["line"] == 3 and len(page["workers"]) == 2

    r = run([STAMPCTL] + admin + ["metrics"])
    assert r.returncode == 0
    assert b"# TYPE stampd_request_duration_seconds histogram\n" in r.stdout


def test_stampctl_stats_lists_every_listener(stampd, tmp_path):
    path = str(tmp_path / "line.sock")
    s = stampd("--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", workers=1,
               listen=["127.0.0.1:0", "unix:" + path])
    r = run([STAMPCTL, "--admin", s.admin, "stats"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    block = out[out.index("\nlisteners:\n"):out.index("\ntotals:\n")]
    rows = [l.split() for l in block.split("\n")[3:-1]]
    # Kind, address, and (but for the admin port) conns, accepted, requests,
    # enforced, last client, last enforced: nobody has connected yet.
    idle = ["0", "0", "0", "0", "-", "-"]
    assert rows == [
        ["line", s.addr("line")] + idle, ["unix", "unix:" + path] + idle,
        ["http", s.addr("http")] + idle, ["udp", s.addr("udp")] + idle,
        ["admin", s.admin]]


def test_stampctl_health(stampd):
    s = stampd("--shutdown-timeout", "20", "--max-output", "64k", workers=1)
    r = run([STAMPCTL, "--admin", s.admin, "health"])
    assert (r.returncode, r.stdout) == (0, b"200 ok\n")
    c = stuck_client(s)
    s.send_signal(signal.SIGTERM)

    def unhealthy():
        r = run([STAMPCTL, "--admin", s.admin, "health"])
        return r.returncode == 1 and r
    r = wait_for(unhealthy, 5, "health to fail")
    assert r.stdout == b"503 draining\n"
    c.close()
    assert s.wait() == 0
    # Nobody listening: exit 1 with a message.
    r = run([STAMPCTL, "--admin", s.admin, "health"])
    assert r.returncode == 1 and b"cannot connect" in r.stderr
    assert run([STAMPCTL, "--admin", "nonsense", "health"]).returncode == 2
    assert run([STAMPCTL, "frobnicate"]).returncode == 2


def test_stampctl_top(stampd):
    s = stampd(workers=2)
    # A steady load during the sampling: one client, one line at a time.
    feeder = subprocess.Popen([STAMPCLI, s.addr()], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    try:
        feeder.stdin.write(b"warm up\n")
        feeder.stdin.flush()
        wait_for(lambda: s.stats()["totals"]["requests_total"]["line"] >= 1, 5, "a request")
        top = subprocess.Popen([STAMPCTL, "--admin", s.admin, "top", "--count", "2",
                                "--interval", "0.5"], stdout=subprocess.PIPE)
        deadline = time.monotonic() + 5 * SLOW
        while top.poll() is None and time.monotonic() < deadline:
            feeder.stdin.write(b"tick\n" * 20)
            feeder.stdin.flush()
            time.sleep(0.02)
        out, _ = top.communicate(timeout=10 * SLOW)
        assert top.returncode == 0
    finally:
        feeder.stdin.close()
        feeder.wait(timeout=10)
    text = out.decode()
    assert "\033" not in text           # no escapes into a pipe
    screens = text.split("\n\n")
    assert len(screens) == 2
    for scr in screens:
        lines = scr.strip("\n").split("\n")
        assert lines[0].startswith("stampd ") and "2/2 workers up" in lines[0]
        assert lines[2].split() == ["worker", "pid", "conns", "req/s", "MB/s", "in",
                                    "MB/s", "out", "p50", "p99", "pauses", "errs"]
        assert [l.split()[0] for l in lines[3:6]] == ["0", "1", "total"]
        assert re.match(r"req/s by protocol  line \d+  http 0  udp 0$", lines[6])
        # A line per listener: the stampcli feeder is its one connection
        # and its last client.
        assert lines[7].split() == ["kind", "listener", "conns", "req/s", "enf", "last",
                                    "client"]
        row = lines[8].split()
        assert row[:3] == ["line", s.addr(), "1"] and row[4] == "0", row
        assert re.fullmatch(r"127\.0\.0\.1:\d+", row[5]), row
        assert lines[9].split() == ["admin", s.admin]
        # The kernel's clock discipline, as /stats has it.
        synced = s.stats()["clock_synchronized"]
        assert re.match(r"clock %s, max error \S+, estimated \S+, offset \S+$"
                        % ("synchronised" if synced else "UNSYNCHRONISED"), lines[10]), lines
        assert len(lines) == 11
    # Somebody was served in the sampled intervals: a non-zero rate and a
    # latency figure on the total line of at least one screen.
    tot = [scr.strip("\n").split("\n")[5].split() for scr in screens]
    assert any(float(t[2]) > 0 and re.match(r"[\d.]+(ns|us|ms|s)$", t[5]) for t in tot), text


def test_workers_default_follows_the_affinity_mask(stampd):
    """`taskset -c 0 stampd` with no --workers: one worker, not one per
    online CPU (the mask is set in the child before exec, as taskset does)."""
    s = stampd(workers=None, preexec=lambda: os.sched_setaffinity(0, {0}))
    assert s.nworkers == 1                    # from the 'listening on' line
    assert len(s.stats()["workers"]) == 1
    assert s.stats()["config"]["workers"] == 1
    assert len(s.children()) == 1


# --- stampbench ---------------------------------------------------------------

# The load client: an epoll build even where the server is not (make
# test-kqueue: the emulated kqueue is not thread-safe, stampbench threaded).
STAMPBENCH = os.environ.get("STAMPBENCH_BIN", os.path.join(BIN, "stampbench"))


def suite_module():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "bench", "suite.py")
    spec = importlib.util.spec_from_file_location("suite", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_json(addr, *args):
    r = run([STAMPBENCH, "--json", "-d", "0.5", "-w", "0.1"] + list(args) + [addr],
            timeout=30)
    assert r.returncode == 0, r.stderr
    # Into a pipe, stderr has the phase markers and nothing else.
    assert r.stderr == b"#connected\n#start\n#end\n"
    return json.loads(r.stdout)


class PairSide:
    """A test server as bench/suite.py's interleaved_pair() sees one: a
    name, a port, and its worker's CPU time, read as the suite reads a
    server's (suite.Server over the `measured` pids)."""

    def __init__(self, name, srv, suite):
        self.name, self.srv, self.port = name, srv, srv.port
        self.measured = srv.children()
        self.cpu_ns = lambda: suite.Server.cpu_ns(self)
        self.cpu_ticks = lambda: suite.Server.cpu_ticks(self)
        self.sched = lambda: suite.Server.sched(self)


def test_interleaved_pair_takes_turns(stampd):
    """The suite's interleaved pairs: both clients measure the same 2 s,
    taking turns every 0.25 s (the servers' own counters show one at a
    time moving), and each one's replies all verify."""
    import threading
    suite = suite_module()
    sides = [PairSide(n, stampd(workers=1), suite) for n in ("a", "b")]
    build = os.path.relpath(os.path.dirname(STAMPBENCH), suite.ROOT)
    out = {}
    t = threading.Thread(target=lambda: out.update(suite.interleaved_pair(
        build, sides, ["-c", "20", "-P", "2", "-s", "32"], 2, 0.25)))
    t.start()
    # Both servers' request counters every 50 ms until the pair is done
    # (at most 60 s): which of them moved in each interval.
    moved, prev, end = [], None, time.monotonic() + 60
    while t.is_alive() and time.monotonic() < end:
        cur = [x.srv.stat("requests_total", "line") for x in sides]
        if prev:
            moved.append(tuple(c > p for c, p in zip(cur, prev)))
        prev = cur
        time.sleep(0.05)
    t.join(timeout=60)
    assert not t.is_alive() and out
    for side in sides:
        x = out[side.name]
        assert x["errors"] == 0 and x["mismatches"] == 0
        assert 0 < x["requests"] <= side.srv.stat("requests_total", "line")
        assert x["cpu_s"] > 0 and x["cpu_us_per_req"] > 0
        # About half of the 2 s each (the turns are timed by a sleeping
        # Python loop: a loose bound).
        assert 0.6 < x["active_s"] < 1.4, x
        # Its turns, each from one resumption to the next: 8 turns of
        # 0.25 s, the last of each side open-ended, so at least 3 each.
        sl = x["slices"]
        assert 3 <= len(sl) <= 4, sl
        assert all(t["replies"] > 0 and t["cpu_ns"] > 0 and t["wakeups"] > 0 and
                   0.15 < t["active_s"] < 0.6 for t in sl), sl
        assert sum(t["replies"] for t in sl) < x["requests"]
    assert 1.9 < out["a"]["active_s"] + out["b"]["active_s"] < 2.3
    # The warm-up runs both at once; the measured time takes turns: each
    # server alone in a good part of the intervals.
    alone = [sum(1 for m in moved if m[i] and not m[1 - i]) for i in (0, 1)]
    assert min(alone) >= len(moved) // 6, moved
    # Every client is gone, none left stopped.
    assert subprocess.run(["pgrep", "-f", "start-on-signal"]).returncode == 1


def test_stampbench_json_histogram_merges(stampd):
    s = stampd(workers=1)
    suite = suite_module()
    a = bench_json(s.addr(), "-c", "2")
    b = bench_json(s.addr(), "-c", "3", "-P", "4")
    for d in (a, b):
        lat, h = d["latency"], d["latency"]["histogram"]
        assert (h["unit"], h["sub_bits"]) == ("ns", 7)
        assert h["count"] == lat["count"] == d["requests"] > 0
        assert sum(n for _, _, n in h["buckets"]) == h["count"]
        assert all(lo <= hi for lo, hi, _ in h["buckets"])
        assert [lo for lo, _, _ in h["buckets"]] == sorted(lo for lo, _, _ in h["buckets"])
        assert h["min"] <= h["max"] and float("%.2f" % (h["max"] / 1e3)) == lat["max_us"]
        # The suite's quantile rule is stampbench's, to the printed digit.
        for q, key in ((0.5, "p50_us"), (0.9, "p90_us"), (0.99, "p99_us"),
                       (0.999, "p999_us")):
            assert float("%.2f" % (suite.hist_quantile(h, q) / 1e3)) == lat[key]
    m = suite.merge_latency([a, b])
    assert m["count"] == a["requests"] + b["requests"]
    assert m["histogram"]["max"] == max(a["latency"]["histogram"]["max"],
                                        b["latency"]["histogram"]["max"])
    lo = min(a["latency"]["p99_us"], b["latency"]["p99_us"])
    hi = max(a["latency"]["p99_us"], b["latency"]["p99_us"])
    assert lo <= m["p99_us"] <= hi
    # The merged p99 is the p99 of all samples: the same as sorting the
    # union of every bucket's samples (each at its upper bound).
    samples = sorted(min(up, m["histogram"]["max"])
                     for d in (a, b) for _, up, n in d["latency"]["histogram"]["buckets"]
                     for _ in range(n))
    rank = -(-99 * len(samples) // 100)
    assert m["p99_us"] == round(samples[rank - 1] / 1e3, 2)


def test_stampbench_hist_out_hdr_format(stampd, tmp_path):
    s = stampd(workers=1)
    out = tmp_path / "lat.hgrm"
    d = bench_json(s.addr(), "-c", "2", "--hist-out", str(out))
    text = out.read_text().split("\n")
    assert text[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert text[1] == ""
    rows = [l.split() for l in text[2:] if l and not l.startswith("#")]
    assert len(rows) >= 10
    pct = [float(r[1]) for r in rows]
    vals = [float(r[0]) for r in rows]
    counts = [int(r[2]) for r in rows]
    assert pct[0] == 0 and pct[-1] == 1 and pct == sorted(pct)
    assert vals == sorted(vals) and counts == sorted(counts)
    assert counts[-1] == d["requests"] and rows[-1][3] == "inf"
    for r in rows[:-1]:
        inv = 1 / (1 - float(r[1]))      # the percentile has 6 digits
        assert abs(float(r[3]) - inv) <= 0.01 + inv * inv * 5e-7
    # Milliseconds, as wrk2: the last value is the maximum.
    assert abs(vals[-1] - d["latency"]["max_us"] / 1e3) < 0.001
    foot = [l for l in text if l.startswith("#[")]
    assert re.match(r"#\[Mean    = +[\d.]+, StdDeviation   = +[\d.]+\]$", foot[0])
    m = re.match(r"#\[Max     = +([\d.]+), Total count    = +(\d+)\]$", foot[1])
    assert m and int(m.group(2)) == d["requests"]
    assert re.match(r"#\[Buckets = +\d+, SubBuckets     = +\d+\]$", foot[2])
    # A path that cannot be written fails before the run, exit 2.
    r = run([STAMPBENCH, "--hist-out", str(tmp_path / "no" / "x"), s.addr()])
    assert r.returncode == 2 and b"--hist-out" in r.stderr
    r = run([STAMPBENCH, "--version"])
    assert r.returncode == 0 and re.match(rb"stampbench \S+\n$", r.stdout)


INTERVAL_RE = re.compile(r"#interval t=([\d.]+) requests=(\d+) rate=([\d.]+) "
                         r"errors=(\d+) p50_us=([\d.]+) p99_us=([\d.]+)$")


def test_stampbench_verify_all_and_interval_lines_into_a_pipe(stampd):
    """--verify-all: one more round trip on every connection after the run,
    counted in --json; --interval: one line per interval on stderr even
    into a pipe, with that interval's own percentiles."""
    s = stampd(workers=1)
    r = run([STAMPBENCH, "--json", "--verify-all", "--interval", "0.5", "-c", "5",
             "-d", "1.5", "-w", "0.1", s.addr()], timeout=30)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["verify_all"], d["verified"], d["unverified"]) == (True, 5, 0)
    lines = r.stderr.decode().split("\n")
    assert lines[:2] == ["#connected", "#start"]
    assert lines[-3:] == ["#end", "#verified", ""]
    ivs = [INTERVAL_RE.match(l) for l in lines[2:-3]]
    assert all(ivs), lines
    assert [float(m.group(1)) for m in ivs] == [0.5, 1.0, 1.5]
    for m in ivs:
        reqs, rate = int(m.group(2)), float(m.group(3))
        assert reqs > 0 and abs(rate - reqs / 0.5) < 0.1
        assert int(m.group(4)) == 0
        assert 0 < float(m.group(5)) <= float(m.group(6))
    assert sum(int(m.group(2)) for m in ivs) <= d["requests"]


def signalled_bench(s, args, warm, warmed, started=None):
    """stampbench --json --start-on-signal ARGS against s: once connected
    and `warm` requests into the warm-up, warmed(p); then SIGUSR1, and
    started() after '#start' if given.  Returns (report, the rest of
    stderr); the run must succeed."""
    p = subprocess.Popen([STAMPBENCH, "--json", "--start-on-signal"] + args + [s.addr()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stderr.readline() == b"#connected\n"
        wait_for(lambda: s.stat("requests_total", "line") >= warm, 10,
                 "the warm-up load")
        warmed(p)
        p.send_signal(signal.SIGUSR1)
        if started:
            assert p.stderr.readline() == b"#start\n"
            started()
        out, err = p.communicate(timeout=10 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    return json.loads(out), err


def test_stampbench_start_on_signal_measures_from_sigusr1(stampd):
    """--start-on-signal: the warm-up load runs unrecorded past -w until
    SIGUSR1; only then "#start", and only what follows is measured."""
    s = stampd(workers=1)

    def warmed(p):
        # Half a second of load at 200/s: five times the 0.1 s warm-up.
        assert p.poll() is None
        os.set_blocking(p.stderr.fileno(), False)
        assert p.stderr.read() is None          # no "#start" yet
        os.set_blocking(p.stderr.fileno(), True)
    d, err = signalled_bench(s, ["--rate", "200", "-c", "3", "-w", "0.1", "-d", "0.5"],
                             100, warmed)
    assert err == b"#start\n#end\n"
    served = s.stat("requests_total", "line")
    assert 0 < d["requests"] <= served - 100


def test_stampbench_count_file_follows_the_measured_replies(stampd, tmp_path):
    """--count-file: one counter per thread, zero through the warm-up,
    moving in the measured time, and at the end the report's count."""
    s = stampd(workers=1)
    path = str(tmp_path / "count")

    def counters():
        with open(path, "rb") as f:
            raw = f.read()
        assert len(raw) == 16           # two threads
        return struct.unpack("=2Q", raw)

    def warmed(p):
        assert counters() == (0, 0)     # the warm-up is not counted

    def started():
        wait_for(lambda: min(counters()) > 0, 10, "both threads counting")
    d, err = signalled_bench(s, ["--rate", "400", "-c", "4", "-t", "2", "-w", "0.1",
                                 "-d", "1", "--count-file", path], 40, warmed, started)
    assert err == b"#end\n"
    assert sum(counters()) == d["requests"] > 0


def verify_held(addr, connect_timeout="5"):
    """stampbench --connect-only --verify-all over 3 connections: (exit
    status, report)."""
    r = run([STAMPBENCH, "--json", "--connect-only", "--verify-all", "-c", "3",
             "-d", "0.2", "--connect-timeout", connect_timeout, addr], timeout=30)
    return r.returncode, json.loads(r.stdout)


def test_stampbench_verify_all_fails_unanswered_and_wrong_replies(stampd):
    # No reply at all within --connect-timeout: every connection unverified.
    rc, d = verify_held(stampd("--reply", "none", workers=1).addr(), "1")
    assert rc == 1
    assert (d["verified"], d["unverified"], d["held"]) == (0, 3, 3)
    # An echo where a stamp is expected: a mismatch on each final reply.
    rc, d = verify_held(stampd("--reply", "echo", workers=1).addr())
    assert rc == 1
    assert (d["verified"], d["unverified"], d["mismatches"]) == (0, 3, 3)
    # Answered: all verified, exit 0.
    rc, d = verify_held(stampd(workers=1).addr())
    assert (rc, d["verified"], d["unverified"]) == (0, 3, 0)


def test_stampbench_wait_close_counts_the_servers_graceful_stop(stampd):
    """--wait-close: after the verification the connections stay until the
    server closes them; a graceful stop closes every one (exit 0), none
    closed in time fails the run."""
    s = stampd(workers=1)
    p = subprocess.Popen([STAMPBENCH, "--json", "--rate", "40", "-c", "4", "-d", "0.3",
                          "-w", "0", "--verify-all", "--wait-close", "20", s.addr()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = []
        for raw in p.stderr:          # bounded: the run ends within --wait-close
            seen.append(raw)
            if raw == b"#verified\n":
                break
        assert seen[-1] == b"#verified\n", seen
        assert s.stop() == 0
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    assert p.returncode == 0
    d = json.loads(out)
    assert (d["verified"], d["closed_by_server"], d["not_closed"], d["errors"]) == (4, 4, 0, 0)
    # Nobody stops the server: still open at the deadline.
    r = run([STAMPBENCH, "--json", "--connect-only", "-c", "2", "-d", "0.2",
             "--wait-close", "0.3", stampd(workers=1).addr()], timeout=30)
    assert r.returncode == 1
    assert json.loads(r.stdout)["not_closed"] == 2


def test_stampbench_progress_line_on_a_terminal(stampd):
    s = stampd(workers=1)
    t = Term([STAMPBENCH, "-c", "2", "-d", "2.5", "-w", "0.1", s.addr()])
    # Redrawn in place once a second: CR, the figures, erase to the end.
    m = t.expect(rb"\r +1 s  requests (\d+)  rate (\d+)/s  errors 0  p99 ([\d.]+) us\x1b\[K")
    assert int(m.group(1)) > 0 and int(m.group(2)) > 0
    m = t.expect(rb"\r +2 s  requests (\d+)  rate \d+/s  errors 0  p99 [\d.]+ us\x1b\[K")
    # Cleared before the report.
    t.expect(rb"\r\x1b\[K#end\r?\n")
    t.expect(rb"requests +\d+ +\d+ req/s")
    assert t.wait() == 0


def cpu_cgroup(tmp_name, quota_us, period_us):
    """A fresh cgroup with a CPU quota, in whichever hierarchy holds the cpu
    controller for this process: (directory, file to write a pid into).
    Skips where cgroups cannot be created (not root, read-only mount)."""
    lines = open("/proc/self/cgroup").read().split("\n")
    v1 = [l.split(":", 2) for l in lines if l.count(":") >= 2]
    v1 = [l for l in v1 if "cpu" in l[1].split(",")]
    if v1:
        roots = [r for r in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct")
                 if os.path.exists(os.path.join(r, "cpu.cfs_quota_us"))]
        if not roots:
            pytest.skip("no cgroup v1 cpu mount")
        d = os.path.join(roots[0], tmp_name)
        files = {"cpu.cfs_period_us": str(period_us), "cpu.cfs_quota_us": str(quota_us)}
    else:
        own = [l[3:] for l in lines if l.startswith("0::")][0]
        d = os.path.join("/sys/fs/cgroup" + own.rstrip("/"), tmp_name)
        files = {"cpu.max": "%d %d" % (quota_us, period_us)}
    try:
        os.mkdir(d)
    except OSError as e:
        pytest.skip("cannot create a cgroup: %s" % e)
    try:
        for name, value in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(value)
    except OSError as e:
        os.rmdir(d)
        pytest.skip("cannot set a CPU quota: %s" % e)
    return d, os.path.join(d, "cgroup.procs")


def test_workers_default_follows_the_cgroup_cpu_quota(stampd):
    """In a cgroup allowed half a CPU (a container's `--cpus 0.5`), the
    default is one worker however many CPUs the affinity mask holds."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs in the affinity mask to tell the quota's effect")
    d, procs = cpu_cgroup("stampd-test-%d" % os.getpid(), 50000, 100000)

    def join():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    s = None
    try:
        s = stampd(workers=None, preexec=join)
        assert s.nworkers == 1 and len(s.stats()["workers"]) == 1
        assert s.stop() == 0
    finally:
        # A cgroup can be removed only once its processes are gone.
        if s is not None and s.proc.poll() is None:
            s.stop()
        wait_for(lambda: not open(procs).read().strip(), 10, "the cgroup to empty")
        os.rmdir(d)
