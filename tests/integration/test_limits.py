"""The limits of section 1 (--max-line, --line-timeout, --max-conns,
--idle-timeout, --max-output) and the error order: every reply owed for
earlier lines, then one `ERR ...` line, then EOF without a reset, and
nothing after the offending line answered."""
import errno
import select
import socket
import time

import pytest

from conftest import (SANITIZED, SLOW, converse, parse_addr, recv_all, recv_exact,
                      recv_lines, rss_kb, wait_for)

ERR_TOO_LONG = b"ERR line too long\n"
ERR_TIMEOUT = b"ERR line timeout\n"
ERR_TOO_MANY = b"ERR too many connections\n"


def eof_within(sock, timeout):
    """Read until EOF (asserting no reset); returns (bytes, seconds taken)."""
    t0 = time.monotonic()
    data = recv_all(sock, timeout=timeout)
    return data, time.monotonic() - t0


# --- --max-line -------------------------------------------------------------

@pytest.mark.parametrize("payload_len,term,ok", [
    (14, b"\n", True),      # limit - 1 bytes with the terminator
    (15, b"\n", True),      # exactly the limit
    (14, b"\r\n", True),    # exactly the limit, CRLF
    (16, b"\n", False),     # limit + 1
    (15, b"\r\n", False),   # limit + 1, CRLF
])
def test_max_line_boundary(stampd, payload_len, term, ok):
    s = stampd("--reply", "echo", "--max-line", "16")
    c = s.connect()
    line = b"x" * payload_len + term
    data = converse(c, line)
    assert data == (line if ok else ERR_TOO_LONG)
    c.close()
    if not ok:
        assert s.stat("enforcements_total", "line_too_long") == 1


def test_max_line_error_order(stampd):
    """Owed replies, then the ERR line, then EOF; the rest is not answered,
    and a client that keeps sending is drained, not reset."""
    s = stampd("--reply", "echo", "--max-line", "16")
    c = s.connect()
    request = b"ok1\nok2\r\n" + b"y" * 40 + b"\nafter\n" + b"junk\n" * 200_000
    data = converse(c, request, timeout=30)
    assert data == b"ok1\nok2\r\n" + ERR_TOO_LONG
    c.close()
    wait_for(lambda: s.stat("connections_closed_total", "limit") == 1, 5, "connections_closed_total.limit")


def test_max_line_split_across_reads(stampd):
    """The held fragment plus later bytes reaching the limit without LF."""
    s = stampd("--reply", "echo", "--max-line", "16")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"fine\nabcdefgh")
    assert recv_exact(c, 5) == b"fine\n"
    c.sendall(b"ijklmnop")          # 16 bytes without LF: too long now
    data, took = eof_within(c, 5)
    assert data == ERR_TOO_LONG
    c.close()


def test_max_line_final_fragment_at_eof(stampd):
    """A final fragment shorter than the limit is answered; one that reaches
    it has already failed."""
    s = stampd("--reply", "echo", "--max-line", "16")
    c = s.connect()
    assert converse(c, b"z" * 15) == b"z" * 15 + b"\n"
    c.close()
    c = s.connect()
    assert converse(c, b"z" * 16) == ERR_TOO_LONG
    c.close()


def test_max_line_default_64k(stampd):
    s = stampd("--reply", "echo")
    c = s.connect()
    line = b"a" * 65535 + b"\n"
    assert converse(c, line + line) == line + line
    c.close()
    c = s.connect()
    assert converse(c, line + b"b" * 65536 + b"\n") == line + ERR_TOO_LONG
    c.close()


# --- --line-timeout ------------------------------------------------------------

def test_line_timeout_error_order_and_timing(stampd):
    s = stampd("--reply", "echo", "--line-timeout", "1")
    c = s.connect()
    t0 = time.monotonic()
    c.sendall(b"a\nb\r\npartial")
    assert recv_exact(c, 5) == b"a\nb\r\n"
    data = recv_all(c, timeout=5)
    took = time.monotonic() - t0
    assert data == ERR_TIMEOUT
    assert 0.95 <= took <= 1.0 + 0.5 * SLOW, took
    c.close()
    assert s.stat("enforcements_total", "line_timeout") == 1


