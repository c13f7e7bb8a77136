"""Two real processes link over 127.0.0.1: messages both ways, identity
mismatch, REJECT reasons, handshake timeout, and hostile peers closed with
the right reason while a healthy link on the same listener keeps working."""
import time

import sclib
from sclib import Checker, LinkTest, TempDir, binary, keygen, run

c = Checker()
tmp = TempDir()
procs = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    key_c, id_c = keygen(tmp, "c.key")

    # --- messages flow both ways ------------------------------------------
    lst = LinkTest.listen(key_a, "--timeout", "2000"); procs.append(lst)
    c.check("listener reports its relay id", lst.relay_id == id_a)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a); procs.append(con)
    m = con.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*role=initiator .*transport=(\S+)")
    c.check("initiator authenticated the expected relay", m.group(1) == id_a)
    c.check(f"initiator's link runs over {sclib.TRANSPORT}", m.group(2) == sclib.TRANSPORT, m.group(0))
    m = lst.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*role=responder .*transport=(\S+)")
    c.check("responder learned the initiator's relay id", m.group(1) == id_b)
    c.check(f"responder's link runs over {sclib.TRANSPORT}", m.group(2) == sclib.TRANSPORT, m.group(0))
    con.send("send hello from b")
    m = lst.wait_line(r"^message peer=(\w+) .* text=(.*)$")
    c.check("b -> a message delivered intact", m.group(2) == "hello from b" and id_b.startswith(m.group(1)))
    lst.send("send hello from a")
    m = con.wait_line(r"^message peer=\w+ .* text=(.*)$")
    c.check("a -> b message delivered intact", m.group(1) == "hello from a")
    con.send("ping")
    m = con.wait_line(r"^rtt peer=\w+ us=(\d+)")
    c.check("heartbeat round trip measured", int(m.group(1)) > 0)

    # --- hostile peers on the same listener; the healthy link keeps working --
    cases = [("garbage", "decrypt_failed"), ("flip", "decrypt_failed"),
             ("replay", "decrypt_failed"), ("truncate", "protocol_error"),
             ("oversize", "oversize"), ("unknown-type", "protocol_error"),
             ("bad-version", "protocol_version"), ("early-data", "protocol_error")]
    for i, (mode, reason) in enumerate(cases):
        before = len(lst.snapshot())
        r = run([binary("badpeer"), "127.0.0.1", str(lst.port), key_c, mode], timeout=30 * sclib.SLOW)
        told = f"closed reason={reason} by=peer" in r.stdout
        silent = mode == "early-data"  # before keys exist: just closed
        c.check(f"{mode}: bad peer is told '{reason}'" if not silent else f"{mode}: bad peer closed",
                (told if not silent else "eof" in r.stdout), r.stdout + r.stderr)
        lst.wait_line(rf"^closed peer=\S+ reason={reason} by=local", start=before)
        c.check(f"{mode}: listener closed it with reason={reason}", True)
        con.send(f"send still alive {i}")
        lst.wait_line(rf"text=still alive {i}$", start=before)
        lst.send(f"send and back {i}")
        con.wait_line(rf"text=and back {i}$")
        c.check(f"{mode}: healthy link still carries messages both ways", True)

    # big message: the listener announced a smaller max_message_bytes
    lst2 = LinkTest.listen(key_a, "--max-message", "1000"); procs.append(lst2)
    r = run([binary("badpeer"), "127.0.0.1", str(lst2.port), key_c, "big-message"])
    c.check("message over the announced limit: told 'oversize'", "closed reason=oversize" in r.stdout, r.stdout)
    lst2.stop()

    # --- identity mismatch ----------------------------------------------------
    before = len(lst.snapshot())
    bad = LinkTest.connect(key_c, lst.port, "--expect", id_b, name="mismatch"); procs.append(bad)
    bad.wait_line(r"^closed peer=- reason=identity_mismatch by=local")
    rc = bad.wait_exit()
    c.check("wrong --expect: initiator fails with identity_mismatch, exit != 0", rc != 0)
    c.check("wrong --expect: never authenticated", bad.count("^authenticated") == 0)
    c.check("wrong --expect: responder delivered nothing",
            not lst.find(r"^(message|authenticated) peer=" + id_c[:16], before))

    # --- REJECT from the responder's policy --------------------------------------
    for reason in ("busy", "not_allowed"):
        rej = LinkTest.listen(key_a, "--reject", reason, name=f"reject-{reason}"); procs.append(rej)
        cc = LinkTest.connect(key_b, rej.port, name=f"rejected-{reason}"); procs.append(cc)
        cc.wait_line(rf"^closed peer=- reason={reason} by=peer")
        c.check(f"REJECT {reason}: initiator sees the reason from the peer", cc.wait_exit() != 0)
        c.check(f"REJECT {reason}: initiator never authenticated", cc.count("^authenticated") == 0)
        rej.wait_line(rf"^closed peer=\S+ reason={reason} by=local")
        rej.stop()

    # --- a connection that sends nothing is closed at connection_timeout -----
    s = sclib.raw_connect(lst.port)  # under tls: the TLS handshake done, then silence
    t0 = time.monotonic()
    s.settimeout(10 * sclib.SLOW)
    data = s.recv(100)
    dt = time.monotonic() - t0
    c.check("silent connection: nothing sent to it", data == b"")
    c.check(f"silent connection closed at connection_timeout (2 s): {dt:.2f}s",
            1.9 <= dt <= 3.0 * (sclib.SLOW if sclib.SANITIZE else 1), f"{dt:.2f}")
    s.close()
    lst.wait_line(r"^closed peer=- reason=timeout by=local")

    lst.send("stats")
    m = lst.wait_line(r"^stats .*decrypt_failed=(\d+)")
    c.check("listener counted the decrypt failures", int(m.group(1)) == 3, m.group(0))

    # orderly shutdown: the connector is told "shutdown"
    lst.send("quit")
    con.wait_line(r"^closed peer=\w+ reason=shutdown by=peer")
    c.check("listener quit tells the peer 'shutdown'", lst.wait_exit() == 0)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
