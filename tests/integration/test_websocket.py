"""WebSocket interop with real peers, against `link-test listen --ws`:
  - npm's `ws` opens ws://127.0.0.1:PORT/relay (its own check of
    Sec-WebSocket-Accept passes, secirc.v1 is selected), sends a binary
    message of garbage and gets a close with code 1002 or 1008, no crash,
    no hang, while a real link on the same listener keeps working;
  - `npx wscat -c ws://127.0.0.1:PORT/relay` (npm's wscat, on a terminal)
    prints "Connected" and can be closed;
  - by hand: another path gets 404, Sec-WebSocket-Version 8 gets 426 naming
    13, a plain GET of / the short page; each counted as websocket_failed;
  - a link through Debian's tinyproxy as an HTTP CONNECT proxy, without and
    with Basic authentication (no credentials: 407, a wrong password: 401,
    each reported as proxy_failed), and a port the proxy does not allow
    (403).
npm installs the pinned `ws` and `wscat` into BUILD/npm-ws once (later runs
reuse them without the network); when npm cannot reach the registry the
test is skipped (exit 77) with a message saying so."""
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time

import sclib
from hostile import sanitizer_reports, stats
from sclib import Checker, LinkTest, Proc, TempDir, Tinyproxy, free_port, keygen, wait_for

NPM_PACKAGES = {"ws": "8.23.0", "wscat": "6.1.0"}
HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77  # ctest: SKIP_RETURN_CODE


def npm_peers():
    """The node_modules directory with the pinned packages, installed with npm
    when they are not there yet; exits 77 when npm cannot fetch them."""
    for tool in ("node", "npm", "npx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: scripts/deps test installs Node and npm")
    d = os.path.join(sclib.BIN_DIR, "npm-ws")
    os.makedirs(d, exist_ok=True)

    def installed(name):
        try:
            with open(os.path.join(d, "node_modules", name, "package.json")) as f:
                return json.load(f).get("version")
        except (OSError, ValueError):
            return None
    if all(installed(n) == v for n, v in NPM_PACKAGES.items()):
        return d
    with open(os.path.join(d, "package.json"), "w") as f:
        json.dump({"private": True, "dependencies": NPM_PACKAGES}, f)
    try:
        r = subprocess.run(["npm", "install", "--prefer-offline", "--no-package-lock", "--no-audit",
                            "--no-fund", "--loglevel=error"], cwd=d, capture_output=True, text=True,
                           timeout=300)
    except subprocess.TimeoutExpired:
        r = None
    if r is None or r.returncode != 0 or not all(installed(n) == v for n, v in NPM_PACKAGES.items()):
        why = (r.stderr.strip().splitlines() or ["timed out"])[-1] if r else "timed out after 300 s"
        print(f"skip: npm could not install {NPM_PACKAGES} from the registry ({why})")
        sys.exit(SKIP)
    return d