def test_line_timeout_runs_from_first_byte_despite_dripping(stampd):
    """Slow drip-feeding does not extend the deadline."""
    s = stampd("--reply", "echo", "--line-timeout", "1")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    got = b""
    for i in range(20):
        try:
            c.send(b"d")
        except (BrokenPipeError, ConnectionResetError):
            break
        r, _, _ = select.select([c], [], [], 0.15)
        if r:
            break
    data = recv_all(c, timeout=5)
    took = time.monotonic() - t0
    assert data == ERR_TIMEOUT
    assert 0.95 <= took <= 1.0 + 0.5 * SLOW, took
    c.close()


def test_line_timeout_is_per_line(stampd):
    """Each partial line gets its own deadline, also one that starts in the
    same read that completes the previous line: "ab" (deadline D1), half a
    timeout later "c\nde" (deadline D2 = D1 + ~1 s), then "f\n" sent once
    D1 has passed, which a probe connection's own timeout (started just
    after "ab") tells; every pause has a margin of a whole second."""
    s = stampd("--reply", "echo", "--line-timeout", "2")
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    probe = s.connect()
    c.sendall(b"ab")
    wait_for(lambda: s.stat("bytes_received_total") >= 2, 5, '"ab" to be read')
    probe.sendall(b"p")
    wait_for(lambda: s.stat("bytes_received_total") >= 3, 5, "the probe's byte to be read")
    t_ab = time.monotonic()
    time.sleep(1.0)                 # pacing: half the timeout
    c.sendall(b"c\nde")
    assert recv_exact(c, 4) == b"abc\n"
    t_de = time.monotonic()
    # The probe's deadline follows D1: once it fired, D1 has passed too.
    assert recv_all(probe, timeout=5) == ERR_TIMEOUT
    assert time.monotonic() - t_de < 1.9, "the host stalled: the premise no longer holds"
    c.sendall(b"f\n")
    assert recv_exact(c, 4) == b"def\n"
    c.sendall(b"end\n")
    assert recv_exact(c, 4) == b"end\n"
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""
    assert s.stat("enforcements_total", "line_timeout") == 1     # the probe's
    assert t_de - t_ab < 2.0
    probe.close()
    c.close()


# --- --max-conns ------------------------------------------------------------

def test_max_conns(stampd):
    s = stampd("--reply", "echo", "--max-conns", "3")
    conns = [s.connect() for _ in range(3)]
    for i, c in enumerate(conns):
        c.sendall(b"%d\n" % i)
        assert recv_exact(c, 2) == b"%d\n" % i
    # The newcomer: its error line, then EOF (not a reset).
    extra = s.connect()
    data, _ = eof_within(extra, 5)
    assert data == ERR_TOO_MANY
    extra.close()
    # Existing connections are untouched, and refused ones did not count.
    for i, c in enumerate(conns):
        c.sendall(b"again %d\n" % i)
        assert recv_exact(c, 8) == b"again %d\n" % i
    st = s.stats()["workers"][0]
    assert st["connections_active"] == 3 and st["connections_refused_total"] == 1, st
    assert st["enforcements_total"]["max_conns"] == 1
    # A freed slot is available again once the server has closed it.
    conns[0].close()
    wait_for(lambda: s.stat("connections_active") == 2, 5, "the closed connection to go")
    more = s.connect()
    more.sendall(b"new\n")
    assert recv_exact(more, 4) == b"new\n"
    more.close()
    for c in conns[1:]:
        c.close()


def test_max_conns_many_refusals_do_not_count(stampd):
    s = stampd("--reply", "echo", "--max-conns", "2")
    a, b = s.connect(), s.connect()
    refused = [s.connect() for _ in range(20)]
    for r in refused:
        assert recv_all(r) == ERR_TOO_MANY
        r.close()
    wait_for(lambda: s.stat("connections_refused_total") == 20, 5, "20 refusals")
    for c in (a, b):
        c.sendall(b"x\n")
        assert recv_exact(c, 2) == b"x\n"
    assert s.stat("connections_active") == 2
    a.close()
    b.close()


