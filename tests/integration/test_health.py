"""Health endpoints: /healthz is liveness (every worker's event loop turns,
no slot crash-looping), /readyz is readiness (every worker serves, not
draining, and with --require-synced-clock a synchronised clock).  Also the
kernel clock state in /metrics and /stats, read with adjtimex(2) here and
in stampd, and fed chosen values in the FAULT_INJECTION build."""
import ctypes
import os
import re
import signal
import socket
import time

import pytest

import conftest
from conftest import SLOW, recv_lines, wait_for
from haproxy_util import HAPROXY, PROXY_CONFIG, READYZ_CONFIG, HAProxy, free_port

FAULT_BIN = os.environ.get("STAMPD_FAULT_BIN",
                           os.path.join(conftest.ROOT, "build-fault", "stampd"))
needs_fault = pytest.mark.skipif(not os.access(FAULT_BIN, os.X_OK),
                                 reason="no FAULT_INJECTION build (make fault-build)")
ASAN = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=99",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=99"}


def probe(s, path):
    return s.admin_get(path)


def metric(s, name):
    status, body = s.admin_get("/metrics")
    assert status == 200
    m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode(), re.M)
    return m and float(m.group(1))


def test_stopped_worker_fails_liveness_then_recovers(stampd):
    """kill -STOP one worker: /healthz and /readyz turn 503 naming it within
    about 2 s (its heartbeat stops); kill -CONT: both back to 200."""
    # --worker-timeout 0: the master does not replace a silent worker, so
    # this shows the endpoints alone.
    s = stampd("--worker-timeout", "0", workers=2)
    assert probe(s, "/healthz") == (200, b"ok\n")
    assert probe(s, "/readyz") == (200, b"ok\n")
    victim = s.worker_pids()[1]
    os.kill(victim, signal.SIGSTOP)
    try:
        import time
        t0 = time.monotonic()
        status, body = wait_for(lambda: (lambda r: r[0] == 503 and r)(probe(s, "/healthz")),
                                5, "/healthz to fail", interval=0.05)
        took = time.monotonic() - t0
        assert re.fullmatch(rb"worker 1 stalled: no loop turn for \d+\.\ds\n", body), body
        assert 1.4 <= took < 3.5 * conftest.SLOW, took
        status, body = probe(s, "/readyz")
        assert status == 503 and body.startswith(b"worker 1 stalled"), body
        assert metric(s, "stampd_live") == 0 and metric(s, "stampd_ready") == 0
        page = s.stats()
        assert page["live"] == 0 and page["live_reason"].startswith("worker 1 stalled")
        print("SIGSTOP: /healthz 503 after %.2f s" % took)
    finally:
        os.kill(victim, signal.SIGCONT)
    wait_for(lambda: probe(s, "/healthz") == (200, b"ok\n"), 3, "/healthz to recover")
    wait_for(lambda: probe(s, "/readyz") == (200, b"ok\n"), 3, "/readyz to recover")
    assert metric(s, "stampd_live") == 1
    assert s.stop() == 0


def test_hung_worker_is_replaced_and_health_recovers(stampd):
    """kill -STOP with --worker-timeout 3: /healthz turns 503 after 2 s, the
    master kills and replaces the silent worker after 3 s, and /healthz
    and /readyz are 200 again with the new worker."""
    import time
    s = stampd("--worker-timeout", "3", workers=2, expect_deaths=[r"killed by signal 9"])
    victim = s.worker_pids()[0]
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    wait_for(lambda: probe(s, "/healthz")[0] == 503, 5, "/healthz to fail", interval=0.05)
    failed = time.monotonic() - t0
    wait_for(lambda: s.worker_pids()[0] not in (0, victim), 8, "the replacement")
    wait_for(lambda: probe(s, "/healthz") == (200, b"ok\n"), 5, "/healthz to recover")
    wait_for(lambda: probe(s, "/readyz") == (200, b"ok\n"), 5, "/readyz to recover")
    back = time.monotonic() - t0
    assert s.stats()["workers"][0]["worker_hangs_total"] == 1
    print("hung worker: /healthz 503 after %.2f s, 200 again after %.2f s" % (failed, back))
    assert s.stop() == 0


