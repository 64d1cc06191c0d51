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
    """Starts echo_server.lua under a descriptor limit of `nofile`."""

    def __init__(self, nofile, server_args=(), env=None):
        self.nofile = nofile
        self.server = Child(lua_script("echo_server.lua", *server_args), nofile=nofile, env=env)
        line = self.server.expect("listening ", 10)
        if not line:
            raise ServerDied("the server did not start: " + self.server.stderr_tail())
        host, port = line.split()[1].rsplit(":", 1)
        self.address = (host, int(port))
        self.address_text = "%s:%s" % (host, port)
        problem = echo_probe(self.address)
        if problem:
            raise ServerDied("the server does not echo: " + problem)
        time.sleep(0.1)
        self.base_fds = self.server.fd_count()

    def check(self, failures, settle=10.0):
        """After an attack: the server lives, echoes, and is back to its
        starting descriptors. Adds what is wrong to `failures`; returns the
        descriptor count seen."""
        if not self.server.alive():
            raise ServerDied("the server died (status %s): %s" % (self.server.proc.returncode, self.server.stderr_tail()))
        problem = echo_probe(self.address)
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
        for line in self.server.log:
            if line.startswith("stats "):
                return line
        return None


class GoodClients:
    """good_client.py running beside an attack (a `with` block); `result` is
    its JSON report once the block ends."""

    def __init__(self, target, connections=2, size=32768):
        self.argv = python_script("good_client.py", target.address_text,
                                  "--connections", connections, "--size", size)
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
