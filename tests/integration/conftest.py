"""
The integration harness: start the real stampd binary on free loopback
ports, talk to it over real sockets, stop it by PID, and fail the test on any
sanitizer report or unexpected error line in its log (as nginx-tests do), on
an exit status other than the one the test declared (0 by default), and on
any worker death the master logged that the test did not cause on purpose.

Every wait here is bounded and polls a readiness condition (a log line, a
socket, a process state); nothing sleeps to synchronise.
"""
import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAMPD = os.environ.get("STAMPD_BIN", os.path.join(ROOT, "build", "stampd"))
SANITIZED = os.environ.get("STAMPD_SANITIZED") == "1"
# Sanitized binaries are several times slower: scale waits, not assertions.
SLOW = 4.0 if SANITIZED else 1.0

DAYS = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
MONTHS = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
CTIME_RE = DAYS + rb" " + MONTHS + rb" [ 123]\d \d\d:\d\d:\d\d \d{4}"
ISO_RE = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
STAMP_PREFIX_RE = re.compile(rb"\[" + CTIME_RE + rb"\] ")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ERROR: ", "Segmentation fault")

# How the master logs a worker's end (src/master.c describe_exit()):
# "worker 0 (pid 123) exited with status 1[; respawning...]",
# "... killed by signal 9 (Killed)...", "... stopped (status 0x..)".
WORKER_DEATH_RE = re.compile(r"worker (\d+) \(pid (\d+)\) "
                             r"(exited with status \d+|killed by signal \d+|stopped)")

LISTEN_RE = re.compile(r"listening on (.*) with (\d+) workers? \((\w+)\)")


def root_user_args(args):
    """Started as root, stampd runs its workers only as the user it is
    told (--user); the tests run as root and keep that user explicitly."""
    if os.geteuid() == 0 and not any(str(a).startswith("--user") for a in args):
        return ["--user", "root"]
    return []