def test_repeated_deaths_are_a_crash_loop(stampd):
    """A slot whose worker dies again and again (killed as soon as each
    replacement serves) makes /healthz and /readyz say crash-looping."""
    s = stampd(workers=1, expect_deaths=[r"killed by signal 9"])
    assert probe(s, "/healthz") == (200, b"ok\n")
    killed = 0
    while killed < 3:
        pid = wait_for(lambda: (lambda p: p and p[0])(s.worker_pids()), 5,
                       "a worker")
        os.kill(pid, signal.SIGKILL)
        killed += 1
        wait_for(lambda: s.worker_pids()[0] not in (0, pid), 5, "a replacement")
    status, body = wait_for(lambda: (lambda r: r[0] == 503 and r)(probe(s, "/healthz")),
                            3, "/healthz to see the crash loop", interval=0.05)
    assert body == b"worker 0 crash-looping: 3 deaths in 30s\n", body
    assert probe(s, "/readyz") == (503, body)
    assert s.stats()["live_reason"] == body.decode().strip()
    assert s.stop() == 0


@needs_fault
def test_worker_dying_at_start_is_not_live(stampd, monkeypatch):
    """The fault build's workers all exit right after start-up: the master
    keeps re-forking them (throttled) and /healthz says why it is not live
    while /readyz never says ready."""
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)
    env = dict(ASAN, STAMPD_FAULT_EXIT_AT_START="1")
    s = stampd(env=env, ready=False, expect_exit=1,
               expect_errors=[r"fault injection: exiting at start-up"],
               expect_deaths=[r"exited with status 3"])
    wait_for(lambda: "listening on" in s.log(), 10, "listening")
    s.admin = re.search(r"admin (\S+) ", s.log()).group(1)
    status, body = wait_for(lambda: (lambda r: r[0] == 503 and r)(probe(s, "/healthz")),
                            8, "/healthz to fail", interval=0.1)
    assert re.fullmatch(rb"worker 0 (crash-looping: \d+ deaths in 30s|"
                        rb"not serving for \d+\.\ds)\n", body), body
    assert probe(s, "/readyz")[0] == 503
    wait_for(lambda: probe(s, "/healthz")[1].startswith(b"worker 0 crash-looping"),
             8, "the crash loop to be named", interval=0.1)
    s.stop()


def test_readyz_during_drain_healthz_until_exit(stampd):
    """A graceful stop with a client still connected: /readyz says draining
    at once while /healthz stays 200 until the server exits."""
    s = stampd("--shutdown-timeout", "20", workers=1)
    c = s.connect()
    c.sendall(b"partial line, no terminator")
    wait_for(lambda: s.stat("connections_active") == 1, 5, "the connection")
    s.send_signal(signal.SIGTERM)
    wait_for(lambda: probe(s, "/readyz") == (503, b"draining\n"), 5, "/readyz draining")
    for _ in range(5):
        assert probe(s, "/healthz") == (200, b"ok\n")
    assert metric(s, "stampd_ready") == 0 and metric(s, "stampd_live") == 1
    c.close()
    assert s.wait() == 0


# --- the clock -------------------------------------------------------------------

class Timex(ctypes.Structure):
    # struct timex (x86_64/aarch64 Linux): the fields read here come first.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long),
                ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long),
                ("tolerance", ctypes.c_long), ("time_sec", ctypes.c_long),
                ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("pad", ctypes.c_int * 11)]


def kernel_clock():
    """(synchronized, maxerror s, esterror s) from adjtimex(2), modes 0."""
    libc = ctypes.CDLL(None, use_errno=True)
    tx = Timex()
    state = libc.adjtimex(ctypes.byref(tx))
    assert state != -1, os.strerror(ctypes.get_errno())
    STA_UNSYNC, TIME_ERROR = 0x40, 5
    return (state != TIME_ERROR and not tx.status & STA_UNSYNC,
            tx.maxerror / 1e6, tx.esterror / 1e6)


