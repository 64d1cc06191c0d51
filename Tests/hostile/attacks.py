"""The attacks on the echo server, other than descriptor exhaustion
(exhaustion.py). Each returns a Result: a summary line, figures, failures.

Why these: they are how real peers misbehave. They vanish right after
connecting, reset in the middle of a transfer, half-close and wait for the
rest, dribble one byte per segment, stop reading so that the server's writes
cannot complete, or trickle bytes to hold connections open. A server must
survive all of them without losing or corrupting a byte of the exchanges that
do complete, and without letting one bad peer slow down the good ones.
"""

import random
import socket
import time

import peers
from peers import Peer, Plan, Tally
from target import GoodClients, baseline


class Result:
    def __init__(self, name):
        self.name = name
        self.line = ""
        self.failures = []
        self.figures = {}
        self.connections = 0       # hostile connections the server went through
        self.lost = 0              # bytes lost or corrupted in complete exchanges
        self.side = "server"       # which XPIO process was attacked


def _check_tally(result, tally, expect_complete):
    """Failures every peer attack shares: corrupted bytes, lost bytes,
    timeouts, unexpected errors, exchanges that did not complete."""
    result.connections += tally.peers
    result.lost += tally.lost + tally.corrupted
    if tally.corrupted:
        result.failures.append("%d bytes came back corrupted" % tally.corrupted)
    if tally.lost:
        result.failures.append("%d bytes were lost" % tally.lost)
    if tally.timed_out:
        result.failures.append("%d peers did not finish in time" % tally.timed_out)
    for message, n in tally.errors.items():
        result.failures.append("%d peers: %s" % (n, message))
    if expect_complete:
        if tally.complete != tally.peers:
            result.failures.append("%d of %d exchanges completed" % (tally.complete, tally.peers))
        if tally.digests_ok != tally.complete:
            result.failures.append("%d of %d SHA-256 digests differ" % (tally.complete - tally.digests_ok, tally.complete))


def _in_waves(plans, concurrency, address, wave_timeout):
    """Runs the plans `concurrency` at a time; returns all the peers."""
    done = []
    for start in range(0, len(plans), concurrency):
        wave = [Peer(p, seed=start + i) for i, p in enumerate(plans[start:start + concurrency])]
        peers.run(wave, address, time.monotonic() + wave_timeout)
        done.extend(wave)
    return done


def _with_good_clients(result, target, fn, compare_seconds=None, min_ratio=None):
    """Runs `fn()` with good clients beside it; records their throughput, and
    compares it with a fresh baseline when `compare_seconds` is given."""
    base = baseline(target, compare_seconds) if compare_seconds else None
    with GoodClients(target) as good:
        value = fn()
    r = good.result
    result.failures.extend(good.problems())
    result.figures["good_mib_s"] = round(r["mib_per_s"], 1)
    result.figures["good_slowest_s"] = round(r["slowest"], 3)
    text = "good clients %.0f MiB/s" % r["mib_per_s"]
    if base is not None:
        ratio = r["mib_per_s"] / base if base > 0 else 0.0
        result.figures["baseline_mib_s"] = round(base, 1)
        result.figures["ratio"] = round(ratio, 2)
        text += " vs %.0f alone (%.2f)" % (base, ratio)
        if min_ratio is not None and ratio < min_ratio:
            result.failures.append("good clients kept %.2f of their throughput (at least %.2f required)" % (ratio, min_ratio))
    text += ", slowest exchange %.3f s" % r["slowest"]
    return value, text


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was
    full (TcpExt ListenOverflows, for the whole machine), or None."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenOverflows", 0))
    return None


def churn(target, count, burst=64):
    """Connects `count` times and vanishes: a third close at once (FIN), a
    third reset at once (RST), a third send 100 bytes and close without
    reading the echo (so the server writes to a closed peer)."""
    result = Result("connect and vanish")
    failed = {}

    def attack():
        made = 0
        t0 = time.monotonic()
        for start in range(0, count, burst):
            socks = []
            for _ in range(min(burst, count - start)):
                try:
                    socks.append(socket.create_connection(target.address, timeout=5))
                except OSError as e:
                    failed[str(e)] = failed.get(str(e), 0) + 1
            for i, s in enumerate(socks):
                style = (start + i) % 3
                if style == 1:
                    peers.reset(s)
                else:
                    if style == 2:
                        s.send(b"v" * 100)
                    s.close()
            made += len(socks)
        return made, time.monotonic() - t0

    overflows0 = listen_overflows()
    (made, seconds), good = _with_good_clients(result, target, attack)
    overflows = listen_overflows() - overflows0 if overflows0 is not None else None
    result.connections = made
    for message, n in failed.items():
        result.failures.append("%d connects failed: %s" % (n, message))
    result.figures.update(connections=made, seconds=round(seconds, 2), per_second=round(made / seconds),
                          listen_overflows=overflows)
    # A full listen queue is not a failure: the kernel drops the SYN and the
    # client retries a second later, which is what the figure explains.
    result.line = "%d connections (FIN, RST, data then FIN) in %.1f s, %.0f/s, %s listen-queue overflows; %s" % (
        made, seconds, made / seconds, overflows, good)
    target.check(result.failures)
    return result


