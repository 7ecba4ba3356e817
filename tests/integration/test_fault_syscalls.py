"""Syscall faults injected into a running worker with strace
(`strace -f -p WORKER -e inject=SYSCALL:error=E:when=...`), one syscall at
a time: no crash, no lost reply on the connections that survive, exactly
the connections hit by a fatal error are closed (and counted), and SIGPIPE
never kills a worker."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SLOW, recv_all, wait_for
from test_rel_util import delta, wstats

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="no strace")


class Strace:
    """strace attached to pid, injecting `inject`, detached on exit."""

    def __init__(self, pid, syscall, inject, tmpdir):
        self.err = os.path.join(tmpdir, "strace-%s.err" % syscall)
        self.trace = os.path.join(tmpdir, "strace-%s.out" % syscall)
        self.errf = open(self.err, "wb")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-p", str(pid), "-o", self.trace,
             "-e", "trace=" + syscall, "-e", "inject=%s:%s" % (syscall, inject)],
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


KEYS = ("closed_reset", "closed_eof", "accept_pauses", "accept_errors",
        "conns_accepted", "requests_line")


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
    wait_for(lambda: wstats(s)["conns_active"] == 0, 10, "every close")
    w = wstats(s)
    assert s.worker_pids()[0] == pid and w["pid"] == pid, "the worker died"
    whole = sum(1 for sent, got in results if got == sent)
    broken = [i for i, (sent, got) in enumerate(results) if got != sent]
    # A connection hit by a fatal fault may have lost replies (a read fault
    # on the final EOF read loses none); every other one has all of them,
    # in order.
    assert len(broken) == fatal or (len(broken) < fatal and syscall == "recvfrom"), broken
    d = delta(b0, w, KEYS)
    assert d["conns_accepted"] == len(results)
    assert d["closed_reset"] == fatal and d["closed_eof"] == len(results) - fatal
    return s, d, whole


@pytest.mark.parametrize("err", ["ECONNABORTED", "EMFILE", "ENOBUFS"])
def test_accept4_faults(stampd, tmp_path, err):
    s, d, whole = _scenario(stampd, tmp_path, "accept4",
                            "error=%s:when=1+2" % err)
    if err == "ECONNABORTED":
        assert d["accept_pauses"] == 0 and d["accept_errors"] == 0
    else:
        assert d["accept_pauses"] >= 1
    print("accept4 %s: %d/20 connections whole, %d pauses" % (err, whole, d["accept_pauses"]))


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
    the owed reply is delivered and the exit status is 0."""
    s = stampd("--reply", "echo", workers=1)
    pid = s.worker_pids()[0]
    c = s.connect()
    st = Strace(pid, "write", "error=EAGAIN:when=1+1", str(tmp_path))
    try:
        c.sendall(b"owed")
        wait_for(lambda: wstats(s)["bytes_in"] >= 4, 5, "the fragment read")
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
