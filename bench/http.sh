#!/bin/bash
# bench/http.sh - stampd --http (one worker) against nginx and two floors
# under the same wrk commands, and stampd --udp (one worker) against a
# minimal recvmmsg loop.
#
#   BUILD=build DURATION=4 ROUNDS=3 PAIRS=3 PAIR_S=6 bench/http.sh [BUILD]
#       results: bench/results/http.{md,json}
#
# The HTTP servers: stampd --http --workers 1; nginx (worker_processes 1,
# access_log off, `return 200` with a body of the same size as stampd's
# reply, keepalive_requests raised so that neither server closes
# connections during the run); bench-http-floor, the thinnest epoll
# responder (one read and one write per readiness event, no parsing);
# bench-http-floor-uring, the thinnest io_uring responder (multishot
# receive, one io_uring_enter per pass).  The floors show what any server
# of that design pays on this machine for the kernel's part of a request.
#
# All four run at once, each pinned to CPU 0 and idle between its runs; wrk
# is pinned to CPU 1.  Each wrk command runs ROUNDS times, the servers taking
# turns inside a round, so that a noisy neighbour hits them alike; the
# report gives the median of the rounds.  stampd and the epoll floor are
# also compared in interleaved pairs (bench/wrk_pairs.py), the target's
# measurement.  CPU per request is the server
# process's utime+stime from /proc/PID/stat over the run divided by the
# responses wrk counted, so it includes the kernel's share of the syscalls.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-${BUILD:-build}}
ROUNDS=${ROUNDS:-3}
DUR=${DURATION:-4}
PAIRS=${PAIRS:-3}
PAIR_S=${PAIR_S:-6}
OUT=${OUT:-bench/results}
PY=${PYTHON:-/usr/bin/python3}
STAMPD=$ROOT/$BUILD/stampd
CLK=$(getconf CLK_TCK)
ulimit -n 20000 2>/dev/null || ulimit -n 4096

for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || { echo "http.sh: $tool not installed" >&2; exit 1; }
done
[ -x "$STAMPD" ] || { echo "http.sh: build $STAMPD first" >&2; exit 1; }
# Started as root, stampd runs its workers only as a user it is told.
USER_ARGS=()
[ "$(id -u)" = 0 ] && USER_ARGS=(--user root)

TMP=$(mktemp -d /tmp/stampd-http-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
children() { cat "/proc/$1/task/$1/children" 2>/dev/null || true; }
wait_child() { # the first child of $1, within 5 s
    local i
    for i in $(seq 100); do
        local c; c=$(children "$1" | awk '{print $1}')
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.05
    done
    echo "http.sh: no worker under $1" >&2; return 1
}
wait_port() { # until something accepts on 127.0.0.1:$1, within 5 s
    local i
    for i in $(seq 100); do
        "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1).close()" \
            2>/dev/null && return 0
        sleep 0.05
    done
    echo "http.sh: nothing listens on $1" >&2; return 1
}

ROWS=$TMP/rows.tsv
: > "$ROWS"

# wrk_run SERVER LABEL WORKER_PID CONNS [wrk args...] URL
wrk_run() {
    local server=$1 label=$2 wpid=$3 conns=$4; shift 4
    local t0 t1 out
    t0=$(cpu_ticks "$wpid")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DUR}s" --latency "$@")
    t1=$(cpu_ticks "$wpid")
    echo "$out" > "$TMP/wrk-$server-$label.txt"
    echo "$out" | awk -v s="$server" -v l="$label" -v c="$conns" \
        -v ticks=$((t1 - t0)) -v clk="$CLK" '
        function us(v) {
            if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
            if (v ~ /s$/) return v * 1000000; return v + 0 }
        /requests in/ { total = $1 }
        /^Requests\/sec/ { rps = $2 }
        $1 == "99%" { p99 = us($2) }
        /Non-2xx/ { non2xx = $NF }
        /Socket errors/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
        END {
            cpu = ticks * 1000000 / clk
            printf "%s\t%s\t%d\t%s\t%d\t%.1f\t%.3f\t%d\t%d\n", s, l, c, rps, total,
                   p99, (total ? cpu / total : 0), non2xx + 0, errs + 0 }' >> "$ROWS"
    tail -n1 "$ROWS" >&2
}

# --- the HTTP servers, all started first ---------------------------------------
PORT=$(free_port)
taskset -c 0 "$STAMPD" --workers 1 --listen 127.0.0.1:0 --http "127.0.0.1:$PORT" \
    --admin off --max-conns 20000 "${USER_ARGS[@]}" 2> "$TMP/stampd.log" &
SPID=$!; PIDS+=("$SPID")
wait_port "$PORT"
SW=$(wait_child "$SPID")

