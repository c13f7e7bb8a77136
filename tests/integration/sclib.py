"""sclib — shared helpers for secirc's integration tests.

Real processes, real sockets on 127.0.0.1, every wait bounded by a deadline
(poll a condition; never sleep as synchronisation).

Environment:
  SC_BIN_DIR     where secirc and badpeer are (default ../../build)
  SC_SANITIZE    1 in the ASan build: deadlines scale by SLOW
  SC_TEST_LAYER  "" (plain TCP), "xor" or "tls": the whole link suite runs
                 again over the test-only xor transport layer, and again
                 over TLS, on both sides (as Redis runs its suite with
                 --tls). CMake registers every test_link_*.py and
                 test_transport.py a second and a third time as
                 integration.xor.<name> and integration.tls.<name>.
                 Under tls a self-signed certificate is made once per test
                 process (TLS_CERT, TLS_KEY, for 127.0.0.1, ::1 and
                 localhost).

Writing a test that passes both plain and over a layer:
  - start link-test with LinkTest.listen()/LinkTest.connect(): they add
    the layer's arguments themselves (an explicit --layer in the extra
    arguments replaces them); a link-test started by hand takes
    *layer_args() after its --port; tests/tools/badpeer and strangers
    honour SC_TEST_LAYER themselves;
  - a raw connection that speaks the link protocol (a message 1 with its
    mac1, a frame, a probe that must reach the link) is opened with
    raw_connect(): a plain socket, or under tls a TLS client socket whose
    handshake is done (a connection the listener closes during the
    handshake comes back as an already closed one, as a plain socket
    would be); raw protocol bytes go through wire(data) before they are
    sent, and bytes read go through wire() again before they are parsed
    (XOR is its own inverse; under tls the bytes inside TLS are the
    link's own); random probes stay random either way; lengths are the
    same;
  - an assertion that cannot hold over a layer stays, guarded by
    `if not LAYER:`, with a comment saying why."""
import atexit
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BIN_DIR = os.environ.get("SC_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SANITIZE = os.environ.get("SC_SANITIZE", "0") in ("1", "ON", "TRUE", "true")
# Sanitized binaries are several times slower; deadlines scale with this.
SLOW = 4.0 if SANITIZE else 1.0
LAYER = os.environ.get("SC_TEST_LAYER", "")
if LAYER not in ("", "xor", "tls"):
    raise SystemExit(f"SC_TEST_LAYER={LAYER!r}: only '', 'xor' or 'tls'")
XOR_KEY = 0x5C  # link-test's xor layer (src/cmd/secirc_linktest.c)
# What link-test's `authenticated ... transport=` says under SC_TEST_LAYER.
TRANSPORT = "tcp+" + LAYER if LAYER else "tcp"


TLS_CERT = TLS_KEY = None


def make_tls_cert(directory, cn="127.0.0.1", san="IP:127.0.0.1,IP:::1,DNS:localhost"):
    """A self-signed P-256 certificate and key (openssl req) in directory;
    returns (cert path, key path)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"openssl req failed: {r.stderr}")
    return cert, key


if LAYER == "tls":
    _tls_dir = tempfile.mkdtemp(prefix="secirc-tls-")
    atexit.register(shutil.rmtree, _tls_dir, True)
    TLS_CERT, TLS_KEY = make_tls_cert(_tls_dir)


def layer_args():
    """link-test arguments that select SC_TEST_LAYER's transport layer (the
    same for listen and connect: connect ignores the certificate)."""
    if LAYER == "tls":
        return ["--tls", "--tls-cert", TLS_CERT, "--tls-key", TLS_KEY]
    return ["--layer", LAYER] if LAYER else []


def wire(data):
    """Raw bytes as they travel under SC_TEST_LAYER (and back: XOR is its
    own inverse). Unchanged for plain TCP and inside TLS."""
    if LAYER != "xor":
        return bytes(data)
    return bytes(b ^ XOR_KEY for b in data)


def tls_client_context(alpn=("secirc/1",), minimum=None):
    """A TLS client context that accepts any certificate (Noise
    authenticates the relay), offering `alpn`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum or ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class ClosedConn:
    """A connection the peer ended during the TLS handshake: behaves as a
    plain socket the peer closed (recv gives b"" or the reset; sends go
    nowhere)."""

    def __init__(self, sock, reset):
        self.sock, self.reset = sock, reset

    def recv(self, n):
        if self.reset:
            raise ConnectionResetError("reset during the TLS handshake")
        return b""

    def sendall(self, data):
        pass

    send = sendall

    def settimeout(self, t):
        pass

    def setblocking(self, b):
        pass

    def fileno(self):
        return self.sock.fileno()

    def shutdown(self, how):
        pass

    def close(self):
        self.sock.close()


