"""The tcp transport and the selftest: IPv4, IPv6 and host names (every
resolved address tried), refused and unresolvable targets fail with a clear
reason, and `secirc selftest handshake` shows matching handshake hashes."""
import re
import socket
import time

import sclib
from sclib import Checker, LinkTest, TempDir, binary, keygen, layer_args, run

c = Checker()
tmp = TempDir()
procs = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")

    r = run([binary("secirc"), "selftest", "handshake"])
    hashes = re.findall(r"(initiator|responder) handshake hash ([0-9a-f]{128})", r.stdout)
    c.check("selftest handshake: exit 0 and both hashes printed and equal",
            r.returncode == 0 and len(hashes) == 2 and hashes[0][1] == hashes[1][1], r.stdout + r.stderr)

    has_v6 = True
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        has_v6 = False
    if has_v6:
        lst = LinkTest([binary("secirc"), "link-test", "listen", "--key", key_a, "--address", "::1",
                        "--port", "0", *layer_args()], name="v6-listener"); procs.append(lst)
        port = int(lst.wait_line(r"^listening address=::1 port=(\d+)").group(1))
        con = LinkTest([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "::1",
                        "--port", str(port), *layer_args(), "--expect", id_a], name="v6-connector"); procs.append(con)
        con.wait_line("^authenticated peer=" + id_a)
        lst.wait_line(r"^authenticated peer=" + id_b)
        c.check("IPv6: link over [::1]", True)
        lst.stop(); con.stop()
    else:
        print("IPv6 loopback not available here: skipped")

    lst = LinkTest.listen(key_a); procs.append(lst)
    con = LinkTest([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "localhost",
                    "--port", str(lst.port), *layer_args(), "--expect", id_a], name="by-name"); procs.append(con)
    con.wait_line("^authenticated peer=" + id_a)
    c.check("host name: 'localhost' resolves (evdns) and links", True)
    con.stop()

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    t0 = time.monotonic()
    r = run([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "127.0.0.1",
             "--port", str(dead), *layer_args(), "--timeout", "5000"])
    c.check(f"refused port: connect_failed with the reason, quickly ({time.monotonic() - t0:.2f}s)",
            r.returncode != 0 and "connect_failed" in r.stdout and "refused" in r.stdout.lower(), r.stdout)
    t0 = time.monotonic()
    r = run([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "no-such-relay.invalid",
             "--port", "4000", *layer_args(), "--timeout", "2000"])
    dt = time.monotonic() - t0
    c.check(f"unresolvable name fails within the timeout ({dt:.2f}s): {r.stdout.strip()}",
            r.returncode != 0 and "connect_failed" in r.stdout and dt < 2.0 + 3.0 * sclib.SLOW)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
