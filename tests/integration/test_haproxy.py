"""stampd behind the real HAProxy (Debian's haproxy package), on loopback:
one HAProxy frontend balancing over two stampd instances, one fed PROXY
protocol v2 (`send-proxy-v2`), the other v1 (`send-proxy`), both with TCP
health checks that carry a PROXY header too (`check-send-proxy`: v2 LOCAL,
v1 of the check's own connection).  Clients connect from several 127.0.0.x
source addresses; every reply is verified, and the client addresses stampd
logs (--log-requests) must be exactly the (address, port) pairs the
clients used: the balancer's own address never shows."""
import os
import re
import socket

import pytest

from conftest import SLOW, STAMP_PREFIX_RE, recv_exact, wait_for
from haproxy_util import HAPROXY, PROXY_CONFIG, HAProxy, free_port

SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
CONNS_PER_SOURCE = 4
REQUESTS_PER_CONN = 3


@pytest.fixture
def haproxy(tmp_path):
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is not installed (make deps installs it)")
    started = []

    def start(text):
        h = HAProxy(str(tmp_path), text)
        started.append(h)
        return h

    yield start
    for h in started:
        rc = h.stop(timeout=10 * SLOW)
        assert rc == 0, "haproxy exited with %s:\n%s" % (rc, h.log())


def logged_clients(server):
    """(address, port) of every request line in a stampd log."""
    return re.findall(r'request from (127\.0\.0\.\d+):(\d+) on 127\.0\.0\.1:\d+,proxy: "',
                      server.log())


def test_haproxy_v1_and_v2_with_health_checks(stampd, haproxy):
    args = ("--log-requests", "--proxy-from", "127.0.0.1/32")
    s2 = stampd(*args, listen=["127.0.0.1:0,proxy"])
    s1 = stampd(*args, listen=["127.0.0.1:0,proxy"])
    front = free_port()
    h = haproxy(PROXY_CONFIG.format(dir=h_dir(s2), front=front, port_v2=s2.port, port_v1=s1.port))
    # Both servers pass their health checks: the checks' PROXY headers
    # (v2 LOCAL, v1) are accepted and nothing is counted as bad.
    wait_for(lambda: h.server_status() == {"v1": "UP", "v2": "UP"}, 20,
             "both stampd servers UP in haproxy")
    # The checks' headers reach stampd (HAProxy then resets the connection:
    # they are counted as closed by reset, not as protocol errors).  A
    # layer-4 check often resets before its header is out (in one run 2 of
    # 51 checks of one server carried it, 0 of 50 of the other), so this
    # waits for up to 200 checks a server rather than 50.
    wait_for(lambda: all(s.stat("connections_accepted_total") >= 2 and s.stat("bytes_received_total") > 0
                         for s in (s1, s2)), 40, "health checks with their headers")

    used = []
    for i in range(CONNS_PER_SOURCE):
        for src in SOURCES:
            c = socket.socket()
            c.settimeout(10 * SLOW)
            c.bind((src, 0))
            c.connect(("127.0.0.1", front))
            used.append(c.getsockname())
            for k in range(REQUESTS_PER_CONN):
                msg = b"hello from %s #%d.%d\n" % (src.encode(), i, k)
                c.sendall(msg)
                r = recv_exact(c, 27 + len(msg))
                assert STAMP_PREFIX_RE.match(r) and r[27:] == msg, r
            c.close()

    total = len(used) * REQUESTS_PER_CONN
    wait_for(lambda: len(logged_clients(s1)) + len(logged_clients(s2)) == total, 10,
             "a log line for every request")
    seen = [(a, int(p)) for a, p in logged_clients(s1) + logged_clients(s2)]
    assert sorted(set(seen)) == sorted(set(used))
    assert all(seen.count(u) == REQUESTS_PER_CONN for u in used)
    # Round robin gave both versions their share.
    assert logged_clients(s1) and logged_clients(s2)
    assert s1.stat("requests_total", "line") + s2.stat("requests_total", "line") == total
    for s in (s1, s2):
        assert s.stat("enforcements_total", "bad_proxy_header") == 0, s.log()
        assert "bad proxy header" not in s.log()
        assert "request from 127.0.0.1:" not in s.log()


def h_dir(server):
    return server.tmpdir
