"""The admin port (protocol section 4): after a scripted load with known
numbers the /stats and /metrics figures equal those numbers exactly; a
killed worker's counters survive; /readyz turns 503 during a graceful stop
(/healthz stays 200);
/metrics passes promtool; read-only methods, 404."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from conftest import SLOW, recv_all, recv_lines, stat_of, wait_for

STAMP_LEN = len(b"[Mon Sep  5 22:29:12 2016] ")
ERR_TOO_MANY = b"ERR too many connections\n"
ERR_TOO_LONG = b"ERR line too long\n"
ERR_TIMEOUT = b"ERR line timeout\n"

SERIES_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset(labels)): float} from exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES_RE.match(line)
        assert m, "malformed series line %r" % line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_sum(metrics, name, **want):
    """Sum of every series of `name` whose labels include `want`."""
    w = set((k, str(v)) for k, v in want.items())
    return sum(v for (n, labels), v in metrics.items() if n == name and w <= labels)


def promtool_check(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make deps installs the prometheus package"
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout.decode()


def totals(s):
    return s.stats()["totals"]


def wait_totals(s, expect, timeout=10):
    """Poll /stats until every expected total matches (stats are relaxed
    atomics written by the workers); then return the last page."""
    last = {}

    def match():
        page = s.stats()
        last["page"] = page
        t = page["totals"]
        return all(stat_of(t, k) == v for k, v in expect.items()) and page
    try:
        return wait_for(match, timeout, "the admin figures", interval=0.02)
    except AssertionError:
        t = last["page"]["totals"]
        diff = {k: (stat_of(t, k), v) for k, v in expect.items()
                if stat_of(t, k) != v}
        raise AssertionError("figures (got, want) that differ: %r" % diff)


def test_known_load_exact_figures(stampd):
    s = stampd("--max-conns", "3", "--max-line", "100", "--line-timeout", "1",
               "--idle-timeout", "2", workers=1)
    sent_in = sent_out = 0

    # Three connections fill --max-conns; two more are refused.
    conns = [s.connect() for _ in range(3)]
    wait_totals(s, {"connections_active": 3, "connections_accepted_total": 3})
    for _ in range(2):
        r = s.connect()
        assert recv_all(r) == ERR_TOO_MANY
        r.close()
        sent_out += len(ERR_TOO_MANY)

    # Known lines on each of the three, then EOF: closed as `eof`.
    nlines = 0
    for i, c in enumerate(conns):
        lines = [b"conn%d line %d %s\n" % (i, j, b"x" * j) for j in range(10 + i)]
        c.sendall(b"".join(lines))
        c.shutdown(socket.SHUT_WR)
        replies = recv_lines(c, len(lines))
        for req, rep in zip(lines, replies):
            assert rep[STAMP_LEN:] == req
        assert recv_all(c) == b""
        c.close()
        nlines += len(lines)
        sent_in += sum(map(len, lines))
        sent_out += sum(map(len, replies))

    # One line over --max-line: ERR, closed as `limit`.
    c = s.connect()
    c.sendall(b"y" * 150)
    assert recv_all(c) == ERR_TOO_LONG
    c.close()
    sent_in += 150
    sent_out += len(ERR_TOO_LONG)

    # One partial line left hanging (line timeout) and one silent
    # connection (idle timeout): both closed as `timeout`.
    lt = s.connect()
    lt.sendall(b"partial")
    idle = s.connect()
    assert recv_all(lt, timeout=5) == ERR_TIMEOUT
    lt.close()
    assert recv_all(idle, timeout=5) == b""
    idle.close()
    sent_in += len(b"partial")
    sent_out += len(ERR_TIMEOUT)

    expect = {
        "connections_accepted_total": 6, "connections_refused_total": 2, "connections_active": 0,
        "connections_closed_total.eof": 3, "connections_closed_total.reset": 0, "connections_closed_total.timeout": 2,
        "connections_closed_total.limit": 1, "connections_closed_total.protocol": 0, "connections_closed_total.shutdown": 0,
        "requests_total.line": nlines, "requests_total.http": 0, "requests_total.udp": 0,
        "bytes_received_total": sent_in, "bytes_sent_total": sent_out,
        "enforcements_total.line_too_long": 1, "enforcements_total.line_timeout": 1, "enforcements_total.idle_timeout": 1,
        "enforcements_total.max_conns": 2, "enforcements_total.shutdown_cut": 0, "enforcements_total.out_of_memory": 0,
        "backpressure_pauses_total": 0, "udp_drops_total": 0, "worker_restarts_total": 0,
        "request_duration_seconds.count": nlines,
    }
    page = wait_totals(s, expect)
    w0 = page["workers"][0]
    for k, v in expect.items():
        assert stat_of(w0, k) == v, k
    assert w0["pid"] == s.children()[0]
    assert page["totals"]["loop_iterations_total"] > 0
    assert page["totals"]["loop_events_total"] >= page["totals"]["loop_iterations_total"] - 5
    assert page["config"]["max_conns"] == 3 and page["config"]["max_line"] == 100
    assert page["pid"] == s.pid and page["draining"] == 0
    assert page["uptime_seconds"] > 0

    # /metrics says the same, and passes promtool.
    status, body = s.admin_get("/metrics")
    assert status == 200
    text = body.decode()
    promtool_check(text)
    m = parse_metrics(text)
    assert metric_sum(m, "stampd_connections_accepted_total") == 6
    assert metric_sum(m, "stampd_connections_refused_total") == 2
    assert metric_sum(m, "stampd_connections_active") == 0
    for reason, n in (("eof", 3), ("reset", 0), ("timeout", 2), ("limit", 1),
                      ("protocol", 0), ("shutdown", 0)):
        assert metric_sum(m, "stampd_connections_closed_total", reason=reason) == n, reason
    assert metric_sum(m, "stampd_requests_total", protocol="line") == nlines
    assert metric_sum(m, "stampd_bytes_received_total") == sent_in
    assert metric_sum(m, "stampd_bytes_sent_total") == sent_out
    for action, n in (("line_too_long", 1), ("line_timeout", 1),
                      ("idle_timeout", 1), ("max_conns", 2)):
        assert metric_sum(m, "stampd_enforcements_total", action=action) == n, action
    assert metric_sum(m, "stampd_request_duration_seconds_count", worker=0) == nlines
    assert metric_sum(m, "stampd_request_duration_seconds_bucket", worker=0, le="+Inf") == nlines
    # Cumulative buckets never decrease.
    les = sorted((float(dict(l)["le"]), v) for (n, l), v in m.items()
                 if n == "stampd_request_duration_seconds_bucket")
    assert all(a[1] <= b[1] for a, b in zip(les, les[1:]))
    assert m[("stampd_worker_up", frozenset({("worker", "0")}))] == 1
    assert m[("process_open_fds", frozenset({("process", "master")}))] > 0
    assert m[("process_resident_memory_bytes",
              frozenset({("process", "worker"), ("worker", "0")}))] > 0
    assert s.stop() == 0


def load(s, nconn, nlines):
    """nconn connections, nlines lines each, all answered; returns bytes."""
    total = 0
    for i in range(nconn):
        c = s.connect()
        payload = b"".join(b"k%d-%d\n" % (i, j) for j in range(nlines))
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        assert len(recv_lines(c, nlines)) == nlines
        c.close()
        total += len(payload)
    return total


def test_killed_worker_counters_kept(stampd):
    s = stampd(workers=2)
    sent = load(s, 20, 5)
    page = wait_totals(s, {"requests_total.line": 100, "bytes_received_total": sent, "connections_active": 0})
    before = page["workers"]
    victim = max(range(2), key=lambda i: before[i]["requests_total"]["line"])
    assert before[victim]["requests_total"]["line"] > 0
    old_pid = before[victim]["pid"]
    s.kill_worker(old_pid)

    def respawned():
        p = s.stats()
        w = p["workers"][victim]
        return w["worker_up"] and w["pid"] not in (0, old_pid) and p
    page = wait_for(respawned, 10, "the worker's replacement")
    after = page["workers"][victim]
    assert after["worker_restarts_total"] == 1
    # Nothing the dead worker counted is lost, and no total went backwards.
    for k in ("connections_accepted_total", "requests_total.line", "bytes_received_total", "bytes_sent_total",
              "connections_closed_total.eof", "loop_iterations_total", "request_duration_seconds.count"):
        assert stat_of(after, k) >= stat_of(before[victim], k), k
        assert stat_of(page["totals"], k) >= sum(stat_of(w, k) for w in before), k
    assert page["totals"]["requests_total"]["line"] == 100
    assert page["totals"]["worker_restarts_total"] == 1
    # The new worker keeps counting in the same slot.
    sent += load(s, 20, 5)
    wait_totals(s, {"requests_total.line": 200, "bytes_received_total": sent, "worker_restarts_total": 1})
    status, body = s.admin_get("/metrics")
    m = parse_metrics(body.decode())
    assert metric_sum(m, "stampd_worker_restarts_total", worker=victim) == 1
    assert metric_sum(m, "stampd_requests_total", protocol="line") == 200
    assert s.stop() == 0


def stuck_client(s):
    """A connection that keeps a graceful stop waiting: it sends lines but
    reads no replies, so the server holds output it cannot flush (the
    drain closes only quiet connections), whatever the timing."""
    c = s.connect()
    c.setblocking(False)
    chunk = b"keep me busy\n" * 5000
    sent = 0
    while sent < 256 << 20:
        try:
            sent += c.send(chunk)
        except BlockingIOError:
            break
    assert sent < 256 << 20, "the server never pushed back"
    return c


def test_readyz_draining(stampd):
    s = stampd("--shutdown-timeout", "20", "--max-output", "64k", workers=1)
    assert s.admin_get("/healthz") == (200, b"ok\n")
    assert s.admin_get("/readyz") == (200, b"ok\n")
    c = stuck_client(s)
    wait_for(lambda: s.stats()["totals"]["backpressure_pauses_total"] >= 1, 5, "back-pressure")
    s.send_signal(signal.SIGTERM)
    wait_for(lambda: s.admin_get("/readyz") == (503, b"draining\n"), 5,
             "/readyz to say draining")
    # Not ready, but alive: the worker is draining, not stuck.
    assert s.admin_get("/healthz") == (200, b"ok\n")
    status, body = s.admin_get("/metrics")
    assert status == 200 and b"\nstampd_draining 1\n" in body
    page = s.stats()
    assert page["draining"] == 1 and page["totals"]["connections_active"] == 1
    assert s.proc.poll() is None
    # The client goes away (a reset, with replies unread): nothing is left
    # to drain, and nothing was cut by the server.
    c.close()
    assert s.wait() == 0


def raw_admin(s, request, timeout=5):
    a = socket.create_connection(("127.0.0.1", s.admin_port), timeout=timeout * SLOW)
    a.sendall(request)
    data = recv_all(a)
    a.close()
    return data


def test_admin_routes_and_methods(stampd):
    s = stampd(workers=1)
    assert s.admin_get("/nope")[0] == 404
    assert raw_admin(s, b"POST /stats HTTP/1.0\r\nContent-Length: 0\r\n\r\n") \
        .startswith(b"HTTP/1.1 405 ")
    head = raw_admin(s, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4" in head
    # Keep-alive: three pipelined requests on one connection, in order.
    out = raw_admin(s, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                       b"GET /stats HTTP/1.1\r\nHost: a\r\n\r\n"
                       b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert [int(x) for x in re.findall(rb"HTTP/1.1 (\d{3}) ", out)] == [200, 200, 404]
    body = out.split(b"\r\n\r\n", 2)[2]
    json.loads(body[:body.index(b"\nHTTP/1.1 ") + 1])
    # An oversized request head is refused and the port keeps serving.
    big = raw_admin(s, b"GET /stats HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 4")
    assert s.admin_get("/healthz") == (200, b"ok\n")
    assert s.stop() == 0


# --- robustness: the admin port cannot stall supervision or lock out probes ---

def admin_conn(s):
    a = socket.create_connection(("127.0.0.1", s.admin_port), timeout=10 * SLOW)
    return a


def read_response(a):
    """One HTTP response (head + Content-Length body) from a blocking socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = a.recv(65536)
        assert chunk, "EOF before a response head: %r" % buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(rest) < n:
        chunk = a.recv(65536)
        assert chunk, "EOF inside a body"
        rest += chunk
    assert len(rest) == n, "bytes after the response"
    return int(head.split(b" ", 2)[1]), rest


