"""Clock steps under libfaketime (Debian `faketime`): the wall clock jumps
back an hour and forward a day while the server runs.  Timestamps follow
the wall clock within 1 s; timeouts keep their length because they run on
the monotonic clock (FAKETIME_DONT_FAKE_MONOTONIC=1 leaves it real)."""
import calendar
import os
import select
import subprocess
import time

import pytest

import conftest
from conftest import SLOW, recv_exact, wait_for
from test_rel_util import wstats

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _links_jemalloc(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    except OSError:
        return True
    return "jemalloc" in out


def _clock_bin():
    """jemalloc calls clock_gettime() while libfaketime initialises, which
    libfaketime cannot survive: use a libc-malloc build (STAMPD_CLOCK_BIN,
    `make test-reliability` passes build-valgrind/stampd; the ASan build
    qualifies too)."""
    for path in (os.environ.get("STAMPD_CLOCK_BIN"), conftest.STAMPD,
                 os.path.join(conftest.ROOT, "build-valgrind", "stampd")):
        if path and os.access(path, os.X_OK) and not _links_jemalloc(path):
            return path
    return None


pytestmark = pytest.mark.skipif(not os.path.exists(LIBFAKETIME) or not _clock_bin(),
                                reason="needs libfaketime and a libc-malloc build")

STEPS = {"+0": 0, "-1h": -3600, "+1d": 86400}


def _iso_to_unix(ts):
    """b'2016-09-05T22:29:12.345Z' -> seconds since the epoch."""
    t = time.strptime(ts[:19].decode(), "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(ts[20:23]) / 1000.0


@pytest.fixture
def faked(stampd, tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "STAMPD", _clock_bin())
    offset_file = tmp_path / "faketime-offset"
    offset_file.write_text("+0\n")
    env = {"LD_PRELOAD": LIBFAKETIME,
           "FAKETIME_TIMESTAMP_FILE": str(offset_file),
           "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           "FAKETIME_DONT_RESET": "1",
           # ASan wants to come first among the libraries; the preload
           # does, harmlessly.
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99:"
                           "verify_asan_link_order=0"}
    s = stampd("--time-format", "iso8601", "--line-timeout", "2", env=env)

    def step(spec):
        offset_file.write_text(spec + "\n")
    return s, step


def _stamp_offset(s):
    """Server timestamp minus the real wall clock, for one fresh request."""
    c = s.connect()
    t0 = time.time()
    c.sendall(b"t\n")
    reply = recv_exact(c, 29)
    t1 = time.time()
    c.close()
    ts = _iso_to_unix(reply[1:25])
    return ts - (t0 + t1) / 2


def test_timestamps_follow_wall_clock_steps(faked):
    s, step = faked
    for spec in ("+0", "-1h", "+1d", "+0"):
        step(spec)
        # The cached clock is rebuilt on the next wakeup; allow one.
        wait_for(lambda: abs(_stamp_offset(s) - STEPS[spec]) < 1.0, 3,
                 "timestamps to follow %s" % spec)
        off = _stamp_offset(s)
        assert abs(off - STEPS[spec]) < 1.0, (spec, off)


@pytest.mark.parametrize("spec", ["-1h", "+1d"])
def test_line_timeout_keeps_its_length_across_a_step(faked, spec):
    """A partial line is pending when the clock steps: the ERR still comes
    2 s (+-0.5 s) after the first byte, not at once and not an hour late."""
    s, step = faked
    b0 = wstats(s)
    c = s.connect()
    t0 = time.monotonic()
    c.sendall(b"partial")
    wait_for(lambda: wstats(s)["bytes_received_total"] > b0["bytes_received_total"], 2, "the read")
    step(spec)
    # Wake the worker so it reads the stepped clock while the line waits.
    other = s.connect()
    other.sendall(b"x\n")
    assert recv_exact(other, 29).endswith(b"x\n")
    other.close()
    assert select.select([c], [], [], 2.5 * SLOW)[0], "no ERR within 2.5 s"
    took = time.monotonic() - t0
    assert recv_exact(c, 17) == b"ERR line timeout\n"
    assert 1.5 <= took <= 2.5 * SLOW, took
    c.close()
    assert wstats(s)["enforcements_total"]["line_timeout"] - b0["enforcements_total"]["line_timeout"] == 1
    print("clock step %s: line timeout after %.2f s" % (spec, took))
