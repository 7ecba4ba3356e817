"""
HTTP/1.1 mode (protocol section 3) over real loopback sockets: responses,
pipelining, chunked bodies, keep-alive rules, every error code with its close
reason, back-pressure, and wrk itself.
"""
import email.utils
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import SLOW, STAMP_PREFIX_RE, recv_all, recv_exact, wait_for

DATE_RE = re.compile(rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|"
                     rb"Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")


class Reader:
    """Reads HTTP responses off a socket, keeping what arrives early."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out; have %r" % self.buf[-300:])
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("EOF; have %r" % self.buf[-300:])
        self.buf += chunk

    def response(self, head_only=False, timeout=10):
        """(status, headers dict with lower-case names, body, raw head)."""
        deadline = time.monotonic() + timeout * SLOW
        while b"\r\n\r\n" not in self.buf:
            self._more(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        assert lines[0].startswith(b"HTTP/1.1 "), lines[0]
        headers = {}
        for l in lines[1:]:
            k, v = l.split(b": ", 1)
            headers[k.decode().lower()] = v
        n = 0 if head_only or status == 100 else int(headers["content-length"])
        while len(self.buf) < n:
            self._more(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body, head

    def eof(self, timeout=10):
        """The rest until the server's close: must be empty (and no reset)."""
        rest = recv_all(self.sock, timeout=timeout)
        assert self.buf + rest == b"", self.buf + rest


def start(stampd, *args, **kw):
    return stampd("--http", "127.0.0.1:0", *args, **kw)


def check_ok(resp, payload):
    status, h, body, _ = resp
    assert status == 200
    assert STAMP_PREFIX_RE.match(body), body
    assert body[27:] == payload + b"\n"
    assert h["content-length"] == str(len(body)).encode()
    return h


def test_get_headers_and_date(stampd):
    s = start(stampd)
    c = s.connect("http")
    before = time.time()
    c.sendall(b"GET /hello?x=%41 HTTP/1.1\r\nHost: t\r\n\r\n")
    r = Reader(c)
    h = check_ok(r.response(), b"/hello?x=%41")
    after = time.time()
    assert set(h) == {"server", "date", "content-type", "content-length"}
    assert h["server"] == b"stampd"
    assert h["content-type"] == b"text/plain"
    assert DATE_RE.fullmatch(h["date"]), h["date"]
    t = email.utils.parsedate_to_datetime(h["date"].decode()).timestamp()
    assert before - 1 <= t <= after
    c.close()
    assert s.stat("requests_total", "http") == 1


def test_pipelined_one_write(stampd):
    s = start(stampd)
    c = s.connect("http")
    n = 50
    c.sendall(b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % i for i in range(n)))
    r = Reader(c)
    for i in range(n):
        check_ok(r.response(), b"/%d" % i)
    # All responses of the one read left in one writev.  (The counters
    # move just after the writev returns: poll for them first.)
    wait_for(lambda: s.stat("requests_total", "http") == n and s.stat("writes_total") >= 1, 5,
             "the counters")
    assert s.stat("writes_total") == 1
    c.close()


def test_chunked_and_content_length_bodies(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"4\r\nwiki\r\n5;name=v\r\npedia\r\n0\r\n\r\n"
              b"PUT /y HTTP/1.1\r\nContent-Length: 7\r\n\r\nbody\x00\r!"
              b"POST /z HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"wikipedia")
    check_ok(r.response(), b"body\x00\r!")
    check_ok(r.response(), b"/z")
    c.close()


def test_reply_mode_upper(stampd):
    s = start(stampd, "--reply", "upper")
    c = s.connect("http")
    c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab-Cd")
    status, h, body, _ = Reader(c).response()
    assert status == 200 and body == b"AB-CD\n"
    c.close()


def test_http10_closes_unless_keep_alive(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = Reader(c)
    h = check_ok(r.response(), b"/ka")
    assert h["connection"] == b"keep-alive"
    c.sendall(b"GET /last HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n")
    h = check_ok(r.response(), b"/last")
    assert h["connection"] == b"close"
    r.eof()
    c.close()
    wait_for(lambda: s.stat("connections_closed_total", "eof") == 1, 5, "connections_closed_total.eof")
    assert s.stat("requests_total", "http") == 2


def test_connection_close(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
              b"GET /c HTTP/1.1\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/a")
    assert check_ok(r.response(), b"/b")["connection"] == b"close"
    r.eof()
    c.close()
    wait_for(lambda: s.stat("connections_closed_total", "eof") == 1, 5, "connections_closed_total.eof")


def test_head_has_get_length(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"HEAD /same HTTP/1.1\r\n\r\nGET /same HTTP/1.1\r\n\r\n")
    r = Reader(c)
    status, h, body, _ = r.response(head_only=True)
    assert status == 200 and body == b""
    g = check_ok(r.response(), b"/same")
    assert h["content-length"] == g["content-length"]
    c.close()


def test_expect_100_continue(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    assert recv_exact(c, 25) == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.sendall(b"xyz")
    check_ok(Reader(c).response(), b"xyz")
    c.close()


def test_split_byte_by_byte(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = (b"POST /s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n0\r\n\r\nGET /t HTTP/1.1\r\n\r\n")
    for b in req:
        c.send(bytes([b]))
    r = Reader(c)
    check_ok(r.response(), b"abc")
    check_ok(r.response(), b"/t")
    c.close()


ERRORS = [
    # (request, status, close reason, extra server args)
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "connections_closed_total.protocol", ()),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
     400, "connections_closed_total.protocol", ()),
    (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, "connections_closed_total.protocol", ()),
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, "connections_closed_total.limit",
     ("--max-line", "100")),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + b"x" * 101 + b"\r\n",
     413, "connections_closed_total.limit", ("--max-line", "100")),
    (b"GET / HTTP/1.1\r\nX: " + b"p" * 8170 + b"\r\n\r\n", 431, "connections_closed_total.limit", ()),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "connections_closed_total.protocol", ()),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "connections_closed_total.protocol", ()),
]


