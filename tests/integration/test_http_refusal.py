"""An HTTP listener over --max-conns answers like an HTTP server: 503 with
Connection: close, readable by any HTTP client, then EOF (not a reset) and
not the line protocol's `ERR too many connections`.  The refusal is an
enforcement logged naming the client."""
import http.client
import re

from conftest import recv_all, recv_exact, wait_for

RESP_503 = re.compile(rb"HTTP/1\.1 503 Service Unavailable\r\nServer: stampd\r\n"
                      rb"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n"
                      rb"Content-Type: text/plain\r\nContent-Length: 21\r\n"
                      rb"Connection: close\r\n\r\ntoo many connections\n")


def test_http_over_max_conns_gets_503(stampd):
    s = stampd("--reply", "echo", "--max-conns", "2", "--http", "127.0.0.1:0")
    held = [s.connect("http") for _ in range(2)]
    wait_for(lambda: s.stat("connections_active") == 2, 10, "two connections held")
    extra = s.connect("http")
    extra.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    r = recv_all(extra)
    assert RESP_503.fullmatch(r), r
    wait_for(lambda: s.stat("enforcements_total", "max_conns") == 1, 10, "the enforcement count")
    wait_for(lambda: re.search(r"info: too many connections: client 127\.0\.0\.1:\d+ on "
                               r"127\.0\.0\.1:%d" % int(s.addr("http").rsplit(":", 1)[1]),
                               s.log()), 10, "the enforcement log line")
    # The connections held are served as before.
    for c in held:
        c.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        head = recv_exact(c, 17)
        assert head == b"HTTP/1.1 200 OK\r\n"
        c.close()


def test_http_client_library_reads_the_503(stampd):
    s = stampd("--max-conns", "1", "--http", "127.0.0.1:0")
    held = s.connect("http")
    wait_for(lambda: s.stat("connections_active") == 1, 10, "one connection held")
    host, port = s.addr("http").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 503
    assert resp.getheader("Connection") == "close"
    assert resp.read() == b"too many connections\n"
    conn.close()
    held.close()


def test_line_listener_refusal_unchanged(stampd):
    s = stampd("--max-conns", "1")
    held = s.connect()
    wait_for(lambda: s.stat("connections_active") == 1, 10, "one connection held")
    assert recv_all(s.connect()) == b"ERR too many connections\n"
    held.close()
