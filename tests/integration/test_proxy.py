"""PROXY protocol on ,proxy listeners: v1 and v2 headers written by hand
over real sockets, the client address they name in the logs, and every
rejection path (untrusted source, malformed, truncated, late, missing),
each answered `ERR bad proxy header` (HTTP: 400) and a close, counted as
the bad_proxy_header enforcement and logged naming the client."""
import os
import re
import socket
import struct
import subprocess
import time

from conftest import STAMPD, STAMP_PREFIX_RE, parse_addr, recv_all, recv_exact, wait_for

STAMPCTL = os.path.join(os.path.dirname(STAMPD), "stampctl")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
BAD = b"ERR bad proxy header\n"


def v2(cmd, fam, addrs=b"", tlvs=b""):
    """A v2 header: cmd 0 LOCAL / 1 PROXY; fam the family/transport byte
    (0x11 TCP4, 0x21 TCP6, 0x00 UNSPEC)."""
    body = addrs + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def v2_tcp4(src, sport, dst="127.0.0.1", dport=8009, tlvs=b""):
    addrs = (socket.inet_aton(src) + socket.inet_aton(dst) +
             struct.pack("!HH", sport, dport))
    return v2(1, 0x11, addrs, tlvs)


def v2_tcp6(src, sport, dst="::1", dport=8009):
    addrs = (socket.inet_pton(socket.AF_INET6, src) +
             socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport))
    return v2(1, 0x21, addrs)


def proxied(stampd, *args, listen="127.0.0.1:0,proxy", trusted="127.0.0.0/8", **kw):
    return stampd("--reply", "echo", "--log-requests", "--proxy-from", trusted,
                  *args, listen=[listen], **kw)


def request_logged(s, who, payload):
    pat = 'request from %s on 127.0.0.1:%d,proxy: "%s"' % (who, s.port, payload)
    wait_for(lambda: pat in s.log(), 10, "log line " + pat)


def refused(s, c, how, count=1):
    assert recv_all(c) == BAD
    wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == count, 10, "the bad_proxy_header count")
    wait_for(lambda: re.search(r"info: bad proxy header \(%s\): client 127\.0\.0\.1:\d+ on "
                               r"127\.0\.0\.1:\d+,proxy" % re.escape(how), s.log()),
             10, "the enforcement log line (%s)" % how)


# --- accepted headers ---------------------------------------------------------

def test_v1_tcp4_data_in_same_segment(stampd):
    s = proxied(stampd)
    c = s.connect()
    c.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 8009\r\nhello\nworld\n")
    assert recv_exact(c, 12) == b"hello\nworld\n"
    request_logged(s, "203.0.113.7:51234", "hello")
    request_logged(s, "203.0.113.7:51234", "world")
    assert s.stat("enforcements_total", "bad_proxy_header") == 0


def test_v1_tcp6_and_stamp(stampd):
    s = stampd("--log-requests", "--proxy-from", "127.0.0.1",
               listen=["127.0.0.1:0,proxy"])
    c = s.connect()
    c.sendall(b"PROXY TCP6 2001:db8::1 ::1 40000 8009\r\n")
    c.sendall(b"ping\n")
    r = recv_exact(c, 27 + 5)
    assert STAMP_PREFIX_RE.match(r) and r.endswith(b"] ping\n"), r
    request_logged(s, "[2001:db8::1]:40000", "ping")


def test_v1_header_split_byte_by_byte(stampd):
    s = proxied(stampd)
    c = s.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b"PROXY TCP4 198.51.100.9 127.0.0.1 1234 8009\r\n":
        c.send(bytes([b]))
        time.sleep(0.001)
    c.sendall(b"split\n")
    assert recv_exact(c, 6) == b"split\n"
    request_logged(s, "198.51.100.9:1234", "split")