def raw_connect(port, host="127.0.0.1", source=None, timeout=None, alpn=("secirc/1",)):
    """A connection that speaks the link protocol as raw bytes: a plain TCP
    socket, or under SC_TEST_LAYER=tls a TLS client socket with its
    handshake done (ClosedConn if the listener ended it meanwhile)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout((timeout or 10) * SLOW)
        s.connect((host, port))
        # the TLS Finished and the first bytes above go out at once (no
        # Nagle wait for a delayed ACK), as link-test's do
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        s.close()
        raise
    if LAYER != "tls":
        return s
    t = tls_client_context(alpn).wrap_socket(s, server_hostname=None, do_handshake_on_connect=False)
    try:
        t.do_handshake()
    except ConnectionResetError:
        return ClosedConn(t, True)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, BrokenPipeError):
        return ClosedConn(t, False)
    except ssl.SSLError as e:
        if "EOF" in str(e) or "UNEXPECTED_EOF" in str(e):
            return ClosedConn(t, False)
        t.close()
        raise
    return t


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


import re
import threading


class Proc:
    """A running program whose stdout lines are collected by a thread.
    wait_line() polls the collected lines with a deadline."""

    def __init__(self, args, name=None, stdin=True, env=None):
        self.name = name or os.path.basename(args[0])
        self.args = args
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  bufsize=1, env=env)
        self.lines = []
        self.stamps = []  # time.monotonic() when each stdout line arrived
        self.err_lines = []
        self._lock = threading.Lock()
        self._t = threading.Thread(target=self._reader, args=(self.p.stdout, self.lines, self.stamps),
                                   daemon=True)
        self._te = threading.Thread(target=self._reader, args=(self.p.stderr, self.err_lines), daemon=True)
        self._t.start()
        self._te.start()

    def _reader(self, stream, sink, stamps=None):
        for line in stream:
            with self._lock:
                sink.append(line.rstrip("\n"))
                if stamps is not None:
                    stamps.append(time.monotonic())

    @property
    def pid(self):
        return self.p.pid

    def snapshot(self):
        with self._lock:
            return list(self.lines)

    def find(self, pattern, start=0):
        """All (index, match) of pattern among stdout lines from index start."""
        rx = re.compile(pattern)
        out = []
        for i, line in enumerate(self.snapshot()[start:], start):
            m = rx.search(line)
            if m:
                out.append((i, m))
        return out

    def wait_line(self, pattern, timeout=10, start=0):
        """First match of pattern at or after line `start`; raises on timeout
        or if the process exits first (after a last look)."""
        def look():
            hits = self.find(pattern, start)
            if hits:
                return hits[0][1]
            if self.p.poll() is not None:
                self._t.join(1)
                hits = self.find(pattern, start)
                if hits:
                    return hits[0][1]
                raise AssertionError(f"{self.name} exited ({self.p.returncode}) before /{pattern}/;"
                                     f" stdout={self.snapshot()[-10:]} stderr={self.err_lines[-10:]}")
            return None
        try:
            return wait_for(look, timeout, f"{self.name}: /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; last stdout={self.snapshot()[-5:]} stderr={self.err_lines[-5:]}")

    def count(self, pattern):
        return len(self.find(pattern))

    def find_stamped(self, pattern, start=0):
        """Like find(), as (arrival time (monotonic), match) pairs."""
        with self._lock:
            stamps = list(self.stamps)
        return [(stamps[i], m) for i, m in self.find(pattern, start) if i < len(stamps)]

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait_exit(self, timeout=10):
        try:
            return self.p.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout * SLOW:.0f}s")

    def stop(self, timeout=10):
        """Asks politely (stdin EOF / SIGTERM), then kills; bounded."""
        if self.p.poll() is None:
            try:
                if self.p.stdin:
                    self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.p.terminate()
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait(timeout=5)
        self._t.join(2)
        self._te.join(2)
        return self.p.returncode


MAC1_EPOCH_S = 120


def mac1(relay_id_hex, msg, epoch=None):
    """mac1 of docs/PROTOCOL.md: keyed by the relay ID and the wall-clock
    epoch (floor(unix time / 120))."""
    if epoch is None:
        epoch = int(time.time()) // MAC1_EPOCH_S
    key = hashlib.blake2b(b"secirc mac1 v2" + bytes.fromhex(relay_id_hex) + epoch.to_bytes(8, "big"),
                          digest_size=32).digest()
    return hashlib.blake2b(msg, key=key, digest_size=16).digest()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def keygen(tmp, name):
    path = tmp.join(name)
    r = run([binary("secirc"), "keygen", "--out", path])
    if r.returncode != 0:
        raise AssertionError(f"keygen failed: {r.stderr}")
    return path, r.stdout.strip()


class LinkTest(Proc):
    """`secirc link-test listen|connect` with its line protocol."""

    @classmethod
    def listen(cls, key, *extra, name="listener"):
        p = cls([binary("secirc"), "link-test", "listen", "--key", key, "--port", "0",
                 *(layer_args() if "--layer" not in extra else []), *extra], name=name)
        m = p.wait_line(r"^listening address=\S+ port=(\d+) relay_id=([0-9a-f]{64})")
        p.port = int(m.group(1))
        p.relay_id = m.group(2)
        return p

    @classmethod
    def connect(cls, key, port, *extra, name="connector"):
        return cls([binary("secirc"), "link-test", "connect", "--key", key, "--host", "127.0.0.1",
                    "--port", str(port), *(layer_args() if "--layer" not in extra else []), *extra],
                   name=name)
