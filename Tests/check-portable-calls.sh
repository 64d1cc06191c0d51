#!/usr/bin/env bash
# Tests/check-portable-calls.sh MODULE CALL... -- COMMAND...
#
# The portable build's promise (docs/PORTING.md), checked two ways:
#  - MODULE (build/portable/xpio.so) links none of the CALLs, nor glibc's
#    closefrom file action, by its undefined dynamic symbols;
#  - COMMAND, run under `strace -f -k`: XPIO's module (the caller of each
#    system call's wrapper, from its stack) makes none of them (but glibc's
#    pipe(), which is pipe2 with no flags), passes no SOCK_CLOEXEC or
#    SOCK_NONBLOCK to socket or socketpair and no MSG_NOSIGNAL to send,
#    sendto or sendmsg; and no process makes close_range (glibc's closefrom
#    action runs it in the child of posix_spawn).
# The stacks are dear: COMMAND should be a few test files. The trace, one
# line per call with its caller, stays beside MODULE (strace.log).
set -u -o pipefail

module=$1; shift
calls=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do calls+=("$1"); shift; done
[ "${1:-}" = -- ] && shift
[ ${#calls[@]} -gt 0 ] && [ $# -gt 0 ] || { echo "usage: $0 MODULE CALL... -- COMMAND..." >&2; exit 2; }

pattern=$(IFS='|'; echo "${calls[*]}|posix_spawn_file_actions_addclosefrom_np")
linked=$(nm -D --undefined-only "$module" | awk '{print $NF}' | sed 's/@.*//' | grep -Ex "$pattern")
if [ -n "$linked" ]; then
  echo "error: $module links Linux's own calls:" $linked >&2
  exit 1
fi

log=$(dirname "$module")/strace.log
traced=$(IFS=,; echo "${calls[*]}"),socket,socketpair,send,sendto,sendmsg
# -e trace with names strace does not know on this architecture is an error;
# keep the ones it knows (epoll_wait has no syscall of its own on arm64...).
known=()
for call in ${traced//,/ }; do
  strace -qq -e trace="$call" true >/dev/null 2>&1 && known+=("$call")
done
traced=$(IFS=,; echo "${known[*]}")
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
# One file per process (-ff: no interleaving), each call with its stack (-k).
if ! strace -ff -qq --seccomp-bpf -k -o "$raw/trace" -e trace="$traced" -e signal=none "$@"; then
  echo "error: the command failed under strace" >&2
  exit 1
fi
# One line per call, with the object that called the system call's wrapper
# (the second frame of its stack): "xpio.so" for XPIO's own calls,
# "libc.so.6" for glibc's inner ones (popen's pipe2, the nscd client's
# socket), which a BSD's libc makes in its own way.
awk '
  function flush() { if (line != "") print pid " " line " [from " (caller == "" ? "?" : caller) "]"; line = ""; caller = "" }
  FNR == 1 { flush(); pid = FILENAME; sub(/.*\./, "", pid) }
  /^ > / { frame++; if (frame == 2) { caller = $2; sub(/\(.*/, "", caller); sub(/.*\//, "", caller) } next }
  /^\+\+\+ / { next }
  { flush(); line = $0; frame = 0 }
  END { flush() }
' "$raw"/trace.* > "$log"

# XPIO's calls: none of the CALLs (glibc makes pipe() a pipe2 with no
# flags: that one is POSIX's pipe), no creation flags, no MSG_NOSIGNAL;
# close_range, which glibc's spawn would make in the child, from anyone.
bad=$( { grep -E '\[from xpio\.so\]$' "$log" |
           grep -E "^[0-9]+ (($pattern)\(|socket(pair)?\([^)]*SOCK_(CLOEXEC|NONBLOCK)|send(to|msg)?\(.*MSG_NOSIGNAL)" |
           grep -Ev "^[0-9]+ pipe2\(\[[0-9]+, [0-9]+\], 0\)"
         grep -E "^[0-9]+ close_range\(" "$log"; } )
if [ -n "$bad" ]; then
  echo "error: Linux's own calls in the portable build's run (trace in $log):" >&2
  echo "$bad" | head -20 >&2
  exit 1
fi
echo "portable: none of Linux's own calls among $(wc -l < "$log") traced calls, $(grep -c '\[from xpio\.so\]$' "$log") of them XPIO's (trace in $log)"
