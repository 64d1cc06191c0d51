"""The XPIO client (client.lua) against the hostile servers of
hostile_server.py.

Why: the client side of XPIO must hold up against a server as hostile as the
peers the echo server faces. The client runs as a child process with its own
deadline per request; this module judges every request's outcome and
duration against the mode it met, and the process as a whole: it must exit 0
(no Lua error, no crash), print a summary, finish within the time its
deadlines allow, and close every descriptor it opened.
"""

import collections
import subprocess
import time

from attacks import Result
from hostile_server import MODES, HostileServers, judge
from procs import Child, lua_script

SLACK = 0.5          # seconds a request may take past its deadline (watchdog tick, a loaded machine)


def run(rounds, parallel, timeout, env=None, tls=None, keep_wrap_result=False):
    result = Result("XPIO client vs hostile servers" if not tls else "XPIO TLS client vs hostile TLS servers")
    result.side = "client"
    if tls:
        from tls_hostile_server import MODES as modes, TLSHostileServers
        servers = TLSHostileServers(timeout, tls)
        extra = ["--ca", tls.ca] + (["--keep-wrap-result", "yes"] if keep_wrap_result else [])
    else:
        modes, servers, extra = MODES, HostileServers(timeout), []
    messages = collections.defaultdict(set)
    child = None
    try:
        args = ["--timeout", timeout, "--rounds", rounds, "--parallel", parallel] + extra + servers.client_arguments()
        t0 = time.monotonic()
        child = Child(lua_script("client.lua", *args), env=env)
        limit = rounds * (timeout + SLACK + 2) + 20
        try:
            status = child.proc.wait(limit)
        except subprocess.TimeoutExpired:
            status = None
            result.failures.append("the client still ran after %.0f s: it hangs" % limit)
        took = time.monotonic() - t0
        child.stop()
        if status is not None and status != 0:
            result.failures.append("the client exited with status %s: %s" % (status, child.stderr_tail()))
        seen = collections.Counter()
        outcomes = collections.Counter()
        slowest = 0.0
        summary = None
        for line in child.log:
            if line.startswith("result "):
                fields = line.split(" ", 6)
                mode, outcome, seconds = fields[1], fields[4], float(fields[5])
                message = fields[6] if len(fields) > 6 else ""
                seen[mode] += 1
                outcomes["ok" if outcome == "ok" else ("timeout" if message == "timeout" else "error")] += 1
                slowest = max(slowest, seconds)
                messages[mode].add(message if outcome != "ok" else "ok")
                problem = judge(mode, outcome, message, seconds, timeout, SLACK, modes)
                if problem:
                    result.failures.append(problem)
            elif line.startswith("summary "):
                summary = dict(field.split("=") for field in line.split()[1:])
        expected = rounds * parallel
        for mode in modes:
            if seen[mode] != expected:
                result.failures.append("%s: %d results of %d" % (mode, seen[mode], expected))
        if not summary:
            result.failures.append("the client printed no summary")
        elif summary["fds_before"] != summary["fds_after"]:
            result.failures.append("the client's descriptors went from %s to %s" % (summary["fds_before"], summary["fds_after"]))
        for failure, n in collections.Counter(servers.failures).items():
            result.failures.append("hostile server (a bug of this harness), %d times: %s" % (n, failure))
        total = sum(seen.values())
        result.connections = total
        if tls:
            result.figures["messages"] = {m: sorted(v) for m, v in messages.items()}
            closed = sorted(m for m, v in messages.items() if "xpio: socket is closed" in v)
            if closed:
                result.failures.append("the client found its own sockets closed ('xpio: socket is closed') in %s: the "
                                       "tls.wrap bug of Tests/hostile/README.md (its result's collection closes the socket)"
                                       % ", ".join(closed))
        result.figures.update(requests=total, ok=outcomes["ok"], timeouts=outcomes["timeout"], errors=outcomes["error"],
                              slowest_s=round(slowest, 3), seconds=round(took, 1),
                              fds=summary and "%s -> %s" % (summary["fds_before"], summary["fds_after"]))
        result.line = ("%d requests to %d hostile modes (%d ok, %d timeouts, %d errors as nil, message), "
                       "slowest %.3f s with a %.1f s deadline, %.1f s in all, client descriptors %s"
                       % (total, len(modes), outcomes["ok"], outcomes["timeout"], outcomes["error"], slowest, timeout, took,
                          summary and "%s -> %s" % (summary["fds_before"], summary["fds_after"])))
    finally:
        if child:
            child.kill()
        servers.stop()
    return result
