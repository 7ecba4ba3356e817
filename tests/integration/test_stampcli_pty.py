"""stampcli on a terminal: libedit line editing and history (the Up arrow
recalls the previous line instead of sending ESC [ A to the server), the
history file kept across sessions, and reply bytes that would drive the
terminal shown escaped.  Each child runs on a pseudo-terminal from
os.openpty; every read is bounded by select and a deadline."""
import os
import re
import select
import signal
import subprocess
import termios
import time

from conftest import SLOW, STAMPD, STAMP_PREFIX_RE, wait_for

STAMPCLI = os.path.join(os.path.dirname(STAMPD), "stampcli")
UP = b"\x1b[A"


class Term:
    """stampcli with stdin, stdout and stderr on one pseudo-terminal."""

    def __init__(self, argv, env=None, stdout=None):
        master, slave = os.openpty()
        e = dict(os.environ, TERM="xterm", LC_ALL="C.UTF-8")
        e.update(env or {})
        self.proc = subprocess.Popen(argv, stdin=slave,
                                     stdout=slave if stdout is None else stdout,
                                     stderr=slave, env=e, start_new_session=True)
        os.close(slave)
        self.fd = master
        self.buf = b""     # everything read, for the assertions' messages
        self.pos = 0       # where the next expect starts looking

    def expect(self, pattern, timeout=10):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in %r" % (pattern, self.buf[self.pos:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError("EOF before %r in %r" % (pattern, self.buf))
                self.buf += chunk

    def prompt(self, timeout=10):
        """The prompt, and libedit's raw mode on.  libedit prints the prompt
        before it switches the terminal out of canonical mode; keys typed in
        between would meet the kernel's line discipline instead (echoed as
        ^[[A, erased by it), so wait for the mode: the master side of a
        Linux pty reads the slave's termios."""
        self.expect(rb">>> ", timeout)
        wait_for(lambda: not termios.tcgetattr(self.fd)[3] & termios.ICANON,
                 timeout, "libedit's raw mode")

    def send(self, data):
        os.write(self.fd, data)

    def wait(self, timeout=10):
        """Exit status, draining the terminal meanwhile."""
        deadline = time.monotonic() + timeout * SLOW
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("stampcli did not exit: %r" % self.buf)
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:
                    pass
        os.close(self.fd)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            os.close(self.fd)


def lines_received(s):
    return s.stats()["totals"]["requests_total"]["line"]


def test_up_arrow_recalls_history(stampd, tmp_path):
    s = stampd("--reply", "echo", workers=1)
    hist = str(tmp_path / "history")
    t = Term([STAMPCLI, "--history", hist, s.addr()])
    try:
        t.prompt()
        t.send(b"first line\r")
        t.expect(rb"\r\nfirst line\r?\n")
        t.prompt()
        # Up recalls "first line"; Enter sends it again.  With no line
        # editing the server would echo the arrow's bytes back instead.
        t.send(UP + b"\r")
        t.expect(rb"\r\nfirst line\r?\n")
        t.prompt()
        # Editing the recalled line: Up, Backspace x4, new text.
        t.send(UP + b"\x7f" * 4 + b"word\r")
        t.expect(rb"\r\nfirst word\r?\n")
        t.prompt()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    assert lines_received(s) == 3
    assert b"\\x1b[A" not in t.buf and b"\x1b[A\r\n" not in t.buf
    # The history file outlives the session: a new one recalls the line.
    # (libedit's file format: a header line, then each entry with its
    # blanks encoded as by strvis(3).)
    assert open(hist).read().split("\n")[-2] == "first\\040word"
    t = Term([STAMPCLI, s.addr()], env={"STAMPCLI_HISTORY": hist})
    try:
        t.prompt()
        t.send(UP + b"\r")
        t.expect(rb"\r\nfirst word\r?\n")
        t.prompt()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    assert lines_received(s) == 4


def test_replies_shown_escaped_on_a_terminal(stampd, tmp_path):
    """A reply holding escape codes (here the server echoes them) is shown
    as text: ESC as \\x1b, BEL as \\x07, a tab as \\x09; --raw passes the
    bytes through."""
    s = stampd("--reply", "echo", workers=1)
    t = Term([STAMPCLI, "--history", "", s.addr()])
    try:
        t.prompt()
        # Ctrl-V quotes the next key, so ESC and BEL reach the line; a tab
        # is a character, not completion.
        t.send(b"red \x16\x1b[31mX\tY \x16\x07 end\r")
        t.expect(rb"\r\nred \\x1b\[31mX\\x09Y \\x07 end\r?\n")
        t.prompt()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    assert lines_received(s) == 1
    t = Term([STAMPCLI, "--raw", "--history", "", s.addr()])
    try:
        t.prompt()
        t.send(b"raw \x16\x1b[31mY\r")
        t.expect(rb"\r\nraw \x1b\[31mY\r?\n")
        t.prompt()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()


def test_terminal_exit_status_when_the_server_goes(stampd):
    """A server that answers ERR and closes: the ERR line is a reply; the
    next line's reply cannot come, which is reported, exit status 1."""
    s = stampd("--max-line", "8", workers=1)
    t = Term([STAMPCLI, "--history", "", s.addr()])
    try:
        t.prompt()
        t.send(b"way too long for it\r")
        t.expect(rb"ERR line too long\r?\n")
        t.prompt()
        t.send(b"again\r")
        t.expect(rb"closed by the server")
        assert t.wait() == 1
    finally:
        t.close()
    assert STAMP_PREFIX_RE.search(t.buf) is None
    wait_for(lambda: s.stats()["totals"]["enforcements_total"]["line_too_long"] == 1, 5, "the enforcement")


def test_redirected_stdout_gets_only_the_replies(stampd, tmp_path):
    """`stampcli > file` on a terminal: the prompt and the typed text stay
    on the terminal (stderr), the file gets the replies, raw."""
    s = stampd("--reply", "echo", workers=1)
    path = tmp_path / "replies"
    with open(path, "wb") as out:
        t = Term([STAMPCLI, "--history", "", s.addr()], stdout=out)
    try:
        t.prompt()
        t.send(b"one \x16\x1b!\r")
        t.prompt()
        t.send(b"two\r")
        t.prompt()
        t.send(b"\x04")
        assert t.wait() == 0
    finally:
        t.close()
    assert path.read_bytes() == b"one \x1b!\ntwo\n"
    assert b"two" in t.buf and b"one" in t.buf
