"""A loop turn that lasts across a second boundary, with the
FAULT_INJECTION build (tests/reliability.mk; src/fault.c: a read holding
STAMPD_FAULT_STALL_ON stalls the worker STAMPD_FAULT_STALL_MS).  A request
sent after the boundary and read later in that turn must not carry the
second cached at the turn's wake-up: the second-boundary alarm
(clock_edge.h) has the worker read the clock again."""
import calendar
import os
import socket
import time

import pytest

import conftest
from conftest import recv_lines, split_stamp, wait_for

FAULT_BIN = os.environ.get("STAMPD_FAULT_BIN",
                           os.path.join(conftest.ROOT, "build-fault", "stampd"))

pytestmark = pytest.mark.skipif(not os.access(FAULT_BIN, os.X_OK),
                                reason="no FAULT_INJECTION build (make fault-build)")

STALL_MS = 1600
ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=99",
       "STAMPD_FAULT_STALL_ON": "stall-here", "STAMPD_FAULT_STALL_MS": str(STALL_MS),
       "TZ": "UTC"}


@pytest.fixture
def fault_bin(monkeypatch):
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)


def stamp_seconds(reply):
    ts, rest = split_stamp(reply)
    return calendar.timegm(time.strptime(ts.decode(), "%a %b %d %H:%M:%S %Y")), rest


def test_a_turn_stalled_past_a_second_keeps_stamps_fresh(stampd, fault_bin):
    """C stalls the worker; meanwhile A's stalling line and B's first line
    arrive, so the next wake-up sees A then B.  A stalls that turn for
    1.6 s; 1.1 s into it (past a second boundary) B sends a second line,
    which the worker reads with the first once A is done.  Its stamp must
    not be older than its send time's second (S - 1 s <= stamp <= R)."""
    s = stampd(workers=1, env=ENV)
    c, a, b = s.connect(), s.connect(), s.connect()
    for x in (c, a, b):
        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.sendall(b"stall-here c\n")
    wait_for(lambda: s.log().count("stalling") == 1, 10, "C's stall begun")
    a.sendall(b"stall-here a\n")
    b.sendall(b"b1\n")
    recv_lines(c, 1)            # C answered: the turn of A and B begins now
    wait_for(lambda: s.log().count("stalling") == 2, 10, "A's stall begun")
    # Inside A's stall (0.5 s to spare), and past a second boundary.
    time.sleep(1.1)
    sent = time.time()
    b.sendall(b"b2\n")
    replies = recv_lines(b, 2)
    received = time.time()
    assert stamp_seconds(replies[0])[1] == b"b1\n"
    sec, rest = stamp_seconds(replies[1])
    assert rest == b"b2\n"
    assert sent - 1 <= sec <= received, (sent, sec, received)
    assert stamp_seconds(recv_lines(a, 1)[0])[1] == b"stall-here a\n"
    for x in (c, a, b):
        x.close()
