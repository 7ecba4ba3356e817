"""HAProxy (Debian's haproxy package) for the integration tests: the
configurations they run, which docs/scale-out.md shows verbatim, built on
one global/defaults head; and one HAProxy process in the foreground with
its stats socket."""
import os
import shutil
import signal
import socket
import subprocess

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# What every configuration starts with; {dir} holds the stats socket.
HEAD = """\
global
    maxconn 1000
    stats socket {dir}/admin.sock mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
"""

FRONTEND = """
frontend stamp
    bind 127.0.0.1:{front}
    default_backend stampd

"""

# Two stampd servers fed PROXY v2 and v1, with health checks that carry a
# PROXY header too (test_haproxy.py).
PROXY_CONFIG = HEAD + FRONTEND + """\
backend stampd
    balance roundrobin
    server v2 127.0.0.1:{port_v2} send-proxy-v2 check check-send-proxy inter 200ms
    server v1 127.0.0.1:{port_v1} send-proxy check check-send-proxy inter 200ms
"""

# One stampd server health-checked on /readyz at its admin port
# (test_health.py).
READYZ_CONFIG = HEAD + "    timeout check 2s\n" + FRONTEND + """\
backend stampd
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host stampd
    http-check expect status 200
    server s1 127.0.0.1:{line} check port {admin} inter 200ms fall 2 rise 2
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HAProxy:
    """HAProxy on configuration `text` (whose {dir} was tmpdir), checked
    with -c first, then run with -db (in the foreground, so that the PID is
    HAProxy's own)."""

    def __init__(self, tmpdir, text):
        self.dir = tmpdir
        self.cfg = os.path.join(tmpdir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(text)
        check = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.logf = open(os.path.join(tmpdir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf)

    def command(self, cmd):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(self.dir, "admin.sock"))
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def server_status(self):
        """{server name: status} of backend stampd, from `show stat`."""
        try:
            csv = self.command("show stat")
        except OSError:
            return {}
        lines = csv.splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        head = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == "stampd" and row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row["status"]
        return out

    def stop(self, timeout=10):
        """Soft stop (SIGUSR1); the exit status, or an AssertionError after
        a kill when it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError("haproxy did not stop on SIGUSR1")
        self.logf.close()
        return self.proc.returncode

    def log(self):
        with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")