# --- --idle-timeout -------------------------------------------------------------

def test_idle_timeout_closes_without_message(stampd):
    s = stampd("--idle-timeout", "1")
    c = s.connect()
    data, took = eof_within(c, 5)
    assert data == b""
    assert 0.95 <= took <= 1.0 + 0.5 * SLOW, took
    c.close()
    # The client sees EOF when the socket closes; the counters follow in the
    # same worker turn, so await them rather than race it.
    wait_for(lambda: s.stat("connections_closed_total", "timeout") == 1, 5, "the timeout close counted")
    assert s.stat("enforcements_total", "idle_timeout") == 1


def test_idle_timeout_reset_by_traffic(stampd):
    s = stampd("--reply", "echo", "--idle-timeout", "1")
    c = s.connect()
    t0 = time.monotonic()
    for i in range(7):
        if i:
            time.sleep(0.3)         # pacing: each gap well under the timeout
        c.sendall(b"%d\n" % i)
        assert recv_exact(c, 2) == b"%d\n" % i
    last = time.monotonic()
    assert last - t0 >= 1.8         # outlived one timeout thanks to traffic
    data = recv_all(c, timeout=5)
    assert data == b""
    took = time.monotonic() - last
    assert 0.95 <= took <= 1.0 + 0.5 * SLOW, took
    c.close()


def test_idle_timeout_zero_means_never(stampd):
    s = stampd("--reply", "echo", "--idle-timeout", "0", "--line-timeout", "0")
    c = s.connect()
    c.sendall(b"part")
    r, _, _ = select.select([c], [], [], 1.5)
    assert not r, "closed or answered although no limit applies"
    c.sendall(b"\n")
    assert recv_exact(c, 5) == b"part\n"
    c.close()


# --- --max-output ----------------------------------------------------------------

def raw_connect(s, rcvbuf=None):
    fam, sa = parse_addr(s.addr())
    c = socket.socket(fam, socket.SOCK_STREAM)
    if rcvbuf:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.settimeout(10 * SLOW)
    c.connect(sa)
    return c


def send_until_stalled(c, data, stall=0.5, timeout=30):
    """Send without reading until the kernel takes nothing more for `stall`
    seconds or everything is sent; returns the bytes sent."""
    c.setblocking(False)
    sent = 0
    last = time.monotonic()
    deadline = last + timeout * SLOW
    view = memoryview(data)
    while sent < len(view) and time.monotonic() < deadline:
        _, w, _ = select.select([], [c], [], 0.05)
        if w:
            try:
                n = c.send(view[sent:sent + 65536])
            except BlockingIOError:
                n = 0
            if n:
                sent += n
                last = time.monotonic()
                continue
        if time.monotonic() - last > stall:
            break
    c.setblocking(True)
    return sent


def test_max_output_client_that_never_reads(stampd):
    """Reading stops while the client does not read: the worker's memory
    stays bounded whatever the client sends; once it reads, every reply
    arrives, in order."""
    # ASan holds freed blocks in a quarantine (256 MiB by default) and maps
    # shadow memory: keep the quarantine small and allow more slack there.
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99:"
                           "quarantine_size_mb=2"} if SANITIZED else None
    bound_kb = 8192 if SANITIZED else 2048
    s = stampd("--max-output", "64k", "--idle-timeout", "0", env=env)
    pid = s.worker_pids()[0]
    warm = s.connect()
    warm.sendall(b"warm\n")
    recv_lines(warm, 1)
    warm.close()
    rss0 = rss_kb(pid)

    n = 400_000
    request = b"".join(b"%07d %s\n" % (i, b"p" * 92) for i in range(n))  # 101 B
    c = raw_connect(s, rcvbuf=65536)
    sent = send_until_stalled(c, request)
    assert sent < len(request), "the server kept reading a client that never reads"
    assert s.stat("backpressure_pauses_total") >= 1
    # Keep pushing: the server must not take more, nor grow.
    peak = rss0
    for _ in range(5):
        more = send_until_stalled(c, request[sent:], stall=0.1, timeout=1)
        sent += more
        peak = max(peak, rss_kb(pid))
        st = s.stats()["workers"][0]
        # The ring is bounded by pow2(max-output + max-line + 128) and the
        # held input by one read.
        assert st["ring_bytes"] <= 256 * 1024, st
        assert st["input_bytes"] <= 128 * 1024, st
    growth = peak - rss0
    print("max-output: sent %d bytes before stalling; worker RSS +%d KiB" % (sent, growth))
    assert growth < bound_kb, "worker RSS grew by %d KiB (sent %d bytes)" % (growth, sent)

    # Now read: everything, in order.
    data = converse(c, request[sent:], timeout=60)
    lines = data.split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == n
    for i, line in enumerate(lines):
        assert line[27:35] == b"%07d " % i, (i, line[:60])
    c.close()


