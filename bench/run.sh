#!/usr/bin/env bash
# bench/run.sh MODE: XPIO against luv, cqueues, LuaSocket, a Lua floor and a
# C floor (TLS: against LuaSec and a C floor on OpenSSL), then a per-call
# micro-benchmark (micro.lua) of XPIO and the Lua floor. The portable build
# (build/portable/xpio.so, `make portable`; XPIO_PORTABLE_DIR to point
# elsewhere) runs XPIO's pingpong, accept-storm and spawn scripts in a
# column of its own, the price of the POSIX fallbacks (docs/PORTING.md).
#
#   MODE = quick   small counts, under a minute
#          full    the issue's counts, a few minutes
#          smoke   tiny counts, a few seconds (keeps the scripts from rotting)
#
# Each workload runs several times per library; the table of medians goes to
# stdout and to build/bench/latest.md (smoke: build/bench/smoke.md, so that
# `make test` does not overwrite a real run), followed by the goals and the
# micro-benchmark's table. The caller sets LUA_CPATH so that
# `require "xpio"` finds the module to test (make bench does), e.g.
#   LUA_CPATH="$PWD/build/?.so;;" LUA_PATH="$PWD/lua/?.lua;;" bench/run.sh quick
# Exit status: 0, or 1 when some workload failed its run or its check.
set -u -o pipefail

MODE=${1:-quick}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$ROOT/build/bench
LUA=${LUA:-lua5.4}
LUA_INCDIR=${LUA_INCDIR:-/usr/include/lua5.4}
export LUA_PATH="$HERE/lib/?.lua;${LUA_PATH:-;;}"
# The Lua floor (floor.so) is built into $OUT; nothing else there is a module.
export LUA_CPATH="$OUT/?.so;${LUA_CPATH:-;;}"

# Counts: reps, pingpong round trips, idle-scale round trips and sizes,
# bulk MiB (plain and TLS), connections, spawns, load runs, memory pairs,
# TLS handshakes, seconds per run; micro-benchmark calls per measurement and rounds.
case $MODE in
  smoke) REPS=1 PING=300    IDLE_N=200   IDLE_K="10 1000 2000"  BULK=4   CONNS=100   SPAWNS=20   LOADS=3   PAIRS=200   HANDSHAKES=20   LIMIT=60  MICRO_N=200    MICRO_ROUNDS=1 ;;
  quick) REPS=3 PING=30000  IDLE_N=8000  IDLE_K="10 1000 10000" BULK=128 CONNS=3000  SPAWNS=300  LOADS=15  PAIRS=2000  HANDSHAKES=500  LIMIT=60  MICRO_N=50000  MICRO_ROUNDS=3 ;;
  full)  REPS=5 PING=100000 IDLE_N=20000 IDLE_K="10 1000 10000" BULK=256 CONNS=20000 SPAWNS=2000 LOADS=100 PAIRS=10000 HANDSHAKES=2000 LIMIT=300 MICRO_N=200000 MICRO_ROUNDS=5 ;;
  *) echo "usage: $0 quick|full|smoke" >&2; exit 2 ;;
esac
# Issue 24's rows: seconds of wrk per HTTP and static-file run, the proxy's
# MiB, the memory rows' bursts of connections.
case $MODE in
  smoke) HTTP_SECONDS=1 HTTP_CONNS="1"    STATIC_MIB="1"    PROXY=16  BURSTS=2  BURST=20 ;;
  quick) HTTP_SECONDS=3 HTTP_CONNS="1 50" STATIC_MIB="1 64" PROXY=128 BURSTS=20 BURST=200 ;;
  full)  HTTP_SECONDS=5 HTTP_CONNS="1 50" STATIC_MIB="1 64" PROXY=256 BURSTS=40 BURST=200 ;;
esac
[ "$MODE" = smoke ] && export HTTP_WARMUP=0