@pytest.mark.parametrize("req,code,reason,args", ERRORS,
                         ids=["garbage", "te+cl", "bare-cr", "413-cl", "413-chunked",
                              "431", "501", "505"])
def test_error_after_earlier_responses(stampd, req, code, reason, args):
    s = start(stampd, *args)
    c = s.connect("http")
    c.sendall(b"GET /first HTTP/1.1\r\n\r\n" + req + b"GET /after HTTP/1.1\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/first")
    status, h, body, _ = r.response()
    assert status == code
    assert h["connection"] == b"close"
    r.eof()  # half-close and linger: EOF, not a reset
    c.close()
    wait_for(lambda: s.stat(reason) == 1, 5, reason)
    assert s.stat("requests_total", "http") == 1


def test_431_boundary(stampd):
    s = start(stampd)
    c = s.connect("http")
    base = b"GET / HTTP/1.1\r\nX: "
    ok = base + b"p" * (8192 - len(base) - 4) + b"\r\n\r\n"
    assert len(ok) == 8192
    c.sendall(ok)
    check_ok(Reader(c).response(), b"/")
    c.close()


def test_backpressure_then_everything_answered(stampd):
    s = start(stampd, "--max-output", "4096")
    c = s.connect("http")
    # Replies the kernel takes are not held: ask for more (about 5 MB) than
    # the socket buffers of a client that does not read can hold, so some
    # must be.
    n = 35000
    data = b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % i for i in range(n))
    c.sendall(data)  # the server must pause reading, not buffer all replies
    wait_for(lambda: s.stat("backpressure_pauses_total") > 0, 10, "a pause")
    r = Reader(c)
    for i in range(n):
        check_ok(r.response(), b"/%d" % i)
    c.close()
    assert s.stat("requests_total", "http") == n


def test_idle_timeout(stampd):
    s = start(stampd, "--idle-timeout", "1")
    c = s.connect("http")
    c.sendall(b"GET / HTTP/1.1\r\n")  # partial head, then silence
    assert recv_all(c, timeout=5) == b""
    c.close()
    wait_for(lambda: s.stat("connections_closed_total", "timeout") == 1, 5, "connections_closed_total.timeout")


def parse_wrk(out):
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(m.group(1)), int(non2xx.group(1)) if non2xx else 0,
            sum(map(int, sock.groups())) if sock else 0)


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_wrk(stampd):
    s = start(stampd)
    url = "http://%s/" % s.addr("http")
    p = subprocess.run(["wrk", "-t1", "-c50", "-d3s", url], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    total, non2xx, errors = parse_wrk(p.stdout)
    assert total > 1000, p.stdout
    assert non2xx == 0, p.stdout
    assert errors == 0, p.stdout
    # wrk counts responses it read; the server may have answered a few more
    # that wrk dropped when it stopped.
    assert s.stat("requests_total", "http") >= total


def test_line_timeout_bounds_a_dripped_request(stampd):
    s = start(stampd, "--line-timeout", "1", "--idle-timeout", "30")
    c = s.connect("http")
    c.sendall(b"GET /done HTTP/1.1\r\n\r\nGET /slow HTTP/1.1\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/done")
    t0 = time.monotonic()
    closed = False
    # Keep the connection busy (never idle), one header byte at a time.
    while time.monotonic() - t0 < 5 * SLOW:
        try:
            c.send(b"X")
        except OSError:
            closed = True
            break
        c.settimeout(0.2)
        try:
            if c.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            pass
    assert closed, "a dripped request head outlived --line-timeout"
    assert time.monotonic() - t0 >= 0.9
    c.close()
    wait_for(lambda: s.stat("connections_closed_total", "timeout") == 1, 5, "connections_closed_total.timeout")


def test_large_body_memory_returns(stampd):
    s = start(stampd)
    c = s.connect("http")
    body = b"b" * 30000
    c.sendall(b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:20000])
    wait_for(lambda: s.stat("input_bytes") >= 16384, 5, "the body held")
    c.sendall(body[20000:])
    r = Reader(c)
    check_ok(r.response(), body)
    # The big buffer is dropped once the request is answered.
    wait_for(lambda: s.stat("input_bytes") == 0, 5, "input_bytes back to 0")
    c.close()