def wait_for(pred, timeout, what, interval=0.005):
    """Poll pred() until it is truthy or timeout (scaled by SLOW) passes."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def parse_addr(text):
    """'127.0.0.1:8009' / '[::1]:8009' / 'unix:/p' -> (family, sockaddr)."""
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[5:]
    if text.startswith("["):
        host, port = text[1:].rsplit("]:", 1)
        return socket.AF_INET6, (host, int(port))
    host, port = text.rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def stat_of(obj, name, label=None):
    """A figure of one /stats object (a worker or "totals"): obj[name], or
    obj[name][label] for a labelled metric; name may also be written
    "metric.label" ("requests_total.line")."""
    v = obj
    for part in name.split("."):
        v = v[part]
    return v if label is None else v[label]


class Server:
    """One stampd master and its workers."""

    def __init__(self, tmpdir, args, env=None, workers=1, admin=True,
                 listen=None, expect_errors=(), preexec=None, expect_exit=0,
                 expect_deaths=()):
        self.tmpdir = tmpdir
        self.log_path = os.path.join(tmpdir, "stampd-%d.log" % id(self))
        self.expect_errors = list(expect_errors)
        # The master's exit status the teardown requires (None: the test
        # checked it itself), and regexes matching the worker deaths the
        # test causes on purpose (see kill_worker()).
        self.expect_exit = expect_exit
        self.expect_deaths = list(expect_deaths)
        # workers=None: leave --workers out (the default: online CPUs).
        argv = [STAMPD] + (["--workers", str(workers)] if workers is not None else [])
        if listen is None:
            listen = ["127.0.0.1:0"]
        for a in listen:
            argv += ["--listen", a]
        argv += ["--admin", "127.0.0.1:0" if admin is True else (admin or "off")]
        argv += list(args)
        argv += root_user_args(args)
        self.argv = argv
        e = dict(os.environ)
        e.setdefault("TZ", "UTC")
        if SANITIZED:
            e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
            e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99")
        if env:
            e.update(env)
        self.logf = open(self.log_path, "wb")
        # preexec: run in the child before exec (e.g. a setrlimit).
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=e,
                                     preexec_fn=preexec)
        self.pid = self.proc.pid
        self.returncode = None
        self.addrs = {}
        self.admin = None
        self.nworkers = workers
        self.backend = None
        self.seen_workers = set()  # every worker pid observed, for teardown

    def wait_ready(self, timeout=10):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("stampd exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            m = LISTEN_RE.search(self.log())
            return m
        m = wait_for(ready, timeout, "the 'listening on' log line")
        for part in m.group(1).split(", "):
            kind, text = part.split(" ", 1)
            if kind == "admin":
                self.admin = text
            else:
                self.addrs.setdefault(kind, []).append(text)
        self.backend = m.group(3)
        self.nworkers = int(m.group(2))
        # Workers create their pollers after fork; the sockets already
        # accept into their queues, so the server is usable now.  Wait for
        # every worker to have registered in the stats table when the admin
        # port is on, so that tests can rely on worker pids.
        if self.admin:
            wait_for(lambda: all(w["pid"] for w in self.stats()["workers"]),
                     timeout, "workers to start")
        try:
            self.children()
        except OSError:
            pass
        return self

    # --- addresses ----------------------------------------------------------

    def addr(self, kind="line", i=0):
        return self.addrs[kind][i]

    @property
    def port(self):
        return parse_addr(self.addr("line"))[1][1]

    @property
    def admin_port(self):
        return parse_addr(self.admin)[1][1]

    def connect(self, kind="line", i=0, timeout=10):
        fam, sa = parse_addr(self.addr(kind, i))
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout * SLOW)
        s.connect(sa)
        return s

    # --- admin ----------------------------------------------------------------

    def admin_get(self, path, timeout=10):
        """(status, body bytes) of GET path on the admin port."""
        url = "http://%s%s" % (self.admin, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout * SLOW) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stats(self):
        status, body = self.admin_get("/stats")
        assert status == 200, body
        return json.loads(body)

    def worker_pids(self):
        pids = [w["pid"] for w in self.stats()["workers"]]
        self.seen_workers.update(p for p in pids if p)
        return pids

    def stat(self, name, label=None):
        """One figure of /stats summed over the workers: a metric's name
        without "stampd_" (e.g. "connections_active"), and for a labelled
        metric the label value (stat("requests_total", "line"), or
        stat("requests_total.line"))."""
        return sum(stat_of(w, name, label) for w in self.stats()["workers"])

    def children(self):
        """Worker pids from /proc, without the admin port."""
        path = "/proc/%d/task/%d/children" % (self.pid, self.pid)
        with open(path) as f:
            pids = [int(x) for x in f.read().split()]
        self.seen_workers.update(pids)
        return pids

    # --- life cycle ---------------------------------------------------------

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def kill_worker(self, pid, sig=signal.SIGKILL):
        """Signal worker `pid` and declare the death the master will log
        (so that teardown does not count it as unexpected)."""
        self.seen_workers.add(pid)
        self.expect_deaths.append(r"\(pid %d\) killed by signal %d\b" % (pid, sig))
        os.kill(pid, sig)

    def wait(self, timeout=20):
        try:
            self.returncode = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(timeout=10)
            raise AssertionError("stampd did not exit in time:\n" + self.log())
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.send_signal(sig)
        rc = self.wait(timeout)
        self.logf.close()
        return rc

    def kill(self):
        """Last resort at teardown: the master and every child, by PID."""
        if self.proc.poll() is None:
            try:
                kids = self.children()
            except OSError:
                kids = []
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.kill()
            self.proc.wait(timeout=10)

    def orphans(self):
        """Workers seen earlier that still run although the master is gone
        (checked by pid and executable, so a reused pid is not touched)."""
        left = []
        for pid in sorted(self.seen_workers):
            try:
                if os.readlink("/proc/%d/exe" % pid) == os.path.realpath(STAMPD):
                    left.append(pid)
            except OSError:
                pass
        return left

    def problems(self):
        """Sanitizer reports and error lines nobody expected."""
        bad = []
        for line in self.log().splitlines():
            if any(m in line for m in SANITIZER_MARKS) or " error: " in line:
                if not any(re.search(e, line) for e in self.expect_errors):
                    bad.append(line)
                    continue
            if WORKER_DEATH_RE.search(line) and \
                    not any(re.search(e, line) for e in self.expect_deaths):
                bad.append("unexpected worker death: " + line)
        return bad

    def exit_problem(self):
        """Why the master's exit status is not the declared one, or None."""
        if self.expect_exit is None:
            return None
        rc = self.proc.returncode
        if rc == self.expect_exit:
            return None
        return "stampd exited with status %s, the test expected %s" % (rc, self.expect_exit)


