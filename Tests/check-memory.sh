#!/usr/bin/env bash
# make check-memory: the Lua test suite with the module under valgrind
# memcheck. (AddressSanitizer would need the module and lua5.4 built with it;
# memcheck checks the shipped build as it is.) Long soak and fuzz runs are
# shortened: memcheck runs 20 to 50 times slower.
#
# What counts is memcheck's error summary. Behaviour tests run for real in
# `make test`; under valgrind a few cannot pass and are reported, not
# counted: valgrind runs posix_spawn's vfork-style clone as a fork, so exec
# failures come back as exit 127 instead of an errno, and valgrind 3.19 does
# not know pidfd_open (syscall 434), so XPIO uses its SIGCHLD fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
log=build/check-memory.log
mkdir -p build
export XPIO_FUZZ_SECONDS=3 XPIO_SOAK_SCALE=0.05
rm -f build/valgrind.*.log
memcheck=(valgrind --errors-for-leak-kinds=none --track-fds=no --log-file="$PWD/build/valgrind.%p.log")
# The child interpreters the tests start (fuzz worker, fault and soak
# scripts) run under memcheck too: they find them through XPIO_LUA.
printf '#!/bin/sh\nexec %s lua5.4 "$@"\n' "${memcheck[*]}" > build/valgrind-lua
chmod +x build/valgrind-lua
export XPIO_LUA="$PWD/build/valgrind-lua"
status=0
"${memcheck[@]}" --error-exitcode=99 \
  lua5.4 /usr/bin/busted --helper=Tests/lua/helper.lua "$@" > "$log" 2>&1 || status=$?
if ! grep -E "successes /" "$log"; then
  tail -30 "$log"
  echo "check-memory: the test run did not finish (crash?)"
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "behaviour under valgrind differs in (not counted, see above):"
  grep -E -A1 "^(Failure|Error) ->" "$log" | grep -vE "^(Failure|Error) ->|^--" | sed 's/^/  /' || true
  status=0
fi
checked=$(grep -l "ERROR SUMMARY" build/valgrind.*.log | wc -l)
echo "check-memory: $checked interpreters ran under memcheck"
errors=$(grep -h "ERROR SUMMARY" build/valgrind.*.log | grep -v "ERROR SUMMARY: 0 errors" || true)
if [ -n "$errors" ]; then
  grep -l "ERROR SUMMARY: [1-9]" build/valgrind.*.log | head -3 | xargs cat
  echo "check-memory: memcheck found errors"
  status=1
fi
rm -f build/valgrind.*.log
if [ "$status" -ne 0 ]; then echo "check-memory: failed ($status)"; exit 1; fi
echo "check-memory: 0 errors"
