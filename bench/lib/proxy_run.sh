#!/usr/bin/env bash
# lib/proxy_run.sh PUMP MIB PROXY-CMD...: a C sink (PUMP sink), the proxy
# (PROXY-CMD UPSTREAM-PORT, which prints its own port) and a C source
# writing MIB MiB through it; prints one line: the sink's MiB/s, then the
# proxy's own CPU per MiB moved (µs): user + system, user, system (its
# rusage, taken by PUMP time). The two C ends copy nothing through user
# space (bench/c/pump.c), so the forwarder's own copies show in the rate
# too; on loopback the kernel's TCP still bounds it, which the CPU column
# does not share. Every process is stopped by its PID.
set -u -o pipefail
pump=$1 mib=$2; shift 2
sink_out=$(mktemp) proxy_out=$(mktemp) proxy_cpu=$(mktemp)
"$pump" sink > "$sink_out" &
sink=$!
proxy=
trap 'kill $sink $proxy 2>/dev/null; wait 2>/dev/null; rm -f "$sink_out" "$proxy_out" "$proxy_cpu"' EXIT
first_line() { for _ in $(seq 1 200); do line=$(head -n 1 "$1"); [ -n "$line" ] && { echo "$line"; return 0; }; sleep 0.05; done; return 1; }
sink_port=$(first_line "$sink_out") || { echo "no port from the sink" >&2; exit 1; }
"$pump" time "$proxy_cpu" "$@" "$sink_port" > "$proxy_out" &
proxy=$!
proxy_port=$(first_line "$proxy_out") || { echo "no port from the proxy" >&2; exit 1; }
"$pump" source "$proxy_port" "$mib" || exit 1
wait "$sink" || exit 1
sink=
wait "$proxy" || exit 1
proxy=
read -r user sys < "$proxy_cpu"
awk -v rate="$(tail -n 1 "$sink_out")" -v user="$user" -v sys="$sys" -v mib="$mib" \
  'BEGIN { printf "%s %.1f %.1f %.1f\n", rate, (user + sys) * 1e6 / mib, user * 1e6 / mib, sys * 1e6 / mib }'