def test_v1_unknown_keeps_socket_address(stampd):
    s = proxied(stampd)
    c = s.connect()
    port = c.getsockname()[1]
    c.sendall(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nunknown\n")
    assert recv_exact(c, 8) == b"unknown\n"
    request_logged(s, "127.0.0.1:%d" % port, "unknown")


def test_v2_tcp4_with_tlvs(stampd):
    s = proxied(stampd)
    c = s.connect()
    tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x00"  # ALPN "h2", NOOP of length 0
    c.sendall(v2_tcp4("192.0.2.10", 60000, tlvs=tlvs) + b"v2 data\n")
    assert recv_exact(c, 8) == b"v2 data\n"
    request_logged(s, "192.0.2.10:60000", "v2 data")


def test_v2_tcp6(stampd):
    s = proxied(stampd)
    c = s.connect()
    c.sendall(v2_tcp6("2001:db8::42", 443) + b"six\n")
    assert recv_exact(c, 4) == b"six\n"
    request_logged(s, "[2001:db8::42]:443", "six")


def test_v2_local_keeps_socket_address(stampd):
    """A balancer's health check: LOCAL, and then often nothing at all."""
    s = proxied(stampd)
    c = s.connect()
    port = c.getsockname()[1]
    c.sendall(v2(0, 0x00) + b"local\n")
    assert recv_exact(c, 6) == b"local\n"
    request_logged(s, "127.0.0.1:%d" % port, "local")
    hc = s.connect()
    hc.sendall(v2(0, 0x00))
    hc.shutdown(socket.SHUT_WR)
    assert recv_all(hc) == b""
    assert s.stat("enforcements_total", "bad_proxy_header") == 0


def test_v2_unspec_keeps_socket_address(stampd):
    s = proxied(stampd)
    c = s.connect()
    port = c.getsockname()[1]
    c.sendall(v2(1, 0x00) + b"unspec\n")
    assert recv_exact(c, 7) == b"unspec\n"
    request_logged(s, "127.0.0.1:%d" % port, "unspec")


def test_header_then_greeting_then_chunk(stampd):
    """The greeting follows the header (the balancer forwards it to the
    client); ,proxy and ,chunk combine."""
    s = stampd("--reply", "upper", "--greeting", "welcome", "--proxy-from", "127.0.0.1/32",
               listen=["127.0.0.1:0,proxy,chunk"])
    c = s.connect()
    c.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 5 6\r\n")
    assert recv_exact(c, 8) == b"welcome\n"
    c.sendall(b"abc")
    assert c.recv(100) == b"ABC"


def test_unix_listener_trusts_its_peers(stampd, tmp_path):
    path = str(tmp_path / "p.sock")
    s = stampd("--reply", "echo", "--log-requests", "--proxy-from", "10.0.0.0/8",
               listen=["unix:%s,proxy" % path])
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(10)
    c.connect(path)
    c.sendall(b"PROXY TCP4 10.9.8.7 10.0.0.1 4321 80\r\nvia unix\n")
    assert recv_exact(c, 9) == b"via unix\n"
    wait_for(lambda: 'request from 10.9.8.7:4321 on unix:%s,proxy: "via unix"' % path
             in s.log(), 10, "the request line")


def test_enforcement_names_proxy_source(stampd):
    s = proxied(stampd, "--max-line", "8")
    c = s.connect()
    c.sendall(b"PROXY TCP4 203.0.113.99 127.0.0.1 7777 8009\r\n0123456789\n")
    assert recv_all(c) == b"ERR line too long\n"
    wait_for(lambda: "info: line too long: client 203.0.113.99:7777 on 127.0.0.1:%d,proxy"
             % s.port in s.log(), 10, "the enforcement line naming the PROXY source")


# --- rejections ------------------------------------------------------------------

def test_untrusted_source(stampd):
    s = proxied(stampd, trusted="10.0.0.0/8")
    c = s.connect()
    c.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhello\n")
    refused(s, c, "untrusted source")
    assert "request from" not in s.log()


def test_untrusted_source_ipv6_listener(stampd):
    s = stampd("--proxy-from", "127.0.0.1", listen=["[::1]:0,proxy"])
    c = s.connect()
    c.sendall(b"PROXY TCP6 ::2 ::1 1 2\r\n")
    assert recv_all(c) == BAD
    wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == 1, 10, "the count")
    wait_for(lambda: re.search(r"bad proxy header \(untrusted source\): client \[::1\]:\d+",
                               s.log()), 10, "the log line")


def test_no_header(stampd):
    s = proxied(stampd)
    c = s.connect()
    c.sendall(b"hello\n")
    refused(s, c, "not a PROXY header")


def test_malformed_v1(stampd):
    s = proxied(stampd)
    for i, hdr in enumerate((b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
                             b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
                             b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n")):
        c = s.connect()
        c.sendall(hdr + b"data\n")
        assert recv_all(c) == BAD, hdr
        wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == i + 1, 10, "count %d" % (i + 1))
    assert "request from" not in s.log()


def test_malformed_v2(stampd):
    s = proxied(stampd)
    c = s.connect()
    bad = V2_SIG + bytes([0x31, 0x11]) + struct.pack("!H", 12) + b"\0" * 12  # version 3
    c.sendall(bad + b"x\n")
    assert recv_all(c) == BAD
    wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == 1, 10, "the count")