@pytest.fixture
def stampd(tmp_path):
    """Factory: stampd(*args, workers=1, ...) -> a ready Server.

    At teardown every server still running is stopped (TERM, then KILL), and
    the test fails if a log shows a sanitizer report, an unexpected
    error-level line or an unexpected worker death, or if a master's exit
    status is not the one declared (expect_exit=, 0 by default)."""
    servers = []

    def start(*args, ready=True, **kw):
        s = Server(str(tmp_path), args, **kw)
        servers.append(s)
        return s.wait_ready() if ready else s

    yield start
    problems = []
    for s in servers:
        if s.proc.poll() is None:
            try:
                s.stop(timeout=15)
            except AssertionError:
                s.kill()
                problems.append("stampd did not stop on SIGTERM in time")
        why = s.exit_problem()
        if why:
            problems.append(why)
        for pid in s.orphans():
            problems.append("worker %d outlived its master" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not s.logf.closed:
            s.logf.close()
        problems += s.problems()
    assert not problems, "server problems at teardown:\n" + "\n".join(problems)


# --- socket helpers -------------------------------------------------------------

def recv_exact(sock, n, timeout=10):
    """Exactly n bytes, or AssertionError with what did arrive."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d bytes: %r" % (len(buf), n, bytes(buf[-200:])))
        sock.settimeout(left)
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise AssertionError("EOF after %d of %d bytes: %r" % (len(buf), n, bytes(buf[-200:])))
        buf += chunk
    return bytes(buf)


def recv_all(sock, timeout=10, limit=1 << 30):
    """Everything until EOF (bounded by timeout and limit)."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no EOF after %d bytes: %r" % (len(buf), bytes(buf[-200:])))
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            raise AssertionError("connection reset after %d bytes: %r" % (len(buf), bytes(buf[-200:])))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_lines(sock, count, timeout=10):
    """Exactly `count` LF-terminated lines (each with its terminator)."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while buf.count(b"\n") < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d lines" % (buf.count(b"\n"), count))
        sock.settimeout(left)
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("EOF after %d of %d lines: %r"
                                 % (buf.count(b"\n"), count, bytes(buf[-200:])))
        buf += chunk
    lines = bytes(buf).split(b"\n")
    assert len(lines) == count + 1 and lines[-1] == b"", "extra bytes after the lines"
    return [l + b"\n" for l in lines[:-1]]


def split_stamp(reply):
    """b'[Mon Sep  5 22:29:12 2016] rest' -> (timestamp bytes, rest)."""
    m = STAMP_PREFIX_RE.match(reply)
    assert m, "no ctime stamp prefix in %r" % reply[:80]
    return reply[1:25], reply[m.end():]


def converse(sock, data, timeout=30, shut=True, limit=1 << 31):
    """Send `data` while reading, so that neither side can block the other
    on full buffers; then half-close (unless shut=False) and read until EOF
    (or until `limit` bytes).  Returns everything read.  Works with any fd
    number (poll, not select)."""
    deadline = time.monotonic() + timeout * SLOW
    view = memoryview(data)
    sent = 0
    buf = bytearray()
    sock.setblocking(False)
    if shut and not data:
        sock.shutdown(socket.SHUT_WR)
    p = select.poll()
    try:
        while len(buf) < limit:
            writing = sent < len(view)
            p.register(sock, select.POLLIN | (select.POLLOUT if writing else 0))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("converse: timed out; sent %d of %d, read %d: %r"
                                     % (sent, len(view), len(buf), bytes(buf[-200:])))
            ev = p.poll(min(left, 1.0) * 1000)
            mask = ev[0][1] if ev else 0
            if writing and mask & (select.POLLOUT | select.POLLERR):
                try:
                    sent += sock.send(view[sent:sent + (1 << 20)])
                except BlockingIOError:
                    pass
                if sent == len(view) and shut:
                    sock.shutdown(socket.SHUT_WR)
            if mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    chunk = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    raise AssertionError("converse: reset after reading %d bytes: %r"
                                         % (len(buf), bytes(buf[-200:])))
                if not chunk:
                    break
                buf += chunk
    finally:
        sock.setblocking(True)
    return bytes(buf)


def rss_kb(pid):
    """VmRSS of a process in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def run_stampd(*args, timeout=10, **kw):
    """Run stampd to completion (for options that make it exit at once);
    returns the CompletedProcess with bytes stdout/stderr."""
    e = dict(os.environ)
    e.setdefault("TZ", "UTC")
    e.update(kw.pop("env", None) or {})
    return subprocess.run([STAMPD] + list(args) + root_user_args(args),
                          stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout * SLOW, env=e, **kw)


