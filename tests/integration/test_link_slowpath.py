"""A link through a slow path: a user-space TCP proxy (in this file)
forwards both directions at 2 MB/s each, with back-pressure (it holds at
most one chunk per direction and reads only what the rate allows). 3000
messages of up to 16 KiB cross it with heartbeats every 200 ms (3 misses):
every message arrives verified, neither end ever closes with
heartbeat_timeout during the transfer or the idle time after it (20 s of
link time in all), and RTT samples keep coming (those queued behind bulk
data are reported as late). Then the proxy turns into a black hole (drops
every byte both ways, keeps both sockets open): both ends close with
heartbeat_timeout within about misses x interval."""
import socket
import threading
import time

import sclib
from sclib import Checker, LinkTest, TempDir, keygen, wait_for

RATE = 2_000_000        # bytes/s per direction
BURST = 32 * 1024       # token bucket depth
CHUNK = 16 * 1024       # most bytes the proxy holds per direction
HB = ["--heartbeat", "200", "--heartbeat-misses", "3"]
COUNT = 3000
LINK_TIME_S = 20.0


class TokenBucket:
    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.t = time.monotonic()

    def wait_tokens(self, stop):
        """Whole tokens available (>= 1) once the rate allows, or 0 if stop
        was set meanwhile. The sleep here paces the traffic; it
        synchronises nothing."""
        while not stop.is_set():
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1:
                return int(self.tokens)
            time.sleep(min(0.05, (1 - self.tokens) / self.rate))
        return 0

    def spend(self, n):
        self.tokens -= n