def test_truncated_header(stampd):
    s = proxied(stampd)
    c = s.connect()
    c.sendall(b"PROXY TCP4 1.2.3.4 ")
    c.shutdown(socket.SHUT_WR)
    refused(s, c, "truncated")


def test_header_too_late(stampd):
    s = proxied(stampd, "--line-timeout", "1")
    c = s.connect()
    t0 = time.monotonic()
    c.sendall(v2_tcp4("1.2.3.4", 1)[:20])
    refused(s, c, "timeout")
    assert time.monotonic() - t0 >= 0.9


def test_silent_client_times_out(stampd):
    s = proxied(stampd, "--line-timeout", "1")
    c = s.connect()
    refused(s, c, "timeout")


def test_http_proxy(stampd):
    s = stampd("--reply", "echo", "--proxy-from", "127.0.0.1", "--log-requests",
               "--http", "127.0.0.1:0,proxy")
    c = s.connect("http")
    c.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 80\r\n"
              b"GET /hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    r = recv_all(c)
    assert r.startswith(b"HTTP/1.1 200 OK\r\n") and r.endswith(b"\r\n\r\n/hi\n"), r
    wait_for(lambda: "request from 192.0.2.1:1000 on " in s.log(), 10, "the request line")

    c = s.connect("http")
    c.sendall(b"GET /hi HTTP/1.1\r\nHost: x\r\n\r\n")
    r = recv_all(c)
    assert re.fullmatch(rb"HTTP/1\.1 400 Bad Request\r\nServer: stampd\r\nDate: [^\r]+ GMT\r\n"
                        rb"Content-Type: text/plain\r\nContent-Length: 17\r\n"
                        rb"Connection: close\r\n\r\nbad proxy header\n", r), r
    wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == 1, 10, "the count")


def test_rejection_logs_are_rate_limited(stampd):
    """40 bad clients at once: at most 10 lines a second name them, then
    one summary counts the rest."""
    s = proxied(stampd)
    conns = []
    for _ in range(40):
        c = s.connect()
        c.sendall(b"garbage\n")
        conns.append(c)
    for c in conns:
        assert recv_all(c) == BAD
    wait_for(lambda: s.stat("enforcements_total", "bad_proxy_header") == 40, 10, "40 rejections")
    wait_for(lambda: "similar lines suppressed" in s.log(), 10, "the summary line")
    lines = [l for l in s.log().splitlines() if "bad proxy header (" in l]
    m = re.findall(r"info: (\d+) similar lines? suppressed", s.log())
    assert len(lines) + sum(int(x) for x in m) == 40, (len(lines), m)
    assert len(lines) <= 10 * 3  # at most 10 per second, over at most 3 s


def test_v2_unix_source_logged_as_unix(stampd):
    s = proxied(stampd)
    c = s.connect()
    addrs = b"/run/client.sock".ljust(108, b"\0") + b"/run/stampd.sock".ljust(108, b"\0")
    c.sendall(v2(1, 0x31, addrs) + b"from a unix client\n")
    assert recv_exact(c, 19) == b"from a unix client\n"
    request_logged(s, "unix", "from a unix client")


def test_rss_per_idle_proxied_connection(stampd):
    """A proxied idle connection: its slot (112 bytes) and its client
    address in the side table (16 bytes), nothing else."""
    from test_memory import N, WARM, quiet_rss
    from conftest import SANITIZED
    s = stampd("--reply", "echo", "--max-conns", "12000", "--proxy-from", "127.0.0.1",
               listen=["127.0.0.1:0,proxy"])
    pid = s.worker_pids()[0]

    def open_proxied(n, base):
        conns = []
        for i in range(n):
            c = s.connect()
            c.sendall(b"PROXY TCP4 10.%d.%d.%d 127.0.0.1 %d 8009\r\n%d\n"
                      % ((base + i) >> 16 & 255, (base + i) >> 8 & 255, (base + i) & 255,
                         1024 + i % 60000, i))
            conns.append(c)
        for i, c in enumerate(conns):
            assert recv_exact(c, len(b"%d\n" % i)) == b"%d\n" % i
        return conns

    warm = open_proxied(WARM, 0)
    poke = warm.pop()
    for c in warm:
        c.close()
    wait_for(lambda: s.stat("connections_active") == 1, 10, "warm-up connections to close")
    rss0 = quiet_rss(s, pid, poke)
    conns = open_proxied(N, 100000)
    try:
        wait_for(lambda: s.stat("connections_active") == N + 1, 10, "all connections accepted")
        rss1 = quiet_rss(s, pid, poke)
        per_conn = (rss1 - rss0) * 1024 / (N - WARM)
        print("worker RSS %d KiB -> %d KiB with %d idle proxied connections: %.0f bytes each"
              % (rss0, rss1, N, per_conn))
        if not SANITIZED:
            assert per_conn <= 128 + 16, "%.0f bytes per idle proxied connection" % per_conn
    finally:
        for c in conns:
            c.close()
        poke.close()
    wait_for(lambda: s.stat("connections_active") == 0, 20, "connections to close")


