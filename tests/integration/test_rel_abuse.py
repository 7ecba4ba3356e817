"""Abuse that must be handled exactly: oversized lines at the boundary,
garbage bytes echoed byte for byte, binary storms, resets with replies
queued, and half-closes.  Each test checks the admin counters moved by
exactly the expected amount."""
import os
import random
import select
import socket
import struct
import threading

from conftest import recv_all, recv_exact, wait_for
from test_rel_util import (delta, echo_reference, open_fds, serving_worker, wstats)

LIMIT_KEYS = ("enforcements_total.line_too_long", "connections_closed_total.limit", "requests_total.line")


def _err_after(s, data, max_line):
    """Send data (no LF) and read everything until EOF."""
    c = s.connect()
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    return recv_all(c)


def test_oversized_lines_at_the_limit_counted_exactly(stampd):
    s = stampd("--max-line", "64", "--reply", "echo")
    b0 = wstats(s)
    # limit-1 and limit bytes (terminator included) are answered ...
    for n in (63, 64):
        line = b"x" * (n - 1) + b"\n"
        c = s.connect()
        c.sendall(line)
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == line
    # ... limit+1 is not, and nothing after it either.
    c = s.connect()
    c.sendall(b"ok\n" + b"y" * 64 + b"\nnot answered\n")
    assert recv_all(c) == b"ok\nERR line too long\n"
    wait_for(lambda: wstats(s)["connections_closed_total"]["limit"] == b0["connections_closed_total"]["limit"] + 1, 5,
             "the limit close")
    d = delta(b0, wstats(s), LIMIT_KEYS)
    assert d == {"enforcements_total.line_too_long": 1, "connections_closed_total.limit": 1, "requests_total.line": 3}


def test_oversized_line_one_byte_at_a_time(stampd):
    """64 bytes without LF sent in 64 segments: the ERR comes right after
    the 64th byte and not before the 63rd is followed by another."""
    s = stampd("--max-line", "64", "--reply", "echo")
    b0 = wstats(s)
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(63):
        c.sendall(b"z")
    # 63 bytes held: a reply would be a bug, so nothing may be readable.
    wait_for(lambda: wstats(s)["bytes_received_total"] - b0["bytes_received_total"] == 63, 5, "63 bytes read")
    assert select.select([c], [], [], 0.2)[0] == []
    c.sendall(b"z")
    assert recv_exact(c, 18) == b"ERR line too long\n"
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""
    wait_for(lambda: wstats(s)["connections_closed_total"]["limit"] == b0["connections_closed_total"]["limit"] + 1, 5, "close")
    assert delta(b0, wstats(s), LIMIT_KEYS) == {
        "enforcements_total.line_too_long": 1, "connections_closed_total.limit": 1, "requests_total.line": 0}


def test_1mib_line_without_lf_cut_off_early(stampd):
    """A 1 MiB line without LF, sent 16 KiB at a time: the ERR arrives
    before more than max-line + 16 KiB has been sent, the held input never
    exceeds max-line, and everything is released afterwards."""
    s = stampd("--max-line", "65536", "--reply", "echo")
    b0 = wstats(s)
    c = s.connect()
    piece = b"a" * 16384
    sent = 0
    peak_input = 0
    got_err_at = None
    while sent < (1 << 20):
        c.sendall(piece)
        sent += len(piece)
        wait_for(lambda: wstats(s)["bytes_received_total"] - b0["bytes_received_total"] >= sent
                 or select.select([c], [], [], 0)[0], 5, "the server to read")
        peak_input = max(peak_input, wstats(s)["input_bytes"])
        if select.select([c], [], [], 0.05)[0]:
            got_err_at = sent
            break
    assert got_err_at is not None and got_err_at <= 65536 + 16384, got_err_at
    assert recv_exact(c, 18) == b"ERR line too long\n"
    assert peak_input <= 65536
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""
    wait_for(lambda: wstats(s)["connections_active"] == 0, 5, "the close")
    w = wstats(s)
    assert w["input_bytes"] == 0 and w["ring_bytes"] == 0
    assert delta(b0, w, LIMIT_KEYS) == {
        "enforcements_total.line_too_long": 1, "connections_closed_total.limit": 1, "requests_total.line": 0}


def _garbage_line(rng):
    n = rng.randrange(0, 200)
    alphabet = b"\x00\xff\xfe\xc3\x28\xa0\xa1\xe2\x82\xf0\x90\x80\r\x7f\x1b abc"
    return bytes(rng.choice(alphabet) for _ in range(n))


