#!/bin/sh
# The out-of-memory sweep (issue 14): builds Tests/oom/oom_host into
# build/oom/ and runs every scenario under it, each allocation of the
# scenario failing in turn (see oom_host.c for what each run checks).
#
#   Tests/oom/run.sh [quick]   about 40 points per scenario and mode (make test)
#   Tests/oom/run.sh full      every point, both modes, and the variants
#                              (poll backend, no pidfds)
#   Tests/oom/run.sh bugs      the repros of the bugs the sweep found
#                              (README.md); each should fail until fixed
#
# LUA_CPATH must find xpio.so and LUA_PATH lua/?.lua (the Makefile's
# LUA_ENV); this script puts Tests/oom/?.lua in front. Environment:
#   OOM_SKIP="a b"   scenarios (or scenario:variant) not to run
#   OOM_OFFSET=n     quick mode: which points of each stride (default 0)
#   OOM_POINTS=n     quick mode: points per scenario and mode (default 40)
#   OOM_DEBUG_LIB=f  the unstripped library xpio.so was stripped from
#                    (default .build/release/libxpio.so), to name frames;
#                    the link's object list is looked for beside it
#   CC, LUA_INCDIR   the compiler and lua.h's directory; LUA the interpreter
#
# Beyond each run's checks (oom_host.c), the frames of xpio.so on the stack
# of every failing allocation are collected (-S) and named with addr2line:
# each must be a function of the C glue (Sources/CLua/*.c, the generated Glue.c). That is the
# design's claim seen from the inside: the Lua API, which raises the memory
# error, is never called with a Swift frame on the stack. And no object
# linked into the module but the C glue's refers to a Lua API symbol.
# Exit status: 0 when every scenario passed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-quick}
out="$root/build/oom"
host="$out/oom_host"
: "${LUA_CPATH:?LUA_CPATH must find xpio.so (the Makefile sets it)}"
LUA_PATH="$here/?.lua;${LUA_PATH:-;;}"
export LUA_CPATH LUA_PATH

mkdir -p "$out"
${CC:-cc} -O1 -g -Wall -Wextra -rdynamic -I"${LUA_INCDIR:-/usr/include/lua5.4}" \
  -o "$host" "$here/oom_host.c" "$here/oom_check.c" -llua5.4 -ldl || exit 1

# -P: pin xpio.so across lua_close. Without it a scenario that leaves an
# XPIO thread running dies after lua_close (the unload bug, README.md);
# the pin lets the sweep test everything else. `bugs` runs without it.
PRELOAD="-P -p xpio -p oomlib"
failed=0
start=$(date +%s)
frames="$out/frames.txt"
: > "$frames"

# run NAME VARIANT ENV HOST-OPTIONS...: one scenario, one variant, both modes.
run() {
  name=$1 variant=$2 env=$3
  shift 3
  for skip in ${OOM_SKIP:-}; do
    if [ "$skip" = "$name" ] || [ "$skip" = "$name:$variant" ]; then
      echo "$name ($variant): skipped (OOM_SKIP)"
      return
    fi
  done
  case $mode in
    quick) sweep="-n ${OOM_POINTS:-40} -o ${OOM_OFFSET:-0}" ;;
    *) sweep="" ;;
  esac
  label=$name
  [ "$variant" = default ] || label="$name/$variant"
  for m in persist once; do
    # shellcheck disable=SC2086 # options are lists on purpose
    env $env "$host" -q -S -m $m -l "$label" $sweep "$@" "$here/$name.lua" > "$out/last.txt"
    [ $? -eq 0 ] || failed=$((failed + 1))
    grep -v ": xpio frames:" "$out/last.txt"
    sed -n 's/^.*: xpio frames://p' "$out/last.txt" | tr ' ' '\n' | grep . >> "$frames"
  done
}

# The same claim from the link: no object of the module but the C glue's
# refers to a lua_ or luaL_ symbol. The C glue is the CLua target: its
# files in Sources/CLua, and Glue.c, which the XPIOGlue plugin generates
# into it (each entry's C function).
check_static() {
  lib=${OOM_DEBUG_LIB:-$root/.build/release/libxpio.so}
  list="$(dirname "$lib")/xpio.product/Objects.LinkFileList"
  if [ ! -f "$list" ]; then
    echo "static: skipped (no $list)"
    return
  fi
  found=$(while read -r f; do
    case $f in */CLua.build/* | */CLua/destination/XPIOGlue/Glue.c.o) continue ;; esac
    nm -u "$f" 2>/dev/null | grep -E ' (lua|luaL)_' | sed "s|^ *U |$(basename "$f"): |"
  done < "$list")
  if [ -n "$found" ]; then
    echo "static: objects outside Sources/CLua call the Lua API:"
    echo "$found"
    failed=$((failed + 1))
  else
    echo "static: $(grep -vc '/CLua.build/\|/CLua/destination/XPIOGlue/' "$list") objects outside the C glue, none refers to lua_* or luaL_*"
  fi
}

