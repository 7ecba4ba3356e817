"""Helpers shared by the reliability suites (test_rel_*.py, test_fault_*.py):
admin-counter deltas, per-process /proc figures and latency percentiles.
No tests live here."""
import os
import socket
import time

from conftest import SLOW, stat_of, wait_for


def wstats(server, i=0):
    """Worker i's /stats object."""
    return server.stats()["workers"][i]


def totals(server):
    return server.stats()["totals"]


def delta(before, after, keys):
    """{key: after - before} for the given figures (conftest.stat_of
    names: "connections_accepted_total", "requests_total.line")."""
    return {k: stat_of(after, k) - stat_of(before, k) for k in keys}


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def serving_worker(server):
    """The pid of worker 0 once its loop serves (one echo round trip on a
    connection then closed): /stats names a worker as soon as it is forked,
    before it has opened its poller and signal pipe, so descriptor or
    memory figures taken earlier are not its baseline.  Any reply mode
    (the reply ends with the request's own line); one worker."""
    c = server.connect()
    c.sendall(b"ready\n")
    c.settimeout(10 * SLOW)
    got = b""
    while not got.endswith(b"\n"):
        chunk = c.recv(64)
        assert chunk, got
        got += chunk
    assert got.endswith(b"ready\n"), got
    c.close()
    wait_for(lambda: wstats(server)["connections_active"] == 0, 5, "the probe closed")
    return server.worker_pids()[0]


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (/proc/<pid>/stat fields 14, 15)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def cpu_share(pid, seconds):
    """Fraction of one CPU pid used over `seconds` of wall time."""
    hz = os.sysconf("SC_CLK_TCK")
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(seconds)
    return (cpu_ticks(pid) - c0) / hz / (time.monotonic() - t0)


def rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


def ping_rtts(server, count, line=b"ping\n", pause=0.0, stop=None):
    """Round-trip times of `count` one-line requests on one connection."""
    c = server.connect()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts = []
    try:
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            t0 = time.perf_counter()
            c.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                chunk = c.recv(4096)
                assert chunk, "EOF during ping"
                got += chunk
            rtts.append(time.perf_counter() - t0)
            if pause:
                time.sleep(pause)
    finally:
        c.close()
    return rtts


def echo_reference(stream):
    """What --reply echo answers to `stream` followed by EOF."""
    if not stream:
        return b""
    return stream if stream.endswith(b"\n") else stream + b"\n"


def wait_counter(server, key, value, timeout=10, i=0):
    """Wait until worker i's counter `key` (a conftest.stat_of name)
    reaches `value`."""
    return wait_for(lambda: stat_of(wstats(server, i), key) >= value, timeout,
                    "%s to reach %d" % (key, value))


__all__ = ["wstats", "totals", "delta", "open_fds", "cpu_ticks", "cpu_share",
           "rss_bytes", "percentile", "ping_rtts", "echo_reference",
           "wait_counter", "SLOW"]
