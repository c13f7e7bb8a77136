"""sclib — shared helpers for secirc's integration tests.

Real processes, real sockets on 127.0.0.1, every wait bounded by a deadline
(poll a condition; never sleep as synchronisation).

Environment:
  SC_BIN_DIR     where secirc and badpeer are (default ../../build)
  SC_SANITIZE    1 in the ASan build: deadlines scale by SLOW
  SC_TEST_LAYER  "" (plain TCP), "xor", "ws" or "tls": the whole link suite
                 runs again over the test-only xor transport layer, over
                 WebSocket (link-test --ws) and over TLS (link-test --tls),
                 on both sides (as Redis runs its suite with --tls). CMake
                 registers every test_link_*.py and test_transport.py again
                 as integration.xor.<name>, integration.ws.<name> and
                 integration.tls.<name>. Under tls a self-signed certificate
                 is made once per test process (TLS_CERT, TLS_KEY, for
                 127.0.0.1, ::1 and localhost).

Writing a test that passes both plain and over a layer:
  - start link-test with LinkTest.listen()/LinkTest.connect(): they add
    the layer's arguments themselves (an explicit --layer in the extra
    arguments wins: then none is added); a link-test started by hand
    takes *layer_args() after its --port; tests/tools/badpeer and
    tests/tools/strangers honour SC_TEST_LAYER themselves;
  - open raw connections with raw_connect() (or hostile.connect_from): under
    "ws" it returns a WsSocket that sends the upgrade with its first
    sendall() (or at once, with upgrade=True: a connection that is to stay
    silent before the link), puts every sendall() in one masked binary
    frame and gives back from recv() only the payload of the server's
    binary frames (a close frame reads as the end, b""); under "tls" a TLS
    client socket whose handshake is done (a connection the listener
    closes during the handshake comes back as an already closed one, as a
    plain socket would be); tests about bare TCP connections (silent ones,
    caps at accept) keep using plain sockets;
  - raw protocol bytes (a message 1 with its mac1, a frame) go through
    wire(data) before a raw connection sends them, and bytes read from one
    go through wire() again before they are parsed (XOR is its own inverse;
    under "ws" and "tls" wire() changes nothing: the framing or the
    encryption is the connection's); random probes stay random either way;
    lengths are the same;
  - an assertion that cannot hold over a layer stays, guarded by
    `if not LAYER:`, with a comment saying why."""
import atexit
import base64
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
if LAYER not in ("", "xor", "ws", "tls"):
    raise SystemExit(f"SC_TEST_LAYER={LAYER!r}: only '', 'xor', 'ws' or 'tls'")
XOR_KEY = 0x5C  # link-test's xor layer (src/cmd/secirc_linktest.c)
# What link-test's `authenticated ... transport=` says under SC_TEST_LAYER.
TRANSPORT = {"": "tcp", "xor": "tcp+xor", "ws": "tcp+websocket", "tls": "tcp+tls"}[LAYER]


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
    return {"": [], "xor": ["--layer", "xor"], "ws": ["--ws"],
            "tls": ["--tls", "--tls-cert", TLS_CERT, "--tls-key", TLS_KEY]}[LAYER]


def wire(data):
    """Raw bytes as they travel on the wire under SC_TEST_LAYER (and back:
    XOR is its own inverse). Unchanged for plain TCP, under "ws" (a
    raw_connect() connection frames them) and inside TLS."""
    if LAYER != "xor":
        return bytes(data)
    return bytes(b ^ XOR_KEY for b in data)


# ---- WebSocket by hand (RFC 6455), for raw connections under "ws" ---------
# RFC 6455 1.3's sample key and its accept value: a fixed key is fine for
# a test client, the server's check of the answer is what matters.
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
WS_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
WS_PATH = "/relay"
WS_BINARY, WS_TEXT, WS_CLOSE, WS_PING, WS_PONG = 0x2, 0x1, 0x8, 0x9, 0xA


def ws_accept(key):
    """Sec-WebSocket-Accept for a key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


def ws_request(host, port, path=WS_PATH, version=13, extra=""):
    """The upgrade request a client sends, as bytes."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n{extra}\r\n").encode()


def ws_mask(data, key):
    """data XOR the 4-byte key repeated (RFC 6455 5.3); its own inverse."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload, mask=True, fin=True, rsv=0):
    """One frame: a client's frames are masked (a random key each)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + bytes(payload)
    key = os.urandom(4)
    return head + key + ws_mask(bytes(payload), key)


def ws_parse_frame(buf):
    """(fin, opcode, payload, bytes used) of the first frame in buf, or None
    when it is not complete yet."""
    if len(buf) < 2:
        return None
    fin, opcode = buf[0] >> 7, buf[0] & 0x0F
    masked, n, pos = buf[1] >> 7, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = int.from_bytes(buf[2:10], "big"), 10
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key, pos = buf[pos:pos + 4], pos + 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos:pos + n]
    return fin, opcode, ws_mask(payload, key) if masked else payload, pos + n


