"""probe_resistance: a relay says nothing to anyone who does not already
know its relay ID. A connect with the right --expect links; a trust-on-first-
use connect, a message 1 with a wrong mac1, or any other first bytes get no
byte back at all, are closed at connection_timeout and counted as
probe_dropped."""
import os
import time

import sclib
from sclib import Checker, LinkTest, TempDir, binary, keygen, mac1, run, wire

TIMEOUT_S = 2.0
c = Checker()
tmp = TempDir()
procs = []


def raw_probe(port, payload):
    """Sends payload, returns (bytes received, seconds from connecting (the
    TLS handshake is inside the deadline) until closed)."""
    t0 = time.monotonic()
    s = sclib.raw_connect(port)
    s.sendall(payload)
    s.settimeout(15 * sclib.SLOW)
    got = b""
    while True:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            d = b""
        if not d:
            break
        got += d
    s.close()
    return got, time.monotonic() - t0


def closed_at_timeout(dt):
    return TIMEOUT_S - 0.05 <= dt <= TIMEOUT_S + 1.0 * sclib.SLOW


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest.listen(key_a, "--probe-resistance", "--timeout", str(int(TIMEOUT_S * 1000)))
    procs.append(lst)

    good = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="knows-id"); procs.append(good)
    good.wait_line("^authenticated peer=" + id_a)
    good.send("send knock knock")
    lst.wait_line("text=knock knock$")
    c.check("initiator that knows the relay ID links and sends", True)

    tofu = LinkTest.connect(key_b, lst.port, "--timeout", "20000", name="tofu"); procs.append(tofu)
    t0 = time.monotonic()
    m = tofu.wait_line(r"^closed peer=- reason=(\w+) .*bytes_in=(\d+)", timeout=15)
    dt = time.monotonic() - t0
    c.check("trust-on-first-use connect: no byte back at all", m.group(2) == "0", m.group(0))
    c.check(f"trust-on-first-use connect closed at connection_timeout ({dt:.2f}s)",
            closed_at_timeout(dt) and m.group(1) == "peer_closed", m.group(0))

    r = run([binary("badpeer"), "127.0.0.1", str(lst.port), key_b, "bad-mac1", id_a])
    c.check("message 1 with a wrong mac1: no reply, only the close", r.stdout.strip() == "eof", r.stdout)

    e = os.urandom(32)
    got, dt = raw_probe(lst.port, wire(e + mac1("00" * 32, e)))
    c.check(f"raw TOFU message 1 (zero-ID mac1): nothing back, closed at timeout ({dt:.2f}s)",
            got == b"" and closed_at_timeout(dt))
    got, dt = raw_probe(lst.port, os.urandom(48))
    c.check(f"48 random bytes: nothing back, closed at timeout ({dt:.2f}s)", got == b"" and closed_at_timeout(dt))
    got, dt = raw_probe(lst.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(100))
    c.check(f"an HTTP request: nothing back, closed at timeout ({dt:.2f}s)", got == b"" and closed_at_timeout(dt))

    # the right mac1 from a raw client proves the check is what decides
    e = os.urandom(32)
    s = sclib.raw_connect(lst.port)
    s.sendall(wire(e + mac1(id_a, e)))
    s.settimeout(5 * sclib.SLOW)
    msg2 = b""
    while len(msg2) < 224:
        d = s.recv(224 - len(msg2))
        if not d:
            break
        msg2 += d
    s.close()
    c.check("a message 1 with our own ID's mac1 gets message 2 (224 bytes)", len(msg2) == 224)

    lst.send("stats")
    m = lst.wait_line(r"^stats .* probe_dropped=(\d+)")
    c.check(f"five probes counted as probe_dropped ({m.group(1)})", m.group(1) == "5", m.group(0))
    good.send("send still here")
    lst.wait_line("text=still here$")
    c.check("the known initiator's link kept working throughout", True)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