def test_clock_state_is_the_kernels(stampd):
    """/metrics and /stats show what adjtimex says on this machine; a
    warning is logged when it is unsynchronised or above --clock-max-error;
    /readyz follows it only with --require-synced-clock."""
    synced, maxerr, esterr = kernel_clock()
    s = stampd(workers=1)
    assert metric(s, "stampd_clock_synchronized") == (1 if synced else 0)
    # The kernel's maximum error grows by 500 us per second while nothing
    # disciplines the clock: allow for the time between the two reads.
    assert abs(metric(s, "stampd_clock_max_error_seconds") - maxerr) <= 0.01
    assert abs(metric(s, "stampd_clock_estimated_error_seconds") - esterr) <= 0.01
    assert s.stats()["clock_synchronized"] == (1 if synced else 0)
    bad = not synced or maxerr > 0.1
    assert ("master warn: clock" in s.log()) == bad, s.log()
    assert probe(s, "/readyz") == (200, b"ok\n")
    assert s.stop() == 0
    s2 = stampd("--require-synced-clock", workers=1)
    status, body = probe(s2, "/readyz")
    if bad:
        assert status == 503 and body.startswith(b"clock "), body
    else:
        assert (status, body) == (200, b"ok\n")
    assert probe(s2, "/healthz") == (200, b"ok\n")
    assert s2.stop() == 0


STA_UNSYNC, STA_NANO, TIME_ERROR = 0x40, 0x2000, 5


@needs_fault
@pytest.mark.parametrize("fed, synced, warning, ready", [
    # adjtimex() result, status, maxerror us, esterror us, offset (us)
    ((0, 0, 2000, 500, 1500), 1, None, True),
    ((0, 0, 250000, 1000, 0), 1, "clock maximum error exceeds the limit of 0.1", False),
    ((TIME_ERROR, STA_UNSYNC, 16000000, 16000000, 0), 0, "clock unsynchronised (", False),
])
def test_clock_fed_values(stampd, monkeypatch, tmp_path, fed, synced, warning, ready):
    """Chosen adjtimex results (the fault build's STAMPD_FAULT_ADJTIMEX_FILE):
    the gauges carry them exactly, the warning names the problem, and
    /readyz with --require-synced-clock follows."""
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)
    feed = tmp_path / "adjtimex"
    feed.write_text("%d %d %d %d %d\n" % fed)
    env = dict(ASAN, STAMPD_FAULT_ADJTIMEX_FILE=str(feed))
    s = stampd("--require-synced-clock", env=env, workers=1)
    _, _, maxe, este, off = fed
    assert metric(s, "stampd_clock_synchronized") == synced
    assert metric(s, "stampd_clock_max_error_seconds") == maxe / 1e6
    assert metric(s, "stampd_clock_estimated_error_seconds") == este / 1e6
    assert metric(s, "stampd_clock_offset_seconds") == off / 1e6
    warned = [l for l in s.log().splitlines() if "master warn: clock" in l]
    if warning:
        assert len(warned) == 1 and warning in warned[0], warned
        status, body = probe(s, "/readyz")
        assert status == 503 and body.startswith(b"clock "), body
    else:
        assert warned == []
        assert probe(s, "/readyz") == (200, b"ok\n")
    assert probe(s, "/healthz") == (200, b"ok\n")
    assert s.stop() == 0


@needs_fault
def test_clock_losing_and_regaining_sync(stampd, monkeypatch, tmp_path):
    """The clock state is read once a second: losing synchronisation logs
    one warning and fails /readyz (with --require-synced-clock) within a
    couple of seconds; regaining it logs one line at info and /readyz is
    200 again."""
    monkeypatch.setattr(conftest, "STAMPD", FAULT_BIN)
    feed = tmp_path / "adjtimex"
    feed.write_text("0 0 1000 100 0\n")
    env = dict(ASAN, STAMPD_FAULT_ADJTIMEX_FILE=str(feed))
    s = stampd("--require-synced-clock", env=env, workers=1)
    assert probe(s, "/readyz") == (200, b"ok\n")
    feed.write_text("%d %d 16000000 16000000 0\n" % (TIME_ERROR, STA_UNSYNC))
    wait_for(lambda: probe(s, "/readyz")[0] == 503, 3, "/readyz to fail", interval=0.05)
    assert metric(s, "stampd_clock_synchronized") == 0
    wait_for(lambda: "master warn: clock unsynchronised" in s.log(), 2, "the warning")
    feed.write_text("0 0 3000 100 0\n")
    wait_for(lambda: probe(s, "/readyz") == (200, b"ok\n"), 3, "/readyz to recover",
             interval=0.05)
    wait_for(lambda: "master info: clock synchronised again" in s.log(), 2, "the note")
    assert len(re.findall("master warn: clock", s.log())) == 1
    assert s.stop() == 0