def ws_split_client(raw, want):
    """A client's recorded bytes (upgrade head, then masked frames) cut
    after the frames that carry its first `want` payload bytes: returns
    (those wire bytes, that payload)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return raw, b""
    pos, payload = end + 4, b""
    while len(payload) < want:
        f = ws_parse_frame(raw[pos:])
        if f is None:
            break
        payload += f[2]
        pos += f[3]
    return raw[:pos], payload


class WsSocket:
    """A raw TCP connection speaking WebSocket as a client: upgrade() or
    the first sendall() sends the upgrade, each sendall() is one masked binary frame,
    recv() checks the 101 (raising on any other answer) and returns the
    payload of the server's binary frames, b"" after its close frame or
    FIN. Anything else is the socket's (settimeout, close, fileno...)."""

    def __init__(self, sock, host, port):
        self.sock, self.host, self.port = sock, host, port
        self.upgrade_sent = self.head_read = self.ended = False
        self.inbuf = self.payload = b""
        self.close_code = None
        self.accept = WS_ACCEPT

    def __getattr__(self, name):
        return getattr(self.sock, name)

    def upgrade(self):
        """Sends the upgrade request now (its answer is read by recv())."""
        if not self.upgrade_sent:
            self.upgrade_sent = True
            self.sock.sendall(ws_request(self.host, self.port))

    def sendall(self, data):
        out = b""
        if not self.upgrade_sent:
            out, self.upgrade_sent = ws_request(self.host, self.port), True
        self.sock.sendall(out + ws_frame(WS_BINARY, bytes(data)))

    def send(self, data):
        self.sendall(data)
        return len(data)

    def send_wire(self, data):
        """Bytes as they are (a recorded upgrade and its frames)."""
        if not self.upgrade_sent:
            m = re.search(rb"\r\nSec-WebSocket-Key: ([A-Za-z0-9+/=]+)\r\n", data)
            self.accept = ws_accept(m.group(1).decode()) if m else "-"
        self.upgrade_sent = True
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)  # socket.timeout, resets: the caller's
        if not d:
            self.ended = True
        self.inbuf += d

    def recv(self, n):
        if not self.upgrade_sent:  # a bare TCP connection so far
            return self.sock.recv(n)
        while not self.head_read and not self.ended:
            end = self.inbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.inbuf) > 8192:
                    raise AssertionError("WebSocket answer head over 8 KiB")
                self._fill()
                continue
            head = self.inbuf[:end].decode("latin-1")
            self.inbuf, self.head_read = self.inbuf[end + 4:], True
            if not head.startswith("HTTP/1.1 101 ") or f"Sec-WebSocket-Accept: {self.accept}" not in head:
                raise AssertionError(f"WebSocket upgrade refused: {head.splitlines()[:1]}")
        while not self.payload and self.close_code is None and not self.ended:
            f = ws_parse_frame(self.inbuf)
            if f is None:
                self._fill()
                continue
            _, opcode, data, used = f
            self.inbuf = self.inbuf[used:]
            if opcode in (WS_BINARY, 0x0):
                self.payload += data
            elif opcode == WS_CLOSE:
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            elif opcode == WS_PING:
                self.sock.sendall(ws_frame(WS_PONG, data))
        out, self.payload = self.payload[:n], self.payload[n:]
        return out


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


def raw_connect(port, host="127.0.0.1", source=None, timeout=None, upgrade=False,
                alpn=("secirc/1",)):
    """A raw connection to host:port (from `source` when given) that speaks
    the link protocol as raw bytes: a plain TCP socket; under
    SC_TEST_LAYER=ws a WsSocket (see above: its first sendall() sends the
    upgrade and the first frame in one write, as a plain connection's
    first send; with `upgrade` it sends the upgrade at once, so that a
    connection that then says nothing stands silent before the link, not
    before the websocket layer); under tls a TLS client socket with its
    handshake done (ClosedConn if the listener ended it meanwhile)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout if timeout is not None else 10 * SLOW)
        s.connect((host, port))
        # the TLS Finished and the first bytes above go out at once (no
        # Nagle wait for a delayed ACK), as link-test's do
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        s.close()
        raise
    if LAYER == "ws":
        ws = WsSocket(s, host, port)
        if upgrade:
            ws.upgrade()
        return ws
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
            rc = self.p.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout * SLOW:.0f}s")
        # Its last lines may still be in the pipe: let the readers take them
        # (they end at EOF), so a find() after this sees everything.
        self._t.join(5)
        self._te.join(5)
        return rc

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
        layer = [] if "--layer" in extra else layer_args()
        p = cls([binary("secirc"), "link-test", "listen", "--key", key, "--port", "0",
                 *layer, *extra], name=name)
        m = p.wait_line(r"^listening address=\S+ port=(\d+) relay_id=([0-9a-f]{64})")
        p.port = int(m.group(1))
        p.relay_id = m.group(2)
        return p

    @classmethod
    def connect(cls, key, port, *extra, name="connector"):
        layer = [] if "--layer" in extra else layer_args()
        return cls([binary("secirc"), "link-test", "connect", "--key", key, "--host", "127.0.0.1",
                    "--port", str(port), *layer, *extra], name=name)


class Tinyproxy:
    """Debian's tinyproxy in the foreground on 127.0.0.1 (a free port),
    allowing CONNECT to `connect_port` only, optionally with BasicAuth."""

    def __init__(self, tmp, connect_port, auth=None):
        self.port = free_port()
        self.log = tmp.join(f"tinyproxy-{self.port}.log")
        conf = tmp.join(f"tinyproxy-{self.port}.conf")
        with open(conf, "w") as f:
            f.write(f"Port {self.port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\n"
                    f"ConnectPort {connect_port}\nMaxClients 50\nLogLevel Info\n"
                    f'LogFile "{self.log}"\n')
            if auth:
                f.write(f"BasicAuth {auth[0]} {auth[1]}\n")
        exe = shutil.which("tinyproxy") or "/usr/sbin/tinyproxy"
        self.proc = Proc([exe, "-d", "-c", conf], name=f"tinyproxy-{self.port}", stdin=False)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                if self.proc.p.poll() is not None:
                    raise AssertionError(f"tinyproxy exited: {self.proc.err_lines[-5:]}")
                return False
        wait_for(up, 10, "tinyproxy listening")

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.p.poll() is None:
            self.proc.p.terminate()
        return self.proc.stop()