NPORT=$(free_port)
mkdir -p "$TMP/nginx/logs"
BODY=$(printf '[%s] /' "$(LC_ALL=C date '+%a %b %e %H:%M:%S %Y')")
cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 100000000;
    default_type text/plain;
    server {
        listen 127.0.0.1:$NPORT;
        location / { return 200 "$BODY\n"; }
    }
}
EOF
taskset -c 0 nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NPID=$!; PIDS+=("$NPID")
wait_port "$NPORT"
NW=$(wait_child "$NPID")

SERVERS=("stampd $SW http://127.0.0.1:$PORT/" "nginx $NW http://127.0.0.1:$NPORT/")
for floor in http-floor http-floor-uring; do
    [ -x "$ROOT/$BUILD/bench-$floor" ] || continue
    FPORT=$(free_port)
    taskset -c 0 "$ROOT/$BUILD/bench-$floor" "$FPORT" &
    FPID=$!; PIDS+=("$FPID")
    wait_port "$FPORT"
    SERVERS+=("$floor $FPID http://127.0.0.1:$FPORT/")
done

for spec in "${SERVERS[@]}"; do # warm-up
    read -r name pid url <<< "$spec"
    taskset -c 1 wrk -t1 -c100 -d1s "$url" > /dev/null
done
for run in "c100 100" "c1000 1000" "pipeline16 100 -s $ROOT/bench/http_pipeline.lua"; do
    read -r label conns extra <<< "$run"
    for _ in $(seq "$ROUNDS"); do
        for spec in "${SERVERS[@]}"; do
            read -r name pid url <<< "$spec"
            # shellcheck disable=SC2086 # $extra is empty or "-s SCRIPT"
            wrk_run "$name" "$label" "$pid" "$conns" $extra "$url"
        done
    done
done
# stampd against the epoll floor in interleaved pairs (bench/wrk_pairs.py):
# the two wrk processes take turns every half second, so that the machine's
# drift between runs a few seconds apart (often more than the 3 % this
# comparison is about) lands on both.
PAIRS_TSV=$TMP/pairs.tsv
: > "$PAIRS_TSV"
for spec in "${SERVERS[@]}"; do
    read -r name pid url <<< "$spec"
    [ "$name" = http-floor ] && FLOOR="$name,$pid,$url"
done
if [ -n "${FLOOR:-}" ]; then
    read -r _ pid url <<< "${SERVERS[0]}"
    for run in "c100 100" "c1000 1000"; do
        read -r label conns <<< "$run"
        "$PY" "$ROOT/bench/wrk_pairs.py" "$label" "$conns" "$PAIRS" "$PAIR_S" 0.5 \
            "stampd,$pid,$url" "$FLOOR" | tee -a "$PAIRS_TSV" | cut -f1-8 >&2
    done
fi
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()

# --- UDP: stampd --udp vs the minimal recvmmsg loop ----------------------------
UDPB=$TMP/udp_baseline
cc -O2 -o "$UDPB" "$ROOT/bench/baseline/udp_baseline.c"

udp_run() { # SERVER WORKER_PID PORT
    local t0 t1 out
    taskset -c 1 "$UDPB" client "$3" 4 32 1 > /dev/null # warm-up
    t0=$(cpu_ticks "$2")
    out=$(taskset -c 1 "$UDPB" client "$3" 4 32 "$DUR")
    t1=$(cpu_ticks "$2")
    echo "$out" | awk -v s="$1" -v ticks=$((t1 - t0)) -v clk="$CLK" '{
        cpu = ticks * 1000000 / clk
        printf "%s\tudp\t4\t%.0f\t%d\t0\t%.3f\t%d\t0\n", s, $4 / $6, $4,
               ($4 ? cpu / $4 : 0), $2 - $4 }' >> "$ROWS"
    tail -n1 "$ROWS" >&2
}

UPORT=$(free_port)
taskset -c 0 "$STAMPD" --workers 1 --listen 127.0.0.1:0 --udp "127.0.0.1:$UPORT" \
    --admin off "${USER_ARGS[@]}" 2> "$TMP/stampd-udp.log" &
SPID=$!; PIDS+=("$SPID")
wait_port_udp() { grep -q "listening on" "$TMP/stampd-udp.log"; }
for i in $(seq 100); do wait_port_udp && break; sleep 0.05; done
SW=$(wait_child "$SPID")
udp_run stampd-udp "$SW" "$UPORT"
kill "$SPID"; wait "$SPID" 2>/dev/null || true