# Names the collected frames; fails on one outside Sources/CLua.
check_frames() {
  so=$(${LUA:-lua5.4} -e 'print((package.searchpath("xpio", package.cpath)))' 2>/dev/null)
  lib=${OOM_DEBUG_LIB:-$root/.build/release/libxpio.so}
  if [ -z "$so" ] || [ ! -f "$lib" ] || ! strip --strip-unneeded -o "$out/stripped.so" "$lib" 2>/dev/null ||
     ! cmp -s "$out/stripped.so" "$so"; then
    echo "frames: not named (no unstripped library matching $so; set OOM_DEBUG_LIB)"
    return
  fi
  sort -u "$frames" > "$out/frames.sorted"
  total=$(wc -l < "$out/frames.sorted")
  # addr2line -f -i: a function line, then its file:line, for each inlined level.
  xargs addr2line -f -i -e "$lib" < "$out/frames.sorted" | paste - - > "$out/frames.named"
  outside=$(grep -v '/Sources/CLua/[a-z]*\.c:\|/CLua/destination/XPIOGlue/Glue\.c:' "$out/frames.named")
  functions=$(cut -f1 "$out/frames.named" | sort -u | tr '\n' ' ')
  if [ -n "$outside" ]; then
    echo "frames: $total distinct xpio.so frames at failing allocations; OUTSIDE THE C GLUE:"
    echo "$outside"
    failed=$((failed + 1))
  else
    echo "frames: $total distinct xpio.so frames at failing allocations, all in the C glue: $functions"
  fi
}

case $mode in
  quick|full)
    run sockets default "" $PRELOAD
    run tqueue default "" $PRELOAD
    run sched_echo default "" $PRELOAD -p xpio.sched -p xpio.run
    run spawn default "" $PRELOAD
    run resolve default "" $PRELOAD -w 300 # no children: a short settle
    run readline default "" $PRELOAD
    run recvfds default "" $PRELOAD
    run transfer default "XPIO_OOM_FILE=$out/transfer.txt" $PRELOAD
    run signals default "" $PRELOAD
    run load default "" -P -p -
    # TLS: certificates made once for every run of the scenario.
    if [ ! -f "$out/tls/ca.pem" ]; then "$root/Tests/tls/make_certs.sh" "$out/tls" > /dev/null || exit 1; fi
    run tls default "XPIO_OOM_TLS=$out/tls" $PRELOAD
    if [ "$mode" = full ]; then
      # The poll backend; the SIGCHLD fallback, whose pipe and handler are
      # made once per process (-W: warm up before the baselines).
      for s in tqueue sched_echo signals sockets; do
        extra=""; [ $s = sched_echo ] && extra="-p xpio.sched -p xpio.run"
        run $s poll "XPIO_BACKEND=poll" $PRELOAD $extra
      done
      run spawn nopidfd "XPIO_NO_PIDFD=1" -W $PRELOAD
      run sched_echo nopidfd "XPIO_NO_PIDFD=1" -W $PRELOAD -p xpio.sched -p xpio.run
    fi
    check_frames
    check_static
    ;;
  bugs)
    # Each repro fails (a leak, a wrong answer or a crash) until its bug is
    # fixed; README.md has the details.
    "$host" -q -P -p xpio "$here/bug_recvfds_leak.lua" || failed=$((failed + 1))
    "$host" -q -m once -P -p xpio "$here/bug_wait_reuse.lua" || failed=$((failed + 1))
    "$host" -q -m once -P -p xpio "$here/bug_when_stale.lua" || failed=$((failed + 1))
    XPIO_RESOLVER_DELAY=100 "$host" -c -P -p xpio -w 300 "$here/bug_resolve_fds.lua" || failed=$((failed + 1))
    "$host" -c -p xpio "$here/bug_unload.lua" || failed=$((failed + 1))
    XPIO_NO_PIDFD=1 "$host" -c -X -p xpio "$here/bug_unload_sigchld.lua" || failed=$((failed + 1))
    XPIO_NO_PIDFD=1 "$host" -c -P -p xpio "$here/bug_reload_sigchld.lua" || failed=$((failed + 1))
    ;;
  *) echo "usage: $0 [quick|full|bugs]"; exit 2 ;;
esac

echo "oom sweep ($mode): $failed failed sweep(s), $(($(date +%s) - start)) s"
[ "$failed" -eq 0 ]
