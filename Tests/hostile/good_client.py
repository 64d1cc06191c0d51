"""A well-behaved echo client that measures what the server still gives it.

Run as a process of its own (by hostile.py), so that the attackers' Python
work cannot steal its interpreter lock: whatever throughput it loses, it
loses to the server or to the machine, not to the driver.

Each of --connections threads sends a --size message of random bytes, reads
the echo back in full and compares it with what it sent, over and over. It
runs until its stdin reaches end of file (the driver closes it when the
attack is over) or --max-seconds pass, then prints one JSON object:
bytes echoed, exchanges, mismatches, errors, the slowest exchange and the
throughput over the time it ran.

    python3 good_client.py HOST:PORT [--connections 2] [--size 32768] [--tls CA.pem]

With --tls it speaks TLS (checking the server's certificate against CA.pem
and the name localhost) to the echo server's TLS mode, which echoes lines:
each message is then one line, --size bytes with its newline.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time


def recv_exactly(sock, n):
    parts, left = [], n
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise ConnectionError("end of stream after %d of %d bytes" % (n - left, n))
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class Worker(threading.Thread):
    def __init__(self, address, size, timeout, stop, seed, tls=None):
        super().__init__(daemon=True)
        self.address, self.size, self.timeout, self.stop = address, size, timeout, stop
        self.tls = tls
        # a pool twice the message size: each message is a different slice
        self.pool = os.urandom(2 * size)
        if tls:                   # lines: no newline but the one at the end
            self.pool = self.pool.replace(b"\n", b"n")
        self.offset = seed % size
        self.bytes = self.exchanges = self.mismatches = 0
        self.slowest = 0.0
        self.errors = []

    def run(self):
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.tls:
                    sock = self.tls.wrap_socket(sock, server_hostname="localhost")
                while not self.stop.is_set():
                    message = self.pool[self.offset:self.offset + self.size]
                    if self.tls:
                        message = message[:-1] + b"\n"
                    self.offset = (self.offset + 4099) % self.size
                    t0 = time.monotonic()
                    sock.sendall(message)
                    echo = recv_exactly(sock, len(message))
                    self.slowest = max(self.slowest, time.monotonic() - t0)
                    if echo != message:
                        self.mismatches += 1
                    self.bytes += len(message)
                    self.exchanges += 1
                if self.tls:
                    sock.unwrap()     # close_notify: the server counts a clean end
        except OSError as e:      # a timeout too (and ssl.SSLError): the server stalled or failed this client
            self.errors.append("%s: %s" % (type(e).__name__, e))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--size", type=int, default=32768)
    parser.add_argument("--timeout", type=float, default=10.0, help="longest wait for one send or receive")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--tls", metavar="CA.pem", help="speak TLS, trusting this CA")
    args = parser.parse_args()
    host, port = args.address.rsplit(":", 1)
    stop = threading.Event()
    tls = ssl.create_default_context(cafile=args.tls) if args.tls else None
    workers = [Worker((host, int(port)), args.size, args.timeout, stop, i * 7919, tls) for i in range(args.connections)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    print("started", flush=True)
    # wait for end of stdin (or the safety limit)
    reader = threading.Thread(target=sys.stdin.buffer.read, daemon=True)
    reader.start()
    reader.join(args.max_seconds)
    stop.set()
    for w in workers:
        w.join(args.timeout + 1)
    seconds = time.monotonic() - t0
    total = sum(w.bytes for w in workers)
    print(json.dumps({
        "bytes": total,
        "exchanges": sum(w.exchanges for w in workers),
        "mismatches": sum(w.mismatches for w in workers),
        "errors": [e for w in workers for e in w.errors],
        "stuck": sum(1 for w in workers if w.is_alive()),
        "slowest": max(w.slowest for w in workers),
        "seconds": seconds,
        "mib_per_s": total / 1048576 / seconds,
    }), flush=True)


if __name__ == "__main__":
    main()
