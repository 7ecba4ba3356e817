"""LeakSanitizer checks workers, not only the master (the FAULT_INJECTION
build is an ASan build; STAMPD_FAULT_LEAK=1 makes each worker leak a few
blocks at start-up).  Workers leave through _exit(), which skips the
exit-time leak check: src/master.c runs it explicitly (include/leakcheck.h),
so a leak in a worker is reported in the log and turns into a failed worker
exit (status 23) and a failed stop (status 1)."""
import os
import re

import pytest

import conftest
from test_fault_alloc import ASAN, FAULT_BIN

pytestmark = pytest.mark.skipif(not os.access(FAULT_BIN, os.X_OK),
                                reason="no FAULT_INJECTION build (make fault-build)")


@pytest.fixture
def fault_bin(monkeypatch):
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)


def test_a_leak_in_a_worker_fails_its_exit(stampd, fault_bin):
    env = dict(ASAN, STAMPD_FAULT_LEAK="1")
    s = stampd("--reply", "echo", workers=2, env=env, expect_exit=1,
               expect_errors=[r"LeakSanitizer", r"ERROR: ", r"SUMMARY: AddressSanitizer: 16384 byte"],
               expect_deaths=[r"exited with status 23\b"])
    pids = s.worker_pids()
    assert s.stop() == 1
    log = s.log()
    assert "ERROR: LeakSanitizer: detected memory leaks" in log, log[-3000:]
    assert "leak_on_purpose" in log, "the report does not name the leaking function"
    assert re.search(r"Direct leak of 16384 byte\(s\) in 4 object\(s\)", log), log[-3000:]
    for i, pid in enumerate(pids):
        assert re.search(r"master warn: worker %d \(pid %d\) exited with status 23$"
                         % (i, pid), log, re.M), log[-3000:]


def test_no_leak_no_report(stampd, fault_bin):
    """The control: the same build and scenario without the leak stops
    cleanly, so the check above is not a check that always fails."""
    s = stampd("--reply", "echo", workers=2, env=dict(ASAN))
    c = s.connect()
    c.sendall(b"hello\n")
    assert conftest.recv_exact(c, 6) == b"hello\n"
    c.close()
    assert s.stop() == 0
    assert "LeakSanitizer" not in s.log()
