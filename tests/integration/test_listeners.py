"""Listener address forms of section 1: IPv4, IPv6 ([::1], and [::] bound
IPv6-only), Unix stream sockets (stale file replaced, file removed at exit),
repeated --listen."""
import os
import socket
import stat

import pytest

from conftest import (SLOW, converse, parse_addr, recv_all, run_stampd,
                      split_stamp, wait_for)


def echo_once(s, kind="line", i=0, payload=b"ping"):
    c = s.connect(kind, i)
    data = converse(c, payload + b"\n")
    c.close()
    return data


def test_ipv6_loopback(stampd):
    s = stampd("--reply", "echo", listen=["[::1]:0"], workers=2)
    assert s.addr().startswith("[::1]:")
    for i in range(10):
        assert echo_once(s, payload=b"six %d" % i) == b"six %d\n" % i


def test_ipv6_any_is_v6_only(stampd):
    s = stampd("--reply", "echo", listen=["[::]:0"])
    port = s.port
    c = socket.create_connection(("::1", port), timeout=5 * SLOW)
    assert converse(c, b"v6\n") == b"v6\n"
    c.close()
    # IPV6_V6ONLY: the same port over IPv4 is not this server.
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.settimeout(5 * SLOW)
    with pytest.raises(ConnectionRefusedError):
        v4.connect(("127.0.0.1", port))
    v4.close()


def test_ipv4_and_ipv6_side_by_side_on_one_port(stampd):
    """Because [::] is IPv6-only, an IPv4 listener can take the same port."""
    for attempt in range(5):
        # A port free on both families (others may take it before stampd
        # binds it: then try another).
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        probe.bind(("::", 0))
        port = probe.getsockname()[1]
        probe4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe4.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            probe4.close()
            probe.close()
        s = stampd("--reply", "echo", ready=False,
                   listen=["[::]:%d" % port, "127.0.0.1:%d" % port], workers=2)
        try:
            s.wait_ready()
            break
        except AssertionError:
            if "address already in use" not in s.log():
                raise
            s.expect_exit = 1
    else:
        pytest.fail("no port free on both families")
    assert s.addrs["line"] == ["[::]:%d" % port, "127.0.0.1:%d" % port]
    assert echo_once(s, i=0, payload=b"a") == b"a\n"
    assert echo_once(s, i=1, payload=b"b") == b"b\n"


def test_unix_socket_serves_and_is_removed_at_exit(stampd, tmp_path):
    path = str(tmp_path / "stampd.sock")
    s = stampd(listen=["unix:" + path], workers=2)
    assert s.addr() == "unix:" + path
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    for i in range(20):
        data = echo_once(s, payload=b"unix %d" % i)
        assert split_stamp(data)[1] == b"unix %d\n" % i
    assert s.stop() == 0
    assert not os.path.exists(path)


def test_unix_stale_socket_file_is_replaced(stampd, tmp_path):
    path = str(tmp_path / "stale.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()                     # the file stays: nobody listens on it
    assert os.path.exists(path)
    s = stampd("--reply", "echo", listen=["unix:" + path])
    assert echo_once(s, payload=b"fresh") == b"fresh\n"
    assert s.stop() == 0
    assert not os.path.exists(path)


def test_unix_live_socket_is_not_taken_over(stampd, tmp_path):
    path = str(tmp_path / "live.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(4)
    try:
        r = run_stampd("--workers", "1", "--admin", "off", "--listen", "unix:" + path)
        assert r.returncode == 1
        assert "address already in use: unix:%s" % path in r.stderr.decode()
        assert os.path.exists(path), "the live socket file was removed"
    finally:
        live.close()


def test_unix_path_that_is_not_a_socket(tmp_path):
    path = str(tmp_path / "plain")
    with open(path, "w") as f:
        f.write("keep me")
    r = run_stampd("--workers", "1", "--admin", "off", "--listen", "unix:" + path)
    assert r.returncode == 1
    assert "not a socket" in r.stderr.decode()
    with open(path) as f:
        assert f.read() == "keep me"


def test_unix_socket_limits_and_half_close(stampd, tmp_path):
    """The line rules hold on a Unix socket too (no TCP options there)."""
    path = str(tmp_path / "l.sock")
    s = stampd("--reply", "echo", "--max-line", "8", listen=["unix:" + path])
    c = s.connect()
    assert converse(c, b"ok\r\nfrag") == b"ok\r\nfrag\n"
    c.close()
    c = s.connect()
    assert converse(c, b"fine\n" + b"x" * 20 + b"\nlost\n") == \
        b"fine\nERR line too long\n"
    c.close()


def test_repeated_listen_all_served(stampd, tmp_path):
    path = str(tmp_path / "m.sock")
    s = stampd("--reply", "upper",
               listen=["127.0.0.1:0", "[::1]:0", "unix:" + path], workers=2)
    assert len(s.addrs["line"]) == 3
    for i in range(3):
        assert echo_once(s, i=i, payload=b"via %d" % i) == b"VIA %d\n" % i
    assert s.stop() == 0
    assert not os.path.exists(path)
