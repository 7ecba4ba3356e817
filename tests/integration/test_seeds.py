"""Every seed server of docs/seeds.md, as the stampd command line its table
gives, driven by a client that behaves as the seed's client does: text with
no terminator, one send, one recv, over the families the table lists.

The command lines are read from docs/seeds.md itself, so the table and the
tests cannot drift apart; port 8009 becomes a free port and
/tmp/stampd.sock a temporary path."""
import os
import re
import shlex
import socket
import time

import pytest

from conftest import (ROOT, SLOW, STAMP_PREFIX_RE, STAMPD, Term, parse_addr,
                      recv_all, wait_for)

DOC = os.path.join(ROOT, "docs", "seeds.md")


def table():
    """{seed name: command line} from the seeds table."""
    with open(DOC) as f:
        text = f.read()
    body = text.split("<!-- seeds-table", 1)[1].split("<!-- /seeds-table -->", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("tutorial server", "---"):
            continue
        m = re.fullmatch(r"`(stampd .*)`", cells[2])
        rows[cells[0].replace("`", "")] = m.group(1) if m else None
    return rows


def args_of(name, tmp_path):
    cmd = table()[name]
    assert cmd, "%s has no command line in docs/seeds.md" % name
    cmd = cmd.replace(":8009", ":0").replace("/tmp/stampd.sock", str(tmp_path / "s.sock"))
    argv = shlex.split(cmd)
    assert argv[0] == "stampd"
    return argv[1:]


def start(stampd, name, tmp_path):
    # listen=[]: the table's own --listen options are the only listeners;
    # workers=None: its --workers, or the default.
    return stampd(*args_of(name, tmp_path), listen=[], workers=None)


def seed_connect(addr):
    fam, sa = parse_addr(addr)
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(10 * SLOW)
    c.connect(sa)
    return c


def seed_exchange(c, text):
    """The seed client: sock.send(bytes(input('>>> '), 'utf-8')), then one
    recv (the tutorial's buffer size)."""
    c.send(text.encode("utf-8"))
    return c.recv(1024)


def assert_stamped(reply, text):
    m = STAMP_PREFIX_RE.match(reply)
    assert m, reply
    assert reply[m.end():] == text.encode("utf-8"), reply


def test_table_lists_every_seed():
    assert set(table()) == {
        "timestamp server", "threaded timestamp server", "hello-world server",
        "chat server", "OK server with a 10 s timeout", "uppercase server",
        "TCP print server", "UDP print server"}


def test_timestamp_server(stampd, tmp_path):
    s = start(stampd, "timestamp server", tmp_path)
    addrs = s.addrs["line"]
    assert [parse_addr(a)[0] for a in addrs] == [socket.AF_INET, socket.AF_INET6,
                                                  socket.AF_UNIX], addrs
    for addr in addrs:
        c = seed_connect(addr)
        for text in ("hello python", "ünïcode text", "x"):
            assert_stamped(seed_exchange(c, text), text)
        c.close()
    wait_for(lambda: s.stat("requests_total", "line") == 9, 10, "9 requests")


def test_threaded_timestamp_server(stampd, tmp_path):
    s = start(stampd, "threaded timestamp server", tmp_path)
    assert s.nworkers == 2
    clients = [seed_connect(s.addr("line")) for _ in range(20)]
    for round_ in range(3):
        for i, c in enumerate(clients):
            text = "client %d round %d" % (i, round_)
            assert_stamped(seed_exchange(c, text), text)
    for c in clients:
        c.close()
    wait_for(lambda: s.stat("requests_total", "line") == 60, 10, "60 requests")


def test_hello_world_server(stampd, tmp_path):
    s = start(stampd, "hello-world server", tmp_path)
    c = seed_connect(s.addr("line"))
    assert c.recv(1024) == b"hello world\n"
    # After the greeting it is a timestamp server.
    assert_stamped(seed_exchange(c, "and now?"), "and now?")


def test_chat_server(stampd, tmp_path):
    """The person at the server answers with `stampctl chat` (on a
    terminal, as that person would use it); the client sends typed text
    and waits for one reply per send."""
    s = start(stampd, "chat server", tmp_path)
    ctl = os.path.join(os.path.dirname(STAMPD), "stampctl")
    t = Term([ctl, "--admin", s.admin, "chat"])
    try:
        t.prompt(pattern=rb"chat> ")
        c = seed_connect(s.addr("line"))
        port = c.getsockname()[1]
        cid = t.seen(rb"\+ #(\d+) connected from 127\.0\.0\.1:%d" % port).group(1)
        for text, answer in (("hello server", b"hello client"),
                             ("how are you?", b"fine, thanks")):
            c.send(text.encode("utf-8"))
            t.seen(rb"\[#%s 127\.0\.0\.1:%d\] %s" % (cid, port,
                                                      re.escape(text.encode())))
            t.send(answer + b"\r")
            assert_stamped(c.recv(1024), answer.decode())
        c.close()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()


def test_ok_server_with_timeout(stampd, tmp_path):
    s = start(stampd, "OK server with a 10 s timeout", tmp_path)
    c = seed_connect(s.addr("line"))
    for text in ("one", "two words", "three"):
        assert seed_exchange(c, text) == b"OK"
    # Silent from now on: closed after 10 s (not before 9), with no bytes.
    t0 = time.monotonic()
    assert recv_all(c, timeout=20) == b""
    waited = time.monotonic() - t0
    assert 9 <= waited <= 15 * SLOW, waited
    wait_for(lambda: s.stat("enforcements_total", "idle_timeout") == 1, 10, "the idle timeout count")


def test_uppercase_server(stampd, tmp_path):
    s = start(stampd, "uppercase server", tmp_path)
    c = seed_connect(s.addr("line"))
    assert seed_exchange(c, "Hello, World") == b"HELLO, WORLD"
    assert seed_exchange(c, "already UPPER 123") == b"ALREADY UPPER 123"


def test_tcp_print_server(stampd, tmp_path):
    s = start(stampd, "TCP print server", tmp_path)
    c = seed_connect(s.addr("line"))
    port = c.getsockname()[1]
    texts = ["first message", 'with "quotes" and \\', "last"]
    for i, text in enumerate(texts):
        c.send(text.encode())
        # The client expects no reply: wait for the request to be counted
        # before the next send, as a person typing would.
        wait_for(lambda: s.stat("requests_total", "line") == i + 1, 10, "request %d" % (i + 1))
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c) == b""  # nothing was ever sent back
    log = s.log()
    on = "on %s,chunk" % s.addr("line")
    assert 'request from 127.0.0.1:%d %s: "first message"' % (port, on) in log
    assert 'request from 127.0.0.1:%d %s: "with \\"quotes\\" and \\\\"' % (port, on) in log
    assert 'request from 127.0.0.1:%d %s: "last"' % (port, on) in log


def test_udp_print_server(stampd, tmp_path):
    s = start(stampd, "UDP print server", tmp_path)
    assert len(s.addrs["udp"]) == 2
    sent = 0
    for addr in s.addrs["udp"]:
        fam, sa = parse_addr(addr)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        u.bind(("127.0.0.1", 0) if fam == socket.AF_INET else ("::1", 0))
        for text in ("datagram one", "datagram two"):
            u.sendto(text.encode(), sa)
            sent += 1
            wait_for(lambda: s.stat("requests_total", "udp") == sent, 10, "datagram %d" % sent)
            pat = 'request from %s on %s: "%s"' % (
                ("127.0.0.1:%d" if fam == socket.AF_INET else "[::1]:%d") % u.getsockname()[1],
                addr, text)
            wait_for(lambda: pat in s.log(), 10, pat)
        # No datagram ever comes back: the counter already says the request
        # was handled, so anything sent would be queued by now.
        with pytest.raises(socket.timeout):
            u.recv(100)
        u.close()
    assert s.stat("udp_drops_total") == 0
