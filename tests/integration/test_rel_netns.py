"""Packet loss (make test-netns, needs root): stampd runs in a network
namespace behind a veth pair whose namespace side drops 5% of TCP packets
in each direction with nftables (`numgen random mod 100 < 5 drop`; this
kernel has no netem).  TCP must hide every loss: 0 lost or corrupted
replies."""
import os
import shutil
import socket
import subprocess
import threading

import pytest

import conftest
from conftest import recv_all, wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("STAMPD_NETNS") != "1" or os.geteuid() != 0
    or not shutil.which("nft") or not shutil.which("ip"),
    reason="make test-netns (root, ip, nft)")

NS = "stampd-rel-%d" % os.getpid()
HOST_IF, NS_IF = "srA%d" % (os.getpid() % 10000), "srB%d" % (os.getpid() % 10000)
HOST_IP, NS_IP = "10.213.%d.1" % (os.getpid() % 250), "10.213.%d.2" % (os.getpid() % 250)
RULES = """table inet loss {
  chain in { type filter hook input priority 0; meta l4proto tcp numgen random mod 100 < 5 counter drop; }
  chain out { type filter hook output priority 0; meta l4proto tcp numgen random mod 100 < 5 counter drop; }
}
"""


@pytest.fixture
def lossy_ns(monkeypatch, tmp_path):
    with conftest.netns_veth(monkeypatch, tmp_path, NS, HOST_IF, NS_IF, HOST_IP,
                             NS_IP, RULES):
        yield


def test_five_percent_loss_loses_nothing(stampd, lossy_ns):
    s = stampd("--reply", "echo", listen=[NS_IP + ":0"], admin=NS_IP + ":0",
               workers=2)
    nconns, nlines = 50, 2000
    results = [None] * nconns

    def run(i):
        stream = b"".join(b"conn %d line %d\n" % (i, k) for k in range(nlines))
        c = s.connect(timeout=60)
        t = threading.Thread(target=lambda: (c.sendall(stream), c.shutdown(socket.SHUT_WR)))
        t.start()
        results[i] = (stream, recv_all(c, timeout=120))
        t.join()
        c.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(nconns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    bad = [i for i, (sent, got) in enumerate(results) if got != sent]
    assert bad == []
    drops = subprocess.run(["ip", "netns", "exec", NS, "nft", "list", "ruleset"],
                           capture_output=True, text=True).stdout
    dropped = sum(int(x) for x in __import__("re").findall(r"counter packets (\d+)", drops))
    tot = s.stats()["totals"]
    assert tot["requests_total"]["line"] == nconns * nlines
    print("netns: %d lines on %d connections, %d packets dropped, 0 lost replies"
          % (nconns * nlines, nconns, dropped))
    assert dropped > 0, "the loss rule dropped nothing"
