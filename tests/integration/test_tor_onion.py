"""secircd's own onion service through a real local tor's control port
(network off: DisableNetwork 1, so nothing leaves the machine): with cookie
authentication the service is published and `secirc status` shows its v3
address (HTTP /status only its state); the onion key is written 0600 and the same address comes back
after a secircd restart and after a tor restart; a stopped tor is a state
(`unavailable`), not a failure, and the relay keeps answering; a wrong
password and a hostile control port (an endless line, garbage replies) are
logged and retried while the relay keeps working."""
import json
import os
import re
import shutil
import socket
import stat
import threading
import urllib.request

from relays import Relay
from sclib import Checker, Proc, TempDir, free_port, run, wait_for

c = Checker()
tmp = TempDir()
procs = []
ONION = re.compile(r"^[a-z2-7]{56}\.onion$")

if not shutil.which("tor"):
    raise SystemExit("tor is not installed: `make test` (scripts/deps test) installs Debian's tor")


class Tor:
    def __init__(self, name, extra=""):
        self.dir = tmp.join(name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.port = free_port()
        self.cookie = os.path.join(self.dir, "control_auth_cookie")
        self.rc = os.path.join(self.dir, "torrc")
        with open(self.rc, "w") as f:
            f.write(f"DataDirectory {self.dir}/data\nControlPort 127.0.0.1:{self.port}\n"
                    f"CookieAuthentication 1\nCookieAuthFile {self.cookie}\nSocksPort 0\n"
                    f"DisableNetwork 1\nLog notice stdout\nRunAsDaemon 0\n{extra}")
        self.proc = None

    def start(self):
        self.proc = Proc(["tor", "-f", self.rc], name="tor", stdin=False)
        procs.append(self.proc)
        self.proc.wait_line(r"Opened Control listener", timeout=60)
        return self

    def stop(self):
        self.proc.stop()


def tor_state(r):
    t = r.status()["tor"]
    return t["state"], t.get("onion_address")


def onion_relay(name, control_port, password=None):
    r = Relay(tmp, name, extra_manager={"enable_tor": True}, http=True)
    r.extra_yaml = f"tor:\n  control_port: {control_port}\n"
    if password:
        r.extra_yaml += f"  control_password: \"{password}\"\n"
    return r


try:
    tor = Tor("tor").start()
    r = onion_relay("r", tor.port).start()
    procs.append(r.proc)
    state, addr = wait_for(lambda: tor_state(r)[0] == "published" and tor_state(r), 60,
                           "the onion service published")
    c.check(f"published with cookie authentication: {addr}", bool(addr and ONION.match(addr)), addr)
    text = r.ctl("status").stdout
    c.check("`secirc status` prints the line `onion: published ADDRESS`",
            f"onion:        published {addr}" in text, text)
    with urllib.request.urlopen(f"http://127.0.0.1:{r.http_port}/status", timeout=10) as resp:
        body = resp.read().decode()
    c.check("HTTP /status says published but never shows the address (it would tie it to this host)",
            json.loads(body)["tor"] == {"state": "published"} and addr.split(".")[0] not in body, body)
    key = os.path.join(r.dir, "onion.key")
    mode = stat.S_IMODE(os.stat(key).st_mode) if os.path.exists(key) else None
    c.check(f"onion key written with mode 0600 ({oct(mode) if mode is not None else 'missing'})",
            mode == 0o600)
    c.check("the log names the published service, never the key",
            any("tor.onion_published" in l for l in r.log()) and
            not any(open(key).read().strip() in l for l in r.log()))

    # A restarted secircd publishes the same address (the key persists).
    c.check("SIGTERM exits 0", r.stop() == 0)
    r.start()
    procs.append(r.proc)
    _, again = wait_for(lambda: tor_state(r)[0] == "published" and tor_state(r), 60,
                        "published after the restart")
    c.check("the same address after a secircd restart", again == addr, f"{again} != {addr}")

    # tor goes away: a state, not a failure; it comes back: published again.
    tor.stop()
    wait_for(lambda: tor_state(r)[0] != "published", 30, "tor's loss noticed")
    st = r.status()
    c.check(f"with tor stopped the relay answers and says so ({st['tor']})",
            st["tor"]["state"] in ("unavailable", "connecting") and "onion_address" not in st["tor"])
    tor.start()
    _, back = wait_for(lambda: tor_state(r)[0] == "published" and tor_state(r), 90,
                       "published again after tor came back")
    c.check("the same address after a tor restart", back == addr, f"{back} != {addr}")
    c.check("SIGTERM with the service up exits 0", r.stop() == 0)

    # Password authentication: the right one publishes; a wrong one is
    # logged with tor's reason (never the password), retried, and the relay
    # keeps working.
    hashed = run(["tor", "--hash-password", "right-password", "--quiet"]).stdout.strip().splitlines()[-1]
    tor_pw = Tor("tor-pw", extra=f"HashedControlPassword {hashed}\n")
    with open(tor_pw.rc) as f:
        text = f.read().replace("CookieAuthentication 1", "CookieAuthentication 0")
    with open(tor_pw.rc, "w") as f:
        f.write(text)
    tor_pw.start()
    p = onion_relay("p", tor_pw.port, password="right-password").start()
    procs.append(p.proc)
    _, paddr = wait_for(lambda: tor_state(p)[0] == "published" and tor_state(p), 60,
                        "published with the password")
    c.check("published with password authentication", bool(paddr and ONION.match(paddr)), paddr)
    p.stop()
    w = onion_relay("w", tor_pw.port, password="not-the-password").start()
    procs.append(w.proc)
    wait_for(lambda: any("tor.unavailable" in l for l in w.log()), 30, "the refusal logged")
    line = next(l for l in w.log() if "tor.unavailable" in l)
    c.check(f"a wrong password is logged with tor's reason: {line.strip()[-100:]}",
            "reason=tor_unavailable" in line and "not-the-password" not in line)
    c.check("and the relay keeps answering, unpublished",
            w.status()["tor"]["state"] != "published" and w.proc.p.poll() is None)
    w.stop()

    # A hostile control port: an endless line, then garbage; bounded, retried.
    hostile = socket.socket()
    hostile.bind(("127.0.0.1", 0))
    hostile.listen(8)
    hostile.settimeout(60)
    hport = hostile.getsockname()[1]
    accepted = []

    def serve():
        try:
            for payload in (b"250-" + b"A" * 1_000_000, b"\x00\xff garbage\r\n" * 1000):
                conn, _ = hostile.accept()
                accepted.append(conn)
                try:
                    conn.sendall(payload)
                except OSError:
                    pass
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    h = onion_relay("h", hport).start()
    procs.append(h.proc)
    wait_for(lambda: len(accepted) >= 2, 60, "secircd to reconnect after the endless line")
    wait_for(lambda: sum("tor.unavailable" in l for l in h.log()) >= 2, 60, "both sessions dropped")
    c.check("a hostile control port is dropped (line bound, bad replies) and retried",
            h.proc.p.poll() is None and h.status()["tor"]["state"] != "published")
    c.check("SIGTERM exits 0 after a hostile control port", h.stop() == 0)
    for conn in accepted:
        conn.close()
    hostile.close()
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
