"""Probe resistance against replay: a censor that records a real client's
message 1 on the wire and sends it again to learn whether the address is a
relay gets exactly what any prober gets: no byte, then a FIN (not a reset)
at connection_timeout. The listener counts it as probe_replayed. A fresh
message 1 naming the relay still gets message 2; one whose mac1 was made
three epochs (6 minutes) ago gets the silence of a probe.

The recording is real: a forwarding proxy in this test sits between
`link-test connect --expect ID` and the listener and keeps the first 48
bytes the client sent; the client links through it."""
import time

import sclib
from hostile import (MSG1_BYTES, MSG2_BYTES, Proxy, connect_from, message1, probe, read_to_end,
                     sanitizer_reports, stats)
from sclib import MAC1_EPOCH_S, Checker, LinkTest, TempDir, keygen, mac1

TIMEOUT_S = 2.0
c = Checker()
tmp = TempDir()
procs = []
proxy = None


def at_timeout(dt):
    return TIMEOUT_S - 0.1 <= dt <= TIMEOUT_S + 1.0 * sclib.SLOW


def silent_end(what, data, end, dt):
    c.check(f"{what}: no byte back ({len(data)}), closed with a FIN ({end}) at connection_timeout "
            f"({dt:.2f}s of {TIMEOUT_S}s)", data == b"" and end == "fin" and at_timeout(dt))


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest.listen(key_a, "--probe-resistance", "--timeout", str(int(TIMEOUT_S * 1000)))
    procs.append(lst)

    # --- a real client links through the recording proxy ----------------------
    # Under ws the client's first bytes are its upgrade, then framed
    # message 1: record enough of them, and cut after message 1's frames.
    proxy = Proxy(lst.port, record=4096 if sclib.LAYER == "ws" else MSG1_BYTES)
    # Under tls the proxy terminates TLS to see message 1, which channel
    # binding exists to prevent: this client links through it without.
    unbound = ["--channel-binding", "off"] if sclib.LAYER == "tls" else []
    real = LinkTest.connect(key_b, proxy.port, "--expect", id_a, *unbound, name="through-proxy")
    procs.append(real)
    real.wait_line("^authenticated peer=" + id_a)
    real.send("send via proxy")
    lst.wait_line("text=via proxy$")
    lst.send("send back via proxy")
    real.wait_line("text=back via proxy$")
    c.check("a client with --expect links through the proxy and talks both ways", True)
    raw = proxy.recorded[0] if proxy.recorded else b""  # the bytes on the wire
    if sclib.LAYER == "ws":
        raw, rec = sclib.ws_split_client(raw, MSG1_BYTES)  # rec: the frames' payload
    else:
        rec = sclib.wire(raw)  # as the link wrote them (the same on plain TCP)
    epoch = int(time.time()) // MAC1_EPOCH_S
    named = any(rec[32:] == mac1(id_a, rec[:32], e) for e in (epoch - 1, epoch, epoch + 1))
    c.check(f"the proxy recorded the client's message 1 ({len(rec)} bytes, mac1 names the relay)",
            len(rec) == MSG1_BYTES and named)
    before = stats(lst)

    # --- the replay: silence, FIN at the deadline, counted -------------------
    data, end, dt = probe(lst.port, raw, source="127.0.0.5", as_is=True)
    silent_end("replayed message 1", data, end, dt)
    s = stats(lst)
    c.check(f"the listener counts it as probe_replayed={s.get('probe_replayed')} "
            f"(probe_dropped {before.get('probe_dropped')} -> {s.get('probe_dropped')})",
            s.get("probe_replayed") == 1 and s.get("probe_dropped") == before.get("probe_dropped"),
            str(s))

    # --- a fresh message 1 that names the relay is answered -------------------
    sock = connect_from("127.0.0.6", lst.port)
    try:
        sock.sendall(message1(id_a))
        data, end, dt = read_to_end(sock, 5 * sclib.SLOW, want=MSG2_BYTES)
    finally:
        sock.close()
    c.check(f"a fresh message 1 with a current mac1 gets message 2 ({len(data)} bytes in {dt:.2f}s)",
            len(data) == MSG2_BYTES and end == "enough")

    # --- a mac1 from three epochs ago is a probe --------------------------------
    before = stats(lst)
    old = message1(id_a, epoch=int(time.time()) // MAC1_EPOCH_S - 3)
    data, end, dt = probe(lst.port, old, source="127.0.0.7")
    silent_end("message 1 with a mac1 three epochs old", data, end, dt)
    s = stats(lst)
    c.check(f"counted as probe_dropped ({before.get('probe_dropped')} -> {s.get('probe_dropped')}),"
            f" not replayed ({s.get('probe_replayed')})",
            s.get("probe_dropped") == before.get("probe_dropped") + 1 and s.get("probe_replayed") == 1,
            str(s))

    real.send("send still linked")
    lst.wait_line("text=still linked$")
    c.check("the recorded client's own link kept working throughout", True)
finally:
    for p in procs:
        p.stop()
    if proxy:
        proxy.stop()
    tmp.cleanup()
reports = sanitizer_reports(procs)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
