"""Starting, watching and stopping the XPIO processes the attacks run against.

Why a module of its own: every attack needs the same facts about the server
(is it alive, how much CPU has it used, how many descriptors does it hold,
what has it logged), and the driver must be sure that no XPIO process
outlives it, whatever way it ends. Three layers make sure of that:

* the children get PR_SET_PDEATHSIG(SIGKILL), so the kernel kills them if
  the driver dies, even by SIGKILL (the signal follows the thread that
  started the child: the driver starts every child from its main thread);
* the echo server also stops by itself when its stdin (a pipe from the
  driver) reaches end of file;
* `stop()` closes stdin, waits, then kills; the driver calls it in `finally`.
"""

import ctypes
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
# Loaded here, not in the child: dlopen between fork and exec could deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True)


def lua_interpreter():
    """The interpreter to run XPIO scripts with: XPIO_LUA, like the Lua tests, else lua5.4."""
    return os.environ.get("XPIO_LUA", "lua5.4")


def _child_setup(nofile):
    """Runs in the child between fork and exec: die with the driver, and take
    the descriptor limit the attack needs."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def lua_script(script, *args):
    """The command line running Tests/hostile/`script` with the XPIO module
    from LUA_CPATH/LUA_PATH, which the children inherit from the environment."""
    return [lua_interpreter(), os.path.join(HERE, script)] + [str(a) for a in args]


def python_script(script, *args):
    """The command line running Tests/hostile/`script` with this Python
    (-B: no __pycache__ left in the source tree)."""
    return [sys.executable, "-B", os.path.join(HERE, script)] + [str(a) for a in args]


class Child:
    """A child process of the driver, with its stdin a pipe from the driver
    and its stdout lines collected by a reader thread."""

    started = []                   # every Child, so the driver can check none is left

    def __init__(self, argv, nofile=None, env=None):
        self.argv = argv
        self.lines = queue.Queue()
        self.log = []              # every stdout line, in order
        full_env = dict(os.environ)
        full_env.update(env or {})
        err = tempfile.TemporaryFile("w+")     # unnamed: nothing to clean up
        self.stderr_file = err
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            env=full_env, preexec_fn=lambda: _child_setup(nofile), close_fds=True)
        self.pid = self.proc.pid
        Child.started.append(self)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)       # end of output

    def expect(self, prefix, timeout):
        """The next stdout line starting with `prefix` (earlier lines are
        skipped, and kept in `log`), or None after `timeout` seconds or at end
        of output."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            if line.startswith(prefix):
                return line

    def drain(self):
        """The stdout lines not yet taken by `expect`, taken now."""
        out = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return out
            if line is None:
                self.lines.put(None)
                return out
            out.append(line)

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        """utime + stime of the process, from /proc/PID/stat (fields 14 and 15,
        counted after the parenthesised command name, which may hold spaces)."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def run_seconds(self):
        """Time on a CPU of the main thread, in nanosecond resolution, from
        /proc/PID/schedstat (None where the kernel does not keep it)."""
        try:
            with open("/proc/%d/schedstat" % self.pid) as f:
                return int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def wait_fds(self, target, timeout):
        """Waits until the process holds at most `target` descriptors; returns
        the last count seen."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.fd_count()
            if n <= target or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def stderr_tail(self, limit=2000):
        self.stderr_file.flush()
        self.stderr_file.seek(0)
        return self.stderr_file.read()[-limit:]

    def stop(self, timeout=5):
        """Closes stdin (the server's signal to stop), waits, then kills.
        Returns the exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout)
        return self.proc.returncode

    def kill(self):
        """Kills the process if it still runs (the driver's last resort)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def kill_all():
    """Kills and reaps every child still running; returns how many there were."""
    left = [c for c in Child.started if c.proc.poll() is None]
    for c in left:
        c.kill()
    return len(left)
