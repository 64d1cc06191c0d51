"""The XPIO echo server under attack, and what every attack asks of it.

Why: each attack ends with the same questions (is the server alive, does it
still echo, has it given back every descriptor the attack made it open), and
the throughput attacks run the same well-behaved client beside them. Keeping
these here leaves each attack file with its attack alone.
"""

import json
import os
import socket
import time

from procs import Child, lua_script, python_script


class ServerDied(Exception):
    """The server is gone: no later attack can run."""


def echo_probe(address, size=1000, timeout=5.0):
    """One exchange with a fresh connection: None if the echo came back
    intact, else what went wrong."""
    data = os.urandom(size)
    try:
        with socket.create_connection(address, timeout=timeout) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
    except OSError as e:
        return "%s: %s" % (type(e).__name__, e)
    return None if got == data else "echo differs (%d bytes back of %d)" % (len(got), size)


class Target:
    """Starts echo_server.lua under a descriptor limit of `nofile`; in its TLS
    mode when `tls` is given (a TLSFiles: the certificate, key and CA)."""

    def __init__(self, nofile, server_args=(), env=None, tls=None):
        self.nofile = nofile
        self.tls = tls
        if tls:
            server_args = list(server_args) + ["--cert", tls.cert, "--key", tls.key,
                                               "--handshake-timeout", tls.handshake_timeout,
                                               "--idle-timeout", tls.idle_timeout]
        self.server = Child(lua_script("echo_server.lua", *server_args), nofile=nofile, env=env)
        line = self.server.expect("listening ", 10)
        if not line:
            raise ServerDied("the server did not start: " + self.server.stderr_tail())
        host, port = line.split()[1].rsplit(":", 1)
        self.address = (host, int(port))
        self.address_text = "%s:%s" % (host, port)
        problem = self.probe()
        if problem:
            raise ServerDied("the server does not echo: " + problem)
        time.sleep(0.1)
        self.base_fds = self.server.fd_count()
        self.lua_errors_seen = 0

    def probe(self, timeout=5.0):
        """One exchange with a fresh connection (TLS in TLS mode): None if
        the echo came back intact, else what went wrong."""
        if self.tls:
            from tls_peers import tls_probe
            return tls_probe(self.address, self.tls.ca, timeout)
        return echo_probe(self.address, timeout=timeout)

    def stats(self, timeout=10.0):
        """The server's stats now, as a dict: the counters as ints, `errors`
        as a dict of message (spaces, commas and = as _) to count."""
        self.server.proc.stdin.write(b"stats\n")
        self.server.proc.stdin.flush()
        line = self.server.expect("stats ", timeout)
        if not line:
            raise ServerDied("the server did not answer 'stats': " + self.server.stderr_tail())
        out = {}
        for field in line.split()[1:]:
            name, value = field.split("=", 1)
            if name == "errors":
                out[name] = {}
                for part in filter(None, value.split(",")):
                    message, n = part.rsplit(":", 1)
                    out[name][message] = int(n)
            else:
                out[name] = int(value)
        return out

    def lua_errors(self):
        """The `lua-error` lines the server printed since the last call."""
        lines = [line for line in list(self.server.log) if line.startswith("lua-error ")]
        new = lines[self.lua_errors_seen:]
        self.lua_errors_seen = len(lines)
        return new

    def check(self, failures, settle=10.0):
        """After an attack: the server lives, echoes, and is back to its
        starting descriptors. Adds what is wrong to `failures`; returns the
        descriptor count seen."""
        if not self.server.alive():
            raise ServerDied("the server died (status %s): %s" % (self.server.proc.returncode, self.server.stderr_tail()))
        caught = self.lua_errors()
        for line in caught[:3]:
            failures.append("the server caught a Lua error (XPIO must answer nil, message): " + line[10:400])
        if len(caught) > 3:
            failures.append("... and %d more Lua errors" % (len(caught) - 3))
        problem = self.probe()
        if problem:
            failures.append("the server no longer echoes: " + problem)
        fds = self.server.wait_fds(self.base_fds, settle)
        if fds > self.base_fds:
            failures.append("the server holds %d descriptors, %d more than before the attack" % (fds, fds - self.base_fds))
        return fds

    def stop(self):
        """Stops the server; returns its final stats line (or None)."""
        self.server.stop()
        self.server.kill()
        last = None               # the line printed at exit (earlier ones answered "stats")
        for line in self.server.log:
            if line.startswith("stats "):
                last = line
        return last


class GoodClients:
    """good_client.py running beside an attack (a `with` block); `result` is
    its JSON report once the block ends."""

    def __init__(self, target, connections=2, size=32768):
        self.argv = python_script("good_client.py", target.address_text,
                                  "--connections", connections, "--size", size)
        if target.tls:
            self.argv += ["--tls", target.tls.ca]
        self.result = None

    def __enter__(self):
        self.child = Child(self.argv)
        if not self.child.expect("started", 10):
            self.child.kill()
            raise RuntimeError("good_client.py did not start: " + self.child.stderr_tail())
        return self

    def __exit__(self, *exc):
        self.child.stop(timeout=20)
        self.child.kill()
        for line in self.child.log:
            if line.startswith("{"):
                self.result = json.loads(line)
        if self.result is None:
            self.result = {"bytes": 0, "exchanges": 0, "mismatches": 0, "stuck": 0, "slowest": 0, "seconds": 0,
                           "mib_per_s": 0.0, "errors": ["no report: " + self.child.stderr_tail()]}
        return False

    def problems(self):
        """What the good client suffered that it must not: errors (a stall past
        its 10 s timeout included) and corrupted echoes."""
        r = self.result
        out = ["good client: " + e for e in r["errors"]]
        if r["mismatches"]:
            out.append("good client: %d echoes differed from what was sent" % r["mismatches"])
        if r["stuck"]:
            out.append("good client: %d connections stuck" % r["stuck"])
        return out


def baseline(target, seconds, connections=2, size=32768):
    """The good clients' throughput with no attack running, in MiB/s."""
    with GoodClients(target, connections, size) as good:
        time.sleep(seconds)
    return good.result["mib_per_s"]
