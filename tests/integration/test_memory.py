"""Memory per idle connection: a connection with nothing pending owns only
its slot in the worker's fd-indexed table (no input buffer, no output
ring).  Measured as the worker's RSS growth over 10k idle connections,
each of which has exchanged one line first.

Replies that the kernel takes at once are sent from the worker's staging
buffer and never allocate, so an exchange leaves nothing behind for the
allocator to cache: both readings are taken right after one more exchange
on a connection kept for that, with the ring and input gauges at zero."""
import socket

from conftest import SANITIZED, recv_exact, rss_kb, wait_for

N = 10_000
TARGET = 128  # bytes of user-space memory per idle connection at most
WARM = 600


def open_and_talk(s, n):
    conns = []
    for i in range(n):
        conns.append(s.connect())
    for i, c in enumerate(conns):
        c.sendall(b"%d\n" % i)
    for i, c in enumerate(conns):
        want = len(b"%d\n" % i)
        got = b""
        while len(got) < want:
            chunk = c.recv(want - len(got))
            assert chunk, "EOF on connection %d" % i
            got += chunk
        assert got == b"%d\n" % i
    return conns


def quiet_rss(s, pid, poke):
    """The worker's RSS after one exchange on `poke` (which the worker
    serves after every event queued before it), with no output or input
    held anywhere."""
    poke.sendall(b"p\n")
    assert recv_exact(poke, 2) == b"p\n"
    st = s.stats()["workers"][0]
    assert st["ring_bytes"] == 0 and st["input_bytes"] == 0, st
    return rss_kb(pid)


def test_rss_per_idle_connection(stampd):
    s = stampd("--reply", "echo", "--max-conns", "12000", workers=1)
    pid = s.worker_pids()[0]
    # Warm up: the allocator's first arenas, the read buffer, the pending
    # list, a full batch of events; then back to no connection at all.
    warm = open_and_talk(s, WARM)
    poke = warm.pop()
    for c in warm:
        c.close()
    wait_for(lambda: s.stat("connections_active") == 1, 10, "warm-up connections to close")
    rss0 = quiet_rss(s, pid, poke)

    conns = open_and_talk(s, N)
    try:
        wait_for(lambda: s.stat("connections_active") == N + 1, 10, "all connections accepted")
        st = s.stats()["workers"][0]
        assert st["ring_bytes"] == 0 and st["input_bytes"] == 0, st
        rss1 = quiet_rss(s, pid, poke)
        # The warm-up already touched the table slots of its descriptors,
        # which the first WARM of these connections reuse.
        per_conn = (rss1 - rss0) * 1024 / (N - WARM)
        print("worker RSS %d KiB -> %d KiB with %d idle connections: %.0f bytes each"
              % (rss0, rss1, N, per_conn))
        if not SANITIZED:  # ASan's shadow and quarantine are not ours
            assert per_conn <= TARGET, "%.0f bytes per idle connection" % per_conn
    finally:
        for c in conns:
            c.close()
        poke.close()
    wait_for(lambda: s.stat("connections_active") == 0, 20, "connections to close")