# --- a balancer that checks /readyz ------------------------------------------------

def test_haproxy_takes_a_draining_server_out_before_it_closes(stampd, tmp_path):
    """HAProxy health-checks /readyz on the admin port.  On SIGTERM with
    --drain-delay 3, /readyz turns 503 at once, HAProxy marks the server
    DOWN, and clients still connected directly meanwhile get answers,
    because the listeners stay open until the delay is over."""
    if not os.path.exists(HAPROXY):
        pytest.fail("haproxy is not installed (make deps installs it)")
    s = stampd("--drain-delay", "3", workers=1)
    line_port = s.port
    front_port = free_port()
    hp = HAProxy(str(tmp_path), READYZ_CONFIG.format(
        dir=tmp_path, front=front_port, line=line_port, admin=s.admin_port))

    def status():
        return hp.server_status().get("s1", "")

    try:
        wait_for(lambda: status() == "UP", 10, "HAProxy to see s1 UP",
                 interval=0.05)
        c = socket.create_connection(("127.0.0.1", front_port), timeout=5 * SLOW)
        c.sendall(b"through haproxy\n")
        assert recv_lines(c, 1)[0].endswith(b"] through haproxy\n")
        c.close()
        s.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        wait_for(lambda: status().startswith("DOWN"), 3,
                 "HAProxy to take s1 out", interval=0.05)
        down = time.monotonic() - t0
        # Still inside --drain-delay: the listener accepts and answers.
        assert s.proc.poll() is None
        assert probe(s, "/readyz") == (503, b"draining\n")
        assert probe(s, "/healthz") == (200, b"ok\n")
        d = socket.create_connection(("127.0.0.1", line_port), timeout=5 * SLOW)
        d.sendall(b"late\n")
        assert recv_lines(d, 1)[0].endswith(b"] late\n")
        d.close()
        assert time.monotonic() - t0 < 3, "the check took longer than --drain-delay"
        print("HAProxy marked the draining server DOWN after %.2f s" % down)
        assert s.wait() == 0
    finally:
        hp.stop()


# --- the configurations docs/scale-out.md shows --------------------------------------

DOCS = os.path.join(conftest.ROOT, "docs")


def doc_blocks(name, lang=""):
    with open(os.path.join(DOCS, name)) as f:
        text = f.read()
    return re.findall(r"^```%s\n(.*?)^```$" % lang, text, re.M | re.S)


def test_scale_out_haproxy_configs_are_the_tested_ones():
    blocks = doc_blocks("scale-out.md")
    assert READYZ_CONFIG in blocks, "docs/scale-out.md does not show the /readyz config"
    assert PROXY_CONFIG in blocks, "docs/scale-out.md does not show test_haproxy.py's config"


def test_kubernetes_example(tmp_path):
    """The Deployment in docs/scale-out.md: probes on /healthz and /readyz
    at the admin port, and container arguments stampd accepts (checked with
    --check-config, the ports moved to free loopback ones)."""
    import yaml
    (block,) = doc_blocks("scale-out.md", "yaml")
    docs = list(yaml.safe_load_all(block))
    dep = next(d for d in docs if d["kind"] == "Deployment")
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["selector"] == dep["spec"]["template"]["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    args = [str(a) for a in c["args"]]
    assert args[args.index("--admin") + 1] == "0.0.0.0:%d" % ports["admin"]
    assert args[args.index("--listen") + 1] == "0.0.0.0:%d" % ports["line"]
    drain = int(args[args.index("--drain-delay") + 1])
    stop = int(args[args.index("--shutdown-timeout") + 1])
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain + stop
    local = [a.replace("0.0.0.0:%d" % ports["admin"], "127.0.0.1:0")
              .replace("0.0.0.0:%d" % ports["line"], "127.0.0.1:0") for a in args]
    if os.geteuid() == 0:
        local += ["--user", "root"]  # the pod runs as a user already
    r = conftest.run_stampd("--check-config", *local)
    assert (r.returncode, r.stdout) == (0, b"configuration ok\n"), r.stderr
