"""The interest-update policy under injected poller failures, with the
FAULT_INJECTION build (tests/reliability.mk: src/fault.c wraps
poller_mod): a connection whose interest change the poller refuses is
closed, counted in poller_errors_total and connections_closed_total.reset,
and nothing else is touched."""
import os
import socket

import pytest

import conftest
from conftest import recv_exact, wait_for
from test_rel_util import wstats

FAULT_BIN = os.environ.get("STAMPD_FAULT_BIN",
                           os.path.join(conftest.ROOT, "build-fault", "stampd"))

pytestmark = pytest.mark.skipif(not os.access(FAULT_BIN, os.X_OK),
                                reason="no FAULT_INJECTION build (make fault-build)")

ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=99",
       "STAMPD_FAULT_POLLER_MOD_EVERY": "1"}


@pytest.fixture
def fault_bin(monkeypatch):
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)


def test_failed_interest_change_closes_the_connection(stampd, fault_bin):
    """Every change of a registered interest fails.  A client that sends
    without reading makes the kernel refuse replies, so the worker stops
    reading it: refused, the connection is closed (the client sees its
    end), counted once, and a client that reads its replies (no interest
    change) is served throughout."""
    s = stampd("--reply", "echo", "--max-output", "4k", env=ENV)
    b0 = wstats(s)
    good = s.connect()
    good.sendall(b"before\n")
    assert recv_exact(good, 7) == b"before\n"

    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.settimeout(10)
    hog.connect(("127.0.0.1", s.port))
    line = b"x" * 1000 + b"\n"
    try:
        for _ in range(16 * 1024):
            hog.sendall(line)
    except (BrokenPipeError, ConnectionResetError):
        pass
    wait_for(lambda: wstats(s)["poller_errors_total"] > b0["poller_errors_total"], 5,
             "the refused interest change counted")
    wait_for(lambda: wstats(s)["connections_active"] == 1, 5, "the hog closed")
    st = wstats(s)
    assert st["poller_errors_total"] - b0["poller_errors_total"] == 1
    assert st["connections_closed_total"]["reset"] - b0["connections_closed_total"]["reset"] == 1
    assert "poller: interest change on fd" in s.log()
    hog.close()

    good.sendall(b"after\n")
    assert recv_exact(good, 6) == b"after\n"
    good.close()
    wait_for(lambda: wstats(s)["connections_active"] == 0, 5, "all closed")
    assert s.stop() == 0
