#!/usr/bin/env bash
# lib/echo_rss.sh PUMP BURSTS CONNS SERVER-CMD...: starts the echo server
# (which prints its port), sends it BURSTS bursts of CONNS connections at
# once (PUMP bursts), and prints its resident set (KiB) after them; the
# server is stopped by its PID.
set -u -o pipefail
pump=$1 bursts=$2 conns=$3; shift 3
out=$(mktemp)
"$@" > "$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
port=
for _ in $(seq 1 200); do port=$(head -n 1 "$out"); [ -n "$port" ] && break; sleep 0.05; done
[ -n "$port" ] || { echo "no port from the server" >&2; exit 1; }
"$pump" bursts "$port" "$bursts" "$conns" || exit 1
sleep 0.2   # the last closes reach the server
awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"
