"""Operator mode (--reply operator, --listen ADDR,operator): client lines
are held for the person at `stampctl chat`, who answers "ID text" or
"text" (the oldest waiting line); the refusals of the chat channel (404,
426, 403, 409); the limits (--operator-queue, --max-output) and the
timeout (--line-timeout -> "ERR no operator", the connection stays open).

A console sees the connections opened after it attached ("+ #ID connected
from ADDR"): each test waits for that event before a client sends, so
that the worker is known to hold lines for the console."""
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

import conftest
from conftest import (SLOW, STAMPD, STAMP_PREFIX_RE, Term, recv_exact,
                      run_stampd, wait_for)
from test_lifecycle import read_pid, subreaper, wait_exit  # noqa: F401 (a fixture)

STAMPCTL = os.path.join(os.path.dirname(STAMPD), "stampctl")
PROMPT = rb"chat> "
BANNER = rb"\* operator console of stampd \(pid \d+, \d+ workers?\)"
UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: stampd\r\nUpgrade: stampd-chat\r\n"
           b"Connection: Upgrade\r\n%s\r\n")


def chat(s, *args, env=None):
    """`stampctl chat` on a terminal, attached (banner and prompt seen)."""
    t = Term([STAMPCTL, "--admin", s.admin, "chat"] + list(args), env=env)
    t.expect(BANNER)
    t.prompt(pattern=PROMPT)
    return t


def connected(t, c):
    """The id the console gave client socket c."""
    port = c.getsockname()[1]
    m = t.seen(rb"\+ #(\d+) connected from 127\.0\.0\.1:%d\r?\n" % port)
    return int(m.group(1))


def client(s, t, i=0):
    """A client of listener i and its id, once the console has seen it."""
    c = s.connect(i=i)
    return c, connected(t, c)


def line_seen(t, cid, text):
    t.seen(rb"\[#%d 127\.0\.0\.1:\d+\] %s\r?\n" % (cid, re.escape(text)))


def stamped(c, text, term=b"\n"):
    """One reply "[ctime] text" + term on c."""
    want = len("[Thu Sep 15 22:29:12 2016] ") + len(text) + len(term)
    got = recv_exact(c, want)
    assert STAMP_PREFIX_RE.match(got), got
    assert got[27:] == text + term, got


def raw_attach(s, headers=b""):
    """(socket, first bytes) of a chat attach on the admin port."""
    fam, sa = conftest.parse_addr(s.admin)
    a = socket.socket(fam, socket.SOCK_STREAM)
    a.settimeout(10 * SLOW)
    a.connect(sa)
    a.sendall(UPGRADE % headers)
    return a


def read_until(sock, pattern, timeout=10):
    """Bytes read from sock until pattern matches them."""
    buf = b""
    rx = re.compile(pattern)
    sock.settimeout(timeout * SLOW)
    while not rx.search(buf):
        chunk = sock.recv(4096)
        assert chunk, "EOF before %r in %r" % (pattern, buf)
        buf += chunk
    return buf


