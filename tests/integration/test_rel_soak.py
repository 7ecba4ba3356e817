"""Soak (make soak, not in make test): 20,000 connections each sending one
line per second for SOAK_SECONDS (default 600), spread over 4 stampbench
processes (5,000 descriptors each) against 2 workers.  Every reply is
verified by stampbench (0 errors, 0 mismatches), and each worker's RSS and
open descriptors stay flat from minute 2 (or a fifth of a shorter run) to
the end: the median of the last third of the samples is within 5% (at
least 1 MiB) of the median of the first third; a leak shows as a trend,
which this catches while sampling noise cancels."""
import json
import os
import subprocess
import time

import pytest

from conftest import wait_for
from test_rel_util import open_fds, rss_bytes

SECONDS = int(os.environ.get("STAMPD_SOAK_SECONDS", "0"))
CONNS = int(os.environ.get("STAMPD_SOAK_CONNS", "20000"))
BENCH = os.path.join(os.path.dirname(os.environ.get("STAMPD_BIN", "")), "stampbench")
CLIENTS = 4

pytestmark = pytest.mark.skipif(SECONDS <= 0 or not os.access(BENCH, os.X_OK),
                                reason="make soak (needs stampbench)")


def test_soak(stampd):
    # Dirty pages returned at once: RSS then tracks live memory instead of
    # jemalloc's decay timer, so a trend means a leak.
    s = stampd("--max-conns", str(CONNS), "--idle-timeout", "60", workers=2,
               env={"MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"})
    pids = s.worker_pids()
    per = CONNS // CLIENTS
    # Each stampbench measures for SECONDS after its own connects: sampling
    # stops SECONDS after launch, before any of them starts closing.
    launched = time.monotonic()
    procs = [subprocess.Popen(
        [BENCH, "--json", "-c", str(per), "-R", str(per), "-d", str(SECONDS),
         "-w", "0", "--connect-timeout", "60", s.addr()],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(CLIENTS)]
    try:
        wait_for(lambda: s.stats()["totals"]["connections_active"] >= CONNS, 120,
                 "%d connections" % CONNS)
        t0 = launched
        warm = min(120.0, SECONDS / 5.0)
        samples = []   # (t, [rss per worker], [fds per worker])
        while any(p.poll() is None for p in procs):
            t = time.monotonic() - t0
            if t > SECONDS - 2:
                break
            samples.append((t, [rss_bytes(p) for p in pids], [open_fds(p) for p in pids]))
            time.sleep(min(10.0, SECONDS / 30.0))
        results = [json.loads(p.communicate(timeout=SECONDS + 120)[0]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert s.worker_pids() == pids, "a worker was restarted"
    requests = sum(r["requests"] for r in results)
    summary = [{k: r[k] for k in ("requests", "errors", "mismatches", "late",
                                  "mismatch_kinds", "connected")} for r in results]
    assert all(r["errors"] == 0 and r["mismatches"] == 0 for r in results), summary
    assert all(r["connected"] == per for r in results)
    after = [x for x in samples if x[0] >= warm]
    assert len(after) >= 3
    third = max(1, len(after) // 3)
    lines = []
    for w in range(len(pids)):
        rss = [x[1][w] for x in after]
        fds = [x[2][w] for x in after]
        r0, r1 = sorted(rss[:third])[third // 2], sorted(rss[-third:])[third // 2]
        f0, f1 = sum(fds[:third]) / third, sum(fds[-third:]) / third
        lines.append("worker %d: rss median %d -> %d KiB (%+.1f%%; samples %d..%d), "
                     "fds %d -> %d (%+.1f%%)"
                     % (w, r0 / 1024, r1 / 1024, (r1 / r0 - 1) * 100,
                        min(rss) >> 10, max(rss) >> 10, f0, f1, (f1 / f0 - 1) * 100))
        # 5%, but never finer than 1 MiB: a worker holding 10,000 idle
        # connections is only a few MiB, and the allocator moves whole
        # extents in and out of residence.
        assert abs(r1 - r0) <= max(0.05 * r0, 1 << 20), lines[-1]
        assert abs(f1 / f0 - 1) <= 0.05, lines[-1]
    print("soak: %d connections, %d s, %d requests verified, 0 errors"
          % (CONNS, SECONDS, requests))
    print("\n".join(lines))
    print("rss samples (KiB):", [[x[1][w] >> 10 for x in after] for w in range(len(pids))])
