#!/usr/bin/env bash
# lib/http_run.sh CONNS SECONDS PATH SERVER-CMD...: starts SERVER-CMD (which
# prints its loopback port first), drives it with wrk (CONNS connections,
# one thread, SECONDS, GET PATH, keep-alive), stops it by its PID, and
# prints one line: requests/s, p99 latency (ms), the server's user and
# system CPU per request (µs), transfer (MiB/s).
# One wrk thread: on this two-core machine a second one took the CPU the
# server needed, and every server, nginx's C `return 200` included, read
# about the same rate (the machine's sharing, not the server's work). With
# one, the server runs saturated on the other core and the rate is its own.
set -u -o pipefail
conns=$1 seconds=$2 path=$3; shift 3
out=$(mktemp)
"$@" > "$out" 2>>"${HTTP_LOG:-/dev/null}" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$out"' EXIT
port=
for _ in $(seq 1 200); do
  port=$(head -n 1 "$out" 2>/dev/null)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "no port from the server" >&2; exit 1; }
# wait until it accepts
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
tick=$(getconf CLK_TCK)
cpu() { awk '{ print $14, $15 }' "/proc/$pid/stat"; }
# a warm-up (HTTP_WARMUP seconds, default 1; smoke mode: none), then the measured run
warmup=${HTTP_WARMUP:-1}
[ "$warmup" = 0 ] || wrk -t1 -c"$conns" -d"${warmup}s" "http://127.0.0.1:$port$path" > /dev/null 2>&1
read -r u0 s0 < <(cpu)
report=$(wrk -t1 -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$port$path" 2>&1) || { echo "$report" >&2; exit 1; }
read -r u1 s1 < <(cpu)
echo "$report" >> "${HTTP_LOG:-/dev/null}"
echo "$report" | awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v tick="$tick" '
  function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
  function mib(v) { if (v ~ /GB$/) return v * 1024; if (v ~ /MB$/) return v + 0; if (v ~ /KB$/) return v / 1024; return v / 1048576 }
  /^ +99%/ { p99 = ms($2) }
  /requests in/ { total = $1 }
  /^Requests\/sec/ { rps = $2 }
  /^Transfer\/sec/ { rate = mib($2) }
  /Non-2xx|Socket errors/ { bad = $0 }
  END {
    if (total == 0 || bad != "") { print "wrk: " (bad != "" ? bad : "no requests") > "/dev/stderr"; exit 1 }
    printf "%.0f %.3f %.2f %.2f %.1f\n", rps, p99, (u1 - u0) * 1e6 / tick / total, (s1 - s0) * 1e6 / tick / total, rate
  }'
