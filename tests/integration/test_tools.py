"""The operator tools against a real server: stampcli through a pty and
through a pipe, stampctl stats / health / top / --json / metrics."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

from conftest import SLOW, STAMPD, STAMP_PREFIX_RE, wait_for
from test_admin import stuck_client

BIN = os.path.dirname(STAMPD)
STAMPCTL = os.path.join(BIN, "stampctl")
STAMPCLI = os.path.join(BIN, "stampcli")


def run(argv, input=None, timeout=20):
    return subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW)


class Pty:
    """A child on a pseudo-terminal; read until a pattern, bounded in time."""

    def __init__(self, argv):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        self.buf = b""

    def expect(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while not rx.search(self.buf):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in %r" % (pattern, self.buf))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError("EOF before %r in %r" % (pattern, self.buf))
                self.buf += chunk
        m = rx.search(self.buf)
        self.buf = self.buf[m.end():]
        return m

    def send(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self.fd)
                raise AssertionError("child did not exit")
            # Drain the terminal so the child never blocks writing to it.
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:
                    pass


def test_stampcli_tty(stampd):
    s = stampd(workers=1)
    t = Pty([STAMPCLI, s.addr()])
    t.expect(rb">>> ")
    t.send(b"hello python\n")
    # The terminal echoes the typed line, then the reply follows.
    m = t.expect(rb"(\[[^\]\r\n]{24}\] hello python)\r?\n")
    assert STAMP_PREFIX_RE.match(m.group(1))
    t.expect(rb">>> ")
    t.send(b"\n")          # an empty line quits
    assert t.wait() == 0
    assert wait_for(lambda: s.stats()["totals"]["requests_line"] == 1, 5, "one request")


def test_stampcli_pipe_prints_exactly_the_replies(stampd):
    s = stampd(workers=1)
    r = run([STAMPCLI, s.addr()], input=b"a\nb\n")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split(b"\n")
    assert len(lines) == 3 and lines[2] == b""
    assert [STAMP_PREFIX_RE.sub(b"", l) for l in lines[:2]] == [b"a", b"b"]
    assert all(STAMP_PREFIX_RE.match(l) for l in lines[:2])
    assert r.stderr == b""
    # An empty line stops before the rest; a missing final LF still counts.
    r = run([STAMPCLI, s.addr()], input=b"x\n\ny\n")
    assert r.returncode == 0 and r.stdout.count(b"\n") == 1
    r = run([STAMPCLI, s.addr()], input=b"no newline")
    assert r.returncode == 0 and r.stdout.endswith(b"] no newline\n")


def test_stampcli_unix_and_errors(stampd, tmp_path):
    path = str(tmp_path / "s.sock")
    stampd("--max-line", "16", workers=1, listen=["unix:" + path])
    r = run([STAMPCLI, "unix:" + path], input=b"over unix\n")
    assert r.returncode == 0 and r.stdout.endswith(b"] over unix\n")
    # The server's ERR line is shown and the closed connection is an error.
    r = run([STAMPCLI, "unix:" + path], input=b"x" * 40 + b"\nmore\n")
    assert r.returncode == 1
    assert r.stdout == b"ERR line too long\n"
    assert b"closed" in r.stderr
    r = run([STAMPCLI, "127.0.0.1:1"], input=b"a\n")
    assert r.returncode == 1 and b"cannot connect" in r.stderr
    assert run([STAMPCLI, "not an address"]).returncode == 2


def test_stampctl_stats_json_metrics(stampd):
    s = stampd(workers=2)
    r = run([STAMPCLI, s.addr()], input=b"one\ntwo\nthree\n")
    assert r.returncode == 0
    wait_for(lambda: s.stats()["totals"]["requests_line"] == 3, 5, "three requests")
    admin = ["--admin", s.admin]

    r = run([STAMPCTL] + admin + ["stats"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("stampd ") and "2/2 workers up  serving" in out
    assert re.search(r"^  requests +line=3 http=0 udp=0$", out, re.M)
    assert re.search(r"^  connections_accepted +1$", out, re.M)
    assert re.search(r"^  connections_closed +eof=1 reset=0 timeout=0 limit=0 "
                     r"protocol=0 shutdown=0 memory=0$", out, re.M)
    rows = re.findall(r"^ +(\d) +(\d+) +(\d+) +(\d+) ", out, re.M)
    assert sorted(int(w) for w, *_ in rows) == [0, 1]
    assert sum(int(req) for *_, req in rows) == 3
    assert sorted(int(p) for _, p, *_ in rows) == sorted(s.children())

    r = run([STAMPCTL] + admin + ["--json"])
    assert r.returncode == 0
    page = json.loads(r.stdout)
    assert page["totals"]["requests_line"] == 3 and len(page["workers"]) == 2

    r = run([STAMPCTL] + admin + ["metrics"])
    assert r.returncode == 0
    assert b"# TYPE stampd_request_duration_seconds histogram\n" in r.stdout


def test_stampctl_health(stampd):
    s = stampd("--shutdown-timeout", "20", "--max-output", "64k", workers=1)
    r = run([STAMPCTL, "--admin", s.admin, "health"])
    assert (r.returncode, r.stdout) == (0, b"200 ok\n")
    c = stuck_client(s)
    s.send_signal(signal.SIGTERM)

    def unhealthy():
        r = run([STAMPCTL, "--admin", s.admin, "health"])
        return r.returncode == 1 and r
    r = wait_for(unhealthy, 5, "health to fail")
    assert r.stdout == b"503 draining\n"
    c.close()
    assert s.wait() == 0
    # Nobody listening: exit 1 with a message.
    r = run([STAMPCTL, "--admin", s.admin, "health"])
    assert r.returncode == 1 and b"cannot connect" in r.stderr
    assert run([STAMPCTL, "--admin", "nonsense", "health"]).returncode == 2
    assert run([STAMPCTL, "frobnicate"]).returncode == 2


def test_stampctl_top(stampd):
    s = stampd(workers=2)
    # A steady load during the sampling: one client, one line at a time.
    feeder = subprocess.Popen([STAMPCLI, s.addr()], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    try:
        feeder.stdin.write(b"warm up\n")
        feeder.stdin.flush()
        wait_for(lambda: s.stats()["totals"]["requests_line"] >= 1, 5, "a request")
        top = subprocess.Popen([STAMPCTL, "--admin", s.admin, "top", "--count", "2",
                                "--interval", "0.5"], stdout=subprocess.PIPE)
        deadline = time.monotonic() + 5 * SLOW
        while top.poll() is None and time.monotonic() < deadline:
            feeder.stdin.write(b"tick\n" * 20)
            feeder.stdin.flush()
            time.sleep(0.02)
        out, _ = top.communicate(timeout=10 * SLOW)
        assert top.returncode == 0
    finally:
        feeder.stdin.close()
        feeder.wait(timeout=10)
    text = out.decode()
    assert "\033" not in text           # no escapes into a pipe
    screens = text.split("\n\n")
    assert len(screens) == 2
    for scr in screens:
        lines = scr.strip("\n").split("\n")
        assert lines[0].startswith("stampd ") and "2/2 workers up" in lines[0]
        assert lines[2].split() == ["worker", "pid", "conns", "req/s", "MB/s", "in",
                                    "MB/s", "out", "p50", "p99", "pauses", "errs"]
        assert [l.split()[0] for l in lines[3:]] == ["0", "1", "total"]
    # Somebody was served in the sampled intervals: a non-zero rate and a
    # latency figure on the total line of at least one screen.
    tot = [scr.strip("\n").split("\n")[-1].split() for scr in screens]
    assert any(float(t[2]) > 0 and re.match(r"[\d.]+(ns|us|ms|s)$", t[5]) for t in tot), text
