"""Reply modes ok and none on line, HTTP and UDP listeners, and the info
lines that name a client: every enforcement, and every request with
--log-requests, rate-limited per worker with a "N similar lines
suppressed" summary."""
import re
import socket

import pytest

from conftest import parse_addr, recv_all, recv_exact, wait_for


def http_get(s, path=b"/x", extra=b""):
    c = s.connect("http")
    c.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + extra + b"\r\n")
    return recv_all(c)


# --- reply modes ---------------------------------------------------------------

def test_line_ok_and_none(stampd):
    s = stampd("--reply", "ok")
    c = s.connect()
    c.sendall(b"one\ntwo\r\n\n")
    assert recv_exact(c, 10) == b"OK\nOK\r\nOK\n"
    s.stop()
    s = stampd("--reply", "none")
    c = s.connect()
    c.sendall(b"one\ntwo\r\nthree")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""
    wait_for(lambda: s.stat("requests_total", "line") == 3, 10, "3 requests (the last at EOF)")


def test_http_ok_and_none(stampd):
    s = stampd("--reply", "ok", "--http", "127.0.0.1:0")
    r = http_get(s)
    assert r.endswith(b"Content-Length: 3\r\nConnection: close\r\n\r\nOK\n"), r
    assert r.startswith(b"HTTP/1.1 200 OK\r\n")
    s.stop()
    s = stampd("--reply", "none", "--http", "127.0.0.1:0")
    r = http_get(s)
    assert r.startswith(b"HTTP/1.1 200 OK\r\n")
    assert r.endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n"), r
    assert s.stat("requests_total", "http") == 1


@pytest.mark.parametrize("sent,want", [(b"abc\n", b"OK\n"), (b"abc\r\n", b"OK\r\n"),
                                       (b"abc", b"OK"), (b"", b"OK")])
def test_udp_ok(stampd, sent, want):
    s = stampd("--reply", "ok", "--udp", "127.0.0.1:0")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(sent, parse_addr(s.addr("udp"))[1])
    assert u.recv(100) == want


# --- enforcement lines ---------------------------------------------------------------

def test_line_timeout_is_logged(stampd):
    s = stampd("--line-timeout", "1")
    c = s.connect()
    port = c.getsockname()[1]
    c.sendall(b"partial")
    assert recv_all(c) == b"ERR line timeout\n"
    wait_for(lambda: "info: line timeout: client 127.0.0.1:%d on %s" % (port, s.addr())
             in s.log(), 10, "the line timeout log line")


def test_http_4xx_is_logged(stampd):
    s = stampd("--http", "127.0.0.1:0")
    r = http_get(s, path=b"/x", extra=b"Bad Header : x\r\n")
    assert r.startswith(b"HTTP/1.1 400 "), r
    wait_for(lambda: re.search(r"info: malformed HTTP request \(400/501/505\): client "
                               r"127\.0\.0\.1:\d+ on %s" % re.escape(s.addr("http")), s.log()),
             10, "the 400 log line")
    r = http_get(s, path=b"/" + b"a" * 9000)
    assert r.startswith(b"HTTP/1.1 431 "), r[:80]
    wait_for(lambda: "info: HTTP request over a limit (413/431): client 127.0.0.1:" in s.log(),
             10, "the 431 log line")


def test_request_lines_are_rate_limited(stampd):
    """300 requests at once: at most 100 lines in the first second, and a
    summary that accounts for every other one."""
    s = stampd("--reply", "echo", "--log-requests")
    c = s.connect()
    c.sendall(b"".join(b"r%d\n" % i for i in range(300)))
    got = recv_exact(c, sum(len(b"r%d\n" % i) for i in range(300)))
    assert got.startswith(b"r0\nr1\n")
    wait_for(lambda: "similar lines suppressed" in s.log(), 10, "the summary")
    lines = re.findall(r'request from 127\.0\.0\.1:\d+ on [^:]+:\d+: "r\d+"', s.log())
    dropped = sum(int(n) for n in re.findall(r"info: (\d+) similar lines? suppressed", s.log()))
    assert 0 < len(lines) <= 200 and len(lines) + dropped == 300, (len(lines), dropped)
    assert lines[0].endswith('"r0"')