mkdir -p "$OUT/logs"
RAW=$OUT/raw-$MODE.tsv
: > "$RAW"
rm -f "$OUT"/logs/*.log
say() { [ "$MODE" = smoke ] || echo "$@" >&2; }

# Peers: install the Debian packages only when one is missing.
missing=()
for pkg in lua-luv lua-cqueues lua-socket lua-posix lua-sec; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 ||
    echo "warning: could not install ${missing[*]}; their columns will say so" >&2
fi
# wrk and nginx (with Debian's Lua module, the OpenResty engine) for the
# HTTP and static-file rows: installed in quick and full modes when
# missing; smoke mode never installs them (make test stays quick and
# offline-safe): without them its cells say "cannot" and why.
WEB_PACKAGES=(wrk nginx-light libnginx-mod-http-lua)
web_missing=()
for pkg in "${WEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || web_missing+=("$pkg")
done
if [ ${#web_missing[@]} -gt 0 ] && [ "$MODE" != smoke ]; then
  echo "installing ${web_missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${web_missing[@]}"; } >&2 ||
    echo "warning: could not install ${web_missing[*]}; the HTTP rows will say so" >&2
fi
declare -A MODULE=([xpio]=xpio [luv]=luv [cqueues]=cqueues [luasocket]=socket [luasec]=ssl)
declare -A HAVE
for lib in xpio luv cqueues luasocket luasec; do
  if $LUA -e "require '${MODULE[$lib]}'" 2>"$OUT/logs/require-$lib.log"; then HAVE[$lib]=1; else HAVE[$lib]=0; fi
done
PORTABLE_DIR=${XPIO_PORTABLE_DIR:-$ROOT/build/portable}
PORTABLE_CPATH="$OUT/?.so;$PORTABLE_DIR/?.so;;"
if LUA_CPATH=$PORTABLE_CPATH $LUA -e "assert(require('xpio').platform() == 'posix', 'not the portable build')" 2>"$OUT/logs/require-portable.log"; then
  HAVE[portable]=1
else
  HAVE[portable]=0
fi
failed=0
if [ "${HAVE[xpio]}" != 1 ]; then
  echo "error: require 'xpio' fails with LUA_CPATH=$LUA_CPATH (see $OUT/logs/require-xpio.log)" >&2
  failed=1
fi

# The C floor.
HAVE[C]=1
for prog in pingpong bulk accept spawn memory loadcost micro pump; do
  if ! cc -O2 -Wall -Wextra -o "$OUT/$prog" "$HERE/c/$prog.c" 2>"$OUT/logs/cc-$prog.log"; then
    echo "error: cannot build bench/c/$prog.c (see $OUT/logs/cc-$prog.log)" >&2
    exit 1
  fi
done

# The C floor of the TLS rows links OpenSSL 3 (libssl-dev, as xpio/tls.so).
for prog in tls_bulk tls_handshake; do
  if ! cc -O2 -Wall -Wextra -o "$OUT/$prog" "$HERE/c/$prog.c" -lssl -lcrypto 2>"$OUT/logs/cc-$prog.log"; then
    echo "error: cannot build bench/c/$prog.c (see $OUT/logs/cc-$prog.log)" >&2
    exit 1
  fi
done

# The TLS rows' CA and localhost certificate, made once (lib/tls_certs.sh).
TLS_DIR=$OUT/tls
if ! "$HERE/lib/tls_certs.sh" "$TLS_DIR" 2>"$OUT/logs/tls-certs.log"; then
  echo "error: cannot make the TLS certificates (see $OUT/logs/tls-certs.log)" >&2
  exit 1
fi

# The Lua floor: XPIO's loops on the thinnest binding of its API (floor/).
if ! cc -O2 -Wall -Wextra -shared -fPIC -I"$LUA_INCDIR" -o "$OUT/floor.so" "$HERE/floor/floor.c" 2>"$OUT/logs/cc-floor.log"; then
  echo "error: cannot build bench/floor/floor.c (see $OUT/logs/cc-floor.log)" >&2
  exit 1
fi
if $LUA -e "require 'floor'" 2>"$OUT/logs/require-floor.log"; then HAVE[floor]=1; else HAVE[floor]=0; fi

# Descriptors: idle-scale and memory need many.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
ulimit -n "$hard"
max_pairs=$(( (hard - 64) / 2 ))
[ "$PAIRS" -gt "$max_pairs" ] && PAIRS=$max_pairs

# cell ROW LIB CMD...: run CMD REPS times, record each result line.
cell() {
  local row=$1 lib=$2; shift 2
  local log="$OUT/logs/$row-$lib.log" result i
  if [ "${HAVE[$lib]}" != 1 ]; then
    printf 'res\t%s\t%s\tcannot: %s does not load\n' "$row" "$lib" "$lib" >> "$RAW"
    return
  fi
  say "  $row: $lib"
  for ((i = 1; i <= REPS; i++)); do
    result=$(timeout "$LIMIT" "$@" 2>>"$log" | tail -n 1)
    local status=$?
    if [ $status -eq 0 ] && [[ $result =~ ^[0-9.e+-]+$ ]]; then
      printf 'res\t%s\t%s\t%s\n' "$row" "$lib" "$result" >> "$RAW"
    elif [ $status -eq 0 ] && [[ $result == cannot* ]]; then
      printf 'res\t%s\t%s\t%s\n' "$row" "$lib" "$result" >> "$RAW"
      return
    else
      printf 'res\t%s\t%s\terror\n' "$row" "$lib" >> "$RAW"
      echo "error: $row for $lib (exit $status, output '$result'); see $log" >&2
      failed=1
      return
    fi
  done
}
row() { printf 'row\t%s\t%s\t%s\t%s\n' "$@" >> "$RAW"; }
lua_cell() { local row=$1 lib=$2 script=$3; shift 3; cell "$row" "$lib" $LUA "$HERE/$lib/$script.lua" "$@"; }
# portable_cell ROW SCRIPT ARGS...: XPIO's script on the portable build.
portable_cell() { local row=$1 script=$2; shift 2; cell "$row" portable env LUA_CPATH="$PORTABLE_CPATH" $LUA "$HERE/xpio/$script.lua" "$@"; }
# rounds CMD ARGS...: runs CMD (which runs one row's cells) REPS times, each
# cell once a time: the libraries take turns, so a change in the machine's
# load during a row falls on all of them alike. Run back to back, the REPS
# runs of one library met whatever load came then, alone: on this shared
# 2-core machine a row's medians moved by 20 % between libraries that way.
rounds() {
  local reps=$REPS round
  for ((round = 1; round <= reps; round++)); do REPS=1 "$@"; done
}
# each_lib_once ROW SCRIPT ARGS...: every library, the Lua floor where it has SCRIPT, C.
each_lib_once() {
  local row=$1 script=$2; shift 2
  for lib in xpio luv cqueues luasocket; do lua_cell "$row" "$lib" "$script" "$@"; done
  [ -f "$HERE/floor/$script.lua" ] && lua_cell "$row" floor "$script" "$@"
  cell "$row" C "$OUT/$script" "$@"
}
each_lib() { rounds each_lib_once "$@"; }

printf 'meta\t%s\n' "## XPIO benchmarks ($MODE)" >> "$RAW"
printf 'meta\t%s\n' "" >> "$RAW"
printf 'meta\t%s\n' "$(nproc) CPUs, Linux $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), $($LUA -v 2>&1 | cut -d' ' -f1-2); $REPS run(s) per cell." >> "$RAW"
printf 'meta\t%s\n' "xpio $($LUA -e 'print(require("xpio").version() .. " from " .. package.searchpath("xpio", package.cpath))' 2>/dev/null || echo '?')" >> "$RAW"
printf 'meta\t%s\n' "portable column: $([ "${HAVE[portable]}" = 1 ] && echo "$PORTABLE_DIR/xpio.so (the POSIX fallbacks)" || echo "not run ($PORTABLE_DIR/xpio.so does not load: make portable)")" >> "$RAW"
printf 'meta\t%s\n' "" >> "$RAW"
printf 'meta\t%s\n' "Counts: pingpong $PING round trips; idle-scale $IDLE_N round trips; bulk $BULK MiB; accept $CONNS connections; spawn $SPAWNS; load $LOADS runs; memory $PAIRS pairs; TLS bulk $BULK MiB; TLS handshakes $HANDSHAKES; micro $MICRO_N calls x $MICRO_ROUNDS rounds." >> "$RAW"

say "pingpong"
row pingpong "pingpong (round trips/s)" higher
row pingpong_sched "pingpong, xpio.sched (round trips/s)" higher pingpong
pingpong_once() {
  each_lib_once pingpong pingpong "$PING"
  portable_cell pingpong pingpong "$PING"
  lua_cell pingpong_sched xpio pingpong_sched "$PING"
}
rounds pingpong_once

say "idle-scale"
for k in $IDLE_K; do
  row "idle$k" "pingpong + $k idle fds (round trips/s)" higher
  each_lib "idle$k" pingpong "$IDLE_N" "$k"
done
set -- $IDLE_K
printf 'ratio\t%s\t%s\t%s\t%s\n' idle_scale "idle-scale: rate($3) / rate($1) (ratio)" "idle$3" "idle$1" >> "$RAW"

say "bulk"
row bulk "bulk, 64 KiB I/O, $BULK MiB total (MiB/s)" higher
each_lib bulk bulk "$BULK"

say "accept-storm"
row accept "accept-storm (conn/s)" higher
each_lib accept accept "$CONNS"
portable_cell accept accept "$CONNS"

say "spawn"
row spawn "spawn /bin/true + wait (spawns/s)" higher
each_lib spawn spawn "$SPAWNS"
portable_cell spawn spawn "$SPAWNS"
row spawn_pipes "spawn, stdin/stdout pipes (spawns/s)" higher
each_lib spawn_pipes spawn "$SPAWNS" pipes
portable_cell spawn_pipes spawn "$SPAWNS" pipes

say "load"
row load "load: require over bare lua (ms)" lower
for lib in xpio luv cqueues luasocket; do
  cell load "$lib" "$OUT/loadcost" "$LOADS" "$LUA" "${MODULE[$lib]}"
done

say "memory"
row memory "memory per idle socket pair (bytes)" lower
each_lib memory memory "$PAIRS"

# TLS (issue 20): XPIO against LuaSec and the C floor on OpenSSL; luv,
# cqueues and LuaSocket alone are not run (their cells show —).
say "tls"
tls_libs() {
  local row=$1 script=$2; shift 2
  for lib in xpio luasec; do lua_cell "$row" "$lib" "$script" "$@" "$TLS_DIR"; done
  cell "$row" C "$OUT/$script" "$@" "$TLS_DIR"
}
row tls_bulk "TLS bulk, 64 KiB I/O, $BULK MiB total (MiB/s)" higher
tls_libs tls_bulk tls_bulk "$BULK"
row tls_handshake "TLS handshakes, full, verified (handshakes/s)" higher
tls_libs tls_handshake tls_handshake "$HANDSHAKES"

# Issue 24: an HTTP/1.1 keep-alive server (12-byte body) per library and
# nginx (content_by_lua_block: the nginx_lua column; `return 200`: the C
# column, the ceiling) under wrk; static files with sendfile against
# read/write in Lua; a splice proxy against a Lua forwarder; an echo
# server's RSS after bursts of connections. Every server listens on a free
# loopback port and is stopped by its PID (bench/lib/*_run.sh).
HAVE[nginx_lua]=${HAVE[C]}
web_reason=""
command -v wrk > /dev/null || web_reason="wrk is not installed"
command -v nginx > /dev/null || web_reason="${web_reason:+$web_reason; }nginx is not installed"
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || web_reason="${web_reason:+$web_reason; }libnginx-mod-http-lua is not installed"
# fields_cell LIB ROW:K... -- CMD...: run CMD REPS times, storing field k
# of the line it prints as ROW's result (the log, also HTTP_LOG: the first
# ROW's).
fields_cell() {
  local lib=$1; shift
  local -a rows=()
  while [ "$1" != -- ]; do rows+=("$1"); shift; done
  shift
  local log="$OUT/logs/${rows[0]%%:*}-$lib.log" i result spec k
  if [ "${HAVE[$lib]}" != 1 ]; then
    for spec in "${rows[@]}"; do printf 'res\t%s\t%s\tcannot: %s does not load\n' "${spec%%:*}" "$lib" "$lib" >> "$RAW"; done
    return
  fi
  say "  ${rows[0]%%:*}: $lib"
  for ((i = 1; i <= REPS; i++)); do
    if result=$(HTTP_LOG="$log" timeout "$LIMIT" "$@" 2>>"$log" | tail -n 1) && [ -n "$result" ]; then
      local -a fields=($result)
      for spec in "${rows[@]}"; do
        k=${spec##*:}
        printf 'res\t%s\t%s\t%s\n' "${spec%%:*}" "$lib" "${fields[$((k - 1))]}" >> "$RAW"
      done
    else
      for spec in "${rows[@]}"; do printf 'res\t%s\t%s\terror\n' "${spec%%:*}" "$lib" >> "$RAW"; done
      echo "error: ${rows[0]} for $lib; see $log" >&2
      failed=1
      return
    fi
  done
}
# web_cell CONNS PATH LIB ROW:K... -- CMD...: fields_cell with
# lib/http_run.sh CONNS HTTP_SECONDS PATH CMD (fields: 1 req/s, 2 p99 ms,
# 3 user µs/req, 4 system µs/req, 5 MiB/s).
web_cell() {
  local conns=$1 path=$2 lib=$3; shift 3
  local spec
  if [ -n "$web_reason" ] && { [ "$lib" = nginx_lua ] || [ "$lib" = C ] || ! command -v wrk > /dev/null; }; then
    for spec in "$@"; do
      [ "$spec" = -- ] && break
      printf 'res\t%s\t%s\tcannot: %s\n' "${spec%%:*}" "$lib" "$web_reason" >> "$RAW"
    done
    return
  fi
  local -a rows=()
  while [ "$1" != -- ]; do rows+=("$1"); shift; done
  shift
  fields_cell "$lib" "${rows[@]}" -- "$HERE/lib/http_run.sh" "$conns" "$HTTP_SECONDS" "$path" "$@"
}
nginx_cmd() { echo "$HERE/http/nginx.sh" "$OUT/nginx-$1" "$1" ${2:+"$2"}; }

say "http"
for c in $HTTP_CONNS; do
  row "http_c$c" "HTTP keep-alive, wrk -c$c (requests/s)" higher
  row "http_c${c}_p99" "HTTP keep-alive, wrk -c$c: p99 latency (ms)" lower
  row "http_c${c}_user" "HTTP keep-alive, wrk -c$c: server user CPU (µs/request)" lower
  row "http_c${c}_sys" "HTTP keep-alive, wrk -c$c: server system CPU (µs/request)" lower
  rows=("http_c$c:1" "http_c${c}_p99:2" "http_c${c}_user:3" "http_c${c}_sys:4")
  http_once() {
    for lib in xpio luv cqueues luasocket; do
      web_cell "$c" / "$lib" "${rows[@]}" -- $LUA "$HERE/http/$lib.lua"
    done
    web_cell "$c" / nginx_lua "${rows[@]}" -- $(nginx_cmd lua)
    web_cell "$c" / C "${rows[@]}" -- $(nginx_cmd plain)
  }
  rounds http_once
done

say "static files"
# Smoke mode checks the static-file servers with XPIO's alone (each wrk
# run is a second at least).
STATIC_PEERS=1
[ "$MODE" = smoke ] && STATIC_PEERS=0
for size in $STATIC_MIB; do
  file=$OUT/static-$size.bin
  [ -f "$file" ] && [ "$(stat -c %s "$file")" = $((size << 20)) ] || head -c $((size << 20)) /dev/urandom > "$file"
  row "static_$size" "static file ${size} MiB, sendfile, wrk -c1 (MiB/s)" higher
  row "static_${size}_rw" "static file ${size} MiB, read/write in Lua, wrk -c1 (MiB/s)" higher
  static_once() {
    web_cell 1 /file xpio "static_$size:5" -- $LUA "$HERE/http/xpio.lua" sendfile "$file"
    if [ $STATIC_PEERS = 1 ]; then
      web_cell 1 /file luv "static_$size:5" -- $LUA "$HERE/http/luv.lua" sendfile "$file"
      web_cell 1 /file C "static_$size:5" -- $(nginx_cmd plain "$file")
    fi
    web_cell 1 /file xpio "static_${size}_rw:5" -- $LUA "$HERE/http/xpio.lua" rw "$file"
    if [ $STATIC_PEERS = 1 ]; then
      web_cell 1 /file luv "static_${size}_rw:5" -- $LUA "$HERE/http/luv.lua" rw "$file"
    fi
  }
  rounds static_once
done

say "proxy"
# Each run gives the rate and the proxy's own CPU per MiB (lib/proxy_run.sh).
row proxy "proxy, $PROXY MiB, splice (luv: its read/write forwarder) (MiB/s)" higher
row proxy_cpu "proxy, $PROXY MiB, splice (luv: read/write): proxy CPU, user + system (µs/MiB)" lower
row proxy_rw "proxy, $PROXY MiB, read/write through Lua strings (MiB/s)" higher
row proxy_rw_cpu "proxy, $PROXY MiB, read/write through Lua strings: proxy CPU, user + system (µs/MiB)" lower
# The C column: a blocking splice forwarder (pump forward), the floor of
# XPIO's; and the ends alone, with no forwarder between them (pump direct):
# when forwarders run near that rate, it is the ends' and the loopback
# TCP's, and the goal's verdict says how far apart two could be.
row proxy_direct "proxy, $PROXY MiB, no forwarder: the source straight to the sink (MiB/s)" higher
lua_proxy() {
  local row=$1 lib=$2 mode=$3
  fields_cell "$lib" "$row:1" "${row}_cpu:2" -- "$HERE/lib/proxy_run.sh" "$OUT/pump" "$PROXY" $LUA "$HERE/proxy/$lib.lua" "$mode"
}
proxy_once() {
  lua_proxy proxy xpio splice
  lua_proxy proxy luv rw
  lua_proxy proxy_rw xpio rw
  fields_cell C proxy:1 proxy_cpu:2 -- "$HERE/lib/proxy_run.sh" "$OUT/pump" "$PROXY" "$OUT/pump" forward
  fields_cell C proxy_direct:1 -- "$HERE/lib/proxy_run.sh" "$OUT/pump" "$PROXY" "$OUT/pump" direct
}
rounds proxy_once
printf 'ratio\t%s\t%s\t%s\t%s\n' proxy_gain "proxy: splice / read-write forwarder, MiB/s (ratio)" proxy proxy_rw >> "$RAW"
printf 'ratio\t%s\t%s\t%s\t%s\n' proxy_cpu_gain "proxy: read-write forwarder / splice, CPU per MiB (ratio)" proxy_rw_cpu proxy_cpu >> "$RAW"

say "echo memory"
# XPIO's server twice: on xpio.sched (a coroutine per connection, the
# goal's row) and on the task queue itself (a table per connection, as
# luv's callbacks), so that what the coroutines cost shows apart.
row echo_rss "echo server RSS after $BURSTS bursts of $BURST connections (KiB)" lower
row echo_rss_queue "echo server RSS after $BURSTS bursts of $BURST connections, XPIO on the task queue, no coroutines (KiB)" lower echo_rss
echo_once() {
  for lib in xpio luv; do cell echo_rss "$lib" "$HERE/lib/echo_rss.sh" "$OUT/pump" "$BURSTS" "$BURST" $LUA "$HERE/echo/$lib.lua"; done
  cell echo_rss_queue xpio "$HERE/lib/echo_rss.sh" "$OUT/pump" "$BURSTS" "$BURST" $LUA "$HERE/echo/xpio_queue.lua"
}
rounds echo_once

say "micro"
micro=$OUT/micro-$MODE.md
if [ "${HAVE[floor]}" = 1 ] && [ "${HAVE[xpio]}" = 1 ]; then
  if ! timeout "$LIMIT" $LUA "$HERE/micro.lua" "$MICRO_N" "$MICRO_ROUNDS" "$OUT/micro" > "$micro" 2>"$OUT/logs/micro.log"; then
    echo "error: micro.lua failed; see $OUT/logs/micro.log" >&2
    echo "micro-benchmark: failed" > "$micro"
    failed=1
  fi
else
  echo "micro-benchmark: not run (xpio or the Lua floor does not load)" > "$micro"
  failed=1
fi

say "sched wake-up"
wakeup=$OUT/sched-wakeup-$MODE.md
WAKEUP_N=20000
[ "$MODE" = smoke ] && WAKEUP_N=200
if [ "${HAVE[xpio]}" = 1 ]; then
  if ! timeout "$LIMIT" $LUA "$HERE/sched_wakeup.lua" "$WAKEUP_N" > "$wakeup" 2>"$OUT/logs/sched_wakeup.log"; then
    echo "error: sched_wakeup.lua failed; see $OUT/logs/sched_wakeup.log" >&2
    echo "sched wake-up: failed" > "$wakeup"
    failed=1
  fi
else
  echo "sched wake-up: not run (xpio does not load)" > "$wakeup"
  failed=1
fi

table=$OUT/latest.md
[ "$MODE" = smoke ] && table=$OUT/smoke.md
$LUA "$HERE/lib/report.lua" "$RAW" "$table" || failed=1
{ echo; cat "$micro"; echo; cat "$wakeup"; } | tee -a "$table"
[ $failed = 0 ] || echo "some workloads failed: logs in $OUT/logs/" >&2
exit $failed
