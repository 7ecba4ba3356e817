"""--max-buffered: a worker's budget for the bytes it buffers (output rings
and held input).  Clients that pipeline short lines and never read make
every connection hold up to --max-output of replies plus a held read; past
the budget the worker stops reading connections that hold output, and past
an eighth more it closes the largest holders ("ERR out of memory", counted
as closed_memory and err_max_buffered).  Its RSS stays near the budget
however many such clients come, and a client that reads its replies on the
same worker keeps getting every reply, exactly."""
import select
import socket
import time

from conftest import (SANITIZED, SLOW, converse, parse_addr, rss_kb,
                      split_stamp, wait_for)

BUDGET_MB = 16
ATTACKERS = 60
# "x\n" becomes "[ctime] x\n": 29 bytes of reply for 2 of request, so about
# 400 KB of requests fill the kernel's buffers and then a 1 MiB ring.
FLOOD = b"x\n" * 200_000


def connect(s, rcvbuf=None):
    fam, sa = parse_addr(s.addr())
    c = socket.socket(fam, socket.SOCK_STREAM)
    if rcvbuf:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.settimeout(10 * SLOW)
    c.connect(sa)
    return c


def flood(socks, stall=0.5, timeout=60):
    """Send FLOOD on every socket without ever reading, until no socket has
    taken a byte for `stall` seconds (each is then stalled or closed).
    Returns the bytes sent."""
    sent = {c: 0 for c in socks}
    for c in socks:
        c.setblocking(False)
    last = time.monotonic()
    deadline = last + timeout * SLOW
    total = 0
    while time.monotonic() < deadline and time.monotonic() - last < stall:
        live = [c for c in socks if sent[c] is not None and sent[c] < len(FLOOD)]
        if not live:
            break
        _, ready, _ = select.select([], live, [], 0.05)
        for c in ready:
            try:
                n = c.send(FLOOD[sent[c]:sent[c] + 65536])
            except BlockingIOError:
                n = 0
            except OSError:     # shed: reset or closed
                sent[c] = None
                continue
            if n:
                sent[c] += n
                total += n
                last = time.monotonic()
    return total


def check_exact(c, n, tag):
    """n pipelined lines on a reading client: every reply, in order."""
    request = b"".join(b"%s %05d\n" % (tag, i) for i in range(n))
    replies = converse(c, request, shut=False, limit=len(request) + 27 * n)
    lines = replies.split(b"\n")
    assert lines[-1] == b"" and len(lines) == n + 1, len(lines)
    for i, line in enumerate(lines[:-1]):
        _, rest = split_stamp(line + b"\n")
        assert rest == b"%s %05d\n" % (tag, i), (i, line[:60])


def test_never_reading_clients_stay_within_the_budget(stampd):
    s = stampd("--max-buffered", "%dm" % BUDGET_MB, "--idle-timeout", "0",
               workers=1)
    pid = s.worker_pids()[0]
    good = connect(s)
    check_exact(good, 100, b"warm")
    rss0 = rss_kb(pid)

    attackers = [connect(s, rcvbuf=4096) for _ in range(ATTACKERS)]
    wait_for(lambda: s.stat("connections_active") == ATTACKERS + 1, 10,
             "every attacker accepted")
    peak = rss0
    sent = 0
    for _ in range(3):
        sent += flood(attackers)
        peak = max(peak, rss_kb(pid))
        # A well-behaved client on the same worker is served exactly,
        # during the attack as before it.
        check_exact(good, 2000, b"good")
        peak = max(peak, rss_kb(pid))
    st = s.stats()["workers"][0]
    held = st["ring_bytes"] + st["input_bytes"]
    growth_mb = (peak - rss0) / 1024
    print("%d never-reading clients sent %.1f MB: worker RSS %d -> %d KiB "
          "(+%.1f MiB, budget %d MiB); %d held now; shed %d, budget pauses %d"
          % (ATTACKERS, sent / 1e6, rss0, peak, growth_mb, BUDGET_MB, held,
             st["enforcements_total"]["max_buffered"], st["budget_pauses_total"]))
    assert st["enforcements_total"]["max_buffered"] >= 1, st
    wait_for(lambda: s.stat("connections_closed_total", "memory") >= 1, 10, "a memory close")
    assert held <= BUDGET_MB * (1 << 20) * 9 // 8, held
    if not SANITIZED:  # ASan's shadow and quarantine are not ours
        # The budget, its eighth of slack, and room for the allocator.
        assert growth_mb <= BUDGET_MB * 1.125 + 12, growth_mb

    for c in attackers:
        c.close()
    wait_for(lambda: s.stat("connections_active") == 1, 20, "the attackers to close")
    st = s.stats()["workers"][0]
    assert st["ring_bytes"] == 0 and st["input_bytes"] == 0, st
    check_exact(good, 100, b"after")
    good.close()