class SlowProxy:
    """One connection at a time: 127.0.0.1:port -> 127.0.0.1:upstream,
    rate-limited per direction. black_hole() drops every byte from then on
    (both ways) and stops passing FINs on, with both sockets left open."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.holing = threading.Event()
        self.socks = []
        self.forwarded = {"up": 0, "down": 0}
        self.dropped = {"up": 0, "down": 0}
        self.errors = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                client, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for s in (client, server):
                s.settimeout(0.2)  # lets the pumps notice stop
            self.socks += [client, server]
            for name, src, dst in (("up", client, server), ("down", server, client)):
                t = threading.Thread(target=self._pump, args=(name, src, dst), daemon=True)
                self.threads.append(t)
                t.start()
            return  # one connection is all this test needs

    def _pump(self, name, src, dst):
        bucket = TokenBucket(RATE, BURST)
        try:
            while not self.stop.is_set():
                if self.holing.is_set():
                    n = CHUNK  # a black hole swallows at any rate
                else:
                    n = min(CHUNK, bucket.wait_tokens(self.stop))
                    if n == 0:
                        return
                try:
                    data = src.recv(n)
                except socket.timeout:
                    continue
                if not data:
                    if not self.holing.is_set():
                        dst.shutdown(socket.SHUT_WR)
                    return
                if self.holing.is_set():
                    self.dropped[name] += len(data)
                    continue
                bucket.spend(len(data))
                self._send_all(dst, data)
                self.forwarded[name] += len(data)
        except OSError as e:
            if not self.stop.is_set():
                self.errors.append(f"{name}: {e}")

    def _send_all(self, dst, data):
        """Blocking send (so a slow reader stalls this direction): retried
        on the short timeout, dropped once a black hole starts."""
        view = memoryview(data)
        while view and not self.stop.is_set() and not self.holing.is_set():
            try:
                view = view[dst.send(view):]
            except socket.timeout:
                continue

    def black_hole(self):
        self.holing.set()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)
        for s in self.socks + [self.srv]:
            s.close()


def heartbeat_timeouts(p):
    return p.find(r"^closed .*reason=heartbeat_timeout")


c = Checker()
tmp = TempDir()
procs = []
proxy = None
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    # the receiver regenerates message i from i and the same --send-size
    lst = LinkTest.listen(key_a, *HB, "--recv-check", str(COUNT), "--send-size", "16384", "--quiet")
    procs.append(lst)
    proxy = SlowProxy(lst.port)
    con = LinkTest.connect(key_b, proxy.port, "--expect", id_a, *HB, "--send-count", str(COUNT),
                           "--send-size", "16384", "--quiet"); procs.append(con)
    con.wait_line("^authenticated", timeout=10)
    t_auth = con.find_stamped("^authenticated")[0][0]

    # --- the bulk transfer through the slow path -------------------------------
    m = lst.wait_line(r"^(verified count=(\d+) bytes=(\d+) seconds=([\d.]+)|verify_failed.*|closed .*)$",
                      timeout=90)
    t_done = time.monotonic()
    c.check(f"all {COUNT} messages arrived, content checked ({m.group(0)})", m.group(2) == str(COUNT))
    if m.group(3):
        secs = float(m.group(4))
        rate = int(m.group(3)) / max(secs, 1e-6)
        print(f"transfer: {int(m.group(3))} payload bytes in {secs:.1f} s = {rate / 1e6:.2f} MB/s "
              f"(proxy forwarded {proxy.forwarded})")
        c.check(f"the proxy's rate limit held ({rate / 1e6:.2f} MB/s of payload <= 2.1 MB/s)",
                rate <= 2.1e6)
    for side, p in (("listener", lst), ("connector", con)):
        c.check(f"{side}: no heartbeat_timeout during the transfer", not heartbeat_timeouts(p),
                heartbeat_timeouts(p))
        during = [t for t, _ in p.find_stamped(r"^rtt ") if t_auth <= t <= t_done]
        c.check(f"{side}: {len(during)} RTT samples during the {t_done - t_auth:.1f} s transfer",
                len(during) >= 3)

    # --- the link stays up, idle, until it has lived LINK_TIME_S ------------------
    def lived_or_closed():
        if lst.find("^closed") or con.find("^closed") or con.p.poll() is not None:
            return "closed"
        return time.monotonic() - t_auth >= LINK_TIME_S
    wait_for(lived_or_closed, LINK_TIME_S + 5, f"{LINK_TIME_S:.0f} s of link time")
    t_end = time.monotonic()
    for side, p in (("listener", lst), ("connector", con)):
        c.check(f"{side}: link up for {t_end - t_auth:.1f} s without closing (no heartbeat_timeout)",
                not p.find("^closed"), p.find("^closed"))
        stamps = [t for t, _ in p.find_stamped(r"^rtt ")]
        gaps = [b - a for a, b in zip([t_auth] + stamps, stamps + [t_end])]
        c.check(f"{side}: RTT samples kept coming ({len(stamps)} in all, longest gap "
                f"{max(gaps):.2f} s)", len(stamps) >= 20 and max(gaps) < 5.0 * sclib.SLOW)
        late = [(t, int(m.group(1))) for t, m in p.find_stamped(r"^rtt .* late=(\d+)$")]
        print(f"{side}: {late[-1][1] if late else 0} of {len(stamps)} RTT samples late "
              "(queued behind bulk data)")
        idle = [n for t, n in late if t > t_done + 1.0]
        c.check(f"{side}: once idle, no sample is late ({len(idle)} samples, late count "
                f"{idle[0] if idle else '-'} -> {idle[-1] if idle else '-'})",
                len(idle) >= 5 and idle[0] == idle[-1])
    c.check("the proxy saw no socket error", not proxy.errors, proxy.errors)

    # --- black hole: nothing passes either way; both ends time out -----------------
    n_lst, n_con = len(lst.snapshot()), len(con.snapshot())
    proxy.black_hole()
    t0 = time.monotonic()
    closed = {}

    def both_closed():
        for side, p, start in (("listener", lst, n_lst), ("connector", con, n_con)):
            if side not in closed:
                hits = p.find_stamped(r"^closed .*reason=(\w+) by=(\w+)", start)
                if hits:
                    closed[side] = (hits[0][0] - t0, hits[0][1].group(1), hits[0][1].group(2))
        return len(closed) == 2
    wait_for(both_closed, 10, "both ends closed after the black hole")
    bound = 3.0 * sclib.SLOW
    for side in ("listener", "connector"):
        dt, reason, by = closed[side]
        c.check(f"black hole: {side} closed with heartbeat_timeout by=local after {dt:.2f} s "
                f"(3 x 200 ms; bound {bound:.1f} s)",
                reason == "heartbeat_timeout" and by == "local" and 0.4 <= dt < bound, closed[side])
    c.check(f"black hole swallowed bytes both ways ({proxy.dropped})",
            proxy.dropped["up"] > 0 and proxy.dropped["down"] > 0)
    c.check("connector exited (status 1: its link failed)", con.wait_exit(10) == 1)
finally:
    for p in procs:
        p.stop()
    if proxy:
        proxy.close()
    tmp.cleanup()
c.done()
