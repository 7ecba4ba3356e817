"""Garbage on the HTTP and UDP listeners: random binary storms never crash
a worker or hang a connection, and every outcome is counted."""
import os
import random
import socket
import threading

from conftest import recv_all, stat_of, wait_for
from test_rel_util import wstats

CLOSE_KEYS = ("connections_closed_total.eof", "connections_closed_total.reset", "connections_closed_total.timeout", "connections_closed_total.limit",
              "connections_closed_total.protocol")


def test_http_binary_storm(stampd):
    """20 connections each send 256 KiB of random bytes (a few with a valid
    request first) to --http: each gets only HTTP/1.1 responses and is
    closed; every close is counted under one reason; the worker lives."""
    s = stampd("--http", "127.0.0.1:0", workers=1)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    rng = random.Random(5)
    n = 20
    results = [None] * n

    def run(i):
        head = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" if i % 4 == 0 else b""
        data = head + bytes(rng.getrandbits(8) for _ in range(1 << 18))
        c = s.connect("http")

        def send():
            try:
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass    # the server answered 400 and closed: expected
        t = threading.Thread(target=send)
        t.start()
        try:
            results[i] = (head, recv_all(c, timeout=30))
        except AssertionError as e:   # a reset after the error response
            results[i] = (head, str(e).encode())
        t.join()
        c.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for head, got in results:
        if got.startswith(b"connection reset"):
            continue
        assert got.startswith(b"HTTP/1.1 "), got[:80]
        if head:
            assert got.startswith(b"HTTP/1.1 200 "), got[:80]
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    w = wstats(s)
    assert w["pid"] == pid == s.worker_pids()[0]
    assert sum(stat_of(w, k) - stat_of(b0, k) for k in CLOSE_KEYS) == n
    assert w["requests_total"]["http"] - b0["requests_total"]["http"] >= n // 4
    assert w["input_bytes"] == 0 and w["ring_bytes"] == 0


def test_udp_random_datagrams_all_accounted(stampd):
    """2,000 random datagrams (0 to 65,507 bytes) in bursts of 50, each
    burst followed by a probe that is re-sent until its echo returns (a
    receive-queue overflow is reported with the next datagram, so the probe
    also makes the drop count current).  Every datagram is answered or
    counted as dropped, exactly, and every reply is the echo of a datagram
    sent or the oversize error."""
    s = stampd("--udp", "127.0.0.1:0", "--reply", "echo", workers=1)
    host, port = s.addr("udp").rsplit(":", 1)
    dest = (host, int(port))
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    c.settimeout(0.5)
    rng = random.Random(9)
    b0 = wstats(s)
    sent = received = 0
    expected = set()
    for burst in range(40):
        for _ in range(50):
            size = rng.choice([0, 1, 2, 100, 1400, 9000, 65507, rng.randrange(65508)])
            d = os.urandom(size)
            expected.add(d)
            c.sendto(d, dest)
            sent += 1
        probe = b"probe %d\n" % burst
        for attempt in range(20):
            c.sendto(probe, dest)
            sent += 1
            try:
                while True:
                    r = c.recv(65536)
                    received += 1
                    if r == probe:
                        break
                    assert r in expected or r == b"ERR datagram too large" \
                        or r.startswith(b"probe "), r[:40]
                break
            except socket.timeout:
                continue
        else:
            raise AssertionError("probe %d never came back" % burst)
    # Drops are read from the socket once per wakeup that receives: two
    # quiet round trips make the count cover everything sent before them.
    for k in range(2):
        probe = b"final %d\n" % k
        c.sendto(probe, dest)
        sent += 1
        c.settimeout(5)
        while c.recv(65536) != probe:
            received += 1
        received += 1

    def accounted():
        w = wstats(s)
        return (w["requests_total"]["udp"] - b0["requests_total"]["udp"]) + (w["udp_drops_total"] - b0["udp_drops_total"])
    try:
        wait_for(lambda: accounted() == sent, 5, "answered + dropped == sent")
    finally:
        w = wstats(s)
        answered = w["requests_total"]["udp"] - b0["requests_total"]["udp"]
        dropped = w["udp_drops_total"] - b0["udp_drops_total"]
    assert answered + dropped == sent, (answered, dropped, sent)
    assert w["pid"] == s.worker_pids()[0]
    assert received <= answered
    print("udp: %d datagrams, %d answered, %d dropped (counted), %d replies read"
          % (sent, answered, dropped, received))