BPORT=$(free_port)
taskset -c 0 "$UDPB" server "$BPORT" &
BPID=$!; PIDS+=("$BPID")
sleep 0.2 # a plain bind; nothing to poll for a UDP socket
udp_run udp-baseline "$BPID" "$BPORT"
kill "$BPID"; wait "$BPID" 2>/dev/null || true

# --- report ----------------------------------------------------------------------
mkdir -p "$OUT"
"$PY" - "$ROWS" "$OUT" "$DUR" "$ROUNDS" "$PAIRS_TSV" "$PAIR_S" <<'EOF'
import json, os, platform, statistics, sys, time
rows_path, out, dur, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
pairs_path, pair_s = sys.argv[5], sys.argv[6]
keys = ["server", "run", "connections", "rps", "responses", "p99_us", "cpu_us_per_req",
        "non2xx", "socket_errors"]
raw = []
for line in open(rows_path):
    f = line.rstrip("\n").split("\t")
    r = dict(zip(keys, f))
    for k in keys[2:]:
        r[k] = float(r[k])
    # wrk prints a 99th percentile of 0.00us for pipelined scripts (it times
    # batches, not requests): no figure rather than a wrong one.
    if r["p99_us"] == 0:
        r["p99_us"] = None
    raw.append(r)

# One row per (server, run): medians of the rounds, errors summed, the
# spread of CPU per request kept so that noise can be seen.
groups = {}
for r in raw:
    groups.setdefault((r["server"], r["run"]), []).append(r)
rows = []
for (server, run), rs in groups.items():
    med = lambda k: statistics.median(x[k] for x in rs)
    p99s = [x["p99_us"] for x in rs if x["p99_us"] is not None]
    cpus = [x["cpu_us_per_req"] for x in rs]
    rows.append({"server": server, "run": run, "connections": rs[0]["connections"],
                 "rounds": len(rs), "rps": med("rps"), "responses": med("responses"),
                 "p99_us": statistics.median(p99s) if p99s else None,
                 "cpu_us_per_req": med("cpu_us_per_req"),
                 "cpu_min": min(cpus), "cpu_max": max(cpus),
                 "non2xx": sum(x["non2xx"] for x in rs),
                 "socket_errors": sum(x["socket_errors"] for x in rs)})
by = {(r["server"], r["run"]): r for r in rows}

def ratio(a, b):
    if not (a and b and b["rps"] and b["cpu_us_per_req"]):
        return None
    v = {"rps": a["rps"] / b["rps"], "cpu_per_req": a["cpu_us_per_req"] / b["cpu_us_per_req"]}
    if a["p99_us"] and b["p99_us"]:
        v["p99"] = a["p99_us"] / b["p99_us"]
    return v

ratios, floors = {}, {}
for run in ("c100", "c1000", "pipeline16"):
    v = ratio(by.get(("stampd", run)), by.get(("nginx", run)))
    if v:
        ratios[run] = v
    for fl in ("http-floor", "http-floor-uring"):
        v = ratio(by.get((fl, run)), by.get(("nginx", run)))
        if v:
            floors.setdefault(fl, {})[run] = v
# stampd against the epoll floor, round by round: each round runs the
# servers back to back, so the median of the per-round ratios is less
# moved by a slow stretch of the machine than the ratio of the medians.
seq = {}
for r in raw:
    seq.setdefault((r["server"], r["run"]), []).append(r["cpu_us_per_req"])
paired = {}
for run in ("c100", "c1000", "pipeline16"):
    q = [a / b for a, b in zip(seq.get(("stampd", run), []), seq.get(("http-floor", run), []))
         if a and b]
    if q:
        paired[run] = {"median": statistics.median(q), "rounds": q}
# The interleaved pairs: each pair's whole-window ratio, and the ratios of
# neighbouring turns (stampd's i-th against the floor's i-th of a pair),
# whose median is the target.
pk = ["run", "pair", "first", "server", "cpu_us_per_req", "responses", "non2xx",
      "socket_errors", "turns"]
prow = [dict(zip(pk, l.rstrip("\n").split("\t"))) for l in open(pairs_path) if l.strip()]
interleaved = {}
for run in ("c100", "c1000"):
    got = {}
    for r in prow:
        if r["run"] == run:
            got.setdefault(r["pair"], {})[r["server"]] = r
    whole, turns, bad = [], [], 0
    for p in got.values():
        a, b = p.get("stampd"), p.get("http-floor")
        if not (a and b):
            continue
        bad += sum(int(x["non2xx"]) + int(x["socket_errors"]) for x in (a, b))
        whole.append(float(a["cpu_us_per_req"]) / float(b["cpu_us_per_req"]))
        if a["turns"] != "-" and b["turns"] != "-":
            turns += [float(x) / float(y) for x, y in
                      zip(a["turns"].split(","), b["turns"].split(","))]
    if whole and turns:
        interleaved[run] = {"pairs": whole, "turns": turns, "errors": bad,
                            "median": statistics.median(turns),
                            "pairs_median": statistics.median(whole)}
