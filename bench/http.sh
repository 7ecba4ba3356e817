#!/bin/bash
# bench/http.sh - stampd --http (one worker) against nginx under the same wrk
# commands, and stampd --udp (one worker) against a minimal recvmmsg loop.
#
#   BUILD=build DURATION=5 bench/http.sh      (results: bench/results/http.{md,json})
#
# Pinning: the server (its master, workers, or nginx's processes) on CPU 0,
# the load generator on CPU 1.  CPU per request is the server worker's
# utime+stime from /proc/PID/stat over the measured window divided by the
# responses wrk counted, so it includes the kernel's share of the
# syscalls.  nginx: worker_processes 1, access_log off, `return 200` with a
# body of the same size as stampd's reply, keepalive_requests raised so
# that neither server closes connections during the run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
DUR=${DURATION:-5}
OUT=${OUT:-bench/results}
PY=${PYTHON:-/usr/bin/python3}
STAMPD=$ROOT/$BUILD/stampd
CLK=$(getconf CLK_TCK)
ulimit -n 20000 2>/dev/null || ulimit -n 4096

for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || { echo "http.sh: $tool not installed" >&2; exit 1; }
done
[ -x "$STAMPD" ] || { echo "http.sh: build $STAMPD first" >&2; exit 1; }

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

http_runs() { # SERVER WORKER_PID URL
    local server=$1 wpid=$2 url=$3
    taskset -c 1 wrk -t1 -c100 -d1s "$url" > /dev/null # warm-up
    wrk_run "$server" c100 "$wpid" 100 "$url"
    wrk_run "$server" c1000 "$wpid" 1000 "$url"
    wrk_run "$server" pipeline16 "$wpid" 100 -s "$ROOT/bench/http_pipeline.lua" "$url"
}

# --- stampd --http ---------------------------------------------------------
PORT=$(free_port)
taskset -c 0 "$STAMPD" --workers 1 --listen 127.0.0.1:0 --http "127.0.0.1:$PORT" \
    --admin off --max-conns 20000 2> "$TMP/stampd.log" &
SPID=$!; PIDS+=("$SPID")
wait_port "$PORT"
SW=$(wait_child "$SPID")
http_runs stampd "$SW" "http://127.0.0.1:$PORT/"
kill "$SPID"; wait "$SPID" 2>/dev/null || true

# --- nginx -----------------------------------------------------------------
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
http_runs nginx "$NW" "http://127.0.0.1:$NPORT/"
kill "$NPID"; wait "$NPID" 2>/dev/null || true

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
    --admin off 2> "$TMP/stampd-udp.log" &
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
"$PY" - "$ROWS" "$OUT" "$DUR" <<'EOF'
import json, os, platform, sys, time
rows_path, out, dur = sys.argv[1], sys.argv[2], sys.argv[3]
keys = ["server", "run", "connections", "rps", "responses", "p99_us", "cpu_us_per_req",
        "non2xx", "socket_errors"]
rows = []
for line in open(rows_path):
    f = line.rstrip("\n").split("\t")
    r = dict(zip(keys, f))
    for k in keys[2:]:
        r[k] = float(r[k])
    # wrk prints a 99th percentile of 0.00us for pipelined scripts (it times
    # batches, not requests): no figure rather than a wrong one.
    if r["p99_us"] == 0:
        r["p99_us"] = None
    rows.append(r)
by = {(r["server"], r["run"]): r for r in rows}
ratios = {}
for run in ("c100", "c1000", "pipeline16"):
    s, n = by.get(("stampd", run)), by.get(("nginx", run))
    if s and n and n["rps"] and n["cpu_us_per_req"]:
        ratios[run] = {"rps": s["rps"] / n["rps"],
                       "cpu_per_req": s["cpu_us_per_req"] / n["cpu_us_per_req"]}
        if s["p99_us"] and n["p99_us"]:
            ratios[run]["p99"] = s["p99_us"] / n["p99_us"]
s, b = by.get(("stampd-udp", "udp")), by.get(("udp-baseline", "udp"))
if s and b and b["rps"] and b["cpu_us_per_req"]:
    ratios["udp"] = {"rps": s["rps"] / b["rps"],
                     "cpu_per_req": s["cpu_us_per_req"] / b["cpu_us_per_req"]}
doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "host": platform.node(), "cpus": os.cpu_count(), "duration_s": float(dur),
       "rows": rows, "ratios_stampd_over_reference": ratios}
with open(os.path.join(out, "http.json"), "w") as f:
    json.dump(doc, f, indent=2)
with open(os.path.join(out, "http.md"), "w") as f:
    f.write("# HTTP and UDP: stampd vs nginx / a minimal recvmmsg loop\n\n")
    f.write("%s, %d CPUs, %s s per run; server pinned to CPU 0, load to CPU 1.\n\n"
            % (doc["date"], doc["cpus"], dur))
    f.write("| server | run | conns | req/s | p99 (us) | CPU us/req | non-2xx | sock errs |\n")
    f.write("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in rows:
        f.write("| %s | %s | %d | %.0f | %s | %.2f | %d | %d |\n"
                % (r["server"], r["run"], r["connections"], r["rps"],
                   "%.0f" % r["p99_us"] if r["p99_us"] else "-",
                   r["cpu_us_per_req"], r["non2xx"], r["socket_errors"]))
    f.write("\nRatios stampd / reference (CPU target <= 0.7, req/s >= 1, p99 <= 1):\n\n")
    f.write("| run | req/s | CPU per request | p99 |\n| --- | ---: | ---: | ---: |\n")
    for run, v in ratios.items():
        f.write("| %s | %.2f | %.2f | %s |\n" % (run, v["rps"], v["cpu_per_req"],
                "%.2f" % v["p99"] if "p99" in v else "-"))
    f.write("\nUDP rows: req/s = datagrams answered per second (4 sockets x 32 in "
            "flight); the non-2xx column counts datagrams without a reply.\n")
print(open(os.path.join(out, "http.md")).read())
EOF
