"""hostile — helpers shared by the link-hardening tests (test_link_caps,
test_link_replay, test_link_rate, test_link_exit): raw sockets from chosen
127.0.0.x sources, message 1 built by hand, the strangers tool, a recording
proxy, the listener's `stats` line as numbers. Standard library only; every
wait is bounded by a deadline scaled with sclib.SLOW."""
import os
import selectors
import socket
import ssl
import threading
import time
from collections import Counter

import sclib
from sclib import Proc, binary, mac1, open_fds, wait_for

MSG1_BYTES = 48   # 32-byte ephemeral + 16-byte mac1
MSG2_BYTES = 224  # the responder's answer to a message 1 it takes


def ipv6_available():
    """True when this host can listen on the IPv6 wildcard (dual stack)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
        return True
    except OSError:
        return False


def connect_from(source, port, host="127.0.0.1", upgrade=False):
    """A raw connection to host:port bound to the local address `source`
    that speaks the link protocol (sclib.raw_connect: under
    SC_TEST_LAYER=ws its sends go in frames, under tls its TLS handshake
    is done)."""
    return sclib.raw_connect(port, host=host, source=source, upgrade=upgrade)


def message1(relay_id_hex=None, epoch=None):
    """32 random bytes and a mac1 naming relay_id_hex (the zero ID if None),
    as they go on the wire under SC_TEST_LAYER."""
    e = os.urandom(32)
    return sclib.wire(e + mac1(relay_id_hex or "00" * 32, e, epoch))


def read_to_end(s, limit_s, want=None):
    """Reads until the peer closes, `want` bytes arrived, or limit_s passed.
    Returns (data, end, seconds) with end "fin" (orderly close: recv gave
    b""), "reset" (ConnectionResetError), "enough" or "open" (deadline)."""
    t0 = time.monotonic()
    deadline = t0 + limit_s
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "open", time.monotonic() - t0
        s.settimeout(left)
        try:
            d = s.recv(4096)
        except socket.timeout:
            return data, "open", time.monotonic() - t0
        except ConnectionResetError:
            return data, "reset", time.monotonic() - t0
        if not d:
            return data, "fin", time.monotonic() - t0
        data += d
        if want is not None and len(data) >= want:
            return data, "enough", time.monotonic() - t0


def probe(port, payload, source="127.0.0.1", limit_s=None, host="127.0.0.1", as_is=False):
    """Connects from `source`, sends payload and waits for the end: (data,
    end, seconds from the connect: under tls the handshake is part of the
    listener's one deadline). With as_is, the bytes go out exactly as given
    (recorded wire bytes, under "ws" with their own upgrade and frames).
    The connection is closed before returning."""
    t0 = time.monotonic()
    s = connect_from(source, port, host)
    try:
        if payload and as_is and sclib.LAYER == "ws":
            s.send_wire(payload)
        elif payload:
            s.sendall(payload)
        data, end, _ = read_to_end(s, limit_s if limit_s is not None else 15 * sclib.SLOW)
        return data, end, time.monotonic() - t0
    finally:
        s.close()


def stats(lst):
    """Asks a `link-test listen` for its stats; returns them as a dict of ints."""
    start = len(lst.snapshot())
    lst.send("stats")
    m = lst.wait_line(r"^stats (.*)$", start=start)
    out = {}
    for field in m.group(1).split():
        k, _, v = field.partition("=")
        if v.isdigit():
            out[k] = int(v)
    return out


class FdSampler:
    """Samples a process's open descriptors in a thread; .peak is the most seen."""

    def __init__(self, pid, interval=0.005):
        self.pid, self.interval = pid, interval
        self.peak, self.samples = 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                n = open_fds(self.pid)
            except OSError:  # descriptors changing while listed, or the process gone
                continue
            self.peak = max(self.peak, n)
            self.samples += 1
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.peak


class Strangers(Proc):
    """tests/tools/strangers: N links, each a fresh identity from its own
    source address (or all from one, if `source` is a full address)."""

    def __init__(self, port, relay_id, n, source, host="127.0.0.1", name="strangers"):
        super().__init__([binary("strangers"), host, str(port), relay_id or "-", str(n), source],
                         name=name)
        self.n = n

    def wait_summary(self, timeout=30):
        m = self.wait_line(r"^summary linked=(\d+) refused=(\d+)$", timeout=timeout)
        return int(m.group(1)), int(m.group(2))

    def refused_reasons(self):
        return Counter(m.group(1) for _, m in self.find(r"^refused \d+ reason=(\w+)$"))

    def closed_reasons(self):
        return Counter(m.group(1) for _, m in self.find(r"^closed \d+ reason=(\w+)$"))


class Proxy:
    """Forwards one connection at a time between a client and 127.0.0.1:port
    and records the first `record` bytes each client sent (as they went on
    the wire: under "ws", the upgrade and frames too). Runs in a thread;
    stop() ends it (bounded). Under SC_TEST_LAYER=tls it terminates TLS on
    both sides (sclib.TLS_CERT towards the client, a TLS client towards
    the listener, both without channel binding) and records the bytes
    inside: a client must link through it with --channel-binding off, as
    the binding exists to defeat exactly such a proxy."""

    def __init__(self, port, record=MSG1_BYTES):
        self.target, self.record_n = port, record
        self.tls = None
        if sclib.LAYER == "tls":
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(sclib.TLS_CERT, sclib.TLS_KEY)
            self.tls.set_alpn_protocols(["secirc/1"])
        self.recorded = []  # one bytes object per client connection
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ, None)
        pairs = {}  # socket -> (peer socket, index into recorded or None)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    if key.data is None:
                        try:
                            client, _ = self.lsock.accept()
                        except BlockingIOError:
                            continue
                        if self.tls:
                            client.settimeout(10 * sclib.SLOW)
                            client = self.tls.wrap_socket(client, server_side=True)
                            server = sclib.raw_connect(self.target)
                        else:
                            server = socket.socket()
                            server.bind(("127.0.0.1", 0))
                            server.connect(("127.0.0.1", self.target))
                        client.setblocking(False)
                        server.setblocking(False)
                        self.recorded.append(b"")
                        pairs[client] = (server, len(self.recorded) - 1)
                        pairs[server] = (client, None)
                        sel.register(client, selectors.EVENT_READ, "c")
                        sel.register(server, selectors.EVENT_READ, "s")
                        continue
                    src = key.fileobj
                    dst, idx = pairs[src]
                    data = self._recv(src)
                    if data is None:
                        continue
                    if not data:  # pass the FIN on; forget the pair once both ended
                        sel.unregister(src)
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        continue
                    if idx is not None and len(self.recorded[idx]) < self.record_n:
                        self.recorded[idx] += data[:self.record_n - len(self.recorded[idx])]
                    dst.setblocking(True)
                    dst.settimeout(10 * sclib.SLOW)
                    try:
                        dst.sendall(data)
                    except OSError:
                        pass
                    dst.setblocking(False)
        finally:
            for s in list(pairs):
                s.close()
            sel.close()
            self.lsock.close()

    @staticmethod
    def _recv(src):
        """What src has now (all of it: TLS may hold decrypted bytes that
        select() does not see), b"" at its end, None if nothing yet."""
        data = b""
        while True:
            try:
                d = src.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return data or None
            except ConnectionResetError:
                return data
            if not d:
                return data
            data += d
            if not (isinstance(src, ssl.SSLSocket) and src.pending()):
                return data

    def stop(self):
        self._stop.set()
        self._t.join(5)


def wait_fds_below(pid, limit, timeout, what):
    """Waits until the process holds fewer than `limit` descriptors."""
    return wait_for(lambda: (lambda n: n if n < limit else None)(open_fds(pid)), timeout, what)


SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:")


def sanitizer_reports(procs):
    """Lines of sanitizer reports in the stderr of processes already stopped."""
    return [f"{p.name}: {line}" for p in procs for line in p.err_lines
            if any(mark in line for mark in SANITIZER_MARKS)]
