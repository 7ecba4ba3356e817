"""Operations: the --config file, -t, --pid-file, --user, --log-file and
its reopening, process titles, and journald priorities."""
import os
import pwd
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (SLOW, STAMPD, recv_lines, run_stampd, split_stamp,
                      wait_for)


def log_has(s, pattern, timeout=5):
    return wait_for(lambda: re.search(pattern, s.log()), timeout,
                    "log line /%s/" % pattern)


def echo_ok(s, text=b"hello"):
    c = s.connect()
    c.sendall(text + b"\n")
    got = split_stamp(recv_lines(c, 1)[0])[1]
    c.close()
    return got == text + b"\n"


# --- the config file -----------------------------------------------------------------

def test_config_file_sets_options_and_the_command_line_wins(stampd, tmp_path):
    conf = tmp_path / "stampd.conf"
    conf.write_text("# comment\nreply echo\n\nmax-line 64\n")
    s = stampd("--config", str(conf))
    cfg = s.stats()["config"]
    assert cfg["reply"] == "echo" and cfg["max_line"] == 64
    s2 = stampd("--config", str(conf), "--reply", "stamp")
    assert s2.stats()["config"]["reply"] == "stamp"


def test_config_error_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("reply echo\nmax-conns many\n")
    r = run_stampd("--config", str(conf))
    assert r.returncode == 2
    assert ("%s:2:" % conf) in r.stderr.decode(), r.stderr


# --- -t ------------------------------------------------------------------------------

def test_check_config_ok_and_errors(tmp_path):
    conf = tmp_path / "stampd.conf"
    conf.write_text("listen 127.0.0.1:0\nadmin 127.0.0.1:0\n")
    r = run_stampd("-t", "--config", str(conf))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"configuration ok\n"
    conf.write_text("listen 127.0.0.1:0\nmax-output lots\n")
    r = run_stampd("--check-config", "--config", str(conf))
    assert r.returncode == 2 and r.stdout == b""
    assert ("%s:2:" % conf) in r.stderr.decode()
    # Not a local address.
    r = run_stampd("-t", "--listen", "192.0.2.1:8009", "--admin", "off")
    assert r.returncode == 2
    assert "cannot bind 192.0.2.1:8009" in r.stderr.decode(), r.stderr


def test_check_config_binds_beside_a_running_stampd_but_not_a_stranger(stampd):
    s = stampd(workers=2)
    r = run_stampd("-t", "--listen", s.addr(), "--admin", s.admin)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"configuration ok\n"
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", 0))
    stranger.listen(1)
    addr = "127.0.0.1:%d" % stranger.getsockname()[1]
    r = run_stampd("-t", "--listen", addr, "--admin", "off")
    stranger.close()
    assert r.returncode == 2
    assert r.stderr.decode() == "stampd: --listen: address already in use: %s\n" % addr


# --- pid file -----------------------------------------------------------------------

def test_pid_file_written_refused_while_live_and_removed(stampd, tmp_path):
    pidf = tmp_path / "run" / "stampd.pid"
    pidf.parent.mkdir()
    s = stampd("--pid-file", str(pidf))
    assert pidf.read_text() == "%d\n" % s.pid
    r = run_stampd("--pid-file", str(pidf), "--listen", "127.0.0.1:0",
                   "--admin", "off")
    assert r.returncode == 1
    assert "stampd is running as pid %d" % s.pid in r.stderr.decode()
    assert pidf.read_text() == "%d\n" % s.pid
    assert s.stop() == 0
    assert not pidf.exists()
    # A stale file (its process is gone) is replaced.
    pidf.write_text("999999\n")
    s = stampd("--pid-file", str(pidf))
    assert pidf.read_text() == "%d\n" % s.pid
    assert s.stop() == 0
    assert not pidf.exists()


# --- user ----------------------------------------------------------------------------