def test_100k_garbage_lines_echoed_byte_for_byte(stampd):
    rng = random.Random(6)
    # A fixed pool of garbage lines, shuffled into 100,000 requests: cheap to
    # build, and still every kind of byte the protocol says to echo.
    pool = [_garbage_line(rng) for _ in range(2000)]
    lines = [pool[rng.randrange(len(pool))] + b"\n" for _ in range(100000)]
    stream = b"".join(lines)
    s = stampd("--reply", "echo")
    b0 = wstats(s)
    c = s.connect()
    t = threading.Thread(target=lambda: (c.sendall(stream), c.shutdown(socket.SHUT_WR)))
    t.start()
    got = recv_all(c, timeout=60)
    t.join()
    assert got == stream
    wait_for(lambda: wstats(s)["connections_closed_total"]["eof"] == b0["connections_closed_total"]["eof"] + 1, 5, "close")
    d = delta(b0, wstats(s), ("requests_total.line", "bytes_received_total", "bytes_sent_total", "connections_closed_total.eof"))
    assert d == {"requests_total.line": 100000, "bytes_received_total": len(stream),
                 "bytes_sent_total": len(stream), "connections_closed_total.eof": 1}


def test_random_binary_storm(stampd):
    """16 connections each send 1 MiB of random bytes at once (LF is just one
    of the 256 values): each gets exactly its own echo, nothing else."""
    s = stampd("--reply", "echo", workers=2)
    streams = [os.urandom(1 << 20) for _ in range(16)]
    socks = [s.connect() for _ in streams]
    results = [None] * len(streams)

    def run(i):
        c = socks[i]
        t = threading.Thread(target=lambda: (c.sendall(streams[i]), c.shutdown(socket.SHUT_WR)))
        t.start()
        results[i] = recv_all(c, timeout=60)
        t.join()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(streams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, st in enumerate(streams):
        assert results[i] == echo_reference(st), "connection %d" % i
    tot = s.stats()["totals"]
    assert tot["enforcements_total"]["line_too_long"] == 0 and tot["enforcements_total"]["out_of_memory"] == 0


def test_1000_resets_with_replies_queued(stampd):
    """Clients that pipeline 2,000 lines with a tiny receive window and then
    reset (SO_LINGER {1, 0}): the worker survives, every connection is
    counted as reset, its descriptors return to the baseline exactly and all
    ring and input memory is given back."""
    s = stampd("--reply", "echo", "--max-output", "64k")
    pid = serving_worker(s)
    base_fds = open_fds(pid)
    b0 = wstats(s)
    burst = b"r" * 99 + b"\n"
    burst = burst * 2000
    linger = struct.pack("ii", 1, 0)
    runs = 1000
    for _ in range(runs):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", s.port))
        c.sendall(burst)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        c.close()
    wait_for(lambda: wstats(s)["connections_closed_total"]["reset"] - b0["connections_closed_total"]["reset"] == runs, 30,
             "every reset to be seen")
    w = wstats(s)
    assert s.worker_pids()[0] == pid
    assert w["connections_active"] == 0 and w["ring_bytes"] == 0 and w["input_bytes"] == 0
    wait_for(lambda: open_fds(pid) == base_fds, 5, "fds back to %d" % base_fds)
    d = delta(b0, w, ("connections_accepted_total", "connections_closed_total.reset", "connections_closed_total.eof"))
    assert d == {"connections_accepted_total": runs, "connections_closed_total.reset": runs, "connections_closed_total.eof": 0}
    moved = delta(b0, w, ("bytes_received_total", "bytes_sent_total", "requests_total.line", "backpressure_pauses_total"))
    print("resets: %d runs, fds back to %d, %s" % (runs, base_fds, moved))


def test_half_close_10k_lines_1000_runs(stampd):
    """10,000 lines then shutdown(SHUT_WR), 1,000 times (8 at a time over
    2 workers): every run gets all its replies in order, then EOF."""
    s = stampd("--reply", "echo", workers=2)
    b0 = s.stats()["totals"]
    runs, par = 1000, 8
    failures = []

    def run(k):
        for r in range(k, runs, par):
            stream = b"".join(b"%d.%d\n" % (r, i) for i in range(10000))
            c = s.connect()
            t = threading.Thread(target=lambda: (c.sendall(stream), c.shutdown(socket.SHUT_WR)))
            t.start()
            got = recv_all(c, timeout=60)
            t.join()
            c.close()
            if got != stream:
                failures.append(r)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(par)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    wait_for(lambda: s.stats()["totals"]["connections_closed_total"]["eof"] - b0["connections_closed_total"]["eof"] == runs, 10,
             "every close")
    d = delta(b0, s.stats()["totals"], ("requests_total.line", "connections_closed_total.eof", "connections_closed_total.reset"))
    assert d == {"requests_total.line": runs * 10000, "connections_closed_total.eof": runs, "connections_closed_total.reset": 0}