def test_idle_keepalive_slots_never_lock_out_probes(stampd):
    """Every slot held by an idle keep-alive client (each has had one
    answer): a health probe still gets 200, by evicting the oldest idle
    slot, and so do the probes after it."""
    s = stampd(workers=1)
    held = []
    for _ in range(64 + 8):
        a = admin_conn(s)
        a.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(a) == (200, b"ok\n")
        held.append(a)
    for _ in range(3):
        assert s.admin_get("/healthz") == (200, b"ok\n")
    assert s.admin_get("/readyz") == (200, b"ok\n")
    # The oldest slots were the ones evicted: they read EOF.
    held[0].settimeout(5 * SLOW)
    assert held[0].recv(10) == b""
    for a in held:
        a.close()
    assert s.stop() == 0


def test_unfinished_requests_get_a_short_deadline(stampd):
    """Connections holding a request head that never completes are evicted
    for a probe, and closed after the request deadline (2 s), not the
    keep-alive one (10 s)."""
    s = stampd(workers=1)
    held = []
    for _ in range(64):
        a = admin_conn(s)
        a.sendall(b"GET /stats HTTP/1.1\r\nHost: a\r\n")
        held.append(a)
    assert s.admin_get("/healthz") == (200, b"ok\n")
    last = held[-1]
    last.settimeout(6 * SLOW)
    t0 = time.monotonic()
    assert last.recv(10) == b""
    took = time.monotonic() - t0
    assert took < 4 * SLOW, "an unfinished request held its slot %.1f s" % took
    for a in held:
        a.close()
    assert s.stop() == 0


