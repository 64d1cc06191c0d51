"""Hostile servers for the XPIO client (Tests/hostile/client.lua).

Why: a client library is attacked from the other side too. Each mode is a
listener of its own on 127.0.0.1 that speaks the client's protocol
("ECHO <n>\\n" + n bytes, answered by "OK <n>\\n" + the same bytes) badly in
one way. MODES maps each mode to what the client must report: "ok", a
"timeout" of its own, or an error whose message contains the given text
("" : any message but timeout). The client must never crash, raise or wait
past its deadline, whatever the mode.

Every handler runs in a daemon thread and gives up on its own (a socket
timeout, or a hold of a few seconds), so a stuck client cannot pin it.
"""

import os
import random
import socket
import threading
import time

from peers import reset

# mode -> (expected outcome, substring of the error message)
MODES = {
    "echo": ("ok", ""),                      # a correct server: the control
    "trickle": ("ok", ""),                   # the answer a byte at a time, within the deadline
    "flood": ("ok", ""),                     # a correct answer, then endless garbage
    "stall": ("timeout", ""),                # reads the request, never answers
    "trickle-slow": ("timeout", ""),         # a byte at a time, too slowly to finish
    "never-read": ("timeout", ""),           # never reads: a large request cannot be written
    "reset": ("error", "reset"),             # reads the request, answers with RST
    "reset-at-once": ("error", ""),          # RST as soon as accepted
    "close": ("error", ""),                  # FIN as soon as accepted
    "partial": ("error", "end of stream"),   # half an answer, then FIN
    "garbage": ("error", "protocol error"),  # random bytes for an answer
    "huge-length": ("error", "reply too large"),
    "endless-header": ("error", "header too long"),
    "wrong-length": ("error", "wrong length"),
    "corrupt": ("error", "payload differs"),  # right length, one byte flipped
    "refused": ("error", "Connection refused"),  # nobody listens
    "backlog-full": ("timeout", ""),         # never accepts, listen queue full: connect cannot finish
}

# Payload size the client sends to each mode (never-read needs more than
# the socket buffers hold).
SIZES = {"never-read": 8 * 1024 * 1024, "trickle": 16, "trickle-slow": 16}
DEFAULT_SIZE = 1000
IO_TIMEOUT = 10.0


def read_request(conn):
    """Reads "ECHO <n>\\n" and n bytes; returns the payload (bytes)."""
    header = b""
    while b"\n" not in header:
        chunk = conn.recv(64)
        if not chunk or len(header) > 64:
            raise ConnectionError("bad request header")
        header += chunk
    line, rest = header.split(b"\n", 1)
    n = int(line.split(b" ", 1)[1])
    parts, have = [rest], len(rest)
    while have < n:
        chunk = conn.recv(min(65536, n - have))
        if not chunk:
            raise ConnectionError("request cut short")
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)[:n]


def answer(payload):
    return b"OK %d\n" % len(payload) + payload


def wait_for_close(conn, limit):
    """Reads and drops whatever comes until the client closes (or `limit` s)."""
    conn.settimeout(limit)
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


