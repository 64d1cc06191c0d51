#!/usr/bin/env python3
"""A TLS peer for XPIO's TLS tests (Tests/lua/tls_spec.lua), on Python's
own ssl module (stdlib only), so that XPIO is checked against a TLS stack
it shares no code with.

    peer.py server --cert C --key K [options]   a server on a free loopback port
    peer.py client --connect HOST:PORT [options] a client

Everything the peer does is reported on stdout as one JSON object a line,
flushed at once; nothing else goes there. A server's first line is
{"event": "listening", "port": N, "pid": P}: it binds port 0 and lets the
kernel pick. Then, for each connection, {"event": "handshake", ...} (the
version, cipher, SNI name and ALPN protocol it saw, the client certificate's
CN) or {"event": "handshake_error", "error": ...}, then what the action
reports. A server stops by itself after --lifetime seconds (SIGALRM, whose
default action ends the process), so a test that dies cannot leave it
behind; tests still stop it by pid.

Server actions (--action, run after each handshake):
  echo        echo until the client's close_notify, then send ours
  slow-echo   echo, reading 4 KiB at a time with a 5 ms pause every 64 KiB
  bytes:N     send N bytes (0..255 repeated) in 16 KiB writes, then close_notify
  lines:N     send N numbered lines of varied length (some over 16 KiB) in
              1000-byte writes that straddle lines and records, then close_notify
  bye         send "bye\\n", then close_notify (and wait for the peer's, bounded)
  hold        send "hello\\n", report {"event": "holding"} and sleep until killed
  wait-eof    read until end of stream; report whether it was a clean
              close_notify ({"event": "eof", "clean": true}); then close_notify
  http        read an HTTP request, answer 200 with a --body-size byte body
  starttls    (plain first) read a line, answer "OK\\n", then do TLS, then echo

Client options: --servername (SNI and the name checked; default: none, no
check of the name), --ca, --no-verify, --cert/--key, --alpn, --send TEXT
(sent after the handshake; the client then reads to the end, or
--read-bytes N bytes, and reports {"event": "received", "data": ...,
"clean": bool}, clean meaning the server's close_notify ended it or
--read-bytes were read; then it sends close_notify), --starttls (send
"STARTTLS\\n" and the ClientHello in one write, before any answer: the
server has them both in one read).
"""
import argparse
import json
import os
import signal
import socket
import ssl
import sys
import time
import warnings

