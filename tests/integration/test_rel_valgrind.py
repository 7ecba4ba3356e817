"""A short scenario under valgrind --leak-check=full (make test-valgrind):
pipelined lines, a final fragment, an over-long line, a reset with replies
queued, a paused reader, then a graceful stop.  Every process (the master
and the forked worker; valgrind follows fork) must report no error and no
leak, and the master must exit 0."""
import os
import re
import socket
import stat
import struct

import pytest

import conftest
from conftest import recv_all, recv_exact

pytestmark = pytest.mark.skipif(os.environ.get("STAMPD_VALGRIND") != "1",
                                reason="make test-valgrind runs this")


@pytest.fixture
def under_valgrind(monkeypatch, tmp_path):
    wrapper = tmp_path / "valgrind-stampd"
    wrapper.write_text(
        "#!/bin/sh\nexec valgrind -q --leak-check=full --show-leak-kinds=definite,indirect "
        "--errors-for-leak-kinds=definite,indirect --error-exitcode=1 "
        "--log-file=%s/vg.%%p %s \"$@\"\n" % (tmp_path, conftest.STAMPD))
    wrapper.chmod(stat.S_IRWXU)
    monkeypatch.setattr(conftest, "STAMPD", str(wrapper))
    monkeypatch.setattr(conftest, "SLOW", 20.0)
    return tmp_path


def test_short_scenario_is_leak_and_error_free(stampd, under_valgrind):
    s = stampd("--reply", "echo", "--max-line", "1k", "--max-output", "8k",
               workers=1)
    c = s.connect()
    stream = b"".join(b"line %d\n" % i for i in range(2000)) + b"tail"
    c.sendall(stream)
    c.shutdown(socket.SHUT_WR)
    assert recv_all(c, timeout=60) == stream + b"\n"
    c = s.connect()
    c.sendall(b"ok\n" + b"x" * 2000)
    assert recv_exact(c, 21, timeout=60) == b"ok\nERR line too long\n"
    c.close()
    c = s.connect()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sendall(b"q" * 99 + b"\n" * 1 + (b"r" * 99 + b"\n") * 3000)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    held = s.connect()
    held.sendall(b"held\n")
    assert recv_exact(held, 5, timeout=60) == b"held\n"
    held.sendall(b"partial")
    assert s.stop(timeout=60) == 0
    held.close()
    logs = [n for n in os.listdir(under_valgrind) if n.startswith("vg.")]
    assert len(logs) >= 2, "valgrind did not run the master and a worker: %s" % logs
    reports = []
    for name in logs:
        text = (under_valgrind / name).read_text()
        if text.strip():
            reports.append(name + ":\n" + text)
    assert reports == [], "\n".join(reports)
