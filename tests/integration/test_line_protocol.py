"""Section 1 of the protocol, requests and replies: framing, pipelining,
binary payloads, terminators, end of input, reply modes, timestamps and
their freshness, many clients at once.  Every reply is checked byte for
byte."""
import datetime
import math
import re
import socket
import threading
import time
import zoneinfo

import pytest

from conftest import (CTIME_RE, ISO_RE, SLOW, converse, recv_all, recv_exact,
                      recv_lines, split_stamp, wait_for)

STAMP_LINE_RE = re.compile(rb"\[(" + CTIME_RE + rb")\] ")


def unstamp(data):
    """Replies (a byte string) -> payload+terminator list, asserting that
    every reply starts with a well-formed ctime stamp."""
    out = []
    pos = 0
    while pos < len(data):
        m = STAMP_LINE_RE.match(data, pos)
        assert m, "no stamp at offset %d: %r" % (pos, data[pos:pos + 80])
        end = data.index(b"\n", m.end()) + 1
        out.append(data[m.end():end])
        pos = end
    return out


def ask(sock, request, nlines=1):
    sock.sendall(request)
    return b"".join(recv_lines(sock, nlines))


# --- pipelining -------------------------------------------------------------

def test_100k_pipelined_lines_in_order(stampd):
    s = stampd()
    n = 100_000
    request = b"".join(b"%d\n" % i for i in range(n))
    c = s.connect()
    data = converse(c, request, timeout=60)
    lines = data.split(b"\n")
    assert lines[-1] == b"", "bytes after the last reply"
    lines = lines[:-1]
    assert len(lines) == n
    for i, line in enumerate(lines):
        assert line[0:1] == b"[" and line[25:27] == b"] ", line
        assert line[27:] == b"%d" % i, "reply %d is %r" % (i, line)
    # One well-formed stamp is enough per thousand: the slice checks above
    # already fix the layout of every reply.
    for line in lines[::1000]:
        split_stamp(line + b"\n")
    assert s.stat("requests_total", "line") == n
    c.close()


def test_pipelined_on_many_connections_do_not_mix(stampd):
    """Interleaved pipelines on several connections: each gets its own."""
    s = stampd("--reply", "echo", workers=2)
    conns = [s.connect() for _ in range(8)]
    reqs = [b"".join(b"c%d-%d\n" % (k, i) for i in range(5000)) for k in range(8)]
    results = [None] * 8

    def run(k):
        results[k] = converse(conns[k], reqs[k], timeout=60)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * SLOW)
    for k in range(8):
        assert results[k] == reqs[k]
        conns[k].close()


# --- payload bytes and terminators ------------------------------------------

def test_binary_payloads_are_echoed_unaltered(stampd):
    s = stampd()
    every_byte = bytes(b for b in range(256) if b != 0x0A)
    payloads = [
        b"\x00",
        b"a\x00b\x00",
        b"lone\rcr",
        b"\r",                      # "\r\n": empty payload, CRLF
        b"\r\r",                    # "\r\r\n": payload "\r", CRLF
        b"\xff\xfe\xc3\x28\x80",    # invalid UTF-8
        b"\x1b[31mred\x1b[0m\x07\x7f",
        every_byte,
        every_byte * 200,
    ]
    c = s.connect()
    request = b"".join(p + b"\n" for p in payloads)
    data = converse(c, request)
    got = unstamp(data)
    assert got == [p + b"\n" for p in payloads]
    c.close()


def test_crlf_is_mirrored_and_lf_answers_lf(stampd):
    s = stampd("--reply", "echo")
    c = s.connect()
    request = b"a\r\nb\nc\r\n\r\n\n\r\r\nd\re\n"
    data = converse(c, request)
    assert data == request
    c.close()


def test_crlf_and_stamp(stampd):
    s = stampd()
    c = s.connect()
    assert split_stamp(ask(c, b"x\r\n"))[1] == b"x\r\n"
    assert split_stamp(ask(c, b"y\n"))[1] == b"y\n"
    c.close()


