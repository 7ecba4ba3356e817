"""Chunk framing (`--listen ADDR,chunk`): every read is one request,
answered by the reply mode with no terminator added, the way the tutorial
servers answer clients that send typed text without a newline and wait for
one reply per send.  Also --greeting, which line and chunk listeners send
first, and the reply modes ok and none over chunks."""
import socket
import time

from conftest import STAMP_PREFIX_RE, recv_all, recv_exact, wait_for


def chunk_reply(sock, data, want_len=None):
    """Send one chunk and read one reply (one recv, as the seeds' clients
    do; the reply of one chunk leaves in one send)."""
    sock.sendall(data)
    return sock.recv(4096)


def test_chunk_stamp_no_terminator(stampd):
    s = stampd(listen=["127.0.0.1:0,chunk"])
    c = s.connect()
    for text in (b"hello", b"two words", b"with newline\n", b"\x00\xffbin"):
        r = chunk_reply(c, text)
        m = STAMP_PREFIX_RE.match(r)
        assert m, r
        assert r[m.end():] == text, r
    c.close()
    wait_for(lambda: s.stat("requests_total", "line") == 4, 10, "4 requests counted")


def test_chunk_echo_upper_ok(stampd):
    for mode, sent, want in (("echo", b"Abc", b"Abc"), ("upper", b"Abc", b"ABC"),
                             ("ok", b"Abc", b"OK"), ("ok", b"x\n", b"OK")):
        s = stampd("--reply", mode, listen=["127.0.0.1:0,chunk"])
        c = s.connect()
        assert chunk_reply(c, sent) == want, mode
        c.close()
        s.stop()


def test_chunk_none_sends_nothing(stampd):
    s = stampd("--reply", "none", listen=["127.0.0.1:0,chunk"])
    c = s.connect()
    c.sendall(b"printed")
    wait_for(lambda: s.stat("requests_total", "line") == 1, 10, "the request to be counted")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""  # nothing at all, then the close


def test_line_listener_beside_chunk(stampd):
    """Framing is per listener: the line listener still waits for LF."""
    s = stampd("--reply", "echo", listen=["127.0.0.1:0,chunk", "127.0.0.1:0"])
    line = s.connect("line", 1)
    line.sendall(b"no newline yet")
    time.sleep(0.2)  # nothing may arrive; checked by the exact read below
    line.sendall(b"\n")
    assert recv_exact(line, 15) == b"no newline yet\n"
    chunk = s.connect("line", 0)
    assert chunk_reply(chunk, b"no newline") == b"no newline"


def test_chunk_over_max_line(stampd):
    s = stampd("--reply", "echo", "--max-line", "8", listen=["127.0.0.1:0,chunk"])
    c = s.connect()
    assert chunk_reply(c, b"12345678") == b"12345678"
    c.sendall(b"123456789")
    assert recv_all(c) == b"ERR line too long\n"
    wait_for(lambda: s.stat("enforcements_total", "line_too_long") == 1, 10, "the enforcement count")
    wait_for(lambda: "line too long: client 127.0.0.1:" in s.log(), 10,
             "the enforcement log line")


def test_chunk_no_line_timeout_but_idle_timeout(stampd):
    s = stampd("--reply", "echo", "--line-timeout", "1", "--idle-timeout", "2",
               listen=["127.0.0.1:0,chunk"])
    c = s.connect()
    t0 = time.monotonic()
    assert chunk_reply(c, b"partial?") == b"partial?"
    # No partial line exists in chunk mode: the connection lives until the
    # idle timeout closes it (without an ERR line).
    assert recv_all(c, timeout=10) == b""
    assert time.monotonic() - t0 >= 1.9
    assert s.stat("enforcements_total", "line_timeout") == 0
    wait_for(lambda: s.stat("enforcements_total", "idle_timeout") == 1, 10, "the idle enforcement")
    wait_for(lambda: "idle timeout: client 127.0.0.1:" in s.log(), 10, "its log line")


def test_greeting_line_and_chunk(stampd):
    s = stampd("--greeting", "hello world", "--reply", "upper",
               listen=["127.0.0.1:0", "127.0.0.1:0,chunk"])
    a = s.connect("line", 0)
    assert recv_exact(a, 12) == b"hello world\n"
    a.sendall(b"abc\n")
    assert recv_exact(a, 4) == b"ABC\n"
    b = s.connect("line", 1)
    assert recv_exact(b, 12) == b"hello world\n"
    assert chunk_reply(b, b"abc") == b"ABC"


def test_greeting_with_reply_none_and_eof(stampd):
    """The greeting is sent whatever the reply mode, even to a client that
    sends nothing and closes."""
    s = stampd("--greeting", "hi", "--reply", "none")
    c = s.connect()
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"hi\n"


def test_greeting_not_on_http(stampd):
    s = stampd("--greeting", "hello", "--http", "127.0.0.1:0")
    c = s.connect("http")
    c.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    r = recv_all(c)
    assert r.startswith(b"HTTP/1.1 200 OK\r\n"), r
    assert b"hello" not in r
