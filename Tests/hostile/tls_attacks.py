"""The TLS attacks on the echo server's TLS mode (issue 20), and the
throwaway certificates they need.

Why: TLS gives a hostile peer new ways to hold a server. A handshake is a
conversation of several flights inside OpenSSL, so a peer can trickle its
ClientHello or stop between flights, and the server's handshake must be
bounded in time without a busy loop; a record announces its length, so a
peer can promise bytes it never sends, and a peer can vanish without TLS's
close_notify. Each of these must end in `nil, message` inside the server (no
Lua error), give the descriptor back, and leave the other clients served.

What each attack checks, besides the peers' own results: the server's stats
before and after (`echo_server.lua` counts how every TLS connection ended,
by phase and message), its CPU time while only the slow handshakes run, its
descriptors, and the well-behaved TLS clients beside the attack.
"""

import os
import shutil
import subprocess
import tempfile
import time

import tls_peers
from attacks import Result
from target import GoodClients

SLACK = 10.0          # seconds past a server deadline a peer waits before calling it a hang (a loaded machine)


class TLSFiles:
    """A throwaway CA and a localhost leaf (EC P-256), plus a self-signed
    leaf, in a temporary directory that `remove()` deletes
    (the commands of the TLS design notes, section 5)."""

    def __init__(self, handshake_timeout, idle_timeout):
        self.dir = tempfile.mkdtemp(prefix="xpio-hostile-tls-")
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        d = lambda name: os.path.join(self.dir, name)   # noqa: E731
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        with open(d("leaf.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n")
        for argv in (
            ["req", "-x509"] + ec + ["-keyout", d("ca.key"), "-out", d("ca.pem"), "-days", "2",
                                     "-subj", "/CN=XPIO Hostile Test CA",
                                     "-addext", "basicConstraints=critical,CA:TRUE",
                                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req"] + ec + ["-keyout", d("leaf.key"), "-out", d("leaf.csr"), "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", d("leaf.csr"), "-CA", d("ca.pem"), "-CAkey", d("ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", d("leaf.ext"), "-out", d("leaf.pem")],
            ["req", "-x509"] + ec + ["-keyout", d("self.key"), "-out", d("self.pem"), "-days", "2",
                                     "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        ):
            subprocess.run(["openssl"] + argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        self.ca, self.cert, self.key = d("ca.pem"), d("leaf.pem"), d("leaf.key")
        self.self_cert, self.self_key = d("self.pem"), d("self.key")

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _diff(before, after):
    """The server's error counts that grew between two stats, as a dict."""
    out = {}
    for message, n in after["errors"].items():
        grew = n - before["errors"].get(message, 0)
        if grew:
            out[message] = grew
    return out


GC_BUG_HINT = ("(XPIO's own sockets found closed under the server: the tls.wrap bug of Tests/hostile/README.md, "
               "its result's collection closes the socket)")


def _closed_under(result, grew):
    """A failure naming the wrap GC bug when the server met 'xpio: socket is
    closed' on sockets it had not closed."""
    n = sum(v for k, v in grew.items() if "socket_is_closed" in k)
    if n:
        result.failures.append("%d connections ended with 'xpio: socket is closed' %s" % (n, GC_BUG_HINT))


def _expect(result, grew, key, n, what):
    got = grew.pop(key, 0)
    if got != n:
        result.failures.append("%s: the server counted %d connections ending '%s', %d expected" % (what, got, key, n))


def _peer_failures(result, peers, kind, low=None, high=None):
    """Failures of the peers of `kind`: not ok, or closed outside [low, high]."""
    mine = [p for p in peers if p["kind"] == kind]
    bad = [p for p in mine if not p["ok"]]
    if bad:
        errors = sorted({p["error"] or "no close seen" for p in bad})
        result.failures.append("%s: %d of %d peers failed: %s" % (kind, len(bad), len(mine), "; ".join(errors)[:600]))
    times = [p["closed_after"] for p in mine if p["closed_after"] is not None]
    if times and low is not None and min(times) < low:
        result.failures.append("%s: the server closed after %.2f s, before its %.2f s deadline" % (kind, min(times), low))
    if times and high is not None and max(times) > high:
        result.failures.append("%s: the server closed after %.2f s, %.2f s at most allowed" % (kind, max(times), high))
    return (round(min(times), 2), round(max(times), 2)) if times else None


def slowloris_handshakes(target, count, interval, max_cpu):
    """`count` peers that never finish a handshake, in four kinds (a
    ClientHello one byte every `interval` s; half a ClientHello then
    silence; nothing at all; a whole ClientHello and never the Finished),
    and a tenth as many that trickle their ClientHello but finish in time
    (the control). The server must drop every hostile one at its handshake
    timeout, use at most `max_cpu` of a CPU while they are all waiting,
    serve the controls and the good clients meanwhile, and give back every
    descriptor."""
    result = Result("TLS slowloris handshakes")
    tls = target.tls
    timeout = float(tls.handshake_timeout)
    ctx = tls_peers.client_context(tls.ca)
    address = target.address
    limit = timeout + SLACK
    kinds = ["hello_trickle", "hello_half", "silent", "no_finished"]
    controls = max(1, count // 10)
    before = target.stats()
    runner = tls_peers.Runner()
    t0 = time.monotonic()
    for i in range(count):
        kind = kinds[i % len(kinds)]
        if kind == "hello_trickle":
            runner.start(tls_peers.hello_trickle, address, ctx, interval, limit)
        elif kind == "hello_half":
            runner.start(tls_peers.hello_half, address, ctx, limit)
        elif kind == "silent":
            runner.start(tls_peers.silent, address, limit)
        else:
            runner.start(tls_peers.no_finished, address, ctx, limit)
    for _ in range(controls):
        runner.start(tls_peers.hello_slow_but_in_time, address, ctx, timeout / 3)
    # the server's CPU while only the slow handshakes (and the controls) run
    time.sleep(min(0.5, timeout / 4))
    window = timeout * 0.8 - (time.monotonic() - t0)
    cpu0, run0, w0 = target.server.cpu_seconds(), target.server.run_seconds(), time.monotonic()
    peak_fds = 0
    while time.monotonic() - w0 < window:
        peak_fds = max(peak_fds, target.server.fd_count())
        time.sleep(0.1)
    wall = time.monotonic() - w0
    cpu = target.server.cpu_seconds() - cpu0
    run1 = target.server.run_seconds()
    fraction = cpu / wall
    if run0 is not None and run1 is not None:
        # in nanoseconds, not clock ticks: the better figure over a second
        result.figures["schedstat_cpu_ms"] = round((run1 - run0) * 1000, 2)
        cpu, fraction = run1 - run0, (run1 - run0) / wall
    # the good clients, while the server's handshake deadlines fire
    with GoodClients(target) as good:
        left = runner.join(t0 + limit + 5)
        time.sleep(0.5)
    took = time.monotonic() - t0
    after = target.stats()
    r = good.result
    result.failures.extend(good.problems())
    if r["exchanges"] == 0:
        result.failures.append("the good clients exchanged nothing during the attack")
    if r["slowest"] >= timeout:
        result.failures.append("a good client waited %.2f s for one echo: as long as the slow handshakes" % r["slowest"])
    if left:
        result.failures.append("%d peers still ran %.0f s after the start: a hang" % (left, limit + 5))
    if fraction > max_cpu:
        result.failures.append("the server used %.2f CPU s in %.1f s of slow handshakes (%.0f%%, at most %.0f%%)"
                               % (cpu, wall, fraction * 100, max_cpu * 100))
    closed = {}
    for kind in kinds:
        closed[kind] = _peer_failures(result, runner.results, kind, low=timeout * 0.8, high=timeout + SLACK)
    _peer_failures(result, runner.results, "hello_slow_but_in_time")
    grew = _diff(before, after)
    _closed_under(result, grew)
    _expect(result, grew, "handshake:_timeout", count, "slow handshakes")
    others = {k: n for k, n in grew.items() if k.startswith("handshake:")}
    if others:
        result.failures.append("handshakes that should have passed failed: %s" % others)
    if after["lua_errors"] != before["lua_errors"]:
        result.failures.append("%d Lua errors in the server" % (after["lua_errors"] - before["lua_errors"]))
    result.connections = count + controls
    result.figures.update(peers=count, controls=controls, timeout_s=timeout, cpu_s=round(cpu, 3), wall_s=round(wall, 2),
                          cpu_percent=round(fraction * 100, 2), peak_fds=peak_fds, base_fds=target.base_fds,
                          closed_s=closed, good_mib_s=round(r["mib_per_s"], 1), good_slowest_s=round(r["slowest"], 3),
                          seconds=round(took, 1))
    result.line = ("%d never-finished handshakes (trickled, half, silent, no Finished) held %d descriptors and were "
                   "dropped after %s s (timeout %.1f s); server CPU %.1f%% meanwhile; %d/%d slow-but-in-time controls "
                   "served; good clients %.0f MiB/s, slowest echo %.3f s"
                   % (count, peak_fds - target.base_fds, closed, timeout, fraction * 100,
                      sum(1 for p in runner.results if p["kind"] == "hello_slow_but_in_time" and p["ok"]), controls,
                      r["mib_per_s"], r["slowest"]))
    target.check(result.failures)
    return result


def truncated_records(target, count):
    """`count` peers of each kind at once: garbage instead of a ClientHello;
    a handshake record of garbage; after a handshake and an echoed line, half
    a real record then FIN, a record header promising 16 KiB then FIN, half
    a record then RST, a record header then silence (the idle timeout), FIN
    without close_notify (at a record boundary, and mid-line); after a
    handshake, lines sent and their echo never read, then a reset; and the
    control, a proper close_notify. The server must end each in its own way,
    with `nil, message`, and serve the good clients meanwhile."""
    result = Result("TLS truncated records, garbage")
    tls = target.tls
    timeout = float(tls.handshake_timeout)
    idle = float(tls.idle_timeout)
    ctx = tls_peers.client_context(tls.ca)
    a = target.address
    limit = max(timeout, idle) + SLACK
    P = tls_peers
    plan = [
        # (kind label, function, arguments, what the server must count, latest close (s))
        ("garbage_hello", P.garbage_hello, (a, limit), "handshake:*", timeout * 0.5),
        ("garbage_handshake_record", P.garbage_handshake_record, (a, limit), "handshake:*", timeout * 0.5),
        ("truncated_fin", P.truncated_record, (a, ctx, "fin", limit), "read:_xpio:_tls:_unexpected_eof", timeout * 0.5),
        ("fake_header_fin", P.truncated_record, (a, ctx, "fin", limit, True), "read:_xpio:_tls:_unexpected_eof", timeout * 0.5),
        ("truncated_reset", P.truncated_record, (a, ctx, "reset", limit), "read:*reset*", None),
        ("fake_header_hold", P.truncated_record, (a, ctx, "hold", limit, True), "read:_timeout", idle + SLACK),
        ("no_close_notify", P.no_close_notify, (a, ctx, limit), "read:_xpio:_tls:_unexpected_eof", timeout * 0.5),
        ("no_close_notify_mid_line", P.no_close_notify, (a, ctx, limit, True), "read:_xpio:_tls:_unexpected_eof", timeout * 0.5),
        ("never_read", P.never_read, (a, ctx, min(timeout, 1.5)), "*reset*", None),
        ("close_notify", P.with_close_notify, (a, ctx, limit), "clean", timeout * 0.5),
    ]
    if idle <= 0:
        plan = [p for p in plan if p[0] != "fake_header_hold"]
    before = target.stats()
    runner = P.Runner()
    labels = {}
    t0 = time.monotonic()
    with GoodClients(target) as good:
        for label, fn, args, _, _ in plan:
            for _ in range(count):
                runner.start(lambda res, fn=fn, args=args, label=label: (res.update(label=label), fn(res, *args)))
        left = runner.join(t0 + limit + 5)
    took = time.monotonic() - t0
    after = target.stats()
    result.failures.extend(good.problems())
    if left:
        result.failures.append("%d peers still ran %.0f s after the start: a hang" % (left, limit + 5))
    for p in runner.results:
        p["kind"] = p.get("label", p["kind"])
    for label, _, _, _, latest in plan:
        labels[label] = _peer_failures(result, runner.results, label, high=latest)
    grew = _diff(before, after)
    _closed_under(result, grew)
    for label, _, _, expected, _ in plan:
        if expected == "clean":
            got = grew.pop("clean", 0)
            if got < count:
                result.failures.append("%s: the server counted %d clean ends, %d expected" % (label, got, count))
    handshake_errors = {k: n for k, n in grew.items() if k.startswith("handshake:")}
    n_handshake = sum(1 for p in plan if p[3] == "handshake:*") * count
    if sum(handshake_errors.values()) != n_handshake or "handshake:_timeout" in handshake_errors:
        result.failures.append("garbage: the server's handshake failures were %s, %d prompt ones expected"
                               % (handshake_errors, n_handshake))
    for k in handshake_errors:
        grew.pop(k)
    resets = {k: n for k, n in grew.items() if k.startswith(("read:", "write:")) and ("reset" in k or "Broken_pipe" in k)}
    n_resets = sum(1 for p in plan if "reset" in p[3]) * count
    if sum(resets.values()) != n_resets:
        result.failures.append("truncated_reset, never_read: the server's reset errors were %s, %d expected"
                               % (resets, n_resets))
    for k in resets:
        grew.pop(k)
    eofs = sum(1 for p in plan if p[3] == "read:_xpio:_tls:_unexpected_eof") * count
    _expect(result, grew, "read:_xpio:_tls:_unexpected_eof", eofs, "truncation")
    if idle > 0:
        _expect(result, grew, "read:_timeout", count, "fake_header_hold")
    if grew:
        result.failures.append("the server ended connections in unexpected ways: %s" % grew)
    if after["lua_errors"] != before["lua_errors"]:
        result.failures.append("%d Lua errors in the server" % (after["lua_errors"] - before["lua_errors"]))
    result.connections = count * len(plan)
    r = good.result
    result.figures.update(per_kind=count, kinds=len(plan), closed_s=labels, handshake_errors=handshake_errors,
                          good_mib_s=round(r["mib_per_s"], 1), good_slowest_s=round(r["slowest"], 3),
                          seconds=round(took, 1))
    result.line = ("%d peers x %d kinds (garbage hellos, truncated records then FIN/RST/silence, no close_notify, "
                   "never read, close_notify): each ended as expected in the server (%s); good clients %.0f MiB/s, slowest %.3f s"
                   % (count, len(plan), ", ".join(sorted(handshake_errors)) or "no handshake errors",
                      r["mib_per_s"], r["slowest"]))
    target.check(result.failures)
    return result
