"""Operations: binary upgrade (SIGUSR2) and reload (SIGHUP) under a
constant-rate client load with nothing lost, a failed upgrade that leaves
the old master serving, the signals an operator sends by habit, and the
supervision of hung and crashing workers."""
import ctypes
import multiprocessing
import os
import re
import shutil
import signal
import socket
import stat
import time

import pytest

from conftest import (SANITIZED, SLOW, STAMPD, recv_lines, split_stamp,
                      wait_for)

PR_SET_CHILD_SUBREAPER = 36
LINES_PER_CONN = 4


def log_has(s, pattern, timeout=5):
    return wait_for(lambda: re.search(pattern, s.log()), timeout,
                    "log line /%s/" % pattern)


@pytest.fixture
def subreaper():
    """Masters started by an upgrade outlive the master that forked them;
    as a subreaper this process inherits them and can wait for their exit
    status."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        left = stop_inherited_masters()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    assert not left, "masters still running after the test: %s" % left


def stop_inherited_masters():
    """After a failed test: masters a handoff left running are now our
    children; stop them (TERM, then KILL) and say which they were."""
    me = os.getpid()
    with open("/proc/%d/task/%d/children" % (me, me)) as f:
        kids = [int(x) for x in f.read().split()]
    left = []
    for pid in kids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if not f.read().startswith(b"stampd: master"):
                    continue
        except OSError:
            continue
        left.append(pid)
        os.kill(pid, signal.SIGTERM)
        try:
            wait_exit(pid, timeout=20)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return left


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def wait_exit(pid, timeout=30):
    """Exit status of a child (an inherited orphan included)."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    raise AssertionError("pid %d did not exit" % pid)


# --- the load ---------------------------------------------------------------------

def load_proc(addr, rate, stop, out, tag, done):
    """Open connections at `rate` per second, each sending LINES_PER_CONN
    pipelined lines, half-closing and reading every reply until EOF.
    Counts refused connects, resets, and replies lost or corrupted."""
    host, port = addr
    counts = dict(connects=0, refused=0, resets=0, bad=0, lines=0, other=0)
    n = 0
    t0 = time.monotonic()
    while not stop.is_set():
        due = t0 + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        n += 1
        lines = [b"%s-%d-%d\n" % (tag, n, i) for i in range(LINES_PER_CONN)]
        s = socket.socket()
        s.settimeout(10 * SLOW)
        try:
            s.connect((host, port))
            counts["connects"] += 1
            s.sendall(b"".join(lines))
            s.shutdown(socket.SHUT_WR)
            buf = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            got = bytes(buf).split(b"\n")
            ok = len(got) == LINES_PER_CONN + 1 and got[-1] == b""
            for i in range(LINES_PER_CONN if ok else 0):
                m = re.match(rb"\[[^]]{24}\] (.*)$", got[i])
                ok = ok and m is not None and m.group(1) + b"\n" == lines[i]
            if ok:
                counts["lines"] += LINES_PER_CONN
                with done.get_lock():
                    done.value += 1
            else:
                counts["bad"] += 1
        except ConnectionRefusedError:
            counts["refused"] += 1
        except ConnectionResetError:
            counts["resets"] += 1
        except OSError:
            counts["other"] += 1
        finally:
            s.close()
    counts["seconds"] = time.monotonic() - t0
    out.put(counts)


class Load:
    def __init__(self, addr, rate=2400, procs=4):
        ctx = multiprocessing.get_context("fork")
        self.stop_ev = ctx.Event()
        self.q = ctx.Queue()
        self.done = ctx.Value("q", 0)
        self.procs = [ctx.Process(target=load_proc,
                                  args=(addr, rate / procs, self.stop_ev, self.q,
                                        b"p%d" % i, self.done))
                      for i in range(procs)]
        for p in self.procs:
            p.start()

    def wait_served(self, n, timeout=20):
        """Until n more connections have been served in full."""
        target = self.done.value + n
        wait_for(lambda: self.done.value >= target, timeout,
                 "%d more served connections" % n)

    def stop(self):
        self.stop_ev.set()
        res = [self.q.get(timeout=60) for _ in self.procs]
        for p in self.procs:
            p.join(timeout=30)
        total = {k: sum(r[k] for r in res) for k in res[0] if k != "seconds"}
        total["seconds"] = max(r["seconds"] for r in res)
        return total


