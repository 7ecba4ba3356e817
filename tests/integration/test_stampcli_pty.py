"""stampcli on a terminal: libedit line editing and history (the Up arrow
recalls the previous line instead of sending ESC [ A to the server), the
history file kept across sessions, and reply bytes that would drive the
terminal shown escaped.  Each child runs on a pseudo-terminal from
os.openpty; every read is bounded by select and a deadline."""
import os

from conftest import STAMPD, STAMP_PREFIX_RE, Term, wait_for

STAMPCLI = os.path.join(os.path.dirname(STAMPD), "stampcli")
UP = b"\x1b[A"


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