class HostileServers:
    """One listener per mode, each served by threads; `addresses` maps the
    modes to "host:port" (for "refused", a port nobody listens on)."""

    def __init__(self, client_timeout):
        self.client_timeout = client_timeout
        self.listeners = []
        self.addresses = {}
        self.handled = 0
        self.failures = []           # exceptions a handler did not expect
        for mode in MODES:
            if mode == "refused":
                # Bound and never listened on: connections are refused. It
                # stays bound while the servers run: closed, its port was
                # free for the next mode's listener to get from bind(0),
                # and a CI run's "refused" connects met a silent server.
                probe = socket.socket()
                probe.bind(("127.0.0.1", 0))
                self.addresses[mode] = "127.0.0.1:%d" % probe.getsockname()[1]
                self.listeners.append(probe)
                continue
            if mode == "backlog-full":
                self.addresses[mode] = self._full_listener()
                continue
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if mode == "never-read":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind(("127.0.0.1", 0))
            sock.listen(256)
            self.listeners.append(sock)
            self.addresses[mode] = "127.0.0.1:%d" % sock.getsockname()[1]
            threading.Thread(target=self._accept_loop, args=(sock, mode), daemon=True).start()

    def _full_listener(self):
        """A listener that never accepts, its queue filled by connections of
        our own: the kernel drops further SYNs, so a client's connect stays
        in progress until the client gives up."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)                # a queue of one
        self.listeners.append(sock)
        address = sock.getsockname()
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            self.listeners.append(filler)
        time.sleep(0.1)               # let the handshakes that fit complete
        return "127.0.0.1:%d" % address[1]

    def client_arguments(self):
        """NAME=HOST:PORT/SIZE for client.lua, one per mode."""
        return ["%s=%s/%d" % (m, a, SIZES.get(m, DEFAULT_SIZE)) for m, a in self.addresses.items()]

    def _accept_loop(self, sock, mode):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return                # closed by stop()
            self.handled += 1
            threading.Thread(target=self._handle, args=(conn, mode), daemon=True).start()

    def _handle(self, conn, mode):
        conn.settimeout(IO_TIMEOUT)
        try:
            getattr(self, "_mode_" + mode.replace("-", "_"))(conn)
        except OSError:
            pass                      # the client gave up, reset or timed out: expected
        except Exception as e:        # noqa: BLE001 - reported, not hidden
            self.failures.append("%s: %r" % (mode, e))
        finally:
            conn.close()

    def _trickle(self, conn, data, delay):
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            time.sleep(delay)

    # -- the modes ----------------------------------------------------------------

    def _mode_echo(self, conn):
        conn.sendall(answer(read_request(conn)))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_trickle(self, conn):
        data = answer(read_request(conn))
        self._trickle(conn, data, self.client_timeout * 0.3 / len(data))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_trickle_slow(self, conn):
        data = answer(read_request(conn))
        self._trickle(conn, data, self.client_timeout / 4)

    def _mode_flood(self, conn):
        conn.sendall(answer(read_request(conn)))
        junk = os.urandom(65536)
        while True:                   # until the client closes: EPIPE/ECONNRESET
            conn.sendall(junk)

    def _mode_stall(self, conn):
        read_request(conn)
        wait_for_close(conn, self.client_timeout + 5)

    def _mode_never_read(self, conn):
        time.sleep(self.client_timeout + 1)
        reset(conn)

    def _mode_reset(self, conn):
        read_request(conn)
        reset(conn)

    def _mode_reset_at_once(self, conn):
        reset(conn)

    def _mode_close(self, conn):
        pass                          # closed by _handle

    def _mode_partial(self, conn):
        data = answer(read_request(conn))
        conn.sendall(data[:len(data) // 2])

    def _mode_garbage(self, conn):
        read_request(conn)
        junk = bytearray(os.urandom(4096))
        junk[0] = 0xFF                # cannot start like "OK "
        conn.sendall(junk)
        conn.shutdown(socket.SHUT_WR)
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_huge_length(self, conn):
        read_request(conn)
        conn.sendall(b"OK 99999999999999999999\n" + os.urandom(1024))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_endless_header(self, conn):
        read_request(conn)
        conn.sendall(b"OK ")
        digits = b"9" * 65536
        while True:
            conn.sendall(digits)

    def _mode_wrong_length(self, conn):
        payload = read_request(conn)
        conn.sendall(b"OK %d\n" % (len(payload) + 1) + payload + b"!")
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_corrupt(self, conn):
        payload = bytearray(read_request(conn))
        at = random.randrange(len(payload))
        payload[at] ^= 0x01
        conn.sendall(answer(bytes(payload)))
        wait_for_close(conn, IO_TIMEOUT)

    def stop(self):
        for sock in self.listeners:
            sock.close()


def judge(mode, outcome, message, seconds, timeout, slack, modes=None):
    """None if the client's result fits the mode (in `modes`, default
    MODES), else why not."""
    expected, text = (modes or MODES)[mode]
    if seconds > timeout + slack:
        return "%s: took %.3f s, past its %.1f s deadline" % (mode, seconds, timeout)
    if expected == "ok":
        return None if outcome == "ok" else "%s: expected success, got %s" % (mode, message)
    if expected == "timeout":
        return None if message == "timeout" else "%s: expected a timeout, got %s %s" % (mode, outcome, message)
    if outcome == "ok":
        return "%s: expected an error, got success" % mode
    if message == "timeout":
        return "%s: expected an error at once, got a timeout" % mode
    if text not in message:
        return "%s: expected an error with %r, got %r" % (mode, text, message)
    return None