def check_load(total, min_rate=2000):
    rate = total["connects"] / total["seconds"]
    print("load: %d connects, %d lines in %.1f s (%.0f connects/s, %.0f lines/s); "
          "refused %d, resets %d, bad %d, other %d"
          % (total["connects"], total["lines"], total["seconds"], rate,
             total["lines"] / total["seconds"], total["refused"], total["resets"],
             total["bad"], total["other"]))
    assert total["refused"] == 0 and total["resets"] == 0, total
    assert total["bad"] == 0 and total["other"] == 0, total
    assert total["lines"] == total["connects"] * LINES_PER_CONN
    if not SANITIZED:
        assert rate >= min_rate, "the load ran at %.0f connects/s" % rate


def handoffs_under_load(stampd, tmp_path, sig, rounds, extra=()):
    pidf = str(tmp_path / "stampd.pid")
    s = stampd("--pid-file", pidf, *extra, workers=2)
    host, port = s.addr().rsplit(":", 1)
    load = Load((host, int(port)))
    pids = [s.pid]
    try:
        load.wait_served(2000)
        for r in range(rounds):
            old = pids[-1]
            os.kill(old, sig)
            new = wait_for(lambda: read_pid(pidf) not in (0, old) and read_pid(pidf),
                           20, "a new master in the pid file")
            status = s.proc.wait(timeout=30 * SLOW) if old == s.pid else wait_exit(old)
            assert status == 0, "old master %d exited with %s" % (old, status)
            pids.append(new)
            load.wait_served(2000)
    finally:
        total = load.stop()
    print("masters:", pids)
    assert len(set(pids)) == rounds + 1
    # The last master serves, stops on TERM and exits 0.
    c = socket.create_connection((host, int(port)), timeout=10)
    c.sendall(b"after\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"after\n"
    c.close()
    os.kill(pids[-1], signal.SIGTERM)
    assert wait_exit(pids[-1]) == 0
    assert not os.path.exists(pidf), "the last master removes its pid file"
    return s, total


def test_five_upgrades_under_load_lose_nothing(stampd, tmp_path, subreaper):
    s, total = handoffs_under_load(stampd, tmp_path, signal.SIGUSR2, 5)
    check_load(total)
    assert len(re.findall(r"upgrade: the new master \(pid \d+\) serves", s.log())) == 5
    assert "respawning" not in s.log()


def test_three_reloads_under_load_lose_nothing(stampd, tmp_path, subreaper):
    conf = tmp_path / "stampd.conf"
    conf.write_text("# reloaded three times\nmax-line 4096\n")
    s, total = handoffs_under_load(stampd, tmp_path, signal.SIGHUP, 3,
                                   extra=("--config", str(conf)))
    check_load(total)
    assert len(re.findall(r"reload: the new master \(pid \d+\) serves", s.log())) == 3


def free_port():
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    t.close()
    return port


def test_reload_applies_the_file_and_opens_and_closes_listeners(stampd, tmp_path,
                                                                  subreaper):
    pidf = str(tmp_path / "stampd.pid")
    conf = tmp_path / "stampd.conf"
    p1, p2 = free_port(), free_port()
    conf.write_text("reply echo\nlisten 127.0.0.1:%d\n" % p1)
    # No --listen on the command line: the file's listeners count.
    s = stampd("--pid-file", pidf, "--config", str(conf), listen=[])
    assert s.addr() == "127.0.0.1:%d" % p1
    c = s.connect()
    c.sendall(b"one\n")
    assert recv_lines(c, 1) == [b"one\n"]
    # Change the reply mode and add a listener.
    conf.write_text("listen 127.0.0.1:%d\nlisten 127.0.0.1:%d\nreply stamp\n" % (p1, p2))
    os.kill(s.pid, signal.SIGHUP)
    assert s.proc.wait(timeout=20 * SLOW) == 0
    new = read_pid(pidf)
    assert new and new != s.pid
    # The connection the old worker held was closed only once idle.
    assert c.recv(100) == b""
    c.close()
    for port in (p1, p2):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"two\n")
        assert split_stamp(recv_lines(c, 1)[0])[1] == b"two\n"
        c.close()
    # Remove the first listener again.
    conf.write_text("listen 127.0.0.1:%d\n" % p2)
    os.kill(new, signal.SIGHUP)
    newer = wait_for(lambda: read_pid(pidf) not in (0, new) and read_pid(pidf), 20,
                     "the second reload")
    assert wait_exit(new) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", p1), timeout=5)
    c = socket.create_connection(("127.0.0.1", p2), timeout=10)
    c.sendall(b"three\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"three\n"
    c.close()
    os.kill(newer, signal.SIGTERM)
    assert wait_exit(newer) == 0


def test_reload_with_a_bad_file_is_refused_and_service_untouched(stampd, tmp_path):
    conf = tmp_path / "stampd.conf"
    conf.write_text("max-line 4096\n")
    s = stampd("--config", str(conf), workers=1, expect_errors=[r"reload refused"])
    before = s.worker_pids()
    conf.write_text("max-line 4096\n# fine\nmax-conns lots\n")
    s.send_signal(signal.SIGHUP)
    line = log_has(s, r"master error: SIGHUP: reload refused: .*").group(0)
    assert "%s:3:" % conf in line, line
    assert "still serving the running configuration" in line
    assert s.worker_pids() == before and s.proc.poll() is None
    c = s.connect()
    c.sendall(b"ok\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"ok\n"
    c.close()
    assert s.stop() == 0


def test_failed_upgrade_leaves_the_old_master_serving(stampd, tmp_path):
    """The binary at the path the master started from is replaced by one
    that exits 1: the upgrade fails, is logged, and nothing changes."""
    binary = str(tmp_path / "stampd")
    shutil.copy(STAMPD, binary)
    os.chmod(binary, 0o755)
    import conftest
    saved = conftest.STAMPD
    conftest.STAMPD = binary
    try:
        s = stampd(workers=1, expect_errors=[r"upgrade failed", r"cannot execute"])
    finally:
        conftest.STAMPD = saved
    broken = str(tmp_path / "broken")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(broken, 0o755)
    os.replace(broken, binary)
    before = s.worker_pids()
    s.send_signal(signal.SIGUSR2)
    log_has(s, r"master error: upgrade failed: the new master \(pid \d+\) exited "
               r"with status 1 before serving; still serving", timeout=10)
    # A file that cannot be executed at all (no x bit: even root may not).
    os.chmod(binary, stat.S_IRUSR)
    s.send_signal(signal.SIGUSR2)
    log_has(s, r"upgrade: cannot execute %s: Permission denied" % re.escape(binary))
    log_has(s, r"upgrade failed: the new master \(pid \d+\) exited with status 127 "
               r"before serving; still serving")
    assert s.worker_pids() == before and s.proc.poll() is None
    c = s.connect()
    c.sendall(b"still\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"still\n"
    c.close()
    assert s.stop() == 0


# --- signals ------------------------------------------------------------------------

def test_habitual_signals_never_kill_it(stampd, tmp_path):
    """USR1 (logrotate), WINCH, PIPE to the master and to the whole process
    group; QUIT is a graceful stop without a core dump."""
    s = stampd(workers=2, preexec=os.setpgrp)
    workers = s.worker_pids()
    for sig in (signal.SIGUSR1, signal.SIGWINCH, signal.SIGPIPE):
        s.send_signal(sig)
        os.killpg(s.pid, sig)
    log_has(s, r"SIGUSR1: no --log-file to reopen; ignored")
    # Every worker still alive and serving.
    c = s.connect()
    c.sendall(b"alive\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"alive\n"
    c.close()
    assert s.worker_pids() == workers and s.proc.poll() is None
    assert "respawning" not in s.log()
    assert s.stop(signal.SIGQUIT) == 0
    assert re.search(r"stopping: draining 2 workers .*SIGQUIT", s.log())


def test_process_group_term_is_a_stop_without_respawns(stampd):
    """What `systemctl stop` does: SIGTERM to every process at once."""
    for _ in range(3):
        s = stampd(workers=2, preexec=os.setpgrp)
        os.killpg(s.pid, signal.SIGTERM)
        assert s.wait() == 0
        assert "respawning" not in s.log(), s.log()
        assert re.search(r"master info: stopped$", s.log(), re.M)


# --- supervision ---------------------------------------------------------------------

def test_stopped_worker_is_killed_and_replaced(stampd):
    s = stampd("--worker-timeout", "1", workers=2, expect_deaths=[r"killed by signal 9"])
    victim = s.worker_pids()[0]
    os.kill(victim, signal.SIGSTOP)
    t0 = time.monotonic()
    # Connections queued on its SO_REUSEPORT socket while it is stopped.
    conns = []
    for i in range(20):
        c = s.connect()
        c.sendall(b"q%d\n" % i)
        conns.append(c)
    log_has(s, r"worker 0 \(pid %d\) has not run its loop for \d+ ms "
               r"\(--worker-timeout 1s\); killing it" % victim, timeout=5)
    log_has(s, r"worker 0 \(pid %d\) killed by signal 9 \(Killed\) \(hung\); "
               r"respawning" % victim)
    wait_for(lambda: s.worker_pids()[0] not in (0, victim), 5, "a replacement")
    took = time.monotonic() - t0
    assert took <= (1 + 1.5) * SLOW, "replaced after %.2f s" % took
    for i, c in enumerate(conns):
        assert split_stamp(recv_lines(c, 1)[0])[1] == b"q%d\n" % i
        c.close()
    w = s.stats()["workers"][0]
    assert w["worker_hangs_total"] == 1


def test_connections_of_a_killed_worker_are_counted_closed(stampd):
    s = stampd(workers=1, expect_deaths=[r"killed by signal 9"])
    conns = []
    for i in range(100):
        c = s.connect()
        c.sendall(b"x\n")
        recv_lines(c, 1)
        conns.append(c)
    wait_for(lambda: s.stat("connections_active") == 100, 5, "100 active connections")
    victim = s.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: s.stats()["workers"][0]["pid"] not in (0, victim), 5,
             "the replacement")
    w = s.stats()["workers"][0]
    assert w["connections_closed_total"]["crash"] == 100
    assert w["connections_active"] == 0
    closed = sum(w["connections_closed_total"].values())
    assert w["connections_accepted_total"] == closed
    for c in conns:
        c.close()


MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


@pytest.fixture
def migrate_req():
    """Set net.ipv4.tcp_migrate_req for one test, restored after."""
    with open(MIGRATE) as f:
        saved = f.read().strip()

    def set_to(v):
        with open(MIGRATE, "w") as f:
            f.write(str(v))
    yield set_to
    set_to(saved)


@pytest.mark.skipif(not os.access(MIGRATE, os.W_OK), reason="needs a writable sysctl")
@pytest.mark.parametrize("migrate", [0, 1])
def test_reload_to_fewer_workers_under_load(stampd, tmp_path, subreaper, migrate_req,
                                            migrate):
    """A reload from 2 workers to 1 closes one SO_REUSEPORT socket once its
    old worker has drained it.  With tcp_migrate_req=1 the kernel moves
    whatever still reaches it (queued or mid-handshake) to the remaining
    socket: nothing may be lost.  With 0, a connection that lands in the
    instant between the old worker's last accept and its close is reset;
    replies are never corrupted either way."""
    migrate_req(migrate)
    pidf = str(tmp_path / "stampd.pid")
    conf = tmp_path / "stampd.conf"
    conf.write_text("workers 2\n")
    s = stampd("--pid-file", pidf, "--config", str(conf), workers=None)
    assert s.nworkers == 2
    host, port = s.addr().rsplit(":", 1)
    load = Load((host, int(port)))
    try:
        load.wait_served(2000)
        conf.write_text("workers 1\n")
        s.send_signal(signal.SIGHUP)
        assert s.proc.wait(timeout=30 * SLOW) == 0
        new = read_pid(pidf)
        load.wait_served(2000)
    finally:
        total = load.stop()
    log_has(s, r"master info: closed 1 handed-over socket the configuration no "
               r"longer uses")
    os.kill(new, signal.SIGTERM)
    assert wait_exit(new) == 0
    print("tcp_migrate_req=%d:" % migrate, end=" ")
    if migrate:
        check_load(total)
    else:
        assert total["bad"] == 0 and total["refused"] == 0, total
        print("load: %d connects, resets %d" % (total["connects"], total["resets"]))


def test_drain_delay_keeps_serving_while_draining_is_announced(stampd):
    s = stampd("--drain-delay", "2", workers=1)
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    log_has(s, r"master info: stopping: /readyz fails now; the workers stop in 2s "
               r"\(--drain-delay; SIGTERM\)")
    assert s.stats()["draining"] == 1
    # Still accepting and answering during the delay.
    c = s.connect()
    c.sendall(b"late\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"late\n"
    c.close()
    log_has(s, r"master info: stopping: draining 1 worker", timeout=5)
    assert time.monotonic() - t0 >= 2.0
    assert s.wait() == 0


def test_group_hup_and_usr2_are_one_reload_and_one_upgrade(stampd, tmp_path,
                                                           subreaper):
    """Sent to the whole process group, HUP and USR2 reach the workers too:
    they ignore them, and only the master acts."""
    pidf = str(tmp_path / "stampd.pid")
    s = stampd("--pid-file", pidf, workers=2, preexec=os.setpgrp)
    masters = [s.pid]
    for sig, what in ((signal.SIGHUP, "reload"), (signal.SIGUSR2, "upgrade")):
        old = masters[-1]
        os.killpg(s.pid, sig)
        new = wait_for(lambda: read_pid(pidf) not in (0, old) and read_pid(pidf), 20,
                       "the new master of the %s" % what)
        status = s.proc.wait(timeout=30 * SLOW) if old == s.pid else wait_exit(old)
        assert status == 0
        masters.append(new)
        log_has(s, r"%s: the new master \(pid %d\) serves" % (what, new))
    assert "killed by signal" not in s.log() and "respawning" not in s.log()
    host, port = s.addr().rsplit(":", 1)
    c = socket.create_connection((host, int(port)), timeout=10)
    c.sendall(b"x\n")
    assert split_stamp(recv_lines(c, 1)[0])[1] == b"x\n"
    c.close()
    os.killpg(s.pid, signal.SIGTERM)
    assert wait_exit(masters[-1]) == 0


def test_crash_loop_is_reported_once(stampd):
    """A slot whose worker dies 3 times within 30 s is crash-looping (the
    state /healthz reports); the master says so once."""
    s = stampd(workers=2, expect_deaths=[r"killed by signal 9"])
    for n in range(4):
        victim = wait_for(lambda: s.worker_pids()[1], 5, "worker 1")
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: s.worker_pids()[1] not in (0, victim), 5, "a replacement")
        looping = re.findall(r"master warn: worker 1 is crash-looping: 3 deaths "
                             r"within 30 s", s.log())
        assert len(looping) == (1 if n >= 2 else 0), s.log()
    assert "worker 0 is crash-looping" not in s.log()
    assert s.stats()["workers"][1]["worker_restarts_total"] == 4