# TLS 1.0 and 1.1 are deprecated in Python's ssl; the tests use them on purpose
warnings.filterwarnings("ignore", category=DeprecationWarning)

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def report(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def common_name(cert):
    """The CN of a certificate dict from getpeercert(), or None."""
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def set_versions(ctx, args):
    if args.min:
        ctx.minimum_version = VERSIONS[args.min]
    if args.max:
        ctx.maximum_version = VERSIONS[args.max]
    if args.ciphers:
        ctx.set_ciphers(args.ciphers)


def pattern(n):
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


def line_text(i):
    """Line i (from 1) of the lines action, without its newline: some lines
    are longer than a TLS record (16 KiB), most are short."""
    if i % 50 == 0:
        return "line %d %s" % (i, "L" * (20000 + i))
    return "line %d %s" % (i, "x" * (i % 97))


# ---------------------------------------------------------------- server

def close_notify(conn):
    """Our close_notify (and, as Python does, the peer's if it comes); a
    peer already gone is reported as unwrap_error, which no test waits for."""
    try:
        conn.unwrap()
    except (OSError, ssl.SSLError) as e:
        report(event="unwrap_error", error=str(e))


def serve_connection(conn, args, seen):
    action = args.action
    if action == "echo" or action == "slow-echo":
        total, reads = 0, 0
        clean = True
        try:
            while True:
                data = conn.recv(4096 if action == "slow-echo" else 65536)
                if not data:
                    break
                reads += 1
                if action == "slow-echo" and reads % 16 == 0:
                    time.sleep(0.005)   # about 5 s over 64 MiB
                conn.sendall(data)
                total += len(data)
        except ssl.SSLEOFError:
            clean = False
        report(event="eof", clean=clean, bytes=total)
        if clean:
            close_notify(conn)
    elif action.startswith("bytes:"):
        data = pattern(int(action.split(":")[1]))
        for i in range(0, len(data), 16384):
            conn.sendall(data[i:i + 16384])
        report(event="sent", bytes=len(data))
        close_notify(conn)
    elif action.startswith("lines:"):
        n = int(action.split(":")[1])
        text = "".join(line_text(i) + "\n" for i in range(1, n + 1)).encode()
        for i in range(0, len(text), 1000):
            conn.sendall(text[i:i + 1000])
        report(event="sent", bytes=len(text), lines=n)
        close_notify(conn)
    elif action == "bye":
        conn.sendall(b"bye\n")
        report(event="sent", bytes=4)
        close_notify(conn)
    elif action == "hold":
        conn.sendall(b"hello\n")
        report(event="holding")
        time.sleep(args.lifetime)
    elif action == "wait-eof":
        clean, total = True, 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                total += len(data)
        except ssl.SSLEOFError:
            clean = False
        except (OSError, ssl.SSLError) as e:
            clean = False
            report(event="read_error", error=str(e))
        report(event="eof", clean=clean, bytes=total)
        if clean:
            close_notify(conn)
    elif action == "http":
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                break
            request += data
        first = request.split(b"\r\n", 1)[0].decode("latin-1")
        report(event="request", line=first)
        body = pattern(args.body_size)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        close_notify(conn)
    else:
        raise SystemExit("unknown action " + action)


def server(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    set_versions(ctx, args)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    if args.verify != "none":
        ctx.verify_mode = ssl.CERT_REQUIRED if args.verify == "require" else ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.ca)
    seen = {}

    def sni(sslobj, name, _ctx):
        seen["sni"] = name
    ctx.sni_callback = sni

    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.bind, 0))
    listener.listen(16)
    report(event="listening", port=listener.getsockname()[1], pid=os.getpid())
    for _ in range(args.accept):
        raw, _addr = listener.accept()
        raw.settimeout(args.timeout)
        seen.clear()
        if args.action == "starttls":
            # plain first: one line, "OK", then TLS on the same socket
            line = b""
            while not line.endswith(b"\n"):
                c = raw.recv(1)
                if not c:
                    break
                line += c
            report(event="plain", line=line.decode("latin-1").rstrip("\n"))
            raw.sendall(b"OK\n")
        conn = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False,
                               suppress_ragged_eofs=False)
        try:
            conn.do_handshake()
        except (OSError, ssl.SSLError) as e:
            report(event="handshake_error", error=str(e))
            conn.close()
            continue
        report(event="handshake", version=conn.version(), cipher=conn.cipher()[0],
               sni=seen.get("sni"), alpn=conn.selected_alpn_protocol(),
               peer_cn=common_name(conn.getpeercert()), resumed=conn.session_reused)
        try:
            serve_connection(conn, args if args.action != "starttls" else with_action(args, "echo"), seen)
        except (OSError, ssl.SSLError) as e:
            report(event="error", error=str(e))
        conn.close()
    listener.close()
    report(event="done")


def with_action(args, action):
    copy = argparse.Namespace(**vars(args))
    copy.action = action
    return copy


# ---------------------------------------------------------------- client

def client_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.no_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(args.ca)
        ctx.check_hostname = args.servername is not None
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    set_versions(ctx, args)
    return ctx


def connect_raw(args):
    host, port = args.connect.rsplit(":", 1)
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    raw = socket.socket(family, socket.SOCK_STREAM)
    raw.settimeout(args.timeout)
    raw.connect((host, int(port)))
    return raw


