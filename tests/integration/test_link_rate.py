"""Handshake rates: a handshake flood from one address is held to its rate
while a peer from another address links; a flood spread over many addresses
is held to the global rate; and under probe resistance a connection over a
cap, a random 48-byte probe and a 10-byte probe all end alike (no byte, a
FIN at connection_timeout), so a scanner cannot tell a cap from silence.

Each flood connection sends a message 1 (32 random bytes and a zero-ID mac1:
without probe resistance any mac1 passes) and reads until it has message 2
(224 bytes, the listener spent a handshake on it) or the connection ends."""
import os
import threading
import time

import sclib
from hostile import MSG2_BYTES, connect_from, message1, probe, read_to_end, sanitizer_reports, stats
from sclib import Checker, LinkTest, TempDir, keygen

FLOOD_S = 3.0
c = Checker()
tmp = TempDir()
procs = []
stopped = []


def stop_all():
    for p in procs:
        p.stop()
    stopped.extend(procs)
    procs.clear()


class Flood:
    """Connects from `sources` (in turn) as fast as one thread can for
    FLOOD_S seconds; counts the connections that got a message 2."""

    def __init__(self, port, sources):
        self.port, self.sources = port, sources
        self.attempts = self.answered = self.failed = 0
        self.elapsed = 0.0
        self.started = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        t0 = time.monotonic()
        self.started.set()
        while time.monotonic() - t0 < FLOOD_S and self.attempts < 50000:
            src = self.sources[self.attempts % len(self.sources)]
            self.attempts += 1
            try:
                s = connect_from(src, self.port)
            except OSError:
                self.failed += 1
                continue
            try:
                s.sendall(message1())
                data, _, _ = read_to_end(s, 5 * sclib.SLOW, want=MSG2_BYTES)
                self.answered += len(data) >= MSG2_BYTES
            except OSError:
                self.failed += 1
            finally:
                s.close()
        self.elapsed = time.monotonic() - t0

    def join(self):
        self.t.join((FLOOD_S + 30) * sclib.SLOW)
        return not self.t.is_alive()


def within_rate(name, flood, rate, burst):
    hi = burst + rate * flood.elapsed * 1.2 + 5
    lo = burst + rate * flood.elapsed * 0.5
    c.check(f"{name}: {flood.answered} of {flood.attempts} connections got a message 2 in "
            f"{flood.elapsed:.2f}s (rate {rate}/s, burst {burst}: expected {lo:.0f}..{hi:.0f})",
            lo <= flood.answered <= hi, f"failed={flood.failed}")


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")

    # --- per-address rate: one address floods, another links -----------------
    RATE, BURST = 20, 20
    lst = LinkTest.listen(key_a, "--handshake-rate-per-address", str(RATE),
                          "--handshake-burst-per-address", str(BURST),
                          "--max-handshakes-per-address", "256"); procs.append(lst)
    flood = Flood(lst.port, ["127.0.0.7"])
    flood.started.wait(5 * sclib.SLOW)
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="real"); procs.append(real)
    real.wait_line("^authenticated peer=" + id_a, timeout=10)
    real.send("send during the flood")
    lst.wait_line("text=during the flood$")
    lst.send("send back during the flood")
    real.wait_line("text=back during the flood$")
    linked_during = flood.t.is_alive()
    c.check("flood thread finished (bounded)", flood.join())
    c.check("a peer from 127.0.0.1 linked and talked both ways while 127.0.0.7 flooded",
            linked_during)
    within_rate("127.0.0.7 held to its per-address rate", flood, RATE, BURST)
    s = stats(lst)
    unanswered = flood.attempts - flood.answered - flood.failed
    c.check(f"the listener counted every unanswered connection as rate_limited "
            f"({s.get('rate_limited')} of {unanswered})",
            0 < s.get("rate_limited", 0) == unanswered, str(s))
    stop_all()

    # --- global rate: the flood comes from 200 addresses ----------------------
    RATE, BURST = 30, 30
    lst = LinkTest.listen(key_a, "--handshake-rate", str(RATE), "--handshake-burst", str(BURST),
                          "--handshake-rate-per-address", "0"); procs.append(lst)
    flood = Flood(lst.port, [f"127.0.8.{i}" for i in range(1, 201)])
    c.check("flood thread finished (bounded)", flood.join())
    within_rate("200 addresses held to the global rate", flood, RATE, BURST)
    s = stats(lst)
    unanswered = flood.attempts - flood.answered - flood.failed
    c.check(f"the listener counted every unanswered connection as rate_limited "
            f"({s.get('rate_limited')} of {unanswered})",
            0 < s.get("rate_limited", 0) == unanswered, str(s))
    stop_all()

    # --- probe resistance: a cap looks like any unanswered probe ----------------
    TIMEOUT_S = 2.0
    lst = LinkTest.listen(key_a, "--probe-resistance", "--timeout", str(int(TIMEOUT_S * 1000)),
                          "--max-handshakes-per-address", "1"); procs.append(lst)
    # takes 127.0.0.9's one handshake slot (under ws: upgraded, so that it
    # is silent before the link, as a plain holder is)
    holder = connect_from("127.0.0.9", lst.port, upgrade=True)
    sclib.wait_for(lambda: stats(lst).get("handshaking") == 1, 5, "the holder's handshake")
    cases = {
        "over the per-address cap (a message 1 naming the relay)": ("127.0.0.9", message1(id_a)),
        "48 random bytes": ("127.0.0.10", os.urandom(48)),
        "10 random bytes": ("127.0.0.11", os.urandom(10)),
    }
    results = {}

    def run_case(name, src, payload):
        results[name] = probe(lst.port, payload, source=src)

    threads = [threading.Thread(target=run_case, args=(n, *v), daemon=True) for n, v in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join((TIMEOUT_S + 20) * sclib.SLOW)
    holder.close()
    for name in cases:
        data, end, dt = results.get(name, (b"?", "missing", -1.0))
        c.check(f"{name}: no byte back ({len(data)}), closed with a FIN ({end}) at "
                f"connection_timeout ({dt:.2f}s of {TIMEOUT_S}s)",
                data == b"" and end == "fin" and
                TIMEOUT_S - 0.1 <= dt <= TIMEOUT_S + 1.0 * sclib.SLOW)
    s = stats(lst)
    # the holder and both probes are probe_dropped; the capped one handshake_limit
    c.check(f"the short probe counts as probe_dropped, not timeout (probe_dropped="
            f"{s.get('probe_dropped')} timeout={s.get('timeout')} handshake_limit="
            f"{s.get('handshake_limit')})",
            s.get("probe_dropped") == 3 and s.get("timeout") == 0 and s.get("handshake_limit") == 1,
            str(s))
finally:
    stop_all()
    tmp.cleanup()
reports = sanitizer_reports(stopped)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
