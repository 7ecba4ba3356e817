"""systemd integration without systemd as PID 1: the sd_notify datagrams
(READY, STATUS, RELOADING, STOPPING, WATCHDOG, MAINPID) received on a
NOTIFY_SOCKET the test binds, and socket activation through
systemd-socket-activate."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import SLOW, STAMPD, recv_lines, split_stamp, wait_for
from test_lifecycle import read_pid, subreaper, wait_exit  # noqa: F401

ACTIVATE = shutil.which("systemd-socket-activate") or "/lib/systemd/systemd-activate"


class Notify:
    """A fake systemd notification socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.msgs = []

    def drain(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return self.msgs

    def wait(self, pred, what, timeout=10):
        return wait_for(lambda: any(pred(m) for m in self.drain()), timeout, what)

    def index(self, pred, start=0):
        for i, m in enumerate(self.msgs[start:], start):
            if pred(m):
                return i
        raise AssertionError("no such message in %r" % self.msgs)


def test_notify_sequence_ready_status_reload_stopping_watchdog(stampd, tmp_path,
                                                               subreaper):
    n = Notify(str(tmp_path / "notify"))
    pidf = str(tmp_path / "stampd.pid")
    s = stampd("--pid-file", pidf, workers=2,
               env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
    n.wait(lambda m: m == "READY=1", "READY=1")
    n.wait(lambda m: m.startswith("STATUS="), "STATUS=")
    n.wait(lambda m: m == "WATCHDOG=1", "WATCHDOG=1")
    c = s.connect()
    c.sendall(b"a\nb\n")
    recv_lines(c, 2)
    # The status line counts connections and requests.
    n.wait(lambda m: re.fullmatch(r"STATUS=serving: 1 connections open, "
                                  r"2 requests answered", m), "a STATUS= with figures",
           timeout=12)
    c.close()
    # Reload: RELOADING=1 from the old master, then the new one names itself
    # the main process and is READY.
    s.send_signal(signal.SIGHUP)
    assert s.proc.wait(timeout=20 * SLOW) == 0
    new = read_pid(pidf)
    n.wait(lambda m: m == "MAINPID=%d\nREADY=1" % new, "MAINPID + READY=1")
    os.kill(new, signal.SIGTERM)
    assert wait_exit(new) == 0
    n.wait(lambda m: m == "STOPPING=1", "STOPPING=1")
    msgs = n.drain()
    ready = n.index(lambda m: m == "READY=1")
    status = n.index(lambda m: m.startswith("STATUS=serving"))
    wd = n.index(lambda m: m == "WATCHDOG=1")
    reloading = n.index(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="))
    mainpid = n.index(lambda m: m.startswith("MAINPID="))
    stopping = n.index(lambda m: m == "STOPPING=1")
    assert ready < status < reloading < mainpid < stopping, msgs
    assert wd < reloading
    # The old master handed over: it never said STOPPING.
    assert msgs.count("STOPPING=1") == 1
    # Watchdog pets every half period (200 ms) while serving.
    assert msgs.count("WATCHDOG=1") >= 3


def free_port():
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    t.close()
    return port


@pytest.mark.skipif(not os.path.exists(ACTIVATE), reason="no systemd-socket-activate")
def test_socket_activation_serves_the_sockets_given(tmp_path):
    line, http, admin = free_port(), free_port(), free_port()
    logp = tmp_path / "stampd.log"
    argv = [ACTIVATE, "-l", "127.0.0.1:%d" % line, "-l", "127.0.0.1:%d" % http,
            "-l", "127.0.0.1:%d" % admin, "--fdname=line:http:admin",
            STAMPD, "--workers", "2", "--listen", "127.0.0.1:1"]
    if os.geteuid() == 0:
        argv += ["--user", "root"]
    with open(logp, "wb") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL)
    try:
        # systemd-socket-activate starts the service on the first connection.
        c = wait_for(lambda: _connect(line), 10, "the activation socket")
        c.sendall(b"activated\n")
        assert split_stamp(recv_lines(c, 1)[0])[1] == b"activated\n"
        c.close()
        wait_for(lambda: "ready: 2 workers serving" in logp.read_text(), 10, "ready")
        text = logp.read_text()
        assert ("listening on line 127.0.0.1:%d, http 127.0.0.1:%d, admin "
                "127.0.0.1:%d with 2 workers" % (line, http, admin)) in text, text
        # --listen 127.0.0.1:1 was replaced by the sockets given.
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % admin,
                                    timeout=10) as r:
            assert b'"listen":["127.0.0.1:%d"]' % line in r.read()
        with urllib.request.urlopen("http://127.0.0.1:%d/" % http, timeout=10) as r:
            assert r.status == 200
        for i in range(20):  # both workers share the one socket
            c = _connect(line)
            c.sendall(b"x%d\n" % i)
            assert split_stamp(recv_lines(c, 1)[0])[1] == b"x%d\n" % i
            c.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20 * SLOW) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert " error: " not in logp.read_text()


def _connect(port):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except ConnectionRefusedError:
        return None