def test_empty_lines_are_requests(stampd):
    s = stampd()
    c = s.connect()
    data = converse(c, b"\n\r\n\n")
    assert unstamp(data) == [b"\n", b"\r\n", b"\n"]
    assert len(data) == 28 * 3 + 1
    c.close()


def test_drip_fed_bytes(stampd):
    """One byte per segment (TCP_NODELAY): lines and CRLFs split across
    reads are framed exactly as if they had come in one piece."""
    s = stampd("--reply", "echo")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = b"hello\r\nwor\x00ld\n\r\n\nlast\r\r\n"
    for i in range(len(request)):
        c.send(request[i:i + 1])
        # Pacing, not synchronisation: spread the bytes over separate reads.
        time.sleep(0.002)
    assert recv_exact(c, len(request)) == request
    c.close()


def test_drip_fed_long_line_across_many_reads(stampd):
    s = stampd("--reply", "echo", "--max-line", "4096")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    line = bytes(range(32, 127)) * 40 + b"\r\n"   # 3802 bytes
    for i in range(0, len(line), 97):
        c.send(line[i:i + 97])
        time.sleep(0.001)
    assert recv_exact(c, len(line)) == line
    c.close()


# --- end of input -----------------------------------------------------------

def test_half_close_answers_final_fragment_with_lf(stampd):
    s = stampd()
    c = s.connect()
    c.sendall(b"one\ntwo\r\nthree")
    c.shutdown(socket.SHUT_WR)
    assert unstamp(recv_all(c)) == [b"one\n", b"two\r\n", b"three\n"]
    c.close()


def test_half_close_fragment_ending_in_cr(stampd):
    """A final fragment has no terminator of its own: even a trailing CR is
    payload, and the answer ends in LF."""
    s = stampd("--reply", "echo")
    c = s.connect()
    c.sendall(b"x\r")
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b"x\r\n"
    c.close()


def test_half_close_without_fragment_and_without_requests(stampd):
    s = stampd()
    c = s.connect()
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""
    c.close()
    c = s.connect()
    c.sendall(b"only\n")
    c.shutdown(socket.SHUT_WR)
    assert unstamp(recv_all(c)) == [b"only\n"]
    c.close()
    wait_for(lambda: s.stat("connections_active") == 0, 5, "connections to close")
    assert s.stat("connections_closed_total", "eof") == 2


def test_reset_discards_only_that_connection(stampd):
    s = stampd("--reply", "echo")
    keep = s.connect()
    assert ask(keep, b"before\n") == b"before\n"
    bad = s.connect()
    # Owe it replies it never reads, then reset it.
    bad.sendall(b"x" * 1000 + b"\n" * 2000)
    bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    bad.close()
    assert ask(keep, b"after\n") == b"after\n"
    wait_for(lambda: s.stat("connections_active") == 1, 5, "the reset connection to close")
    keep.close()


# --- reply modes ------------------------------------------------------------

def test_reply_mode_echo(stampd):
    s = stampd("--reply", "echo")
    c = s.connect()
    request = b"Hello, World!\n\xe9\xff\x00\r\n\n"
    assert converse(c, request) == request
    c.close()


def test_reply_mode_upper_maps_ascii_only(stampd):
    s = stampd("--reply", "upper")
    c = s.connect()
    request = b"Hello, world! az AZ {`}\n\xe9\xe0\xff\x00q\r\n\n"
    assert converse(c, request) == b"HELLO, WORLD! AZ AZ {`}\n\xe9\xe0\xff\x00Q\r\n\n"
    c.close()


def test_reply_mode_stamp_is_default(stampd):
    s = stampd()
    c = s.connect()
    data = ask(c, b"hello python\n")
    assert re.fullmatch(rb"\[" + CTIME_RE + rb"\] hello python\n", data)
    c.close()


# --- timestamps and freshness -------------------------------------------------

