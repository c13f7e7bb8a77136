"""link-test ends when it should, and the ACCEPT carries the responder's
configuration:
  - `link-test connect` whose stdin (a pipe) reaches end of input closes its
    link with shutdown and exits with status 0;
  - `link-test listen --recv-check N --exit-when-done` with a connector
    sending N prints verified and closed, then exits (both do, status 0);
  - a listener with --max-message 100 --heartbeat 500: the connector's
    authenticated line shows max_message=100 heartbeat_ms=500, it can send
    100 bytes but not 101 (ETOOBIG, nothing reaches the listener), and,
    though started with the default 30 s heartbeat, it pings at 500 ms."""
import time

import sclib
from hostile import sanitizer_reports
from sclib import Checker, LinkTest, TempDir, keygen

c = Checker()
tmp = TempDir()
procs = []
stopped = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")

    # --- end of stdin ----------------------------------------------------------
    lst = LinkTest.listen(key_a); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a); procs.append(con)
    con.wait_line("^authenticated peer=" + id_a)
    t0 = time.monotonic()
    con.p.stdin.close()  # a pipe at end of input (not /dev/null, which link-test ignores)
    rc = con.wait_exit(10)
    dt = time.monotonic() - t0
    m = con.find(r"^closed peer=\w+ reason=(\w+) by=(\w+)")
    c.check(f"connect at end of stdin closes its link ({m[0][1].group(0) if m else 'no closed line'})",
            bool(m) and m[0][1].group(1, 2) == ("shutdown", "local"))
    c.check(f"connect at end of stdin exits with status {rc} after {dt:.2f}s", rc == 0)
    lst.wait_line(r"^closed peer=\w+ reason=shutdown by=peer")
    c.check("the listener hears the shutdown", True)
    for p in procs:
        p.stop()
    stopped.extend(procs)
    procs.clear()

    # --- --exit-when-done --------------------------------------------------------
    N = 2000
    lst = LinkTest.listen(key_a, "--recv-check", str(N), "--exit-when-done", "--quiet"); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a, "--send-count", str(N), "--quiet")
    procs.append(con)
    v = lst.wait_line(rf"^verified count={N} ", timeout=20)
    cl = lst.wait_line(r"^closed peer=\w+ reason=(\w+) by=(\w+)")
    rc = lst.wait_exit(10)
    c.check(f"listen --exit-when-done: '{v.group(0).strip()}', '{cl.group(0).split(' sent')[0]}',"
            f" then exits with status {rc}", rc == 0 and cl.group(1) == "local_close")
    crc = con.wait_exit(10)
    cm = con.find(r"^closed peer=\w+ reason=(\w+) by=(\w+)")
    c.check(f"the connector learns the close ({cm[0][1].group(0).split(' sent')[0] if cm else '-'}) "
            f"and exits with status {crc}",
            crc == 0 and bool(cm) and cm[0][1].group(1, 2) == ("local_close", "peer"))
    for p in procs:
        p.stop()
    stopped.extend(procs)
    procs.clear()

    # --- the ACCEPT carries max_message and the heartbeat ---------------------
    HB_MS = 500
    lst = LinkTest.listen(key_a, "--max-message", "100", "--heartbeat", str(HB_MS)); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a); procs.append(con)  # default heartbeat
    m = con.wait_line(r"^authenticated .*max_message=(\d+) heartbeat_ms=(\d+)")
    t_auth = time.monotonic()
    c.check(f"the connector's authenticated line shows the listener's values ({m.group(0)[-32:]})",
            m.group(1, 2) == ("100", str(HB_MS)))
    con.send("send " + "x" * 100)
    lst.wait_line(r"len=100 text=x{100}$")
    c.check("a 100-byte message goes through", True)
    start = len(con.snapshot())
    con.send("send " + "y" * 101)
    con.send("send marker after the big one")
    lst.wait_line("text=marker after the big one$")
    f = con.find(r"^send_failed error=(\w+)", start)
    c.check(f"a 101-byte message is refused on the connector ({f[0][1].group(0) if f else 'no error'})"
            " and never reaches the listener",
            bool(f) and f[0][1].group(1) == "ETOOBIG" and not lst.find(r"len=101 "))
    sclib.wait_for(lambda: len(con.find(r"^rtt peer=")) >= 3, 5, "three RTT samples on the connector")
    dt = time.monotonic() - t_auth
    c.check(f"the connector pings at the listener's {HB_MS} ms: three RTT samples {dt:.2f}s after "
            f"authentication (its own default is 30 s)", 1.2 <= dt <= 3.0 * sclib.SLOW)
finally:
    for p in procs:
        p.stop()
    stopped.extend(procs)
    tmp.cleanup()
reports = sanitizer_reports(stopped)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