def test_busy_is_429_after_the_request(stampd):
    """When every slot owes a response to a client that does not read, a
    new client's request is read and answered 429 busy (not a reset, not
    the 503 of draining)."""
    s = stampd(workers=1)
    req = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
    held = []
    for _ in range(64):
        a = socket.socket()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.connect(("127.0.0.1", s.admin_port))
        a.setblocking(False)
        held.append(a)

    def stuffed(a):
        try:
            a.send(req * 64)
        except BlockingIOError:
            pass
        return True

    # Keep feeding requests until the server has output pending everywhere:
    # then a new client lands in a spare slot.  (A client that has sent
    # nothing yet would be an idle slot, evicted for the probe.)
    for a in held:
        stuffed(a)

    def refused():
        for a in held:
            stuffed(a)
        status, body = s.admin_get("/healthz")
        return status == 429 and (status, body)
    status, body = wait_for(refused, 30, "a 429 busy answer", interval=0.05)
    assert body == b"busy\n"
    out = raw_admin(s, b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), out[:100]
    assert b"Retry-After: 1\r\n" in out and out.endswith(b"\r\n\r\nbusy\n")
    for a in held:
        a.close()
    wait_for(lambda: s.admin_get("/healthz") == (200, b"ok\n"), 15,
             "the port to serve again")
    assert s.stop() == 0


