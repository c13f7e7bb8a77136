"""sclib — shared helpers for secirc's integration tests.

Real processes, real sockets on 127.0.0.1, every wait bounded by a deadline
(poll a condition; never sleep as synchronisation)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BIN_DIR = os.environ.get("SC_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SANITIZE = os.environ.get("SC_SANITIZE", "0") in ("1", "ON", "TRUE", "true")
# Sanitized binaries are several times slower; deadlines scale with this.
SLOW = 4.0 if SANITIZE else 1.0


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"missing binary {path} (build first)")
    return path


def run(args, **kw):
    """Runs a command to completion (bounded) and returns CompletedProcess."""
    kw.setdefault("timeout", 60 * SLOW)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def wait_for(cond, timeout, what, interval=0.02):
    """Polls cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * SLOW:.1f}s waiting for {what}")
        time.sleep(interval)


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="secirc-test-")

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (prefer binding port 0
    in the program under test and reading it back; this is for peers that
    cannot do that)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Checker:
    """Collects named checks; prints one line each; exit status at the end."""
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}")
        sys.stdout.flush()
        return cond

    def done(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)
