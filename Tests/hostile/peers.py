"""Hostile peers of the echo server, many at once in one selector loop.

Why one engine for most attacks: half-closing, sending one byte at a time,
resetting mid-transfer, never reading and trickling (slowloris) are all the
same peer with a different plan (what to send, how fast, whether to read,
how to end). Running them as non-blocking sockets in one loop lets a few
hundred of them attack at once from one thread, and lets every one check
every byte the server echoes: a received byte is compared with the byte sent
at the same offset (a mismatch is a corrupted byte), and a peer that
half-closed and read the end of stream compares SHA-256 digests of what it
sent and what came back (a short echo is lost bytes).
"""

import errno
import hashlib
import heapq
import itertools
import random
import selectors
import socket
import struct
import time

# SO_LINGER on with a zero timeout: close() sends RST and drops unsent data.
LINGER_RESET = struct.pack("ii", 1, 0)


def reset(sock):
    """Closes `sock` with a TCP reset instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
    sock.close()


class Plan:
    """What a peer does.

    payload   -- the bytes to send, in order
    chunk     -- at most this many bytes per send()
    interval  -- seconds between two sends (0: as fast as the socket takes
                 them); each pause is drawn from 0.5 to 1.5 times this
    reads     -- whether the peer reads the echo at all
    ending    -- "halfclose": after the last byte, shutdown(SHUT_WR) and read
                 to end of stream (a complete exchange);
                 "reset": RST once `reset_after` bytes are sent;
                 "hold": send the payload over and over for as long as the
                 socket takes it, then close at `hold_until` (a deadline on
                 time.monotonic())
    """

    def __init__(self, payload, chunk=65536, interval=0.0, reads=True, ending="halfclose",
                 reset_after=0, hold_until=None, nodelay=False, rcvbuf=None):
        self.payload = payload
        self.chunk = chunk
        self.interval = interval
        self.reads = reads
        self.ending = ending
        self.reset_after = reset_after
        self.hold_until = hold_until
        self.nodelay = nodelay
        self.rcvbuf = rcvbuf


class Peer:
    """One connection following a Plan; its fields after the run are the
    results: sent, received, corrupted, complete, digest_ok, error."""

    def __init__(self, plan, seed=0):
        self.plan = plan
        self.rng = random.Random(seed)
        self.sock = None
        self.state = "new"            # new, connecting, open, done
        self.sent = 0
        self.received = 0
        self.corrupted = 0
        self.send_done = False        # everything sent (and shut down, for halfclose)
        self.next_send = 0.0
        self.complete = False         # halfclose: end of stream read
        self.digest_ok = None         # halfclose: SHA-256 of the echo equals the payload's
        self.error = None             # an unexpected failure, as text
        self.timed_out = False
        self._hash = hashlib.sha256()

    # -- lifetime -----------------------------------------------------------

    def start(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.plan.nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.plan.rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.plan.rcvbuf)
        self.sock.setblocking(False)
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self._fail("connect: " + errno.errorcode.get(code, str(code)))
            return
        self.state = "connecting"

    def _finish(self, how="close"):
        if self.sock is not None:
            if how == "reset":
                reset(self.sock)
            else:
                self.sock.close()
        self.state = "done"

    def _fail(self, message):
        self.error = message
        self._finish("reset")

    def expire(self):
        """The run's deadline passed with this peer not done."""
        if self.state != "done":
            self.timed_out = True
            self._finish("reset")

    # -- what to wait for -----------------------------------------------------

    def wants(self, now):
        """The selector events this peer waits for now (0: none)."""
        if self.state == "connecting":
            return selectors.EVENT_WRITE
        if self.state != "open":
            return 0
        events = selectors.EVENT_READ if self.plan.reads else 0
        if not self.send_done and now >= self.next_send:
            events |= selectors.EVENT_WRITE
        return events

    def next_timer(self, now):
        """The next time (monotonic, after `now`) this peer has something to
        do without an event, or None."""
        if self.state != "open":
            return None
        times = []
        if not self.send_done and self.next_send > now:
            times.append(self.next_send)
        if self.plan.ending == "hold":
            times.append(self.plan.hold_until)
        return min(times) if times else None

    def tick(self, now):
        if self.state == "open" and self.plan.ending == "hold" and now >= self.plan.hold_until:
            self._finish("close")     # with the echo unread: the kernel sends RST

    # -- events ---------------------------------------------------------------

    def on_event(self, mask, now):
        if self.state == "connecting":
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._fail("connect: " + errno.errorcode.get(code, str(code)))
                return
            self.state = "open"
            if self.plan.ending == "reset" and self.plan.reset_after <= 0:
                self._finish("reset")
            return
        if mask & selectors.EVENT_READ and self.state == "open":
            self._on_readable()
        if mask & selectors.EVENT_WRITE and self.state == "open" and not self.send_done:
            self._on_writable(now)

    def _on_writable(self, now):
        plan = self.plan
        size = len(plan.payload)
        at = self.sent % size if plan.ending == "hold" else self.sent
        n = min(plan.chunk, size - at)
        try:
            n = self.sock.send(memoryview(plan.payload)[at:at + n])
        except BlockingIOError:
            return
        except OSError as e:
            self._fail("send: " + (errno.errorcode.get(e.errno) or str(e)))
            return
        self.sent += n
        if plan.interval > 0:
            self.next_send = now + plan.interval * self.rng.uniform(0.5, 1.5)
        if plan.ending == "reset" and self.sent >= plan.reset_after:
            self._finish("reset")
        elif plan.ending == "halfclose" and self.sent == size:
            self.sock.shutdown(socket.SHUT_WR)
            self.send_done = True

    def _on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self._fail("recv: " + (errno.errorcode.get(e.errno) or str(e)))
            return
        if not data:
            if self.send_done and self.plan.ending == "halfclose":
                self.complete = True
                self.digest_ok = self._hash.digest() == hashlib.sha256(self.plan.payload).digest()
                self._finish("close")
            else:
                self._fail("the server closed before the exchange ended")
            return
        expected = self.plan.payload[self.received:self.received + len(data)]
        if data != expected:
            # bytes past what was sent count as corrupted too
            self.corrupted += sum(1 for a, b in zip(data, expected) if a != b) + len(data) - len(expected)
        self._hash.update(data)
        self.received += len(data)

    # -- results ------------------------------------------------------------------

    def lost(self):
        """Bytes sent but never echoed, for a complete exchange."""
        return len(self.plan.payload) - self.received if self.complete else 0