def iso_ms(ts):
    """b'2016-09-05T22:29:12.345Z' -> milliseconds since the epoch."""
    d = datetime.datetime.strptime(ts.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
    d = d.replace(tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)


def exchange_timed(c, payload):
    """Send one line; return (S, reply, R) with wall-clock times."""
    S = time.time()
    c.sendall(payload + b"\n")
    reply = recv_lines(c, 1)[0]
    R = time.time()
    return S, reply, R


def test_iso8601_freshness(stampd):
    s = stampd("--time-format", "iso8601")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    iso = re.compile(rb"\[(" + ISO_RE + rb")\] (.*)\n")
    samples = []
    for i in range(300):
        samples.append(exchange_timed(c, b"%d" % i))
        if i in (100, 200):
            # A quiet worker must not hand out a stale cached time.
            time.sleep(0.3)
    for S, reply, R in samples:
        m = iso.fullmatch(reply)
        assert m, reply
        stamp = iso_ms(m.group(1))
        # S - resolution <= stamp <= R, with the stamp truncated to the ms.
        assert math.floor(S * 1000) - 1 <= stamp <= math.floor(R * 1000), \
            (S, m.group(1), R)
    c.close()


def ctime_string(sec, tz):
    d = datetime.datetime.fromtimestamp(sec, tz)
    return "%s %2d %s" % (d.strftime("%a %b"), d.day, d.strftime("%H:%M:%S %Y"))


@pytest.mark.parametrize("tzname", ["UTC", "Asia/Kolkata", "America/St_Johns",
                                    "XST-5:45"])
def test_ctime_freshness_and_tz(stampd, tzname):
    """The ctime stamp is local time in the server's TZ (zoneinfo names and
    POSIX TZ strings alike), and never older than the send time's second."""
    if tzname.startswith("XST"):
        # POSIX: XST-5:45 is UTC+5:45, no DST.
        tz = datetime.timezone(datetime.timedelta(hours=5, minutes=45))
    else:
        tz = zoneinfo.ZoneInfo(tzname)
    s = stampd(env={"TZ": tzname})
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    # Cross at least one second boundary (once is enough: the zone only
    # changes the rendering); a pause makes the cached clock go stale if the
    # server forgot to refresh it on wake-up.
    deadline = time.monotonic() + (1.3 if tzname == "UTC" else 0.3)
    i = 0
    while time.monotonic() < deadline:
        samples.append(exchange_timed(c, b"%d" % i))
        i += 1
        time.sleep(0.05 if i % 5 else 0.25)
    for S, reply, R in samples:
        ts, rest = split_stamp(reply)
        allowed = {ctime_string(sec, tz).encode()
                   for sec in range(math.ceil(S - 1), math.floor(R) + 1)}
        assert ts in allowed, (S, ts, R, sorted(allowed))
    c.close()


# --- many clients -----------------------------------------------------------

def test_2000_concurrent_clients(stampd):
    s = stampd("--reply", "echo", workers=2)
    n = 2000
    conns = []
    try:
        for i in range(n):
            conns.append(s.connect())
        wait_for(lambda: s.stat("connections_active") == n, 10,
                 "all %d connections accepted" % n)
        for i, c in enumerate(conns):
            c.sendall(b"client %d\r\n" % i)
        for i, c in enumerate(conns):
            assert recv_exact(c, len(b"client %d\r\n" % i)) == b"client %d\r\n" % i
        # A second round while all of them are still open.
        for i, c in enumerate(conns):
            c.sendall(b"again %d\n" % i)
        for i, c in enumerate(conns):
            assert recv_exact(c, len(b"again %d\n" % i)) == b"again %d\n" % i
        stats = s.stats()["workers"]
        # SO_REUSEPORT spread them over both workers.
        assert all(w["connections_active"] > 0 for w in stats), stats
    finally:
        for c in conns:
            c.close()
    wait_for(lambda: s.stat("connections_active") == 0, 10, "all connections closed")
    assert s.stat("connections_closed_total", "eof") == n
