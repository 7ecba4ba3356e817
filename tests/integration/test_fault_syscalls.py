"""Syscall faults injected into a running worker with strace
(`strace -f -p WORKER -e inject=SYSCALL:error=E:when=...`), one syscall at
a time: no crash, no lost reply on the connections that survive, exactly
the connections hit by a fatal error are closed (and counted), and SIGPIPE
never kills a worker.  Covered: accept4 (line and HTTP listeners), send (the sendto system call),
recv (recvfrom), write (the signal pipe), epoll_ctl (registering a new connection),
and for UDP recvmmsg (retried) and sendmmsg (transient errors retried, a
hard error drops that one reply, counted in udp_drops)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SLOW, parse_addr, recv_all, recv_exact, wait_for
from test_rel_util import delta, wstats

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="no strace")


class Strace:
    """strace attached to pid, injecting `inject` (None: only tracing),
    detached on exit."""

    def __init__(self, pid, syscall, inject, tmpdir):
        self.err = os.path.join(tmpdir, "strace-%s.err" % syscall)
        self.trace = os.path.join(tmpdir, "strace-%s.out" % syscall)
        self.errf = open(self.err, "wb")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-p", str(pid), "-o", self.trace,
             "-e", "trace=" + syscall] +
            (["-e", "inject=%s:%s" % (syscall, inject)] if inject else []),
            stdout=subprocess.DEVNULL, stderr=self.errf)
        # strace has attached once the tracee shows a tracer in its status.
        wait_for(lambda: self._tracer(pid) == self.proc.pid, 10, "strace to attach")

    @staticmethod
    def _tracer(pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
        return 0

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self.errf.close()

    def injected(self):
        with open(self.trace, errors="replace") as f:
            return f.read().count("(INJECTED")


def _load(s, nconns=20, nlines=500):
    """nconns connections each pipelining nlines then half-closing; returns
    [(sent stream, received bytes)]."""
    out = [None] * nconns

    def send(c, stream):
        try:
            c.sendall(stream)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass    # the server closed this one: counted by the caller

    def run(i):
        stream = b"".join(b"c%d l%d\n" % (i, k) for k in range(nlines))
        c = s.connect()
        try:
            t = threading.Thread(target=send, args=(c, stream))
            t.start()
            try:
                got = recv_all(c, timeout=30)
            except AssertionError as e:   # a reset: what arrived is in the message
                got = None
            t.join()
        except OSError:
            got = None
        c.close()
        out[i] = (stream, got)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(nconns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


KEYS = ("connections_closed_total.reset", "connections_closed_total.eof", "accept_pauses_total", "accept_errors_total",
        "connections_accepted_total", "requests_total.line")


def _scenario(stampd, tmp_path, syscall, inject, fatal=0, **kw):
    s = stampd("--reply", "echo", workers=1, **kw)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, syscall, inject, str(tmp_path))
    try:
        results = _load(s)
    finally:
        st.close()
    assert st.injected() >= 1, "strace injected nothing"
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    w = wstats(s)
    assert s.worker_pids()[0] == pid and w["pid"] == pid, "the worker died"
    whole = sum(1 for sent, got in results if got == sent)
    broken = [i for i, (sent, got) in enumerate(results) if got != sent]
    # A connection hit by a fatal fault may have lost replies (a read fault
    # on the final EOF read loses none); every other one has all of them,
    # in order.
    assert len(broken) == fatal or (len(broken) < fatal and syscall == "recvfrom"), broken
    d = delta(b0, w, KEYS)
    assert d["connections_accepted_total"] == len(results)
    assert d["connections_closed_total.reset"] == fatal and d["connections_closed_total.eof"] == len(results) - fatal
    return s, d, whole


@pytest.mark.parametrize("err", ["ECONNABORTED", "EMFILE", "ENOBUFS"])
def test_accept4_faults(stampd, tmp_path, err):
    s, d, whole = _scenario(stampd, tmp_path, "accept4",
                            "error=%s:when=1+2" % err)
    if err == "ECONNABORTED":
        assert d["accept_pauses_total"] == 0 and d["accept_errors_total"] == 0
    else:
        assert d["accept_pauses_total"] >= 1
    print("accept4 %s: %d/20 connections whole, %d pauses" % (err, whole, d["accept_pauses_total"]))


@pytest.mark.parametrize("err", ["EAGAIN", "EINTR"])
def test_send_transient_faults(stampd, tmp_path, err):
    """send() (the sendto system call) carries every reply that is not held
    back by a slow client: refused sends keep the replies in the ring."""
    _scenario(stampd, tmp_path, "sendto", "error=%s:when=1+2" % err)


def test_send_epipe_with_sigpipe(stampd, tmp_path):
    """The 5th send fails with EPIPE and the worker gets a SIGPIPE:
    that one connection is closed as a reset, the worker lives on."""
    _scenario(stampd, tmp_path, "sendto", "error=EPIPE:signal=SIGPIPE:when=5",
              fatal=1)


def test_write_fault_on_the_signal_pipe(stampd, tmp_path):
    """Replies go out with send; the worker's only write() is the signal
    handler's wake-up byte.  With every write() failing, SIGTERM must still
    stop the worker gracefully (the signal interrupts epoll_wait anyway):
    the owed reply is delivered and the exit status is 0.  The worker exits
    while strace still traces it, and LeakSanitizer cannot check a traced
    process (it fails with "does not work under ptrace"): sanitizer builds
    run this one test without the leak check."""
    s = stampd("--reply", "echo", workers=1,
               env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=99"})
    pid = s.worker_pids()[0]
    c = s.connect()
    st = Strace(pid, "write", "error=EAGAIN:when=1+1", str(tmp_path))
    try:
        c.sendall(b"owed")
        wait_for(lambda: wstats(s)["bytes_received_total"] >= 4, 5, "the fragment read")
        s.send_signal(signal.SIGTERM)
        c.sendall(b"\n")
        assert recv_all(c, timeout=15) == b"owed\n"
        assert s.wait(20) == 0
    finally:
        st.close()
    assert st.injected() >= 1


def test_recv_econnreset(stampd, tmp_path):
    """The 7th recv (the recvfrom system call) fails with ECONNRESET:
    exactly one connection is closed as a reset, the others are whole."""
    _scenario(stampd, tmp_path, "recvfrom", "error=ECONNRESET:when=7", fatal=1)


# --- HTTP -----------------------------------------------------------------------

HTTP_REQS = 50


def _http_load(s, nconns=20):
    """nconns HTTP connections each pipelining HTTP_REQS keep-alive GETs, the
    last one asking to close; returns the bodies each one got, in order."""
    out = [None] * nconns

    def run(i):
        reqs = b"".join(b"GET /c%d-r%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
                        % (i, k, b"Connection: close\r\n" if k == HTTP_REQS - 1 else b"")
                        for k in range(HTTP_REQS))
        c = s.connect("http")
        try:
            c.sendall(reqs)
            got = recv_all(c, timeout=30)
        except (OSError, AssertionError):
            got = b""
        c.close()
        out[i] = [b.split(b"\r\n\r\n", 1)[1] for b in got.split(b"HTTP/1.1 200 OK\r\n")[1:]]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(nconns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


@pytest.mark.parametrize("err", ["ECONNABORTED", "EMFILE", "EPERM"])
def test_accept4_faults_http(stampd, tmp_path, err):
    """accept4 failing on the HTTP listener: ECONNABORTED is skipped,
    EMFILE pauses accepting (counted), any other error is counted in
    accept_errors; the connections still queued are accepted later and
    every request on every connection is answered, in order."""
    s = stampd("--reply", "echo", "--http", "127.0.0.1:0", workers=1,
               expect_errors=[r"accept: Operation not permitted"])
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, "accept4", "error=%s:when=1+3" % err, str(tmp_path))
    try:
        results = _http_load(s)
    finally:
        st.close()
    assert st.injected() >= 1, "strace injected nothing"
    for i, bodies in enumerate(results):
        assert bodies == [b"/c%d-r%d\n" % (i, k) for k in range(HTTP_REQS)], i
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    d = delta(b0, wstats(s), KEYS + ("requests_total.http",))
    assert s.worker_pids()[0] == pid, "the worker died"
    assert d["connections_accepted_total"] == 20 and d["requests_total.http"] == 20 * HTTP_REQS
    if err == "ECONNABORTED":
        assert d["accept_pauses_total"] == 0 and d["accept_errors_total"] == 0
    elif err == "EMFILE":
        assert d["accept_pauses_total"] >= 1
    else:
        assert d["accept_errors_total"] == st.injected()


# --- epoll_ctl ----------------------------------------------------------------

def test_epoll_ctl_add_failure_closes_only_that_connection(stampd, tmp_path):
    """Connections arrive one at a time; registering one of them with the
    poller fails (ENOMEM on the fifth epoll_ctl, which is an ADD): that one
    connection is closed unanswered and not counted as accepted, the
    warning names the error, the others are served and the worker lives
    on."""
    s = stampd("--reply", "echo", workers=1)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, "epoll_ctl", "error=ENOMEM:when=5", str(tmp_path))
    got = []
    try:
        for i in range(6):
            c = s.connect()
            try:
                c.sendall(b"conn %d\n" % i)
                c.shutdown(socket.SHUT_WR)
                got.append(recv_all(c, timeout=10))
            except OSError:     # reset, or not connected any more
                got.append(b"")
            except AssertionError as e:
                assert "reset after 0 bytes" in str(e), e
                got.append(b"")
            c.close()
    finally:
        st.close()
    with open(st.trace) as f:
        injected = [l for l in f if "(INJECTED)" in l]
    assert len(injected) == 1 and "EPOLL_CTL_ADD" in injected[0], injected
    lost = [i for i, g in enumerate(got) if g != b"conn %d\n" % i]
    assert len(lost) == 1 and got[lost[0]] == b"", got
    assert re.search(r"worker 0 warn: poller_add fd \d+: Cannot allocate memory", s.log())
    wait_for(lambda: wstats(s)["connections_active"] == 0, 10, "every close")
    d = delta(b0, wstats(s), ("connections_accepted_total", "requests_total.line"))
    assert d == {"connections_accepted_total": 5, "requests_total.line": 5}
    assert s.worker_pids()[0] == pid, "the worker died"


# --- UDP: recvmmsg and sendmmsg -------------------------------------------------

UDP_N = 40


def _udp_exchange(s, timeout=5):
    """UDP_N datagrams, one at a time, each waiting for its reply (or for
    `timeout`); returns the indexes answered."""
    fam, sa = parse_addr(s.addr("udp"))
    u = socket.socket(fam, socket.SOCK_DGRAM)
    answered = []
    try:
        for i in range(UDP_N):
            u.sendto(b"dgram %d\n" % i, sa)
            u.settimeout(timeout * SLOW)
            try:
                reply = u.recvfrom(2048)[0]
            except socket.timeout:
                continue
            assert reply == b"dgram %d\n" % i, (i, reply)
            answered.append(i)
    finally:
        u.close()
    return answered


UDP_KEYS = ("requests_total.udp", "udp_drops_total")


@pytest.mark.parametrize("err", ["EINTR", "EAGAIN", "ENOMEM"])
def test_recvmmsg_faults_are_retried(stampd, tmp_path, err):
    """Every other recvmmsg fails: the datagram stays queued, the poller
    reports the socket again and the next call reads it; nothing is lost
    and nothing counted as dropped."""
    s = stampd("--reply", "echo", "--udp", "127.0.0.1:0", workers=1)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, "recvmmsg", "error=%s:when=1+2" % err, str(tmp_path))
    try:
        answered = _udp_exchange(s)
    finally:
        st.close()
    assert st.injected() >= UDP_N // 2
    assert answered == list(range(UDP_N))
    assert delta(b0, wstats(s), UDP_KEYS) == {"requests_total.udp": UDP_N, "udp_drops_total": 0}
    assert s.worker_pids()[0] == pid, "the worker died"


@pytest.mark.parametrize("err", ["EINTR", "EAGAIN"])
def test_sendmmsg_transient_faults_are_retried(stampd, tmp_path, err):
    """EINTR is retried at once, EAGAIN once the socket is writable: every
    reply goes out, none is counted as dropped."""
    s = stampd("--reply", "echo", "--udp", "127.0.0.1:0", workers=1)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, "sendmmsg", "error=%s:when=1+2" % err, str(tmp_path))
    try:
        answered = _udp_exchange(s)
    finally:
        st.close()
    assert st.injected() >= UDP_N // 2
    assert answered == list(range(UDP_N))
    assert delta(b0, wstats(s), UDP_KEYS) == {"requests_total.udp": UDP_N, "udp_drops_total": 0}


def test_sendmmsg_hard_fault_drops_one_reply(stampd, tmp_path):
    """The fifth sendmmsg fails with EPERM (a firewall's verdict): that one
    reply is dropped and counted, every other datagram is answered."""
    s = stampd("--reply", "echo", "--udp", "127.0.0.1:0", workers=1)
    pid = s.worker_pids()[0]
    b0 = wstats(s)
    st = Strace(pid, "sendmmsg", "error=EPERM:when=5", str(tmp_path))
    try:
        answered = _udp_exchange(s, timeout=1)
    finally:
        st.close()
    assert st.injected() == 1
    assert answered == [i for i in range(UDP_N) if i != 4]
    assert delta(b0, wstats(s), UDP_KEYS) == {"requests_total.udp": UDP_N - 1, "udp_drops_total": 1}
    assert s.worker_pids()[0] == pid, "the worker died"


@pytest.mark.skipif(os.environ.get("STAMPD_POLLER") == "kqueue",
                    reason="the alarm runs with the epoll backend only (kqueue "
                           "cannot block it during its wait)")
def test_second_alarm_never_interrupts_a_wait(stampd, tmp_path):
    """The second-boundary alarm (a SIGALRM a second, ctime stamps) is
    blocked while the loop waits in epoll_pwait and delivered as the wait
    returns: over 2.5 s of an idle worker the trace shows the alarm's
    signals and no wait cut short by EINTR."""
    s = stampd(workers=1)
    st = Strace(s.children()[0], "epoll_pwait,epoll_wait", None, str(tmp_path))
    try:
        time.sleep(2.5)         # the window observed, not a synchronisation
    finally:
        st.close()
    with open(st.trace, errors="replace") as f:
        trace = f.read()
    assert trace.count("SIGALRM") >= 2, trace
    assert "epoll_pwait(" in trace and "EINTR" not in trace, trace