def run(peers, address, deadline):
    """Runs `peers` against `address` until all are done or `deadline`
    (monotonic) passes; the late ones are marked timed_out.

    A peer is looked at again only when it has an event or a timer of its
    is due, so a few hundred slow peers cost nothing between their sends."""
    sel = selectors.DefaultSelector()
    registered = {}                   # peer -> the events it is registered for
    timers = []                       # heap of (time, sequence, peer)
    timer_of = {}                     # peer -> the time of its live heap entry
    sequence = itertools.count()
    left = [0]                        # peers not done

    def refresh(p, now):
        """Registers the events `p` waits for now, and its next timer."""
        p.tick(now)
        events = p.wants(now) if p.state != "done" else 0
        old = registered.get(p, 0)
        if events != old:
            if old and events:
                sel.modify(p.sock, events, p)
            elif events:
                sel.register(p.sock, events, p)
            else:
                sel.unregister(p.sock)   # closed sockets are found by object
            registered[p] = events
        if p.state == "done":
            registered.pop(p, None)
            if not getattr(p, "_counted", False):
                p._counted = True
                left[0] -= 1
            return
        t = p.next_timer(now)
        if t is not None and timer_of.get(p) != t:
            timer_of[p] = t           # an older entry of p becomes stale
            heapq.heappush(timers, (t, next(sequence), p))

    try:
        now = time.monotonic()
        for peer in peers:
            left[0] += 1
            peer.start(address)
            refresh(peer, now)
        while left[0] > 0:
            now = time.monotonic()
            if now >= deadline:
                return
            while timers and timers[0][0] <= now:
                t, _, p = heapq.heappop(timers)
                if timer_of.get(p) == t:
                    del timer_of[p]
                    refresh(p, now)
            if left[0] == 0:
                return
            wake = min(deadline, timers[0][0]) if timers else deadline
            for key, mask in sel.select(max(0.0, wake - time.monotonic())):
                p = key.data
                if p.state != "done":
                    p.on_event(mask, time.monotonic())
                refresh(p, time.monotonic())
    finally:
        for p in peers:
            p.expire()
        sel.close()


class Tally:
    """The sums over a set of peers that the summary reports."""

    def __init__(self, peers):
        self.peers = len(peers)
        self.sent = sum(p.sent for p in peers)
        self.received = sum(p.received for p in peers)
        self.corrupted = sum(p.corrupted for p in peers)
        self.complete = sum(1 for p in peers if p.complete)
        self.digests_ok = sum(1 for p in peers if p.digest_ok)
        self.lost = sum(p.lost() for p in peers)
        self.timed_out = sum(1 for p in peers if p.timed_out)
        self.errors = {}
        for p in peers:
            if p.error:
                self.errors[p.error] = self.errors.get(p.error, 0) + 1
