"""
HTTP/1.1 framing at the edges, exact bytes over real loopback sockets:
CONNECT (refused with 501, nothing after it parsed), Upgrade (answered as an
ordinary request, then the connection closes so bytes of another protocol
are never read as requests) and whitespace before a header's colon (400).
Every request before the offending one is answered first; nothing is lost.
"""
import socket

from conftest import recv_all
from test_http import Reader, check_ok


def start(stampd):
    return stampd("--http", "127.0.0.1:0")


def eof_or_reset(sock):
    """Bytes received until the server's close; a reset counts as a close
    (it can answer data sent after the server closed)."""
    sock.settimeout(10)
    buf = b""
    try:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return buf
            buf += chunk
    except ConnectionResetError:
        return buf


def test_pipelined_get_after_connect(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /a HTTP/1.1\r\n\r\n"
              b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
              b"GET /b HTTP/1.1\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/a")
    status, h, body, _ = r.response()
    assert (status, h["connection"], body) == (501, b"close", b"Not Implemented\n")
    r.eof()
    c.close()


def test_connect_with_content_length_is_no_body(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"CONNECT h:1 HTTP/1.1\r\nContent-Length: 19\r\n\r\n")
    r = Reader(c)
    status, h, _, _ = r.response()
    assert (status, h["connection"]) == (501, b"close")
    assert recv_all(c) == b""
    c.close()


def test_upgrade_answered_then_closed(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /a HTTP/1.1\r\n\r\n"
              b"GET /u HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n"
              b"GET /smuggled HTTP/1.1\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/a")
    h = check_ok(r.response(), b"/u")
    assert h["connection"] == b"close"
    r.eof()
    c.close()


def test_bytes_after_upgrade_never_answered(stampd):
    """The client sends the next protocol's bytes in a later write, after
    the answer: they must meet a closed connection, not a parser."""
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /u HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n")
    r = Reader(c)
    h = check_ok(r.response(), b"/u")
    assert h["connection"] == b"close"
    try:
        c.sendall(b"GET /smuggled HTTP/1.1\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert r.buf + eof_or_reset(c) == b""
    c.close()


def test_upgrade_body_is_framed(stampd):
    s = start(stampd)
    c = s.connect("http")
    body = b"GET /x HTTP/1.1\r\n\r\n"
    c.sendall(b"POST /u HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    c.sendall(body)
    r = Reader(c)
    h = check_ok(r.response(), body)
    assert h["connection"] == b"close"
    r.eof()
    c.close()


def test_space_before_colon_is_400(stampd):
    s = start(stampd)
    c = s.connect("http")
    c.sendall(b"GET /a HTTP/1.1\r\n\r\n"
              b"POST /te HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n"
              b"3\r\nabc\r\n0\r\n\r\n")
    r = Reader(c)
    check_ok(r.response(), b"/a")
    status, h, body, _ = r.response()
    assert (status, h["connection"], body) == (400, b"close", b"Bad Request\n")
    r.eof()
    c.close()