def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_root_without_user_is_refused(tmp_path):
    r = subprocess.run([STAMPD, "--listen", "127.0.0.1:0", "--admin", "off"],
                       capture_output=True, timeout=10 * SLOW)
    assert r.returncode == 2
    assert r.stderr == (b"stampd: refusing to run workers as root: give --user NAME "
                        b"(or --user root to run them as root)\n")
    r = run_stampd("--user", "no-such-user-here", "--listen", "127.0.0.1:0")
    assert r.returncode == 2
    assert b"--user no-such-user-here" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_workers_drop_to_the_user_and_the_master_stays(stampd):
    nobody = pwd.getpwnam("nobody")
    s = stampd("--user", "nobody", workers=2)
    log_has(s, r"ready: 2 workers serving")  # each worker has dropped
    for pid in s.worker_pids():
        assert uid_of(pid) == [nobody.pw_uid] * 4
    assert uid_of(s.pid)[0] == 0
    assert echo_ok(s)
    assert s.stop() == 0


# --- log file ------------------------------------------------------------------------

def test_log_file_is_reopened_on_usr1(stampd, tmp_path):
    logf = tmp_path / "stampd.log"
    s = stampd("--log-file", str(logf), workers=2, ready=False)
    wait_for(lambda: logf.exists() and "listening on" in logf.read_text(), 10,
             "the start line in the log file")
    wait_for(lambda: "ready: 2 workers serving" in logf.read_text(), 10, "ready")
    assert s.log() == ""  # nothing on stderr
    logf.rename(tmp_path / "stampd.log.1")
    s.send_signal(signal.SIGUSR1)
    wait_for(lambda: logf.exists() and "reopened the log file" in logf.read_text(), 5,
             "the reopen line in the new file")
    os.kill(s.proc.pid, signal.SIGTERM)
    assert s.wait() == 0
    new = logf.read_text()
    old = (tmp_path / "stampd.log.1").read_text()
    # The workers write to the new file too.
    assert len(re.findall(r"worker \d info: draining", new)) == 2, new
    assert "draining" not in old


# --- process titles ------------------------------------------------------------------

def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0")


def test_process_titles(stampd):
    s = stampd(workers=2)
    assert cmdline(s.pid) == b"stampd: master"
    titles = sorted(cmdline(p) for p in s.worker_pids())
    assert titles == [b"stampd: worker 0", b"stampd: worker 1"]
    r = subprocess.run(["ps", "-o", "args=", "-p", str(s.pid)], capture_output=True)
    assert r.stdout.strip() == b"stampd: master"


# --- journald ------------------------------------------------------------------------

def start_with_stream(tmp_path, journal):
    logp = tmp_path / "journal.log"
    f = open(logp, "wb")
    st = os.fstat(f.fileno())
    env = dict(os.environ)
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + (0 if journal else 1))
    argv = [STAMPD, "--listen", "127.0.0.1:0", "--admin", "off", "--workers", "1"]
    if os.geteuid() == 0:
        argv += ["--user", "root"]
    p = subprocess.Popen(argv, stdout=f, stderr=f, env=env, stdin=subprocess.DEVNULL)
    f.close()
    wait_for(lambda: "ready: 1 worker serving" in logp.read_text(), 10, "ready")
    kid = int(open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()[0])
    os.kill(kid, signal.SIGKILL)
    wait_for(lambda: "respawning" in logp.read_text(), 5, "the respawn line")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20 * SLOW) == 0
    return logp.read_text().splitlines()


def test_journald_lines_carry_priorities_and_no_timestamp(tmp_path):
    lines = start_with_stream(tmp_path, journal=True)
    for line in lines:
        assert re.fullmatch(r"<[3467]>stampd\[\d+\] (master|worker \d+) "
                            r"(debug|info|warn|error): \S.*", line), line
    assert any(l.startswith("<6>") and " info: listening on " in l for l in lines)
    assert any(l.startswith("<4>") and "respawning" in l for l in lines)


def test_journal_stream_of_another_file_is_ignored(tmp_path):
    lines = start_with_stream(tmp_path, journal=False)
    assert all(re.match(r"\d{4}-\d\d-\d\dT", l) for l in lines), lines