# --- network namespaces ---------------------------------------------------------

@contextlib.contextmanager
def netns_veth(monkeypatch, tmp_path, ns, host_if, ns_if, host_ip, ns_ip,
               rules=None):
    """stampd runs inside a new network namespace `ns` (conftest.STAMPD
    becomes a wrapper that enters it), reached from the test over a veth
    pair: host_ip on this side, ns_ip inside.  `rules`: an nftables
    ruleset loaded inside.  Needs root and ip(8); everything is removed on
    exit."""
    def sh(*argv, **kw):
        subprocess.run(argv, check=True, **kw)

    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", host_ip + "/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", ns_ip + "/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        if rules:
            sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=rules.encode())
        wrapper = tmp_path / "netns-stampd"
        wrapper.write_text("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n"
                           % (ns, STAMPD))
        wrapper.chmod(0o700)
        monkeypatch.setattr(sys.modules[__name__], "STAMPD", str(wrapper))
        yield
    finally:
        subprocess.run(["ip", "link", "del", host_if], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", ns])


# --- terminals ---------------------------------------------------------------

class Term:
    """A tool (stampcli, stampctl chat) with stdin, stdout and stderr on one
    pseudo-terminal from os.openpty; every read is bounded by select and a
    deadline."""

    def __init__(self, argv, env=None, stdout=None):
        master, slave = os.openpty()
        e = dict(os.environ, TERM="xterm", LC_ALL="C.UTF-8")
        e.update(env or {})
        self.proc = subprocess.Popen(argv, stdin=slave,
                                     stdout=slave if stdout is None else stdout,
                                     stderr=slave, env=e, start_new_session=True)
        os.close(slave)
        self.fd = master
        self.buf = b""     # everything read, for the assertions' messages
        self.pos = 0       # where the next expect starts looking

    def _read_more(self, pattern, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r in %r" % (pattern, self.buf[self.pos:]))
        r, _, _ = select.select([self.fd], [], [], left)
        if r:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError("EOF before %r in %r" % (pattern, self.buf))
            self.buf += chunk

    def expect(self, pattern, timeout=10):
        """The next match of pattern after the previous expect's."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            self._read_more(pattern, deadline)

    def seen(self, pattern, timeout=10):
        """A match of pattern anywhere in the output so far or to come
        (events of concurrent sources may arrive in any order); pos is
        left alone."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            m = rx.search(self.buf)
            if m:
                return m
            self._read_more(pattern, deadline)

    def prompt(self, timeout=10, pattern=rb">>> "):
        """The prompt, and libedit's raw mode on.  libedit prints the prompt
        before it switches the terminal out of canonical mode; keys typed in
        between would meet the kernel's line discipline instead (echoed as
        ^[[A, erased by it), so wait for the mode: the master side of a
        Linux pty reads the slave's termios."""
        self.expect(pattern, timeout)
        wait_for(lambda: not termios.tcgetattr(self.fd)[3] & termios.ICANON,
                 timeout, "libedit's raw mode")

    def send(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=10):
        """Exit status, draining the terminal meanwhile."""
        deadline = time.monotonic() + timeout * SLOW
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not exit: %r" % (self.proc.args[0], self.buf))
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:
                    pass
        os.close(self.fd)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            os.close(self.fd)
