"""
`make install` and `make uninstall` (mk/install.mk) into a staging
directory, as a package build does, and the manual pages they install:
every file lands where it should with the right mode, the installed server
runs, uninstall removes every file again, the pages pass groff's lint, and
every option that `--help` lists is documented in the program's page.
"""
import os
import re
import stat
import subprocess

import pytest

from conftest import ROOT, STAMPD

MAN_PAGES = {"stampd": "man/stampd.8", "stampctl": "man/stampctl.1",
             "stampcli": "man/stampcli.1", "stampbench": "man/stampbench.1"}
# Options `--help` prints: long ones anywhere, short ones where a line starts
# with them ("  -h, --help").
LONG_OPT_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SHORT_OPT_RE = re.compile(r"^\s+(-[A-Za-z])\b", re.M)


def make(*args, timeout=600):
    """Run make in the source tree, free of any enclosing make's flags
    (jobserver, command-line variables); the user's CFLAGS, which the
    Makefile exports as STAMPD_USER_CFLAGS, stay in the environment, so the
    build it finds is the one `make` left, not rebuilt."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT] + list(args),
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout.decode(errors="replace")[-3000:]
    return r.stdout.decode()


def files_under(top):
    """Every non-directory path under top, relative to it."""
    out = set()
    for d, _, names in os.walk(top):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


def expected_files():
    """What `make install PREFIX=/usr` must write, relative to DESTDIR."""
    want = {"usr/sbin/stampd": 0o755,
            "usr/bin/stampctl": 0o755,
            "usr/bin/stampcli": 0o755,
            "usr/bin/stampbench": 0o755,
            "usr/share/man/man8/stampd.8": 0o644,
            "usr/share/man/man1/stampctl.1": 0o644,
            "usr/share/man/man1/stampcli.1": 0o644,
            "usr/share/man/man1/stampbench.1": 0o644,
            "usr/share/doc/stampd/LICENSE": 0o644,
            "usr/share/doc/stampd/README.md": 0o644}
    for unit in ("stampd.service", "stampd.socket"):
        if os.path.exists(os.path.join(ROOT, "contrib", "systemd", unit)):
            want["usr/lib/systemd/system/" + unit] = 0o644
    if os.path.exists(os.path.join(ROOT, "contrib", "stampd.conf")):
        want["usr/share/doc/stampd/examples/stampd.conf"] = 0o644
    return want


def test_install_and_uninstall_into_destdir(tmp_path):
    dest = str(tmp_path / "stage")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr")

    want = expected_files()
    assert files_under(dest) == set(want)
    for rel, mode in want.items():
        st = os.stat(os.path.join(dest, rel))
        assert stat.S_IMODE(st.st_mode) == mode, rel
    for page in MAN_PAGES.values():
        name = os.path.basename(page)
        section = "man" + name.rsplit(".", 1)[1]
        with open(os.path.join(ROOT, page), "rb") as a, \
                open(os.path.join(dest, "usr/share/man", section, name), "rb") as b:
            assert a.read() == b.read(), page
    # The units start the binary just installed, not one under /usr/local.
    for rel in want:
        if rel.startswith("usr/lib/systemd/"):
            with open(os.path.join(dest, rel)) as f:
                text = f.read()
            assert "/usr/local/sbin/" not in text and "/usr/local/bin/" not in text, rel

    r = subprocess.run([os.path.join(dest, "usr/sbin/stampd"), "--version"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    assert re.match(rb"stampd \d+\.\d+\.\d+ ", r.stdout), r.stdout
    for tool in ("stampctl", "stampcli", "stampbench"):
        r = subprocess.run([os.path.join(dest, "usr/bin", tool), "--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        assert r.returncode == 0 and r.stdout, tool

    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    assert files_under(dest) == set()
    assert not os.path.exists(os.path.join(dest, "usr/share/doc/stampd"))


@pytest.mark.parametrize("target", ["install", "uninstall"])
def test_every_path_written_or_removed_is_under_destdir(tmp_path, target):
    """What the recipes would run (make -n): every absolute path in them
    lies under DESTDIR, so a staged install touches nothing else."""
    dest = str(tmp_path / "stage")
    out = make("-n", target, "DESTDIR=" + dest, "PREFIX=/usr")
    paths = [w for w in re.split(r"[\s;]+", out) if w.startswith("/")]
    assert paths, out
    assert [p for p in paths if not p.startswith(dest + "/")] == [], out


def test_uninstall_of_nothing_installed_succeeds(tmp_path):
    make("uninstall", "DESTDIR=" + str(tmp_path), "PREFIX=/usr")
    assert files_under(str(tmp_path)) == set()


@pytest.mark.parametrize("page", sorted(MAN_PAGES.values()))
def test_man_page_lints_and_renders(page):
    path = os.path.join(ROOT, page)
    r = subprocess.run(["groff", "-ww", "-z", "-man", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0 and r.stdout == b"", r.stdout
    r = subprocess.run(["man", "-l", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30,
                       env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
                    "SEE ALSO"):
        assert re.search("^" + section + "$", text, re.M), (page, section)


def page_text(page):
    """The page's source with font escapes dropped and \\- as -."""
    with open(os.path.join(ROOT, page)) as f:
        src = f.read()
    return re.sub(r"\\f[BIRP]", "", src).replace("\\-", "-")


def help_options(binary):
    r = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    return set(LONG_OPT_RE.findall(text)) | set(SHORT_OPT_RE.findall(text))


def tool_binary(name):
    """The program beside the server under test, else in build/."""
    for d in (os.path.dirname(STAMPD), os.path.join(ROOT, "build")):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


@pytest.mark.parametrize("name", sorted(MAN_PAGES))
def test_every_help_option_is_in_the_man_page(name):
    binary = STAMPD if name == "stampd" else tool_binary(name)
    if binary is None:
        pytest.skip(name + " not built here")
    opts = help_options(binary)
    assert opts, "no option found in --help"
    text = page_text(MAN_PAGES[name])
    missing = sorted(o for o in opts
                     if not re.search(re.escape(o) + r"(?![\w-])", text))
    assert missing == [], "%s: not in %s: %s" % (name, MAN_PAGES[name], missing)