def flood(s, nconns, stop, counts):
    """Pipeline GET /stats on nconns connections as fast as the server
    answers, until stop is set; counts[i]: responses read on connection i."""
    req = b"GET /stats HTTP/1.1\r\nHost: a\r\n\r\n" * 170
    conns = [admin_conn(s) for _ in range(nconns)]
    for a in conns:
        a.setblocking(False)
    import selectors
    sel = selectors.DefaultSelector()
    for i, a in enumerate(conns):
        sel.register(a, selectors.EVENT_READ | selectors.EVENT_WRITE, i)
    pending = [memoryview(req) for _ in conns]
    try:
        while not stop.is_set():
            for key, ev in sel.select(0.1):
                i, a = key.data, key.fileobj
                if ev & selectors.EVENT_WRITE:
                    try:
                        n = a.send(pending[i])
                        pending[i] = pending[i][n:] if n < len(pending[i]) else memoryview(req)
                    except BlockingIOError:
                        pass
                if ev & selectors.EVENT_READ:
                    try:
                        data = a.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    counts[i] += data.count(b"HTTP/1.1 200 OK\r\n")
    finally:
        for a in conns:
            a.close()


def proc_age(pid):
    """Seconds since pid started (proc(5): stat field 22, clock ticks since
    boot)."""
    with open("/proc/%d/stat" % pid) as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")


def test_respawn_within_a_second_under_an_admin_flood(stampd):
    """Eight connections pipeline GET /stats as fast as they are answered
    while a worker is killed: the replacement is forked within 1 s."""
    import threading
    s = stampd(workers=64, expect_deaths=[r"killed by signal 9"])
    stop = threading.Event()
    counts = [0] * 8
    t = threading.Thread(target=flood, args=(s, 8, stop, counts))
    t.start()
    times = []
    try:
        wait_for(lambda: sum(counts) > 500, 20, "the flood to be answered")
        for _ in range(3):
            before = set(s.children())
            victim = sorted(before)[0]
            # The respawn throttle allows one fork per slot per second of
            # the dead worker's life: kill workers older than that.
            wait_for(lambda: proc_age(victim) > 1.1, 10, "a worker older than 1 s")
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)

            def replaced():
                kids = set(s.children())
                return victim not in kids and len(kids) == 64 and kids
            wait_for(replaced, 10, "the worker to be replaced", interval=0.002)
            times.append(time.monotonic() - t0)
            served = sum(counts)
            wait_for(lambda: sum(counts) > served + 200, 20, "the flood to go on")
    finally:
        stop.set()
        t.join(30)
    print("respawn under an admin flood: %s s; %d /stats answered"
          % (["%.3f" % x for x in times], sum(counts)))
    assert max(times) < 1.0 * SLOW, times
    assert s.stop() == 0