# --- per-listener figures ------------------------------------------------------

def connect_from(s, source, i):
    """A connection to line listener i from the loopback address source."""
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(10)
    c.bind((source, 0))
    c.connect(parse_addr(s.addr("line", i))[1])
    return c


def listener_entry(s, i):
    """The /stats "listeners" entry of line listener i."""
    return [l for l in s.stats()["listeners"] if l["kind"] == "line"][i]


def test_listener_figures_name_the_client_behind_the_balancer(stampd):
    """A direct client from 127.0.0.2 on the plain listener; a balancer at
    127.0.0.1 whose headers name 127.0.0.3, then 127.0.0.4, on the ,proxy
    listener.  Each listener counts its own connections, requests and
    enforcements, and its last client is the one the header named, never
    the balancer.  /metrics labels the listeners by address and kind only;
    stampctl shows the same figures."""
    s = stampd("--reply", "echo", "--proxy-from", "127.0.0.1", "--max-line", "8",
               listen=["127.0.0.1:0", "127.0.0.1:0,proxy"])
    plain, proxy = s.addr("line", 0), s.addr("line", 1)
    d = connect_from(s, "127.0.0.2", 0)
    d.sendall(b"a\nb\n")
    assert recv_exact(d, 4) == b"a\nb\n"
    d.close()
    held = connect_from(s, "127.0.0.1", 1)
    held.sendall(b"PROXY TCP4 127.0.0.3 127.0.0.1 4444 8009\r\nhi\n")
    assert recv_exact(held, 3) == b"hi\n"

    def settled():
        p, x = listener_entry(s, 0), listener_entry(s, 1)
        return (p["listener_connections_active"] == 0 and
                x["listener_connections_active"] == 1) and (p, x)
    p, x = wait_for(settled, 10, "the per-listener figures")
    assert (p["listener"], p["flags"], x["listener"], x["flags"]) == (plain, [], proxy, ["proxy"])
    assert (p["listener_connections_accepted_total"], p["listener_requests_total"],
            p["listener_enforcements_total"]) == (1, 2, 0)
    assert (x["listener_connections_accepted_total"], x["listener_requests_total"],
            x["listener_enforcements_total"]) == (1, 1, 0)
    assert p["last_client"].startswith("127.0.0.2:") and p["last_enforced_client"] is None
    assert x["last_client"] == "127.0.0.3:4444"

    # An enforcement names the client the header named.
    e = connect_from(s, "127.0.0.1", 1)
    e.sendall(b"PROXY TCP4 127.0.0.4 127.0.0.1 5555 8009\r\n0123456789\n")
    assert recv_all(e) == b"ERR line too long\n"
    e.close()

    def enforced():
        x = listener_entry(s, 1)
        return (x["listener_enforcements_total"] == 1 and
                x["listener_connections_active"] == 1) and x
    x = wait_for(enforced, 10, "the enforcement and its close")
    assert (x["listener_connections_accepted_total"], x["listener_requests_total"]) == (2, 1)
    assert x["last_enforced_client"] == x["last_client"] == "127.0.0.4:5555"
    assert listener_entry(s, 0)["listener_enforcements_total"] == 0

    status, body = s.admin_get("/metrics")
    text = body.decode()
    assert ('stampd_listener_connections_active{listener="%s",kind="line"} 1\n' % proxy) in text
    assert ('stampd_listener_requests_total{listener="%s",kind="line"} 2\n' % plain) in text
    assert status == 200
    assert ('stampd_listener_enforcements_total{listener="%s",kind="line"} 1\n' % proxy) in text
    assert "127.0.0.3" not in text and "127.0.0.4" not in text

    r = subprocess.run([STAMPCTL, "--admin", s.admin, "stats"], stdout=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0
    rows = [l.split() for l in r.stdout.decode().split("\n") if l.startswith("  line ")]
    assert rows == [["line", plain, "0", "1", "2", "0", p["last_client"], "-"],
                    ["line", proxy + ",proxy", "1", "2", "1", "1", "127.0.0.4:5555",
                     "127.0.0.4:5555"]]
    held.close()
    wait_for(lambda: listener_entry(s, 1)["listener_connections_active"] == 0, 10,
             "the close")