def test_max_output_idle_timeout_still_applies(stampd):
    s = stampd("--max-output", "16k", "--idle-timeout", "1")
    c = raw_connect(s, rcvbuf=8192)
    request = b"x" * 60 + b"\n"
    sent = send_until_stalled(c, request * 200_000, stall=0.3)
    assert sent < len(request) * 200_000
    assert s.stat("backpressure_pauses_total") >= 1
    wait_for(lambda: s.stat("connections_closed_total", "timeout") == 1, 3, "the paused connection to time out")
    assert s.stat("connections_active") == 0
    c.close()


def test_max_output_resumes_and_other_connections_unaffected(stampd):
    s = stampd("--reply", "echo", "--max-output", "4k")
    slow = raw_connect(s, rcvbuf=4096)
    sent = send_until_stalled(slow, b"s" * 99 + b"\n" * 1, stall=0.2)
    big = (b"q" * 99 + b"\n") * 50_000
    sent = send_until_stalled(slow, big, stall=0.3)
    # Another client is served normally meanwhile.
    fast = s.connect()
    request = b"".join(b"f%d\n" % i for i in range(10_000))
    assert converse(fast, request) == request
    fast.close()
    rest = converse(slow, big[sent:], timeout=60)
    assert rest == b"s" * 99 + b"\n" + big
    slow.close()


def test_error_after_a_pause_keeps_the_order(stampd):
    """A too-long line queued behind a paused stretch: once the client
    reads, every earlier reply comes first, then the ERR line, then EOF."""
    s = stampd("--reply", "echo", "--max-output", "4k", "--max-line", "64")
    good = b"".join(b"%07d\n" % i for i in range(2_000_000))   # 16 MB
    request = good + b"z" * 100 + b"\nnever\n"
    c = raw_connect(s, rcvbuf=4096)
    sent = send_until_stalled(c, request, stall=0.3)
    assert sent < len(request)
    assert s.stat("backpressure_pauses_total") >= 1
    data = converse(c, request[sent:], timeout=30)
    assert data == good + ERR_TOO_LONG
    c.close()


def test_final_fragment_after_a_pause(stampd):
    """EOF seen only after reading resumes: the held input and the final
    fragment are still answered, in order."""
    s = stampd("--reply", "echo", "--max-output", "4k")
    body = b"".join(b"%07d\r\n" % i for i in range(1_600_000)) + b"tail"
    c = raw_connect(s, rcvbuf=4096)
    sent = send_until_stalled(c, body, stall=0.3)
    assert sent < len(body)
    data = converse(c, body[sent:], timeout=30)
    assert data == body + b"\n"
    c.close()


def test_line_timeouts_of_several_connections(stampd):
    s = stampd("--reply", "echo", "--line-timeout", "1")
    a = s.connect()
    a.sendall(b"a-part")
    t_a = time.monotonic()
    time.sleep(0.4)                 # pacing: stagger the two deadlines
    b = s.connect()
    b.sendall(b"b-part")
    t_b = time.monotonic()
    assert recv_all(a, timeout=5) == ERR_TIMEOUT
    took_a = time.monotonic() - t_a
    assert recv_all(b, timeout=5) == ERR_TIMEOUT
    took_b = time.monotonic() - t_b
    assert 0.95 <= took_a <= 1.0 + 0.5 * SLOW, took_a
    assert 0.95 <= took_b <= 1.0 + 0.5 * SLOW, took_b
    a.close()
    b.close()
