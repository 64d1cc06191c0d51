#!/usr/bin/env python3
"""Hostile network peers, written with Python's own socket stack, against an
XPIO echo server and an XPIO client on 127.0.0.1 (issue 14, part 3).

Why another stack: XPIO's own tests drive XPIO from both ends, so a
misreading of TCP that both ends share goes unseen. These peers are written
against the kernel directly and behave the way XPIO's tests never would.

Runs, in order, against one echo server (Tests/hostile/echo_server.lua)
started under `ulimit -n --nofile`: connect-and-vanish churn, resets
mid-transfer, half-closes, one-byte sends, peers that never read, slowloris
trickles, and descriptor exhaustion; then the XPIO client
(Tests/hostile/client.lua) against hostile servers; then the TLS attacks
(tls_attacks.py) against a second echo server in its TLS mode (slowloris
handshakes; garbage and truncated records), and the XPIO client in its TLS
mode against hostile TLS servers (tls_hostile_server.py), with a throwaway CA
made for the run. Prints a summary and
exits 0 if everything held, 1 on any failure, 2 if the run could not go on
(the server died, the time limit passed). No XPIO process outlives it.

The XPIO module comes from LUA_CPATH/LUA_PATH, as for the Lua tests:

    LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;Tests/lua/?.lua;;" python3 Tests/hostile/hostile.py
    ... python3 Tests/hostile/hostile.py --large        # minutes: 10 000 connections and more
"""

import argparse
import os
import signal
import sys
import time

sys.dont_write_bytecode = True          # no __pycache__ in the source tree

import attacks                          # noqa: E402 (after dont_write_bytecode)
import client_attack                    # noqa: E402
import exhaustion                       # noqa: E402
import procs                            # noqa: E402
import tls_attacks                      # noqa: E402
from target import ServerDied, Target   # noqa: E402

# name: (small default, --large)
COUNTS = {
    "churn": (1000, 10000),
    "resets": (100, 2000),
    "halfcloses": (40, 500),
    "onebyte_peers": (8, 50),
    "onebyte_bytes": (300, 3000),
    "never_read": (10, 50),
    "never_read_seconds": (3.0, 30.0),
    "slowloris": (30, 400),
    "slowloris_seconds": (4.0, 60.0),
    "nofile": (256, 1024),
    "exhaust_seconds": (2.0, 30.0),
    "client_rounds": (2, 20),
    "client_parallel": (1, 8),
    "client_timeout": (1.0, 1.0),
    "tls_slowloris": (40, 400),
    "tls_interval": (0.25, 0.25),
    "tls_handshake_timeout": (2.0, 5.0),
    "tls_idle_timeout": (2.0, 5.0),
    "tls_truncated": (4, 50),
    "tls_client_rounds": (2, 20),
    "tls_client_parallel": (1, 8),
    "time_limit": (180, 1800),
}
ATTACKS = ["churn", "reset", "halfclose", "onebyte", "neverread", "slowloris", "exhaust", "client",
           "tlsslow", "tlstrunc", "tlsclient"]
TLS_ATTACKS = {"tlsslow", "tlstrunc", "tlsclient"}
TLS_SERVER_ATTACKS = {"tlsslow", "tlstrunc"}


class Abort(Exception):
    pass


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="the large counts (minutes)")
    for name, (small, large) in COUNTS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(small), default=None,
                            help="default %s, %s with --large" % (small, large))
    parser.add_argument("--only", default=",".join(ATTACKS), help="a comma-separated subset of: " + ", ".join(ATTACKS))
    parser.add_argument("--min-ratio", type=float, default=None,
                        help="throughput the good clients must keep under never-read and slowloris (default 0.25, "
                             "0.5 with --large). A server that one attacker blocks leaves them next to nothing; a "
                             "fair one on a machine loaded by other work (make test's runs) can leave them half, "
                             "since the attacking peers take CPU of their own")
    parser.add_argument("--max-cpu", type=float, default=0.05,
                        help="the server's most CPU time per second of exhaustion (default 0.05)")
    parser.add_argument("--tls-max-cpu", type=float, default=0.10,
                        help="the TLS server's most CPU time per second of slow handshakes (default 0.10)")
    parser.add_argument("--backend", choices=["epoll", "poll"], default=None, help="XPIO_BACKEND for the XPIO processes")
    parser.add_argument("--naive-server", action="store_true",
                        help="run the server with --backoff-max 0 (retry accept at once): the exhaustion attack must fail")
    parser.add_argument("--tls-keep-wrap-result", action="store_true",
                        help="the TLS echo server and the TLS client hold tls.wrap's result as well as the socket: a workaround "
                             "for the bug that closes a wrapped socket when that result is collected")
    parser.add_argument("--tls-broken", choices=["no-timeout", "spin", "raise", "leak", "inline"], default=None,
                        help="run the TLS echo server deliberately broken in this way: the TLS attacks must fail")
    args = parser.parse_args()
    for name, (small, large) in COUNTS.items():
        if getattr(args, name) is None:
            setattr(args, name, large if args.large else small)
    if args.min_ratio is None:
        args.min_ratio = 0.5 if args.large else 0.25
    args.only = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = set(args.only) - set(ATTACKS)
    if unknown:
        parser.error("unknown attack(s): " + ", ".join(sorted(unknown)))
    return args


def on_signal(signum, _frame):
    raise Abort("stopped by signal %d" % signum)


