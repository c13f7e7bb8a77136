"""1,000,000 messages in each direction through one link that rekeys every
1,000 frames arrive complete, in order and unaltered: each side regenerates
message i from its sequence number and compares every byte."""

from sclib import Checker, LinkTest, TempDir, keygen

COUNT = 1_000_000
c = Checker()
tmp = TempDir()
procs = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    # Small frames (1 KiB bodies) so the million messages make ~100k frames
    # and so ~100 rekeys in each direction; sizes vary 8..200 bytes.
    common = ["--quiet", "--send-count", str(COUNT), "--recv-check", str(COUNT), "--send-size", "200",
              "--rekey-frames", "1000", "--max-frame", "1024"]
    lst = LinkTest.listen(key_a, *common); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a, "--exit-when-done", *common); procs.append(con)
    for side, p in (("listener", lst), ("connector", con)):
        m = p.wait_line(r"^(verified count=(\d+) bytes=(\d+) .*|verify_failed.*)$", timeout=120)
        c.check(f"{side} received all {COUNT} messages, in order, content checked", m.group(2) == str(COUNT),
                m.group(0))
    m = con.wait_line(r"^closed .* reason=local_close .*rekeys_sent=(\d+) rekeys_received=(\d+)", timeout=60)
    c.check(f"connector rekeyed its sending direction {m.group(1)} times (>= 90)", int(m.group(1)) >= 90)
    c.check(f"connector followed {m.group(2)} rekeys of the listener (>= 90)", int(m.group(2)) >= 90)
    m = lst.wait_line(r"^closed .* reason=local_close by=peer sent=(\d+) received=(\d+) rekeys_sent=(\d+) "
                      r"rekeys_received=(\d+)", timeout=60)
    c.check("listener: every message sent and received, rekeys both ways",
            m.group(1) == str(COUNT) and m.group(2) == str(COUNT) and int(m.group(3)) >= 90
            and int(m.group(4)) >= 90, m.group(0))
    c.check("nothing left unsent on either side",
            all(p.find(r"^closed .* unsent=0$") for p in (lst, con)), [lst.find("^closed"), con.find("^closed")])
    c.check("connector exited cleanly", con.wait_exit(60) == 0)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
