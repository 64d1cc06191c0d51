#!/usr/bin/env python3
"""Checks the TLS test fixtures without XPIO: make_certs.sh's certificates,
peer.py as server and client against each other and against the openssl
CLI (s_server, s_client). Each case is what tls_spec.lua expects of XPIO in
the same place, seen from a TLS stack that already works, so that a failing
XPIO test points at XPIO and not at its fixtures.

    python3 Tests/tls/check_fixtures.py      (prints one line a case, exits 1 on a failure)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer.py")
PY = sys.executable
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


class Peer:
    """peer.py or openssl as a child, its stdout read line by line; every
    one is killed at the end, whatever happened."""
    started = []

    def __init__(self, args, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        self.p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, text=True)
        Peer.started.append(self)

    def line(self):
        return self.p.stdout.readline()

    def event(self):
        line = self.line()
        return json.loads(line) if line else None

    def stop(self):
        self.p.kill()
        self.p.wait()


def py_server(certs, cert, *extra):
    s = Peer([PY, PEER, "server", "--cert", f"{certs}/{cert}.pem", "--key", f"{certs}/{cert}.key",
              "--lifetime", "30", "--timeout", "10", *extra])
    first = s.event()
    return s, first["port"]


def s_server(certs, cert, *extra):
    s = Peer(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", f"{certs}/{cert}.pem",
              "-key", f"{certs}/{cert}.key", *extra], stdin=subprocess.PIPE)
    while True:
        line = s.line()
        if not line:
            raise RuntimeError("s_server ended before ACCEPT")
        if line.startswith("ACCEPT"):
            return s, int(line.rsplit(":", 1)[1])


def py_client(certs, port, *extra, host="127.0.0.1"):
    out = subprocess.run([PY, PEER, "client", "--connect", f"{host}:{port}", "--ca", f"{certs}/ca.pem",
                          "--timeout", "10", *extra], capture_output=True, text=True, timeout=30)
    return [json.loads(line) for line in out.stdout.splitlines()], out.returncode


def main():
    certs = tempfile.mkdtemp(prefix="xpio-tls-fixtures-")
    try:
        t = time.monotonic()
        subprocess.run(["sh", os.path.join(HERE, "make_certs.sh"), certs], check=True)
        check("make_certs.sh runs in under 5 s", time.monotonic() - t < 5)
        run_cases(certs)
    finally:
        for peer in Peer.started:
            peer.stop()
        shutil.rmtree(certs)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


def run_cases(certs):
    # the password-protected key opens with its password only
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{certs}/leaf.pem", f"{certs}/leaf-enc.key", password="xpio-secret")
    try:
        ctx.load_cert_chain(f"{certs}/leaf.pem", f"{certs}/leaf-enc.key", password="wrong")
        refused = False
    except ssl.SSLError:
        refused = True
    check("leaf-enc.key: xpio-secret opens it, another password does not", refused)

    # the verification table: Python client against both servers
    table = [
        ("leaf", None),
        ("expired", "certificate has expired"),
        ("wrong", "Hostname mismatch"),
        ("self", "self-signed certificate"),
        ("untrusted", "unable to get local issuer certificate"),
    ]
    for kind, start in (("peer.py", py_server), ("s_server", s_server)):
        for cert, expected in table:
            s, port = start(certs, cert)
            events, _ = py_client(certs, port, "--servername", "localhost")
            s.stop()
            e = events[0]
            if expected is None:
                check(f"{kind} {cert}: verified TLSv1.3", e["event"] == "handshake" and e["version"] == "TLSv1.3", str(e))
            else:
                check(f"{kind} {cert}: {expected}", e["event"] == "handshake_error" and expected in e["error"], str(e))

    # IP literals: 127.0.0.1 is in leaf's SAN, not in wrong's
    s, port = s_server(certs, "leaf")
    events, _ = py_client(certs, port, "--servername", "127.0.0.1")
    s.stop()
    check("IP literal in the SAN passes", events[0]["event"] == "handshake", str(events))
    s, port = s_server(certs, "wrong")
    events, _ = py_client(certs, port, "--servername", "127.0.0.1")
    s.stop()
    check("IP literal not in the SAN fails (IP address mismatch)",
          events[0]["event"] == "handshake_error" and "IP address mismatch" in events[0]["error"], str(events))
    s, port = py_server(certs, "leaf", "--bind", "::1")
    events, _ = py_client(certs, port, "--servername", "::1", host="[::1]")
    s.stop()
    check("[::1] with ::1 in the SAN passes", events[0]["event"] == "handshake", str(events))

    # TLS 1.0 only (Debian's SECLEVEL 2 refuses 1.0 unless lowered)
    s, port = s_server(certs, "leaf", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0")
    events, _ = py_client(certs, port, "--servername", "localhost")
    s.stop()
    check("TLS 1.0 only server: tlsv1 alert protocol version",
          events[0]["event"] == "handshake_error" and "tlsv1 alert protocol version" in events[0]["error"], str(events))
    s, port = py_server(certs, "leaf", "--min", "1.0", "--max", "1.0", "--ciphers", "DEFAULT@SECLEVEL=0")
    events, _ = py_client(certs, port, "--servername", "localhost")
    s.stop()
    check("peer.py --max 1.0: protocol version too",
          events[0]["event"] == "handshake_error" and "protocol version" in events[0]["error"], str(events))

    # no verification: self-signed connects
    s, port = s_server(certs, "self")
    events, _ = py_client(certs, port, "--no-verify")
    s.stop()
    check("--no-verify connects to self-signed", events[0]["event"] == "handshake", str(events))

    # SNI and ALPN as the server saw them; not SNI for an IP literal
    s, port = py_server(certs, "leaf", "--alpn", "h2,http/1.1", "--accept", "2", "--action", "bye")
    events, _ = py_client(certs, port, "--servername", "localhost", "--alpn", "http/1.1", "--send", "")
    seen = s.event()
    check("server saw SNI localhost and ALPN http/1.1",
          seen["sni"] == "localhost" and seen["alpn"] == "http/1.1" and events[0]["alpn"] == "http/1.1",
          str(seen) + str(events))
    check("bye: bye then a clean close_notify", events[1] == {"event": "received", "data": "bye\n", "clean": True},
          str(events))
    s.event()   # sent
    events, _ = py_client(certs, port, "--servername", "127.0.0.1", "--send", "")
    seen = s.event()
    check("no SNI for an IP literal", seen["event"] == "handshake" and seen["sni"] is None, str(seen))
    s.stop()

    # echo, and echo to the byte
    s, port = py_server(certs, "leaf", "--action", "echo")
    events, rc = py_client(certs, port, "--servername", "localhost", "--send", "hello\n", "--read-bytes", "6")
    eof = s.event(), s.event()
    s.stop()
    check("echo", rc == 0 and events[1]["data"] == "hello\n" and eof[1] == {"event": "eof", "clean": True, "bytes": 6},
          str(events) + str(eof))

    # mutual TLS: required without a client certificate fails (server at
    # handshake, client at its first read); with one, the server sees its CN
    s, port = py_server(certs, "leaf", "--verify", "require", "--ca", f"{certs}/ca.pem", "--accept", "2",
                        "--action", "bye")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "")
    seen = s.event()
    check("mTLS required, no cert: the server refuses",
          seen["event"] == "handshake_error" and "PEER_DID_NOT_RETURN_A_CERTIFICATE" in seen["error"], str(seen))
    check("mTLS required, no cert: the client learns at its first read (tlsv13 alert certificate required)",
          events[0]["event"] == "handshake" and events[1]["event"] == "error"
          and "tlsv13 alert certificate required" in events[1]["error"], str(events))
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "",
                          "--cert", f"{certs}/client.pem", "--key", f"{certs}/client.key")
    seen = s.event()
    check("mTLS required, with the client cert: CN xpio-client", seen["peer_cn"] == "xpio-client", str(seen))
    s.stop()
    s, port = py_server(certs, "leaf", "--verify", "optional", "--ca", f"{certs}/ca.pem", "--accept", "2",
                        "--action", "bye")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "")
    seen = s.event()
    s.event()
    check("mTLS optional without a cert: served, no CN", seen["event"] == "handshake" and seen["peer_cn"] is None,
          str(seen))
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "",
                          "--cert", f"{certs}/client.pem", "--key", f"{certs}/client.key")
    seen = s.event()
    check("mTLS optional with a cert: CN xpio-client", seen["peer_cn"] == "xpio-client", str(seen))
    s.stop()

    # bytes:N and lines:N arrive whole
    s, port = py_server(certs, "leaf", "--action", "bytes:1048576")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "")
    s.stop()
    data = events[1]["data"].encode("latin-1")
    check("bytes:1048576", len(data) == 1048576 and data == (bytes(range(256)) * 4096), str(len(data)))
    s, port = py_server(certs, "leaf", "--action", "lines:300")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "")
    s.stop()
    lines = events[1]["data"].split("\n")
    check("lines:300", len(lines) == 301 and lines[0] == "line 1 x" and len(lines[49]) > 16384, str(len(lines)))

    # http
    s, port = py_server(certs, "leaf", "--action", "http", "--body-size", "777")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.stop()
    check("http: 200 with Content-Length 777",
          events[1]["data"].startswith("HTTP/1.1 200 OK\r\n") and "Content-Length: 777\r\n" in events[1]["data"],
          str(events)[:200])

    # wait-eof: close_notify versus a vanished client
    s, port = py_server(certs, "leaf", "--action", "wait-eof", "--accept", "2")
    events, _ = py_client(certs, port, "--servername", "localhost", "--send", "abc", "--read-bytes", "0")
    s.event()
    eof = s.event()
    check("wait-eof: a clean close_notify", eof == {"event": "eof", "clean": True, "bytes": 3}, str(eof))
    c = Peer([PY, PEER, "client", "--connect", f"127.0.0.1:{port}", "--servername", "localhost",
              "--ca", f"{certs}/ca.pem", "--send", "abc"])
    c.event()
    s.event()
    c.stop()   # SIGKILL: no close_notify
    eof = s.event()
    check("wait-eof: kill -9 is not clean", eof["event"] == "eof" and eof["clean"] is False, str(eof))
    s.stop()

    # hold, then killed: the client sees an unexpected EOF
    s, port = py_server(certs, "leaf", "--action", "hold")
    c = Peer([PY, PEER, "client", "--connect", f"127.0.0.1:{port}", "--servername", "localhost",
              "--ca", f"{certs}/ca.pem", "--send", ""])
    c.event()
    s.event()
    check("hold: holding", s.event() == {"event": "holding"})
    s.stop()
    e = c.event()
    c.stop()
    check("hold killed: the client sees EOF in violation of protocol",
          e["event"] == "received" and e["clean"] is False and e["data"] == "hello\n", str(e))

    # slow-echo of 8 MiB, written while read (a thread per direction)
    s, port = py_server(certs, "leaf", "--action", "slow-echo")
    import socket
    import ssl
    import threading
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
    conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    total = 8 << 20
    got = []

    def reader():
        n = 0
        while n < total:
            d = conn.recv(65536)
            if not d:
                break
            n += len(d)
        got.append(n)
    th = threading.Thread(target=reader)
    th.start()
    t = time.monotonic()
    block = bytes(range(256)) * 256
    for _ in range(total // len(block)):
        conn.sendall(block)
    th.join(60)
    check("slow-echo 8 MiB full duplex (%.1f s)" % (time.monotonic() - t), got == [total], str(got))
    conn.close()
    s.stop()

    # STARTTLS: the MemoryBIO client sends STARTTLS and its ClientHello at once
    s, port = py_server(certs, "leaf", "--action", "starttls")
    events, _ = py_client(certs, port, "--servername", "localhost", "--starttls", "--send", "after tls\n")
    plain = s.event()
    s.stop()
    check("starttls client against the starttls server",
          plain == {"event": "plain", "line": "STARTTLS"} and events[0] == {"event": "plain", "line": "OK"}
          and events[1]["event"] == "handshake" and events[2]["data"] == "after tls\n", str(events) + str(plain))

    # the clients the XPIO server tests run: s_client (with and without a
    # client cert) against an openssl s_server that asks for one
    s, port = s_server(certs, "leaf", "-alpn", "h2,http/1.1", "-rev")
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                          "-alpn", "http/1.1", "-CAfile", f"{certs}/ca.pem", "-verify_return_error",
                          "-verify_hostname", "localhost", "-quiet"],
                         input="hello\nCLOSE\n", capture_output=True, text=True, timeout=10)
    s.stop()
    check("s_client against s_server -rev", "olleh" in out.stdout, out.stdout + out.stderr)
    s, port = py_server(certs, "leaf", "--verify", "require", "--ca", f"{certs}/ca.pem", "--action", "bye")
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                          "-CAfile", f"{certs}/ca.pem", "-verify_return_error", "-verify_hostname", "localhost",
                          "-cert", f"{certs}/client.pem", "-key", f"{certs}/client.key", "-quiet"],
                         input="", capture_output=True, text=True, timeout=10)
    seen = s.event()
    s.stop()
    check("s_client with -cert: the server sees CN xpio-client (exit %d)" % out.returncode,
          seen.get("peer_cn") == "xpio-client" and out.stdout == "bye\n", str(seen) + out.stdout + out.stderr)


if __name__ == "__main__":
    sys.exit(main())
