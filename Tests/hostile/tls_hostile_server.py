"""Hostile TLS servers for the XPIO client in TLS mode (client.lua --ca).

Why: a TLS client meets new ways to be held or fooled: a server that stops
in the middle of the handshake (only the client's own deadline ends the
wait), one that answers a ClientHello with garbage or an alert, one that
cuts a record short or vanishes without close_notify after a handshake.
Each mode is a listener of its own on 127.0.0.1 speaking client.lua's
protocol ("ECHO <n>\\n" + n bytes, answered by "OK <n>\\n" + the same bytes)
inside TLS, badly in one way. The TLS runs over memory BIOs (tls_peers.TLSPipe)
so a mode decides which bytes of which record reach the wire.

MODES maps each mode to what the client must report, as in
hostile_server.py: "ok", a "timeout" of its own, or an error whose message
contains the given text. Every handler gives up on its own.
"""

import os
import socket
import ssl
import threading
import time

from hostile_server import IO_TIMEOUT, answer, read_request, wait_for_close
from peers import reset
from tls_peers import FAKE_RECORD_HEADER, TLSPipe

MODES = {
    "tls-echo": ("ok", ""),                          # a correct TLS server: the control
    "tls-slow-handshake": ("ok", ""),                # its flight in 20 pieces, within the deadline
    "tls-stall-hello": ("timeout", ""),              # reads the ClientHello, never answers
    "tls-stall-mid": ("timeout", ""),                # half its first flight, then nothing
    "tls-garbage": ("error", ""),                    # random bytes for a ServerHello
    "tls-http": ("error", "wrong version number"),   # a plain HTTP answer to the ClientHello
    "tls-alert": ("error", "alert handshake failure"),  # a fatal alert for a ServerHello
    "tls-self-signed": ("error", "certificate verify failed"),
    "tls-truncated": ("error", "xpio: tls: unexpected eof"),          # half the answer's record, FIN
    "tls-fake-header": ("error", "xpio: tls: unexpected eof"),        # a header promising 16 KiB, 100 bytes, FIN
    "tls-truncated-reset": ("error", "reset"),                        # half a record, RST
    "tls-truncated-stall": ("timeout", ""),                           # half a record, then nothing
    "tls-no-close-notify": ("error", "xpio: tls: unexpected eof"),    # half the answer, FIN without close_notify
    "tls-close-notify-early": ("error", "unexpected end of stream"),  # half the answer, then close_notify
}


class PipeConn:
    """What read_request needs of a connection (recv), over a TLSPipe."""

    def __init__(self, pipe):
        self.pipe = pipe

    def recv(self, n):
        while True:
            try:
                return self.pipe.obj.read(n)
            except ssl.SSLWantReadError:
                self.pipe.flush()
                if not self.pipe.feed():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""


def _recv_hello(conn):
    """Reads what the client sends first (its ClientHello, or most of it)."""
    return conn.recv(65536)


