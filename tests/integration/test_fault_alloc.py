"""Allocation failure and start-up death, with the FAULT_INJECTION build
(tests/reliability.mk: `make test-reliability` builds build-fault/stampd
with ASan and src/fault.c wrapping malloc/calloc/realloc)."""
import os
import re
import socket
import threading
import time

import pytest

import conftest
from conftest import recv_all, wait_for
from test_rel_util import delta, wstats

FAULT_BIN = os.environ.get("STAMPD_FAULT_BIN",
                           os.path.join(conftest.ROOT, "build-fault", "stampd"))

pytestmark = pytest.mark.skipif(not os.access(FAULT_BIN, os.X_OK),
                                reason="no FAULT_INJECTION build (make fault-build)")

ASAN = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=99"}


@pytest.fixture
def fault_bin(monkeypatch):
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)


def test_allocation_failures_close_only_the_affected_connection(stampd, fault_bin):
    """One allocation in 7 fails inside the worker (a reply the kernel takes
    at once allocates nothing, so allocations are few).  A connection either
    gets every reply, or a correct prefix of them followed by
    'ERR out of memory' and EOF; exactly those are counted in err_nomem,
    nothing else breaks, and the ASan build reports no leak at exit."""
    env = dict(ASAN, STAMPD_FAULT_ALLOC_EVERY="7")
    s = stampd("--reply", "echo", "--max-output", "4k", env=env)
    b0 = wstats(s)
    n = 200
    results = [None] * n
    streams = []
    for i in range(n):
        # Partial lines (input buffer), many replies (ring growth and
        # back-pressure pauses that stash input): every allocation site.
        # Replies the kernel takes at once allocate nothing, so the stream
        # goes out in pieces that end mid-line.
        lines = [b"c%d l%d %s\n" % (i, k, b"x" * (k * 37 % 300)) for k in range(200)]
        streams.append(b"".join(lines))

    def send_pieces(c, data):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for off in range(0, len(data), 997):
            c.sendall(data[off:off + 997])
        c.shutdown(socket.SHUT_WR)

    def run(i):
        c = s.connect()
        t = threading.Thread(target=send_pieces, args=(c, streams[i]))
        t.start()
        results[i] = recv_all(c, timeout=30)
        t.join()
        c.close()

    for base in range(0, n, 20):
        ts = [threading.Thread(target=run, args=(i,)) for i in range(base, base + 20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    failed = 0
    for i, got in enumerate(results):
        if got == streams[i]:
            continue
        assert got.endswith(b"ERR out of memory\n"), got[-100:]
        owed = got[:-len(b"ERR out of memory\n")]
        assert streams[i].startswith(owed), "connection %d: replies corrupted" % i
        failed += 1
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    w = wstats(s)
    d = delta(b0, w, ("enforcements_total.out_of_memory", "connections_closed_total.limit", "connections_closed_total.eof", "connections_closed_total.reset"))
    assert d["enforcements_total.out_of_memory"] == failed and d["connections_closed_total.limit"] == failed
    assert d["connections_closed_total.eof"] == n - failed and d["connections_closed_total.reset"] == 0
    assert 0 < failed < n, failed
    assert w["ring_bytes"] == 0 and w["input_bytes"] == 0
    assert s.worker_pids()[0] == b0["pid"]
    # A clean drain at exit; the harness fails the test on any ASan report.
    assert s.stop() == 0
    print("alloc failure: %d of %d connections hit ERR out of memory" % (failed, n))


def _http_requests(i, count):
    """count pipelined requests, bodies of growing size (the handler's
    buffer grows past its inline part), the last one closing."""
    reqs, bodies = [], []
    for k in range(count):
        body = b"c%d r%d %s" % (i, k, b"y" * (k * 53 % 700))
        close = b"Connection: close\r\n" if k == count - 1 else b""
        reqs.append(b"POST /p HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (close, len(body), body))
        bodies.append(body + b"\n")
    return b"".join(reqs), bodies


def test_http_allocation_failures_close_only_the_affected_connection(stampd, fault_bin):
    """One allocation in 31 fails inside the worker while HTTP connections
    pipeline requests.  A connection either gets every response, or a
    correct prefix of them and then EOF (no room even for an error
    response): counted in err_nomem, or, when the parser state itself could
    not be allocated, not accepted at all.  No crash, no leak (ASan)."""
    env = dict(ASAN, STAMPD_FAULT_ALLOC_EVERY="31")
    s = stampd("--reply", "echo", "--http", "127.0.0.1:0", env=env)
    b0 = wstats(s)
    n, per = 100, 40
    results = [None] * n
    wanted = [_http_requests(i, per) for i in range(n)]

    def run(i):
        c = s.connect("http")
        t = threading.Thread(target=lambda: _send_quietly(c, wanted[i][0]))
        t.start()
        try:
            got = recv_all(c, timeout=30)
        except AssertionError:      # reset: the server closed with input unread
            got = b""
        t.join()
        c.close()
        results[i] = [r.split(b"\r\n\r\n", 1)[1]
                      for r in got.split(b"HTTP/1.1 200 OK\r\n")[1:]]
        assert got == b"" or got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:200]

    for base in range(0, n, 20):
        ts = [threading.Thread(target=run, args=(i,)) for i in range(base, base + 20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    cut = 0
    for i, bodies in enumerate(results):
        assert bodies == wanted[i][1][:len(bodies)], "connection %d: responses corrupted" % i
        cut += len(bodies) < per
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    w = wstats(s)
    d = delta(b0, w, ("enforcements_total.out_of_memory", "connections_accepted_total"))
    assert d["enforcements_total.out_of_memory"] + (n - d["connections_accepted_total"]) == cut, (d, cut)
    assert 0 < cut < n, cut
    assert w["ring_bytes"] == 0 and w["input_bytes"] == 0
    assert s.worker_pids()[0] == b0["pid"]
    assert s.stop() == 0
    print("http alloc failure: %d of %d connections cut (%d at accept)"
          % (cut, n, n - d["connections_accepted_total"]))


def _send_quietly(c, data):
    try:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass    # the server closed this one: the reader sees it


def test_worker_dying_at_start_is_throttled(stampd, fault_bin):
    """Every worker exits right after its initialisation: the master stays
    up, answers the admin port, and re-forks the slot at most once per
    second."""
    env = dict(ASAN, STAMPD_FAULT_EXIT_AT_START="1")
    # Every fork exits with status 3, including the ones the stop at
    # teardown makes (so the master reports a failed worker: status 1).
    s = stampd(env=env, ready=False, expect_exit=1,
               expect_errors=[r"fault injection: exiting at start-up"],
               expect_deaths=[r"exited with status 3\b"])
    wait_for(lambda: "listening on" in s.log(), 10, "listening")
    m = re.search(r"admin (\S+) ", s.log())
    s.admin = m.group(1)
    t0 = time.monotonic()
    # Three re-forks take at least two seconds under the throttle.
    wait_for(lambda: s.stats()["workers"][0]["worker_restarts_total"] >= 3, 10,
             "three re-forks")
    assert s.proc.poll() is None, "the master died"
    restarts = s.stats()["workers"][0]["worker_restarts_total"]
    forks = len(re.findall(r"exiting at start-up", s.log()))
    elapsed = time.monotonic() - t0
    # One fork at start, then at most one per second.
    assert 2 <= restarts <= elapsed + 1, (restarts, elapsed)
    assert forks <= restarts + 1
    stamps = [time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%S")) + float(ms) / 1000
              for t, ms in re.findall(r"^(\S+?)\.(\d{3})Z .*exiting at start-up",
                                      s.log(), re.M)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps and min(gaps) >= 0.95, gaps
    print("start-up death: %d restarts in %.1f s, gaps %s"
          % (restarts, elapsed, ["%.3f" % g for g in gaps]))