def test_reply_latency_counts_every_request(stampd):
    """stampd_reply_duration_seconds counts each request once its reply is
    taken by the kernel: at once for a reader that keeps up, and only after
    a slow reader drains the replies held for it."""
    s = stampd("--reply", "echo", "--max-output", "64k")

    def replies_timed():
        m = parse_metrics(s.admin_get("/metrics")[1].decode())
        return metric_sum(m, "stampd_reply_duration_seconds_count")

    c = s.connect()
    for i in range(50):
        c.sendall(b"ping %d\n" % i)
        assert recv_lines(c, 1) == [b"ping %d\n" % i]
    wait_for(lambda: replies_timed() == 50, 10, "50 replies timed")

    # A client that does not read: its replies wait in the ring (the
    # kernel's buffers are small), so they are not timed yet.
    slow = socket.create_connection(("127.0.0.1", s.port))
    line = b"x" * 1000 + b"\n"
    n = 24000   # 24 MB: more than the kernel's buffers on both sides hold
    sender = threading.Thread(target=slow.sendall, args=(line * n,), daemon=True)
    sender.start()
    wait_for(lambda: s.stat("backpressure_pauses_total") >= 1, 20, "the slow reader paused")
    assert replies_timed() < 50 + n
    got = 0
    slow.settimeout(10 * SLOW)
    while got < n * len(line):
        chunk = slow.recv(1 << 16)
        assert chunk, "server closed early"
        got += len(chunk)
    assert got == n * len(line)
    sender.join(10 * SLOW)
    assert not sender.is_alive()
    wait_for(lambda: replies_timed() == 50 + n, 10, "every slow reply timed")
    c.close()
    slow.close()


def test_stats_keys_are_the_metric_names(stampd):
    """/stats follows one rule (docs/monitoring.md): a key is a /metrics
    family's name without "stampd_" (process_* families without "process_",
    in "master" and each worker), a label one level of nested keys keyed by
    its value; the worker, process and listener labels are positions.  Both
    ways: every other key names an exported family, and every exported
    family has a key."""
    s = stampd("--http", "127.0.0.1:0", workers=2)
    page = s.stats()
    status, body = s.admin_get("/metrics")
    assert status == 200
    text = body.decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    not_metrics = {"pid", "worker", "config", "live_reason", "ready_reason", "listener",
                   "kind", "flags", "last_client", "last_enforced_client"}
    hist_keys = {"count", "sum", "p50", "p99", "p999", "buckets"}
    seen = {"stampd_workers"}  # the length of "workers"

    def check(obj, proc):
        for k, v in obj.items():
            if k in not_metrics:
                continue
            name = ("process_" if proc and "process_" + k in families else "stampd_") + k
            assert name in families, (k, name)
            seen.add(name)
            if k == "build_info":  # an info metric: its labels are its content
                assert set(v) == {"version", "poller"}
            elif k.endswith("_duration_seconds"):
                extra = {"log_buckets"} if k == "request_duration_seconds" else set()
                assert set(v) == hist_keys | extra, k
                assert [le for le, _ in v["buckets"]] == [
                    float(le) for le in re.findall(r'^%s_bucket\{worker="0",le="([0-9.e-]+)"\}'
                                                   % name, text, re.M)]
            elif isinstance(v, dict):
                for label in v:
                    assert re.search(r'^%s\{[^}]*="%s"\}' % (name, label), text, re.M), \
                        (name, label)
            else:
                assert isinstance(v, (int, float)) and not isinstance(v, bool), (k, v)

    check({k: v for k, v in page.items()
           if k not in ("master", "workers", "listeners", "totals")}, False)
    check(page["master"], True)
    for w in page["workers"]:
        check(w, True)
    for entry in page["listeners"]:
        check(entry, False)
    check(page["totals"], False)
    assert len(page["workers"]) == 2 and len(page["listeners"]) == 2
    assert seen == families, families ^ seen
    assert s.stop() == 0
