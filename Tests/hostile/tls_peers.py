"""TLS peers that misbehave on purpose, for the echo server's TLS mode.

Why Python's `ssl` over memory BIOs: `ssl.SSLSocket` only ever sends whole,
well-formed records at once. A hostile TLS peer needs the raw bytes: the
ClientHello to trickle one byte at a time, the first half of a record to
send before vanishing, a handshake flight to send and then never the next
one. `TLSPipe` runs an `ssl.SSLObject` (memory BIOs) over an ordinary
blocking socket, so each peer decides byte by byte what reaches the wire.

Each peer runs in a thread of its own with socket timeouts (one selector
loop, as in peers.py, would be shorter to run but far longer to read for a
protocol with a state machine inside OpenSSL); every peer ends by its own
deadline, so none can pin the driver. A peer's result is a dict: `kind`,
`ok` (it saw what it had to), `error` (what it saw otherwise), `closed_after`
(seconds until the server closed: from before the connect for the handshake
peers, whose deadline the server starts at accept; from the last byte sent
for the others, which the server must drop at once), `echo_ok`.
"""

import os
import socket
import ssl
import threading
import time

from peers import reset

# A TLS record header: application data, TLS 1.2 on the wire, 16 KiB promised.
FAKE_RECORD_HEADER = bytes([0x17, 0x03, 0x03, 0x40, 0x00])


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


class TLSPipe:
    """An SSLObject on memory BIOs over a blocking socket `sock`."""

    def __init__(self, sock, ctx, server_side=False, server_hostname=None):
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                server_hostname=server_hostname)

    def pending_output(self):
        """The bytes TLS wants sent, taken out of it (the caller sends them,
        or part of them, or none)."""
        return self.outgoing.read()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        """Reads once from the socket into TLS; False at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def first_flight(self):
        """Starts the handshake and returns the first flight (a client's
        ClientHello) without sending it."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.pending_output()

    def handshake(self):
        """Completes the handshake, sending whatever TLS asks for."""
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    raise ConnectionError("end of stream during the handshake")

    def records(self, data):
        """`data` encrypted: the records, not sent."""
        self.obj.write(data)
        return self.pending_output()

    def send(self, data):
        self.sock.sendall(self.records(data))

    def recv_exactly(self, n):
        """n bytes of plaintext, or ConnectionError."""
        out = b""
        while len(out) < n:
            try:
                out += self.obj.read(n - len(out))
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    raise ConnectionError("end of stream after %d of %d bytes" % (len(out), n))
            except ssl.SSLZeroReturnError:
                raise ConnectionError("close_notify after %d of %d bytes" % (len(out), n))
        return out

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.flush()


def wait_closed(sock, limit):
    """Reads and drops what comes until the server closes (end of stream or
    reset): the seconds it took, or None if it did not within `limit`."""
    t0 = time.monotonic()
    deadline = t0 + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            return None
        except OSError:
            return time.monotonic() - t0


def _closed_since(result, t0, waited):
    """Records the close seen by wait_closed (`waited`: None if none) as
    seconds since `t0`."""
    if waited is not None:
        result["closed_after"] = time.monotonic() - t0
    result["ok"] = waited is not None


def line_payload(rng_bytes, size):
    """`size` bytes ending in a newline, with no other newline."""
    return rng_bytes[:size - 1].replace(b"\n", b"n") + b"\n"


class Runner:
    """Runs peer functions in threads; `results` collects their dicts."""

    def __init__(self):
        self.threads = []
        self.results = []
        self.lock = threading.Lock()

    def start(self, fn, *args):
        def body():
            result = {"kind": fn.__name__, "ok": False, "error": None, "closed_after": None, "echo_ok": None}
            try:
                fn(result, *args)
            except Exception as e:        # noqa: BLE001 - every surprise is a result
                result["error"] = result["error"] or "%s: %s" % (type(e).__name__, e)
            with self.lock:
                self.results.append(result)
        t = threading.Thread(target=body, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self, deadline):
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for t in self.threads if t.is_alive())


def _connect(address, timeout=10.0, nodelay=True):
    sock = socket.create_connection(address, timeout=timeout)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _echo_line(pipe, result, size=200):
    """One line through TLS, its echo compared."""
    line = line_payload(os.urandom(size), size)
    pipe.send(line)
    result["echo_ok"] = pipe.recv_exactly(len(line)) == line
    if not result["echo_ok"]:
        result["error"] = "the echo differs from the line sent"
    return result["echo_ok"]


# -- slowloris handshakes: the server must drop these at its handshake timeout --

def hello_trickle(result, address, ctx, interval, limit):
    """The ClientHello one byte every `interval` s, for as long as the server
    keeps the connection (the hello is ~500 bytes: far past its timeout)."""
    t0 = time.monotonic()
    with _connect(address) as sock:
        hello = TLSPipe(sock, ctx, server_hostname="localhost").first_flight()
        for i in range(len(hello)):
            try:
                sock.sendall(hello[i:i + 1])
            except OSError:
                break                 # the server closed: what we wait for
            if time.monotonic() - t0 > limit:
                result["error"] = "still connected after %.1f s of trickling" % limit
                return
            sock.settimeout(interval)
            try:
                if not sock.recv(4096):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            result["error"] = "the whole ClientHello went through (%d bytes): interval too short" % len(hello)
            return
        result["closed_after"] = time.monotonic() - t0
        result["ok"] = True