def raw_console(s):
    a = raw_attach(s)
    head = read_until(a, BANNER + rb".*\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
    return a


def test_chat_session_with_several_clients(stampd):
    s = stampd("--reply", "operator", workers=2)
    t = chat(s)
    try:
        clients = [s.connect() for _ in range(3)]
        ids = [connected(t, c) for c in clients]
        assert len(set(ids)) == 3
        # One at a time, so that "oldest" is well defined.
        sends = [(0, b"hello 0\n"), (1, b"hello 1\n"), (0, b"again 0\n"),
                 (2, b"hello 2\r\n")]
        for i, data in sends:
            clients[i].sendall(data)
            line_seen(t, ids[i], data.rstrip(b"\r\n"))
        t.send(b"%d to one\r" % ids[1])            # addressed
        stamped(clients[1], b"to one")
        t.send(b"to zero\r")                       # the oldest line of all
        stamped(clients[0], b"to zero")
        t.send(b"#%d second for zero\r" % ids[0])  # 0's next line, in order
        stamped(clients[0], b"second for zero")
        t.send(b". 42 is a number\r")              # "." answers the oldest
        stamped(clients[2], b"42 is a number", b"\r\n")
        t.send(b"%d nobody waits\r" % ids[2])
        t.seen(rb"\? #%d has no waiting line" % ids[2])
        t.send(b"stray\r")
        t.seen(rb"\? no line is waiting")
        clients[1].close()
        t.seen(rb"- #%d closed" % ids[1])
        t.prompt(pattern=PROMPT)
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    # Nothing else reached the clients that are still open.
    for c in (clients[0], clients[2]):
        c.settimeout(0.2)
        with pytest.raises(socket.timeout):
            c.recv(1)
        c.close()


def test_terminal_escapes_client_bytes_and_a_pipe_passes_them(stampd):
    s = stampd("--reply", "operator", workers=1)
    t = chat(s)
    try:
        c, cid = client(s, t)
        c.sendall(b"red \x1b[31mtext\n")
        t.seen(rb"\[#%d 127\.0\.0\.1:\d+\] red \\x1b\[31mtext" % cid)
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    assert recv_exact(c, 16) == b"ERR no operator\n"   # the detach
    # In a pipe: events as received, every stdin line sent, and the end
    # of stdin detaches.
    p = subprocess.Popen([STAMPCTL, "--admin", s.admin, "chat"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out = b""
        while b"\n" not in out:
            out += p.stdout.read1(4096)
        assert re.match(BANNER, out), out
        c.sendall(b"blue \x1b[34mtext\n")
        while b"text\n" not in out:
            out += p.stdout.read1(4096)
        assert re.search(rb"\[#%d 127\.0\.0\.1:\d+\] blue \x1b\[34mtext\n" % cid, out)
        rest, _ = p.communicate(b"piped answer\n", timeout=10 * SLOW)
        assert p.returncode == 0, out + rest
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    stamped(c, b"piped answer")
    c.close()


def test_line_timeout_answers_err_no_operator_and_keeps_the_connection(stampd):
    s = stampd("--reply", "operator", "--line-timeout", "1", workers=1)
    t = chat(s)
    try:
        c, cid = client(s, t)
        c.sendall(b"anyone?\n")
        line_seen(t, cid, b"anyone?")
        assert recv_exact(c, 16) == b"ERR no operator\n"
        t.seen(rb'! #%d timed out: sent "ERR no operator"' % cid)
        c.sendall(b"still here\n")     # the connection stays open
        line_seen(t, cid, b"still here")
        t.send(b"yes\r")
        stamped(c, b"yes")
        c.close()
    finally:
        t.close()


def test_no_console_answers_at_once_and_greeting_comes_first(stampd):
    s = stampd("--reply", "operator", "--greeting", "hello world", workers=1)
    c = s.connect()
    assert recv_exact(c, 12) == b"hello world\n"
    c.sendall(b"one\ntwo\n")
    assert recv_exact(c, 32) == b"ERR no operator\n" * 2
    c.sendall(b"three\n")              # still open
    assert recv_exact(c, 16) == b"ERR no operator\n"
    c.close()


def test_detach_answers_held_lines_and_eof_waits_for_answers(stampd):
    s = stampd("--reply", "operator", workers=1)
    a = raw_console(s)
    c, d = s.connect(), s.connect()
    buf = read_until(a, rb"connected from 127\.0\.0\.1:%d\n" % d.getsockname()[1])
    cid = int(re.search(rb"#(\d+) connected from 127\.0\.0\.1:%d\n"
                        % c.getsockname()[1], buf).group(1))
    c.sendall(b"first\nsecond\n")
    d.sendall(b"last words")
    d.shutdown(socket.SHUT_WR)         # a final fragment: a line ending in LF
    read_until(a, rb"(?s)(?=.*\] last words\n)(?=.*\] second\n)")
    a.sendall(b"#%d one\n" % cid)
    stamped(c, b"one")
    a.close()                          # detach: the rest is answered now
    assert recv_exact(c, 16) == b"ERR no operator\n"
    assert recv_exact(d, 16) == b"ERR no operator\n"
    d.settimeout(10 * SLOW)
    assert d.recv(1) == b""            # then d's half-close completes
    c.sendall(b"after\n")
    assert recv_exact(c, 16) == b"ERR no operator\n"
    c.close()
    d.close()


def test_queue_limit_refuses_in_order(stampd):
    s = stampd("--reply", "operator", "--operator-queue", "2", workers=1)
    t = chat(s)
    try:
        a, b, c = s.connect(), s.connect(), s.connect()
        ia, ib, ic = connected(t, a), connected(t, b), connected(t, c)
        a.sendall(b"a1\n")
        line_seen(t, ia, b"a1")
        b.sendall(b"b1\n")
        line_seen(t, ib, b"b1")
        # The queue holds 2 lines: b's next line is refused after b1's
        # answer; c holds nothing, so its refusal comes at once.
        b.sendall(b"b2\n")
        t.seen(rb'! #%d queue full: sent "ERR operator queue full"' % ib)
        c.sendall(b"c1\n")
        assert recv_exact(c, 24) == b"ERR operator queue full\n"
        t.seen(rb'! #%d queue full' % ic)
        b.settimeout(0.2)
        with pytest.raises(socket.timeout):
            b.recv(1)
        t.send(b"%d hi b\r" % ib)
        stamped(b, b"hi b")
        assert recv_exact(b, 24) == b"ERR operator queue full\n"
        t.send(b"hi a\r")
        stamped(a, b"hi a")
        c.sendall(b"c2\n")                 # room again
        line_seen(t, ic, b"c2")
        for x in (a, b, c):
            x.close()
    finally:
        t.close()
    assert "operator queue full (2 lines held, --operator-queue 2)" in s.log()


def test_max_output_bounds_held_lines_per_connection(stampd):
    # 11-byte lines against a 16-byte bound: the second line crosses it
    # and reading stops until the held lines are answered.
    s = stampd("--reply", "operator", "--max-output", "16", workers=1)
    t = chat(s)
    try:
        c, cid = client(s, t)
        c.sendall(b"line-0001\r\nline-0002\r\nline-0003\r\n")
        line_seen(t, cid, b"line-0002")
        t.send(b"r1\r")
        stamped(c, b"r1", b"\r\n")
        assert b"line-0003" not in t.buf   # still in the kernel
        t.send(b"r2\r")
        stamped(c, b"r2", b"\r\n")
        line_seen(t, cid, b"line-0003")    # read again below half
        t.send(b"r3\r")
        stamped(c, b"r3", b"\r\n")
        c.close()
    finally:
        t.close()


def test_operator_listener_beside_a_stamp_listener_and_proxy_source(stampd):
    s = stampd("--proxy-from", "127.0.0.1/32", workers=1,
               listen=["127.0.0.1:0", "127.0.0.1:0,proxy,operator"])
    plain = s.connect()
    plain.sendall(b"auto\n")
    stamped(plain, b"auto")
    t = chat(s)
    try:
        c = s.connect(i=1)
        c.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 8009\r\nhi\n")
        m = t.seen(rb"\+ #(\d+) connected from 203\.0\.113\.7:5555")
        t.seen(rb"\[#%s 203\.0\.113\.7:5555\] hi" % m.group(1))
        t.send(b"hello proxied\r")
        stamped(c, b"hello proxied")
        c.close()
        plain.close()
    finally:
        t.close()


def test_iso_time_format_and_chunk_framing(stampd):
    s = stampd("--time-format", "iso8601", workers=1,
               listen=["127.0.0.1:0,chunk,operator"])
    t = chat(s)
    try:
        c, cid = client(s, t)
        c.sendall(b"typed text")
        line_seen(t, cid, b"typed text")
        t.send(b"answer\r")
        got = recv_exact(c, 27 + 6)
        assert re.fullmatch(rb"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] answer", got), got
        c.close()
    finally:
        t.close()


def test_worker_restart_tells_the_console(stampd):
    s = stampd("--reply", "operator", workers=1)
    t = chat(s)
    try:
        c, cid = client(s, t)
        c.sendall(b"doomed\n")
        line_seen(t, cid, b"doomed")
        s.kill_worker(s.worker_pids()[0])
        t.seen(rb"! worker 0 stopped: its connections are gone")
        t.send(b"late\r")
        t.seen(rb"\? no line is waiting")
        # The replacement holds lines for the console, with a new id.
        wait_for(lambda: all(w["pid"] for w in s.stats()["workers"]), 10,
                 "the replacement worker")
        d = s.connect()
        did = connected(t, d)
        assert did != cid
        d.sendall(b"fresh\n")
        line_seen(t, did, b"fresh")
        t.send(b"welcome\r")
        stamped(d, b"welcome")
        d.close()
        c.close()
    finally:
        t.close()


def test_reload_detaches_the_console_and_the_new_master_serves_one(
        stampd, tmp_path, subreaper):
    pidf = str(tmp_path / "stampd.pid")
    s = stampd("--reply", "operator", "--pid-file", pidf, workers=1)
    a = raw_console(s)
    c = s.connect()
    read_until(a, rb"connected from 127\.0\.0\.1:%d\n" % c.getsockname()[1])
    c.sendall(b"before the reload\n")
    read_until(a, rb"\] before the reload\n")
    s.send_signal(signal.SIGHUP)
    # The old master hands over: it closes its console, and its draining
    # worker answers what it held.
    assert recv_exact(c, 16) == b"ERR no operator\n"
    a.settimeout(20 * SLOW)
    while a.recv(4096):
        pass
    assert s.proc.wait(timeout=20 * SLOW) == 0
    new = read_pid(pidf)
    assert new and new != s.pid
    try:
        a = raw_console(s)      # the same admin socket, the new master
        d = s.connect()
        read_until(a, rb"connected from 127\.0\.0\.1:%d\n" % d.getsockname()[1])
        d.sendall(b"after\n")
        read_until(a, rb"\] after\n")
        a.sendall(b"welcome back\n")
        stamped(d, b"welcome back")
        d.close()
        a.close()
        c.close()
    finally:
        os.kill(new, signal.SIGTERM)
        assert wait_exit(new) == 0


# --- the chat channel's refusals --------------------------------------------

def http_status(sock):
    head = read_until(sock, rb"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head


def test_no_operator_listener_is_404_and_no_upgrade_is_426(stampd):
    s = stampd(workers=1)
    a = raw_attach(s)
    assert http_status(a)[0] == 404
    a.close()
    s2 = stampd("--reply", "operator", workers=1)
    st, _ = s2.admin_get("/chat")
    assert st == 426


def test_second_console_gets_409_naming_the_holder(stampd, tmp_path):
    sock = str(tmp_path / "admin.sock")
    # The fixture's readiness check reads /stats over TCP: wait for the
    # master's "ready" line instead.
    s = stampd("--reply", "operator", workers=1, admin="unix:" + sock, ready=False)
    wait_for(lambda: "ready: 1 worker serving" in s.log(), 10, "ready")
    s.admin = "unix:" + sock
    t = chat(s)
    try:
        r = subprocess.run([STAMPCTL, "--admin", "unix:" + sock, "chat"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10 * SLOW)
        assert r.returncode == 1
        assert re.search(rb"chat refused by unix:.*: HTTP 409: the console is held "
                         rb"by pid %d \(uid \d+\) since \d{4}-" % t.proc.pid,
                         r.stderr), r.stderr
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    # Once it detached, the next console attaches.
    t = chat(s)
    t.send(b"\x04")
    assert t.wait() == 0
    t.close()


def test_admin_token_is_required_when_set_and_never_shown(stampd):
    s = stampd("--reply", "operator", "--admin-token", "s3cret-token", workers=1)
    r = subprocess.run([STAMPCTL, "--admin", s.admin, "chat"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10 * SLOW, env=dict(os.environ, STAMPCTL_TOKEN=""))
    assert r.returncode == 1 and b"HTTP 403: the chat channel needs the admin token" \
        in r.stderr, r.stderr
    r = subprocess.run([STAMPCTL, "--admin", s.admin, "chat", "--token", "wrong"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10 * SLOW)
    assert r.returncode == 1 and b"HTTP 403: wrong admin token" in r.stderr, r.stderr
    t = chat(s, env={"STAMPCTL_TOKEN": "s3cret-token"})
    t.send(b"\x04")
    assert t.wait() == 0
    t.close()
    assert s.stats()["config"]["admin_token"] == "(set)"
    assert "s3cret-token" not in s.log()


def test_options_that_cannot_serve_an_operator_exit_2():
    for args, msg in (
            (["--reply", "operator", "--http", "127.0.0.1:0"], b"line listeners only"),
            (["--reply", "operator", "--admin", "off"], b"needs the admin port"),
            (["--listen", "127.0.0.1:0,operator", "--admin", "off"],
             b"needs the admin port"),
            (["--http", "127.0.0.1:0,operator"], b"does not take ',operator'")):
        r = run_stampd(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert msg in r.stderr, (args, r.stderr)


NS = "stampd-op-%d" % os.getpid()
HOST_IF, NS_IF = "soA%d" % (os.getpid() % 10000), "soB%d" % (os.getpid() % 10000)
HOST_IP, NS_IP = ("10.215.%d.1" % (os.getpid() % 250),
                  "10.215.%d.2" % (os.getpid() % 250))


@pytest.fixture
def veth_ns(monkeypatch, tmp_path):
    """stampd in a network namespace of its own, reached over a veth pair:
    its admin address is not a loopback one."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and ip(8) for a network namespace")
    with conftest.netns_veth(monkeypatch, tmp_path, NS, HOST_IF, NS_IF, HOST_IP,
                             NS_IP):
        yield


def test_non_loopback_admin_is_403_unless_the_token_is_presented(stampd, veth_ns):
    s = stampd("--reply", "operator", listen=[NS_IP + ":0"], admin=NS_IP + ":0",
               workers=1)
    r = subprocess.run([STAMPCTL, "--admin", s.admin, "chat"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10 * SLOW, env=dict(os.environ, STAMPCTL_TOKEN=""))
    assert r.returncode == 1
    assert b"HTTP 403: the chat channel is served only on a unix or loopback " \
        b"admin address" in r.stderr, r.stderr
    s.stop()
    s = stampd("--reply", "operator", "--admin-token", "tok-123", listen=[NS_IP + ":0"],
               admin=NS_IP + ":0", workers=1)
    t = chat(s, "--token", "tok-123")
    try:
        c = s.connect()
        cid = int(t.seen(rb"\+ #(\d+) connected from %s:%d" % (
            HOST_IP.encode(), c.getsockname()[1])).group(1))
        c.sendall(b"over the veth\n")
        t.seen(rb"\[#%d %s:\d+\] over the veth" % (cid, HOST_IP.encode()))
        t.send(b"received\r")
        stamped(c, b"received")
        c.close()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