def reset_mid_transfer(target, count, concurrency=10, max_size=512 * 1024, seed=1):
    """Sends a random-sized payload and resets (SO_LINGER 0, close) after a
    random number of its bytes, some before the first; whatever was echoed
    before the reset must match what was sent."""
    result = Result("RST mid-transfer")
    rng = random.Random(seed)
    plans = []
    for _ in range(count):
        size = rng.randint(1024, max_size)
        plans.append(Plan(rng.randbytes(size), ending="reset", reset_after=rng.choice([0, rng.randrange(size)])))
    done, good = _with_good_clients(result, target, lambda: _in_waves(plans, concurrency, target.address, 30))
    tally = Tally(done)
    _check_tally(result, tally, expect_complete=False)
    result.figures.update(resets=count, sent=tally.sent, echoed=tally.received, corrupted=tally.corrupted)
    result.line = "%d resets after %.1f MiB sent, %.1f MiB echoed before them, %d corrupted; %s" % (
        count, tally.sent / 1048576, tally.received / 1048576, tally.corrupted, good)
    target.check(result.failures)
    return result


def half_close(target, count, concurrency=8, max_size=1024 * 1024, seed=2):
    """Sends a payload, shuts down writing, and reads to end of stream: the
    echo of every byte must come before the server's FIN."""
    result = Result("half-close")
    rng = random.Random(seed)
    plans = [Plan(rng.randbytes(rng.randint(1, max_size))) for _ in range(count)]
    done, good = _with_good_clients(result, target, lambda: _in_waves(plans, concurrency, target.address, 60))
    tally = Tally(done)
    _check_tally(result, tally, expect_complete=True)
    result.figures.update(exchanges=count, bytes=tally.sent, digests_ok=tally.digests_ok, lost=tally.lost)
    result.line = "%d exchanges, %.1f MiB, %d/%d SHA-256 equal, %d bytes lost; %s" % (
        count, tally.sent / 1048576, tally.digests_ok, count, tally.lost, good)
    target.check(result.failures)
    return result


def one_byte(target, count, size, interval=0.002, seed=3):
    """`count` peers at once, each sending `size` bytes one per send()
    (TCP_NODELAY, so one per segment), then half-closing."""
    result = Result("one byte at a time")
    rng = random.Random(seed)
    plans = [Plan(rng.randbytes(size), chunk=1, interval=interval, nodelay=True) for _ in range(count)]
    limit = size * interval * 1.5 * 4 + 30
    done, good = _with_good_clients(result, target, lambda: _in_waves(plans, count, target.address, limit))
    tally = Tally(done)
    _check_tally(result, tally, expect_complete=True)
    result.figures.update(peers=count, bytes=tally.sent, digests_ok=tally.digests_ok, lost=tally.lost)
    result.line = "%d peers x %d single-byte sends, %d/%d SHA-256 equal, %d bytes lost; %s" % (
        count, size, tally.digests_ok, count, tally.lost, good)
    target.check(result.failures)
    return result


def never_read(target, count, seconds, min_ratio, seed=4):
    """`count` peers send as much as the server takes and never read: the
    server's echo writes to them block for `seconds`, then the peers close
    with the echo unread (the kernel resets). The good clients must keep
    their throughput meanwhile."""
    result = Result("never read")
    rng = random.Random(seed)
    block = rng.randbytes(1024 * 1024)

    def attack():
        hold = time.monotonic() + seconds
        # a small receive buffer: the server's writes block sooner, and a
        # hundred of these do not push the kernel into TCP memory pressure
        crowd = [Peer(Plan(block, reads=False, ending="hold", hold_until=hold, rcvbuf=65536), seed=i) for i in range(count)]
        peers.run(crowd, target.address, hold + 10)
        return crowd

    crowd, good = _with_good_clients(result, target, attack, compare_seconds=min(seconds, 3), min_ratio=min_ratio)
    tally = Tally(crowd)
    _check_tally(result, tally, expect_complete=False)
    result.figures.update(peers=count, stuck_bytes=tally.sent, seconds=seconds)
    result.line = "%d peers, %.1f MiB pushed and never read back, %g s; %s" % (count, tally.sent / 1048576, seconds, good)
    target.check(result.failures)
    return result


def slowloris(target, count, seconds, interval, min_ratio, seed=5):
    """`count` peers trickle a partial message, 1 to 3 bytes every
    `interval` seconds (give or take half), for about `seconds`, then
    half-close: every trickled byte must come back."""
    result = Result("slowloris")
    rng = random.Random(seed)
    plans = []
    for _ in range(count):
        chunk = rng.randint(1, 3)
        sends = max(1, int(seconds / interval))
        head = b"PARTIAL "[:chunk * sends]
        body = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(chunk * sends - len(head)))
        plans.append(Plan(head + body, chunk=chunk, interval=interval, nodelay=True))

    def attack():
        crowd = [Peer(p, seed=i) for i, p in enumerate(plans)]
        t0 = time.monotonic()
        peers.run(crowd, target.address, t0 + seconds * 2 + 30)
        return crowd, time.monotonic() - t0

    (crowd, took), good = _with_good_clients(result, target, attack, compare_seconds=min(seconds, 3), min_ratio=min_ratio)
    tally = Tally(crowd)
    _check_tally(result, tally, expect_complete=True)
    result.figures.update(peers=count, bytes=tally.sent, seconds=round(took, 1), digests_ok=tally.digests_ok)
    result.line = "%d peers trickling %d bytes over %.1f s, %d/%d SHA-256 equal; %s" % (
        count, tally.sent, took, tally.digests_ok, count, good)
    target.check(result.failures)
    return result
