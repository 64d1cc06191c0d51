"""Descriptor exhaustion: connections held open until the server's accept
fails with EMFILE, and what the server does about it.

Why it matters: while accept() fails with EMFILE the pending connection stays
in the listen queue, so the listening socket stays readable. A loop that just
retries, or waits for readability and retries, turns that into a busy loop
that burns a core for as long as the descriptors stay taken. So this attack
holds the server at its limit, with connections waiting in its queue, and
reads the server's CPU time from /proc/PID/stat over that stretch; then lets
go and requires the server to serve a new client again, to report its accept
streak as over, and to give back every descriptor.
"""

import socket
import time

from attacks import Result
from target import echo_probe


def _exchange(sock, data, timeout):
    """One echo on an open connection: True if `data` came back."""
    sock.settimeout(timeout)
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            return False
        got += chunk
    return got == data


def exhaust(target, measure_seconds, extra=16, max_cpu_fraction=0.05):
    """Runs the attack; every connection it made is closed before the
    server's descriptors are counted."""
    result = Result("EMFILE exhaustion")
    earlier = [line for line in target.server.drain() if line.startswith("accept-error")]
    if earlier:
        result.figures["accept_errors_before"] = earlier
    held = []
    try:
        _attack(target, result, held, measure_seconds, extra, max_cpu_fraction)
    finally:
        for s in held:
            s.close()
    target.check(result.failures)
    return result


def _attack(target, result, held, measure_seconds, extra, max_cpu_fraction):
    server = target.server
    # 1. connect until the server reports an accept failure
    limit = target.nofile + 512
    emfile = None
    while len(held) < limit and not emfile:
        try:
            held.append(socket.create_connection(target.address, timeout=3))
        except OSError as e:
            result.failures.append("connect %d failed before exhaustion: %s" % (len(held) + 1, e))
            break
        if len(held) % 8 == 0:
            emfile = server.expect("accept-error", 0.001)
    emfile = emfile or server.expect("accept-error", 2)
    if not emfile:
        result.failures.append("the server reported no accept failure after %d connections" % len(held))
        return
    exhausted_at = len(held)
    # 2. a few more, left waiting in the listen queue: the listener stays readable
    for _ in range(extra):
        try:
            held.append(socket.create_connection(target.address, timeout=3))
        except OSError:
            break
    # 3. measure the server's CPU time while it stays exhausted; the first
    #    connection (accepted long ago) must still be echoed meanwhile
    time.sleep(0.2)
    fds_exhausted = server.fd_count()
    cpu0, run0, t0 = server.cpu_seconds(), server.run_seconds(), time.monotonic()
    echoes_ok = echoes = 0
    while time.monotonic() - t0 < measure_seconds:
        echoes += 1
        try:
            echoes_ok += _exchange(held[0], b"still there? %d" % echoes, 5)
        except OSError:
            pass
        time.sleep(min(0.5, measure_seconds / 4))
    wall = time.monotonic() - t0
    cpu = server.cpu_seconds() - cpu0
    run1 = server.run_seconds()
    if run0 is not None and run1 is not None:
        result.figures["schedstat_cpu_ms"] = round((run1 - run0) * 1000, 2)
    fraction = cpu / wall
    if echoes_ok != echoes:
        result.failures.append("an accepted connection was echoed %d of %d times while the server was exhausted"
                               % (echoes_ok, echoes))
    if fraction > max_cpu_fraction:
        result.failures.append("the server used %.2f CPU s in %.1f s while exhausted (%.0f%%, at most %.0f%% allowed): "
                               "it spins" % (cpu, wall, fraction * 100, max_cpu_fraction * 100))
    # 4. let go, and time how long until a new client is served
    for s in held:
        s.close()
    result.connections = len(held)
    released = time.monotonic()
    problem = "not tried"
    while time.monotonic() - released < 10:
        problem = echo_probe(target.address, timeout=2)
        if problem is None:
            break
        time.sleep(0.05)
    recovery = time.monotonic() - released
    if problem:
        result.failures.append("no new client served within 10 s of the release: " + problem)
    resumed = server.expect("accept-resumed", 5)
    if not resumed:
        result.failures.append("the server did not report its accept loop resumed")
        streak = "?"
    else:
        _, failures, seconds = resumed.split()
        streak = "%s failed accepts over %.1f s" % (failures, float(seconds))
        result.figures["accept_failures"] = int(failures)
    result.figures.update(limit=target.nofile, exhausted_after=exhausted_at, held=len(held), fds=fds_exhausted,
                          cpu_s=round(cpu, 3), wall_s=round(wall, 2), cpu_percent=round(fraction * 100, 2),
                          recovery_s=round(recovery, 3))
    precise = " (schedstat: %.1f ms)" % result.figures["schedstat_cpu_ms"] if "schedstat_cpu_ms" in result.figures else ""
    result.line = ("ulimit -n %d: '%s' reported after %d connections, %d held; %.2f CPU s%s in %.1f s exhausted (%.1f%%), "
                   "%d/%d echoes on an old connection meanwhile; %s; new client served %.3f s after the release"
                   % (target.nofile, emfile.split(" ", 1)[1], exhausted_at, len(held), cpu, precise, wall, fraction * 100,
                      echoes_ok, echoes, streak, recovery))