def hello_half(result, address, ctx, limit):
    """Half a ClientHello at once, then silence."""
    t0 = time.monotonic()
    with _connect(address) as sock:
        hello = TLSPipe(sock, ctx, server_hostname="localhost").first_flight()
        sock.sendall(hello[:len(hello) // 2])
        _closed_since(result, t0, wait_closed(sock, limit))


def silent(result, address, limit):
    """Connects and sends nothing."""
    t0 = time.monotonic()
    with _connect(address) as sock:
        _closed_since(result, t0, wait_closed(sock, limit))


def no_finished(result, address, ctx, limit):
    """A whole ClientHello, the server's flight read, and never the client's
    Finished: the server waits in the middle of its handshake."""
    t0 = time.monotonic()
    with _connect(address) as sock:
        pipe = TLSPipe(sock, ctx, server_hostname="localhost")
        sock.sendall(pipe.first_flight())
        _closed_since(result, t0, wait_closed(sock, limit))


def hello_slow_but_in_time(result, address, ctx, seconds):
    """The control: the ClientHello trickled over `seconds` (well within the
    server's timeout), then a normal handshake and one echoed line."""
    with _connect(address) as sock:
        pipe = TLSPipe(sock, ctx, server_hostname="localhost")
        hello = pipe.first_flight()
        step = max(1, len(hello) // 40)
        for i in range(0, len(hello), step):
            sock.sendall(hello[i:i + step])
            time.sleep(seconds / 40)
        pipe.handshake()
        result["ok"] = _echo_line(pipe, result)
        pipe.close_notify()


# -- garbage and truncation: the server must end each connection at once ------

def garbage_hello(result, address, limit):
    """Random bytes instead of a ClientHello (the first is not 0x16)."""
    with _connect(address) as sock:
        junk = bytearray(os.urandom(600))
        junk[0] = 0x47                # 'G', as a plain HTTP request would start
        junk[1] = 0x45                # 'E': never the major version 3, which with a
                                      # random length would leave the server waiting
        try:
            sock.sendall(bytes(junk))
        except OSError:
            pass
        result["closed_after"] = wait_closed(sock, limit)
        result["ok"] = result["closed_after"] is not None


def garbage_handshake_record(result, address, limit):
    """A well-formed handshake record header, then random bytes as its body."""
    with _connect(address) as sock:
        body = os.urandom(200)
        try:
            sock.sendall(bytes([0x16, 0x03, 0x01, 0x00, len(body)]) + body)
        except OSError:
            pass
        result["closed_after"] = wait_closed(sock, limit)
        result["ok"] = result["closed_after"] is not None


def _established(address, ctx):
    sock = _connect(address)
    pipe = TLSPipe(sock, ctx, server_hostname="localhost")
    pipe.handshake()
    return sock, pipe


def truncated_record(result, address, ctx, ending, limit, fake=False):
    """A handshake and one echoed line; then either the first half of a real
    record (a line's) or a record header promising 16 KiB followed by 100
    bytes (`fake`); then `ending`: "fin" (close, no close_notify), "reset",
    or "hold" (stay silent until the server gives up)."""
    sock, pipe = _established(address, ctx)
    with sock:
        if not _echo_line(pipe, result):
            return
        if fake:
            cut = FAKE_RECORD_HEADER + os.urandom(100)
        else:
            record = pipe.records(line_payload(os.urandom(3000), 3000))
            cut = record[:len(record) // 2]
        sock.sendall(cut)
        time.sleep(0.05)              # the server has read the cut record
        if ending == "fin":
            sock.shutdown(socket.SHUT_WR)
        elif ending == "reset":
            reset(sock)
            result["ok"] = True
            return
        result["closed_after"] = wait_closed(sock, limit)
        result["ok"] = result["closed_after"] is not None


def no_close_notify(result, address, ctx, limit, mid_line=False):
    """A handshake, one echoed line, then (with `mid_line`) a record holding
    an unfinished line; then FIN without close_notify."""
    sock, pipe = _established(address, ctx)
    with sock:
        if not _echo_line(pipe, result):
            return
        if mid_line:
            pipe.send(b"an unfinished line")
        time.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)
        result["closed_after"] = wait_closed(sock, limit)
        result["ok"] = result["closed_after"] is not None


def with_close_notify(result, address, ctx, limit):
    """The control: a handshake, one echoed line, a proper close_notify."""
    sock, pipe = _established(address, ctx)
    with sock:
        if not _echo_line(pipe, result):
            return
        pipe.close_notify()
        sock.shutdown(socket.SHUT_WR)
        result["closed_after"] = wait_closed(sock, limit)
        result["ok"] = result["closed_after"] is not None


def never_read(result, address, ctx, seconds):
    """A handshake, then 32 KiB lines in fresh records as fast as the server
    takes them, never reading its echo (so its writes block, with TLS's
    write stash full), for `seconds`; then close with the echo unread (the
    kernel resets)."""
    sock = _connect(address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    pipe = TLSPipe(sock, ctx, server_hostname="localhost")
    pipe.handshake()
    sock.settimeout(None)
    line = line_payload(os.urandom(32768), 32768)
    timer = threading.Timer(seconds, lambda: sock.shutdown(socket.SHUT_RDWR))
    timer.start()
    sent = 0
    try:
        while True:
            sock.sendall(pipe.records(line))
            sent += 1
    except OSError:
        pass
    finally:
        timer.cancel()
        sock.close()
    result["ok"] = sent > 2           # the server took more than its buffers hold
    if not result["ok"]:
        result["error"] = "only %d lines went out" % sent


def tls_probe(address, cafile, timeout=5.0):
    """One TLS exchange on a fresh connection: None if the line came back
    intact, else what went wrong."""
    line = line_payload(os.urandom(1000), 1000)
    try:
        ctx = client_context(cafile)
        with socket.create_connection(address, timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                s.unwrap()
    except (OSError, ssl.SSLError) as e:
        return "%s: %s" % (type(e).__name__, e)
    return None if got == line else "echo differs (%d bytes back of %d)" % (len(got), len(line))
