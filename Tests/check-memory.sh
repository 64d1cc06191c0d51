#!/usr/bin/env bash
# make check-memory: the Lua test suite with the module under valgrind
# memcheck. (AddressSanitizer would need the module and lua5.4 built with it;
# memcheck checks the shipped build as it is.) Long soak and fuzz runs are
# shortened: memcheck runs 20 to 50 times slower.
#
# valgrind 3.19 does not know pidfd_open (syscall 434) and answers ENOSYS,
# so under memcheck XPIO exercises its SIGCHLD fallback; the warning it
# prints for that is filtered out below.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
log=build/check-memory.log
mkdir -p build
export XPIO_FUZZ_SECONDS=3 XPIO_SOAK_SCALE=0.05
status=0
valgrind --error-exitcode=99 --errors-for-leak-kinds=none --track-fds=no \
  --log-file=build/valgrind.%p.log \
  lua5.4 /usr/bin/busted --helper=Tests/lua/helper.lua "$@" > "$log" 2>&1 || status=$?
tail -3 "$log"
errors=$(grep -h "ERROR SUMMARY" build/valgrind.*.log | grep -v "ERROR SUMMARY: 0 errors" || true)
if [ -n "$errors" ]; then
  grep -l "ERROR SUMMARY: [1-9]" build/valgrind.*.log | head -3 | xargs cat
  echo "check-memory: memcheck found errors"
  status=1
fi
rm -f build/valgrind.*.log
if [ "$status" -ne 0 ]; then echo "check-memory: failed ($status)"; exit 1; fi
echo "check-memory: 0 errors"