def run_attacks(args, target, env, tls_target, files):
    a = args
    plan = {
        "churn": lambda: attacks.churn(target, a.churn),
        "reset": lambda: attacks.reset_mid_transfer(target, a.resets),
        "halfclose": lambda: attacks.half_close(target, a.halfcloses),
        "onebyte": lambda: attacks.one_byte(target, a.onebyte_peers, a.onebyte_bytes),
        "neverread": lambda: attacks.never_read(target, a.never_read, a.never_read_seconds, a.min_ratio),
        "slowloris": lambda: attacks.slowloris(target, a.slowloris, a.slowloris_seconds, 0.25, a.min_ratio),
        "exhaust": lambda: exhaustion.exhaust(target, a.exhaust_seconds, max_cpu_fraction=a.max_cpu),
        "client": lambda: client_attack.run(a.client_rounds, a.client_parallel, a.client_timeout, env=env),
        "tlsslow": lambda: tls_attacks.slowloris_handshakes(tls_target(), a.tls_slowloris, a.tls_interval, a.tls_max_cpu),
        "tlstrunc": lambda: tls_attacks.truncated_records(tls_target(), a.tls_truncated),
        "tlsclient": lambda: client_attack.run(a.tls_client_rounds, a.tls_client_parallel, a.client_timeout, env=env,
                                               tls=files(), keep_wrap_result=a.tls_keep_wrap_result),
    }
    for name in ATTACKS:
        if name in args.only:
            t0 = time.monotonic()
            print("== %s" % name, flush=True)
            result = plan[name]()
            result.figures["phase_s"] = round(time.monotonic() - t0, 1)
            print("   %s: %s" % (result.name, result.line), flush=True)
            for f in result.failures:
                print("   FAIL: " + f, flush=True)
            yield result


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, lambda *_: on_signal(signal.SIGALRM, None))
    signal.alarm(int(args.time_limit))
    env = {"XPIO_BACKEND": args.backend} if args.backend else {}
    server_args = ["--backoff-max", "0"] if args.naive_server else []
    results, aborted, target, stats, tls_stats = [], None, None, None, None
    made = {}                   # the TLS files and the TLS target, made on first use

    def files():
        if "files" not in made:
            made["files"] = tls_attacks.TLSFiles(args.tls_handshake_timeout, args.tls_idle_timeout)
        return made["files"]

    def tls_target():
        if "target" not in made:
            tls_args = server_args + (["--keep-wrap-result", "yes"] if args.tls_keep_wrap_result else [])
            tls_args += ["--broken", args.tls_broken] if args.tls_broken else []
            t = made["target"] = Target(args.nofile, tls_args, env, tls=files())
            print("hostile: TLS echo server %s (pid %d, handshake timeout %g s, idle timeout %g s, %d descriptors at rest)"
                  % (t.address_text, t.server.pid, args.tls_handshake_timeout, args.tls_idle_timeout, t.base_fds), flush=True)
        return made["target"]

    t0 = time.monotonic()
    try:
        if set(args.only) - TLS_ATTACKS:
            target = Target(args.nofile, server_args, env)
            print("hostile: echo server %s (pid %d, ulimit -n %d, %d descriptors at rest, backend %s)"
                  % (target.address_text, target.server.pid, args.nofile, target.base_fds, args.backend or "epoll"), flush=True)
        for result in run_attacks(args, target, env, tls_target, files):
            results.append(result)
    except (ServerDied, Abort) as e:
        aborted = str(e)
    except KeyboardInterrupt:
        aborted = "interrupted"
    finally:
        signal.alarm(0)
        server_status = None
        if target:
            stats = target.stop()
            server_status = target.server.proc.returncode
        tls_status = None
        if "target" in made:
            tls_stats = made["target"].stop()
            tls_status = made["target"].server.proc.returncode
        left = procs.kill_all()
        if "files" in made:
            made["files"].remove()
    seconds = time.monotonic() - t0

    failures = [(r.name, f) for r in results for f in r.failures]
    if target and server_status not in (0, None) and not aborted:
        failures.append(("server", "exited with status %s at the end: %s" % (server_status, target.server.stderr_tail())))
    if "target" in made and tls_status not in (0, None) and not aborted:
        failures.append(("TLS server", "exited with status %s at the end: %s"
                         % (tls_status, made["target"].server.stderr_tail())))
    if left:
        failures.append(("driver", "%d XPIO processes had to be killed at the end" % left))
    lost = sum(r.lost for r in results)
    survived = sum(r.connections for r in results if r.side == "server")

    print("\nhostile: summary (%.1f s%s)" % (seconds, ", --large" if args.large else ""))
    for r in results:
        print("  %-32s %s" % (r.name, "ok" if not r.failures else "FAILED (%d)" % len(r.failures)))
        print("  %-32s %s" % ("", r.figures))
    print("  hostile connections survived     %d" % survived)
    if stats:
        print("  server                           %s" % stats)
    if tls_stats:
        print("  TLS server                       %s" % tls_stats)
    print("  bytes lost or corrupted          %d" % lost)
    print("  XPIO processes left              0 (%d killed at the end)" % left)
    if aborted:
        print("hostile: ABORTED: " + aborted)
        return 2
    if failures or lost:
        print("hostile: FAILED")
        for name, f in failures:
            print("  %s: %s" % (name, f))
        return 1
    print("hostile: all passed")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