class TLSHostileServers:
    """One listener per mode; `addresses` maps the modes to "host:port"."""

    def __init__(self, client_timeout, files):
        self.client_timeout = client_timeout
        self.listeners = []
        self.addresses = {}
        self.handled = 0
        self.failures = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(files.cert, files.key)
        self.self_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.self_ctx.load_cert_chain(files.self_cert, files.self_key)
        for mode in MODES:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            self.listeners.append(sock)
            self.addresses[mode] = "127.0.0.1:%d" % sock.getsockname()[1]
            threading.Thread(target=self._accept_loop, args=(sock, mode), daemon=True).start()

    def client_arguments(self, size=1000):
        return ["%s=%s/%d" % (m, a, size) for m, a in self.addresses.items()]

    def _accept_loop(self, sock, mode):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.handled += 1
            threading.Thread(target=self._handle, args=(conn, mode), daemon=True).start()

    def _handle(self, conn, mode):
        conn.settimeout(IO_TIMEOUT)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            getattr(self, "_mode_" + mode.replace("-", "_"))(conn)
        except (OSError, ssl.SSLError):
            pass                      # the client gave up, reset or timed out: expected
        except Exception as e:        # noqa: BLE001 - reported, not hidden
            self.failures.append("%s: %r" % (mode, e))
        finally:
            conn.close()

    def _established(self, conn, ctx=None):
        pipe = TLSPipe(conn, ctx or self.ctx, server_side=True)
        pipe.handshake()
        return pipe

    def _half_answer_records(self, conn):
        """A handshake and the request read; returns the pipe and the answer's
        records (not sent)."""
        pipe = self._established(conn)
        payload = read_request(PipeConn(pipe))
        return pipe, pipe.records(answer(payload))

    # -- the modes ----------------------------------------------------------------

    def _mode_tls_echo(self, conn, ctx=None):
        pipe = self._established(conn, ctx)
        pipe.send(answer(read_request(PipeConn(pipe))))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_self_signed(self, conn):
        self._mode_tls_echo(conn, self.self_ctx)

    def _mode_tls_slow_handshake(self, conn):
        pipe = TLSPipe(conn, self.ctx, server_side=True)
        flight = b""
        while not flight:             # the whole ClientHello, however it was cut
            if not pipe.feed():
                return
            try:
                pipe.obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            flight = pipe.pending_output()
        step = max(1, len(flight) // 20)
        for i in range(0, len(flight), step):
            conn.sendall(flight[i:i + step])
            time.sleep(self.client_timeout * 0.3 / 20)
        pipe.handshake()
        pipe.send(answer(read_request(PipeConn(pipe))))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_stall_hello(self, conn):
        _recv_hello(conn)
        wait_for_close(conn, self.client_timeout + 5)

    def _mode_tls_stall_mid(self, conn):
        pipe = TLSPipe(conn, self.ctx, server_side=True)
        pipe.incoming.write(_recv_hello(conn))
        try:
            pipe.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = pipe.pending_output()
        conn.sendall(flight[:len(flight) // 2])
        wait_for_close(conn, self.client_timeout + 5)

    def _mode_tls_garbage(self, conn):
        _recv_hello(conn)
        junk = bytearray(os.urandom(4096))
        junk[0] = 0xFF                # no TLS content type
        junk[1] = 0xFF                # nor version: a random 0x03 here and a random
                                      # length beyond 4 KiB would make the client wait
        conn.sendall(bytes(junk))
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_http(self, conn):
        _recv_hello(conn)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_alert(self, conn):
        _recv_hello(conn)
        conn.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))   # fatal, handshake_failure
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_truncated(self, conn):
        _, records = self._half_answer_records(conn)
        conn.sendall(records[:len(records) // 2])
        time.sleep(0.05)
        conn.shutdown(socket.SHUT_WR)
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_fake_header(self, conn):
        self._half_answer_records(conn)
        conn.sendall(FAKE_RECORD_HEADER + os.urandom(100))
        time.sleep(0.05)
        conn.shutdown(socket.SHUT_WR)
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_truncated_reset(self, conn):
        _, records = self._half_answer_records(conn)
        conn.sendall(records[:len(records) // 2])
        time.sleep(0.05)
        reset(conn)

    def _mode_tls_truncated_stall(self, conn):
        _, records = self._half_answer_records(conn)
        conn.sendall(records[:len(records) // 2])
        wait_for_close(conn, self.client_timeout + 5)

    def _half_answer(self, conn):
        pipe = self._established(conn)
        data = answer(read_request(PipeConn(pipe)))
        pipe.send(data[:len(data) // 2])
        return pipe

    def _mode_tls_no_close_notify(self, conn):
        self._half_answer(conn)
        time.sleep(0.05)
        conn.shutdown(socket.SHUT_WR)
        wait_for_close(conn, IO_TIMEOUT)

    def _mode_tls_close_notify_early(self, conn):
        pipe = self._half_answer(conn)
        pipe.close_notify()
        conn.shutdown(socket.SHUT_WR)
        wait_for_close(conn, IO_TIMEOUT)

    def stop(self):
        for sock in self.listeners:
            sock.close()