def client(args):
    ctx = client_context(args)
    raw = connect_raw(args)
    if args.starttls:
        return starttls_client(args, ctx, raw)
    conn = ctx.wrap_socket(raw, server_hostname=args.servername, do_handshake_on_connect=False,
                           suppress_ragged_eofs=False)
    try:
        conn.do_handshake()
    except (OSError, ssl.SSLError) as e:
        report(event="handshake_error", error=str(e))
        return 1
    cert = conn.getpeercert()
    report(event="handshake", version=conn.version(), cipher=conn.cipher()[0],
           alpn=conn.selected_alpn_protocol(), peer_cn=common_name(cert))
    if args.send is None:
        conn.close()
        return 0
    received, clean = b"", True
    try:
        conn.sendall(args.send.encode())
        while args.read_bytes is None or len(received) < args.read_bytes:
            data = conn.recv(65536)
            if not data:
                break
            received += data
    except ssl.SSLEOFError:
        clean = False
    except (OSError, ssl.SSLError) as e:
        report(event="error", error=str(e), data=received.decode("latin-1"))
        return 1
    report(event="received", data=received.decode("latin-1"), clean=clean)
    if clean:
        try:
            conn.unwrap()
        except (OSError, ssl.SSLError):
            pass
    conn.close()
    return 0


def starttls_client(args, ctx, raw):
    """STARTTLS with the ClientHello sent together with the command, in one
    write, so the server reads both at once: its plain readline keeps the
    ClientHello, which must then go to TLS."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=args.servername)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    raw.sendall(b"STARTTLS\n" + outgoing.read())
    # the server's plain answer comes first, then its TLS records
    answer = b""
    while not answer.endswith(b"\n"):
        c = raw.recv(1)
        if not c:
            report(event="error", error="eof before the STARTTLS answer")
            return 1
        answer += c
    report(event="plain", line=answer.decode("latin-1").rstrip("\n"))

    def pump():
        out = outgoing.read()
        if out:
            raw.sendall(out)

    def fill():
        data = raw.recv(65536)
        if not data:
            incoming.write_eof()
        else:
            incoming.write(data)

    while True:
        try:
            obj.do_handshake()
            pump()
            break
        except ssl.SSLWantReadError:
            pump()
            fill()
        except (OSError, ssl.SSLError) as e:
            report(event="handshake_error", error=str(e))
            return 1
    report(event="handshake", version=obj.version(), cipher=obj.cipher()[0],
           alpn=obj.selected_alpn_protocol(), peer_cn=common_name(obj.getpeercert()))
    message = (args.send or "").encode()
    obj.write(message)
    pump()
    received = b""
    while len(received) < len(message):
        try:
            received += obj.read(65536)
        except ssl.SSLWantReadError:
            pump()
            fill()
        except ssl.SSLZeroReturnError:
            break
    report(event="received", data=received.decode("latin-1"), clean=True)
    try:
        obj.unwrap()
    except (ssl.SSLWantReadError, ssl.SSLError):
        pass
    pump()
    raw.close()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--verify", choices=["none", "optional", "require"], default="none",
                        help="server: ask for a client certificate (checked against --ca)")
    parser.add_argument("--alpn", help="comma-separated protocols")
    parser.add_argument("--min", choices=sorted(VERSIONS))
    parser.add_argument("--max", choices=sorted(VERSIONS))
    parser.add_argument("--ciphers", help="OpenSSL cipher list (TLS 1.2 and below)")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--accept", type=int, default=1, help="server: connections to serve, one after another")
    parser.add_argument("--action", default="echo")
    parser.add_argument("--body-size", type=int, default=12345)
    parser.add_argument("--lifetime", type=int, default=120, help="seconds before the process ends itself")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any one socket call may take")
    parser.add_argument("--connect")
    parser.add_argument("--servername")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--send")
    parser.add_argument("--read-bytes", type=int,
                        help="client: after --send, read this many bytes, then close (default: read to the end)")
    parser.add_argument("--starttls", action="store_true")
    args = parser.parse_args()
    signal.alarm(args.lifetime)
    if args.role == "server":
        server(args)
        return 0
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
