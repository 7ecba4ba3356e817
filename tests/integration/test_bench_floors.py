"""
The HTTP floors of bench/http.sh (bench/baseline/http_floor*.c) are only
worth comparing with stampd if they do the same job: for every request they
must send the very bytes stampd sends for "GET /" (the two dates aside),
pipelined requests and requests split across writes included, and stop
cleanly on SIGTERM.
"""
import os
import re
import signal
import socket
import subprocess

import pytest

from conftest import STAMPD, wait_for

from test_http import DATE_RE, Reader, start

CTIME_BODY_RE = re.compile(rb"\[(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ 123]\d "
                           rb"\d\d:\d\d:\d\d \d{4}\] ")
FLOORS = ["bench-http-floor", "bench-http-floor-uring"]
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def masked(head, body):
    """A response with its Date header and its stamp replaced by markers."""
    return DATE_RE.sub(b"<date>", head) + b"\r\n\r\n" + CTIME_BODY_RE.sub(b"<stamp> ", body)


def read_n(sock, n):
    r = Reader(sock)
    out = []
    for _ in range(n):
        status, _, body, head = r.response()
        assert status == 200
        out.append(masked(head, body))
    assert r.buf == b"", r.buf
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def try_connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None


@pytest.mark.parametrize("floor", FLOORS)
def test_floor_sends_stampds_response(stampd, floor):
    path = os.path.join(os.path.dirname(STAMPD), floor)
    if not os.access(path, os.X_OK):
        pytest.skip(floor + " not built here")
    s = start(stampd)
    ref = s.connect("http")
    ref.sendall(REQ)
    want = read_n(ref, 1)[0]
    ref.close()

    port = free_port()
    p = subprocess.Popen([path, str(port)], stderr=subprocess.PIPE)
    try:
        c = wait_for(lambda: try_connect(port), 5, floor + " listening")
        c.sendall(REQ * 3)                      # pipelined, one write
        got = read_n(c, 3)
        # Split, with the empty line cut in two: nothing may come back
        # before its last byte (the floor has read the rest by then).
        c.sendall(REQ[:-1])
        c.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.recv(1)
        c.settimeout(None)
        c.sendall(REQ[-1:])
        got += read_n(c, 1)
        assert got == [want] * 4
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise
    assert rc == 0, p.stderr.read()


def test_wrk_pairs_take_turns(stampd):
    """bench/wrk_pairs.py, the interleaved HTTP pairs of bench/http.sh: two
    live servers, their wrk taking turns every 0.25 s for 2 s; each server
    reports CPU per response over the pair and per turn, every response
    counted by the server too, and no wrk is left behind (stopped or not)."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "bench", "wrk_pairs.py")
    servers = [start(stampd) for _ in range(2)]
    specs = ["%s,%d,http://%s/" % (n, s.children()[0], s.addr("http"))
             for n, s in zip(("a", "b"), servers)]
    r = subprocess.run(["/usr/bin/python3", script, "t", "10", "1", "2", "0.25"] + specs,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.decode().splitlines()]
    assert [x[3] for x in rows] == ["a", "b"] and all(x[:3] == ["t", "0", "a"] for x in rows)
    for (_, _, _, _, cpu, responses, non2xx, errs, turns), s in zip(rows, servers):
        assert float(cpu) > 0 and (non2xx, errs) == ("0", "0")
        # Each wrk counts what it read; the server answered at least that.
        assert 0 < int(responses) <= s.stat("requests_total", "http")
        # 8 turns of 0.25 s, the last of each side open-ended: 3 complete
        # (2 when the sleeping loop runs late at the end).
        t = [float(v) for v in turns.split(",")]
        assert 2 <= len(t) <= 3 and all(v > 0 for v in t), turns
    assert subprocess.run(["pgrep", "-x", "wrk"]).returncode == 1