def http_exchange(port, request):
    """Sends a request on a fresh connection; returns all bytes until the
    server closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10 * sclib.SLOW)
        s.sendall(request)
        data = b""
        while len(data) < 65536:
            try:
                d = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            data += d
        return data.decode("latin-1")


def upgrade_request(port, path="/relay", version=13):
    return sclib.ws_request("127.0.0.1", port, path=path, version=version)


def talk(a, b, word):
    """A message each way between two link-tests."""
    a.send(f"send {word} one way")
    b.wait_line(f"text={word} one way$")
    b.send(f"send {word} back")
    a.wait_line(f"text={word} back$")
    return True


def wscat_session(npm_dir, url):
    """Runs `npx wscat -c URL` on a pseudo-terminal (wscat prints its
    "Connected" line only on one), waits for that line, then ends the input
    (Ctrl-D) and, if it is still there, interrupts it. Returns (output,
    connected, exit status)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(["npx", "--no", "--", "wscat", "-c", url], stdin=slave, stdout=slave,
                         stderr=slave, cwd=npm_dir, start_new_session=True)
    os.close(slave)
    out, connected = b"", False
    deadline = time.monotonic() + 20 * sclib.SLOW
    try:
        while time.monotonic() < deadline and not connected:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    out += os.read(master, 4096)
                except OSError:  # EIO: wscat is gone
                    break
            connected = b"Connected" in out
        if connected:
            os.write(master, b"\x04")  # Ctrl-D: end of input
        try:
            rc = p.wait(timeout=5 * sclib.SLOW)
        except subprocess.TimeoutExpired:
            p.send_signal(2)  # Ctrl-C, as its prompt says
            rc = p.wait(timeout=5 * sclib.SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        os.close(master)
    return out.decode("utf-8", "replace"), connected, rc


c = Checker()
tmp = TempDir()
procs, proxies = [], []
try:
    npm_dir = npm_peers()
    if not shutil.which("tinyproxy") and not os.path.exists("/usr/sbin/tinyproxy"):
        raise SystemExit("tinyproxy not found: scripts/deps test installs it")
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    key_c, _ = keygen(tmp, "c.key")
    lst = LinkTest.listen(key_a, "--ws", "--timeout", "5000"); procs.append(lst)
    url = f"ws://127.0.0.1:{lst.port}/relay"

    real = LinkTest.connect(key_b, lst.port, "--ws", "--expect", id_a, name="real"); procs.append(real)
    m = real.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)")
    c.check(f"link-test over WebSocket links (transport={m.group(2)})",
            m.group(1) == id_a and m.group(2) == "tcp+websocket")
    c.check("messages both ways over WebSocket", talk(real, lst, "ws"))

    # --- npm ws: its accept-key check, then garbage -----------------------------
    before = stats(lst)
    env = dict(os.environ, NODE_PATH=os.path.join(npm_dir, "node_modules"))
    peer = Proc(["node", os.path.join(HERE, "ws_peer.js"), "garbage", url], name="ws-peer", env=env,
                stdin=False)
    rc = peer.wait_exit(20)
    lines = peer.snapshot()
    c.check(f"npm ws connects: its Sec-WebSocket-Accept check passes, secirc.v1 selected ({lines[:1]})",
            "OPEN protocol=secirc.v1" in lines, f"{lines} {peer.err_lines[-3:]}")
    closes = [ln for ln in lines if ln.startswith("CLOSE code=")]
    c.check(f"binary garbage gets a close with 1002 or 1008 ({closes}, exit {rc})",
            rc == 0 and closes in (["CLOSE code=1002"], ["CLOSE code=1008"]), str(lines))
    c.check("the listener is still running", lst.p.poll() is None)
    c.check("the real link on the same listener keeps working", talk(lst, real, "after-garbage"))
    after = stats(lst)
    failed = sum(after.get(k, 0) - before.get(k, 0) for k in ("handshake_failed", "protocol_error",
                                                               "decrypt_failed"))
    c.check(f"the garbage counted as a link failure ({failed})", failed == 1, str(after))

    # --- wscat on a terminal ----------------------------------------------------------
    start = len(lst.snapshot())
    out, connected, rc = wscat_session(npm_dir, url)
    c.check(f"npx wscat -c {url} prints Connected", connected, out[-300:])
    c.check(f"wscat can be closed (exit status {rc})", rc is not None, out[-300:])
    lst.wait_line(r"^closed peer=- reason=peer_closed by=peer", start=start)
    c.check("the listener sees wscat go (its link ends as peer_closed)", True)

    # --- refusals by hand --------------------------------------------------------------
    before = stats(lst)
    r = http_exchange(lst.port, upgrade_request(lst.port, path="/other"))
    c.check(f"an upgrade of /other gets 404 ({r.splitlines()[:1]})", r.startswith("HTTP/1.1 404 "), r)
    r = http_exchange(lst.port, upgrade_request(lst.port, version=8))
    c.check(f"Sec-WebSocket-Version: 8 gets 426 naming 13 ({r.splitlines()[:1]})",
            r.startswith("HTTP/1.1 426 ") and "\r\nSec-WebSocket-Version: 13\r\n" in r, r)
    r = http_exchange(lst.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    c.check(f"a plain GET of / gets the short page ({r.splitlines()[:1]})",
            r.startswith("HTTP/1.1 200 ") and r.endswith("\r\n\r\nThis is a secirc relay.\n"), r)
    after = stats(lst)
    c.check(f"each refusal counted as websocket_failed ({before.get('websocket_failed')} -> "
            f"{after.get('websocket_failed')})",
            after.get("websocket_failed") == before.get("websocket_failed") + 3, str(after))

    # --- through tinyproxy (HTTP CONNECT) --------------------------------------------------
    tp = Tinyproxy(tmp, lst.port); proxies.append(tp)
    via = LinkTest.connect(key_c, lst.port, "--ws", "--expect", id_a, "--http-proxy",
                           f"http://127.0.0.1:{tp.port}", name="via-proxy"); procs.append(via)
    m = via.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)")
    c.check(f"a link through tinyproxy (transport={m.group(2)})",
            m.group(1) == id_a and m.group(2) == "tcp+http_connect+websocket")
    c.check("messages both ways through the proxy", talk(via, lst, "proxied"))
    c.check("tinyproxy logged the CONNECT", f"CONNECT 127.0.0.1:{lst.port} " in tp.log_text(),
            tp.log_text()[-500:])
    via.send("quit")
    via.wait_exit(10)

    other = free_port()  # not the ConnectPort tinyproxy allows
    r = sclib.run([sclib.binary("secirc"), "link-test", "connect", "--key", key_c, "--host", "127.0.0.1",
                   "--port", str(other), "--ws", "--http-proxy", f"http://127.0.0.1:{tp.port}",
                   "--timeout", "5000"], stdin=subprocess.DEVNULL)
    c.check(f"a port the proxy does not allow: 403, proxy_failed ({r.stdout.strip()})",
            r.returncode != 0 and "reason=proxy_failed" in r.stdout and "proxy answered 403" in r.stdout)

    tpa = Tinyproxy(tmp, lst.port, auth=("alice", "s3cret")); proxies.append(tpa)
    via = LinkTest.connect(key_c, lst.port, "--ws", "--expect", id_a, "--http-proxy",
                           f"http://alice:s3cret@127.0.0.1:{tpa.port}", name="via-auth"); procs.append(via)
    via.wait_line("^authenticated peer=" + id_a)
    c.check("with Basic authentication: links and talks through the proxy", talk(via, lst, "authed"))
    via.send("quit")
    via.wait_exit(10)
    # tinyproxy 1.11 answers 407 without credentials (proxy_auth_failed)
    # but 401 to a wrong password (proxy_failed, with the status).
    for creds, answer, reason in (("", "proxy wants authentication (407)", "proxy_auth_failed"),
                                  ("alice:wrong@", "proxy answered 401", "proxy_failed")):
        r = sclib.run([sclib.binary("secirc"), "link-test", "connect", "--key", key_c, "--host",
                       "127.0.0.1", "--port", str(lst.port), "--ws", "--http-proxy",
                       f"http://{creds}127.0.0.1:{tpa.port}", "--timeout", "5000"],
                      stdin=subprocess.DEVNULL)
        c.check(f"{'no credentials' if not creds else 'a wrong password'}: {reason} "
                f"({r.stdout.strip()})",
                r.returncode != 0 and f"reason={reason}" in r.stdout.split() and answer in r.stdout)

    c.check("the first link kept working throughout", talk(real, lst, "still"))
    lst.send("quit")
    real.wait_line(r"^closed peer=\w+ reason=shutdown by=peer")
    c.check("the listener quits cleanly", lst.wait_exit(10) == 0)
finally:
    for p in procs:
        p.stop()
    for tp in proxies:
        tp.stop()
    tmp.cleanup()
reports = sanitizer_reports(procs)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
