#!/usr/bin/env bash
# bench/redis/run.sh MODE: redis-lua (unmodified) over xpio.luasocket with 1
# and 10 tasks, against redis-lua over plain LuaSocket (one connection) and
# `redis-benchmark -c 10` as the reference, all against one redis-server
# started here on a free loopback port and stopped by its pid. Prints a table
# of medians and the issue's goals (issue 22):
#   xpio.luasocket, 10 tasks >= 1.5 x plain LuaSocket
#   xpio.luasocket, 1 task   >= 0.9 x plain LuaSocket
# MODE: smoke (tiny counts), quick, full. The caller sets LUA_CPATH/LUA_PATH
# so that xpio and xpio.luasocket are found (make bench-redis does).
set -u -o pipefail

MODE=${1:-quick}
HERE=$(cd "$(dirname "$0")" && pwd)
LUA=${LUA:-lua5.4}
export LUA_PATH="$HERE/../lib/?.lua;${LUA_PATH:-;;}"
case $MODE in
  smoke) REPS=1 OPS=200 ;;
  quick) REPS=3 OPS=20000 ;;
  full)  REPS=5 OPS=100000 ;;
  *) echo "usage: $0 smoke|quick|full" >&2; exit 2 ;;
esac

PORT=$($LUA -e 'local s = require("xpio").socket("TCP") s:bind("127.0.0.1:0") print((s:getsockname():match(":(%d+)$")))')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null' EXIT
for _ in $(seq 1 300); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$PORT" ping >/dev/null || { echo "redis-server did not start" >&2; exit 1; }

failed=0
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
run() { # label impl tasks
  local values=() v
  for _ in $(seq 1 "$REPS"); do
    if ! v=$(timeout 300 "$LUA" "$HERE/client.lua" "$2" "$3" "$OPS" "$PORT"); then
      echo "error: $1 failed" >&2; failed=1; v=0
    fi
    values+=("$v")
  done
  printf '%s\n' "${values[@]}" | median
}

plain=$(run "plain LuaSocket" luasocket 1)
one=$(run "xpio.luasocket, 1 task" xpio 1)
ten=$(run "xpio.luasocket, 10 tasks" xpio 10)
reference=$(redis-benchmark -p "$PORT" -c 10 -n "$OPS" -t set,get --csv 2>/dev/null |
  awk -F, 'NR > 1 { gsub(/"/, "", $2); sum += $2; n++ } END { if (n) print sum / n; else print 0 }')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
goal() { awk -v r="$(ratio "$2" "$plain")" -v g="$3" -v l="$1" 'BEGIN { printf "| %s >= %s x plain LuaSocket | %s | %s |\n", l, g, r, (r + 0 >= g ? "met" : "short") }'; }
cat <<TABLE
| redis-lua, SET+GET, $OPS commands | commands/s | / plain LuaSocket |
|---|---:|---:|
| plain LuaSocket, 1 connection | $plain | 1.00 |
| xpio.luasocket, 1 task | $one | $(ratio "$one" "$plain") |
| xpio.luasocket, 10 tasks | $ten | $(ratio "$ten" "$plain") |
| redis-benchmark -c 10 (C, reference) | $reference | $(ratio "$reference" "$plain") |

| goal (issue 22) | measured | |
|---|---:|---|
TABLE
goal "xpio.luasocket, 10 tasks" "$ten" 1.5
goal "xpio.luasocket, 1 task" "$one" 0.9
exit $failed
