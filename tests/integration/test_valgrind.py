"""The normal life cycle of both ends of a link under valgrind memcheck:
start, link, exchange messages and heartbeats, shut down cleanly. Any leak
or memory error fails (valgrind exits 9). Skipped in the ASan build, where
ASan does the same job."""
import shutil

import sclib
from sclib import Checker, LinkTest, TempDir, binary, keygen

c = Checker()
if sclib.SANITIZE:
    print("ASan build: the sanitizer checks memory here; valgrind run skipped")
    c.check("skipped under ASan", True)
    c.done()
if not shutil.which("valgrind"):
    raise SystemExit("valgrind missing (scripts/deps test installs it)")
VG = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
      "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=9"]
tmp = TempDir()
procs = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest([*VG, binary("secirc"), "link-test", "listen", "--key", key_a, "--port", "0",
                    "--heartbeat", "300"], name="listener")
    procs.append(lst)
    port = int(lst.wait_line(r"^listening .* port=(\d+)", timeout=30).group(1))
    con = LinkTest([*VG, binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "localhost",
                    "--port", str(port), "--expect", id_a, "--heartbeat", "300"], name="connector")
    procs.append(con)
    con.wait_line("^authenticated", timeout=30)
    con.send("send hello under valgrind")
    lst.wait_line("text=hello under valgrind$", timeout=30)
    lst.send("send and back")
    con.wait_line("text=and back$", timeout=30)
    con.wait_line("^rtt ", timeout=30)
    lst.send("quit")
    c.check("listener: clean exit, no leak, no memory error", lst.wait_exit(60) == 0, "\n".join(lst.err_lines))
    con.wait_line("^closed .*reason=shutdown by=peer", timeout=30)
    rc = con.wait_exit(60)
    c.check("connector: no leak, no memory error (exit 1 = peer shut down)", rc == 1, "\n".join(con.err_lines))
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
