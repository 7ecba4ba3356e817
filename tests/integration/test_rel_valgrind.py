"""Scenarios under valgrind --leak-check=full (make test-valgrind): the line
protocol (pipelined lines, a final fragment, an over-long line, a reset with
replies queued, a paused reader), HTTP (pipelined keep-alive requests, a
chunked body, an error that closes), UDP datagrams, line and idle timeouts,
a worker killed and respawned, and a graceful stop with a request in flight.

Every process runs under valgrind: the master, each forked worker (valgrind
follows fork; --trace-children=yes also follows an exec) and each
replacement.  Any error or leak makes that process exit with status 42
(--error-exitcode), which the test requires nowhere: a worker's 42 is
logged by the master as an unexpected worker death and turns its stop into
status 1; the master must exit exactly 0, and every valgrind log must be
empty."""
import os
import signal
import socket
import stat
import struct

import pytest

import conftest
from conftest import parse_addr, recv_all, recv_exact, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("STAMPD_VALGRIND") != "1",
                                reason="make test-valgrind runs this")

VG_ERROR_EXIT = 42


@pytest.fixture
def under_valgrind(monkeypatch, tmp_path):
    wrapper = tmp_path / "valgrind-stampd"
    wrapper.write_text(
        "#!/bin/sh\nexec valgrind -q --trace-children=yes --leak-check=full "
        "--show-leak-kinds=definite,indirect "
        "--errors-for-leak-kinds=definite,indirect --error-exitcode=%d "
        "--log-file=%s/vg.%%p %s \"$@\"\n" % (VG_ERROR_EXIT, tmp_path, conftest.STAMPD))
    wrapper.chmod(stat.S_IRWXU)
    monkeypatch.setattr(conftest, "STAMPD", str(wrapper))
    monkeypatch.setattr(conftest, "SLOW", 20.0)
    return tmp_path


def _reports(tmp_path, at_least):
    logs = [n for n in os.listdir(tmp_path) if n.startswith("vg.")]
    assert len(logs) >= at_least, "valgrind did not run every process: %s" % logs
    reports = []
    for name in logs:
        text = (tmp_path / name).read_text()
        if text.strip():
            reports.append(name + ":\n" + text)
    return reports


def _line_scenario(s):
    c = s.connect()
    stream = b"".join(b"line %d\n" % i for i in range(2000)) + b"tail"
    c.sendall(stream)
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c, timeout=60) == stream + b"\n"
    c = s.connect()
    c.sendall(b"ok\n" + b"x" * 2000)
    assert recv_exact(c, 21, timeout=60) == b"ok\nERR line too long\n"
    c.close()
    c = s.connect()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sendall(b"q" * 99 + b"\n" * 1 + (b"r" * 99 + b"\n") * 3000)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def test_line_protocol_is_leak_and_error_free(stampd, under_valgrind):
    s = stampd("--reply", "echo", "--max-line", "1k", "--max-output", "8k",
               workers=1)
    _line_scenario(s)
    held = s.connect()
    held.sendall(b"held\n")
    assert recv_exact(held, 5, timeout=60) == b"held\n"
    held.sendall(b"partial")
    assert s.stop(timeout=60) == 0
    held.close()
    assert _reports(under_valgrind, 2) == []


def _http(s, data):
    c = s.connect("http")
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = recv_all(c, timeout=60)
    c.close()
    return got


def test_http_udp_timeouts_respawn_and_stop(stampd, under_valgrind):
    s = stampd("--reply", "echo", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0",
               "--line-timeout", "1", "--idle-timeout", "2", "--max-line", "1k",
               workers=2)
    # HTTP: pipelined keep-alive GETs, a chunked POST, a HEAD, then a
    # malformed request that gets a 400 and closes.
    req = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
           b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nzz")
    got = _http(s, req + b"BROKEN\r\n\r\n")
    assert got.count(b"HTTP/1.1 200 OK\r\n") == 4, got
    assert b"\r\n\r\n/a\n" in got and b"\r\n\r\nabcde\n" in got, got
    assert got.rindex(b"HTTP/1.1 200 OK") < got.index(b"HTTP/1.1 400 Bad Request\r\n"), got
    too_big = _http(s, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    assert too_big.startswith(b"HTTP/1.1 413 "), too_big
    # UDP: a few datagrams, each answered.
    fam, sa = parse_addr(s.addr("udp"))
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(60)
    for i in range(20):
        u.sendto(b"dgram %d\n" % i, sa)
        assert u.recvfrom(2048)[0] == b"dgram %d\n" % i
    u.close()
    # Line protocol and its error paths.
    _line_scenario(s)
    # Timeouts: a partial line (ERR line timeout), an idle connection (EOF).
    partial = s.connect()
    partial.sendall(b"never ends")
    idle = s.connect()
    assert recv_all(partial, timeout=60) == b"ERR line timeout\n"
    assert recv_all(idle, timeout=60) == b""
    partial.close()
    idle.close()
    wait_for(lambda: s.stat("enforcements_total", "line_timeout") == 1 and
             s.stat("enforcements_total", "idle_timeout") == 1, 10, "the timeouts to be counted")
    # Respawn: a worker killed by SIGKILL (no valgrind report for it: it
    # cannot run one) is replaced by a new one, also under valgrind.
    victim = s.worker_pids()[0]
    s.kill_worker(victim)
    wait_for(lambda: s.worker_pids()[0] not in (0, victim), 30, "the replacement")
    for i in range(4):      # both workers (SO_REUSEPORT spreads the clients)
        c = s.connect()
        c.sendall(b"after %d\n" % i)
        assert recv_exact(c, 8, timeout=60) == b"after %d\n" % i
        c.close()
    # Graceful stop with a request in flight on each protocol.
    held = s.connect()
    held.sendall(b"held\n")
    assert recv_exact(held, 5, timeout=60) == b"held\n"
    held.sendall(b"partial")
    h = s.connect("http")
    h.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n")
    s.send_signal(signal.SIGTERM)
    assert recv_all(held, timeout=60) in (b"", b"partial\n")
    last = recv_all(h, timeout=60)
    assert last.startswith(b"HTTP/1.1 200 OK\r\n") and last.endswith(b"/last\n"), last
    assert s.wait(60) == 0
    held.close()
    h.close()
    # Master, two workers, one replacement (the killed one left no log).
    assert _reports(under_valgrind, 4) == []