v = ratio(by.get(("stampd-udp", "udp")), by.get(("udp-baseline", "udp")))
if v:
    ratios["udp"] = {"rps": v["rps"], "cpu_per_req": v["cpu_per_req"]}
doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "host": platform.node(), "cpus": os.cpu_count(), "duration_s": float(dur),
       "rounds": int(rounds), "rows": rows, "runs": raw,
       "ratios_stampd_over_reference": ratios, "ratios_floor_over_nginx": floors,
       "cpu_stampd_over_floor_paired": paired,
       "cpu_stampd_over_floor_interleaved": interleaved, "pair_s": float(pair_s)}
with open(os.path.join(out, "http.json"), "w") as f:
    json.dump(doc, f, indent=2)
with open(os.path.join(out, "http.md"), "w") as f:
    f.write("# HTTP and UDP: stampd vs nginx and the floors / a minimal recvmmsg loop\n\n")
    f.write("%s, %d CPUs, %s s per run, HTTP medians of %s interleaved rounds; "
            "server pinned to CPU 0, load to CPU 1.\n\n"
            % (doc["date"], doc["cpus"], dur, rounds))
    f.write("| server | run | conns | req/s | p99 (us) | CPU us/req (min-max) | non-2xx | sock errs |\n")
    f.write("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in rows:
        f.write("| %s | %s | %d | %.0f | %s | %.2f (%.2f-%.2f) | %d | %d |\n"
                % (r["server"], r["run"], r["connections"], r["rps"],
                   "%.0f" % r["p99_us"] if r["p99_us"] else "-",
                   r["cpu_us_per_req"], r["cpu_min"], r["cpu_max"],
                   r["non2xx"], r["socket_errors"]))
    f.write("\nRatios stampd / reference (CPU target <= 0.7, req/s >= 1, p99 <= 1):\n\n")
    f.write("| run | req/s | CPU per request | p99 |\n| --- | ---: | ---: | ---: |\n")
    for run, v in ratios.items():
        f.write("| %s | %.2f | %.2f | %s |\n" % (run, v["rps"], v["cpu_per_req"],
                "%.2f" % v["p99"] if "p99" in v else "-"))
    if floors:
        f.write("\nThe floors / nginx, CPU per request (what the thinnest server of "
                "each design reaches):\n\n| floor | c100 | c1000 | pipeline16 |\n"
                "| --- | ---: | ---: | ---: |\n")
        for fl, v in floors.items():
            f.write("| %s | %s |\n" % (fl, " | ".join(
                "%.2f" % v[run]["cpu_per_req"] if run in v else "-"
                for run in ("c100", "c1000", "pipeline16"))))
    if interleaved:
        f.write("\nstampd / http-floor, CPU per request (target <= 1.03), from interleaved "
                "pairs: both servers loaded at once by their own wrk, the two wrk taking "
                "turns every 0.5 s (the other one stopped) for %g s; the target is the "
                "median of the ratios of neighbouring turns (stampd's i-th turn against "
                "the floor's i-th turn of the same pair; a turn's responses counted by "
                "the bytes its wrk read), beside each pair's whole-window ratio:\n\n"
                "| run | median of the turns | turns | quartiles | pairs' whole windows "
                "| non-2xx + socket errors |\n| --- | ---: | ---: | --- | --- | ---: |\n"
                % float(pair_s))
        for run, v in interleaved.items():
            q = statistics.quantiles(v["turns"], n=4) if len(v["turns"]) >= 4 else None
            f.write("| %s | %.3f | %d | %s | %s | %d |\n" % (
                run, v["median"], len(v["turns"]),
                "%.3f %.3f" % (q[0], q[2]) if q else "-",
                " ".join("%.3f" % x for x in v["pairs"]), v["errors"]))
    if paired:
        f.write("\nstampd / http-floor, CPU per request, runs back to back (information): "
                "the median of the rounds' ratios, and each round's:\n\n"
                "| run | median | rounds |\n| --- | ---: | --- |\n")
        for run, v in paired.items():
            f.write("| %s | %.3f | %s |\n" % (run, v["median"],
                                              " ".join("%.3f" % x for x in v["rounds"])))
    f.write("\nUDP rows: one run each; req/s = datagrams answered per second (4 sockets "
            "x 32 in flight); the non-2xx column counts datagrams without a reply.\n")
print(open(os.path.join(out, "http.md")).read())
EOF
