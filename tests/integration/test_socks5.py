"""The socks5 transport layer against a real SOCKS5 server (Debian's
microsocks) and a few scripted ones: two link-test processes link through
the proxy without and with username/password, with Tor stream-isolation
credentials, and under the xor layer, and exchange messages both ways and a
bulk transfer checked by content; a wrong password, an unreachable target,
a SOCKS port with nothing listening, a silent proxy and a proxy that is not
SOCKS fail with the mapped error and reason; the target's name goes to the
proxy as a name and is never resolved here (checked without packets: the
CONNECT request's bytes, and the failure is the proxy's reply, where the
same name dialled directly fails in our own resolver)."""
import hashlib
import re
import shutil
import socket
import threading
import time

import sclib
from sclib import Checker, LinkTest, Proc, TempDir, binary, free_port, keygen, run, wait_for

c = Checker()
tmp = TempDir()
procs = []
servers = []  # microsocks processes: no stdin to close, terminated at the end
MICROSOCKS = shutil.which("microsocks")
if not MICROSOCKS:
    raise SystemExit("microsocks is not installed (scripts/deps test installs it)")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def microsocks(*args, host="127.0.0.1"):
    """A microsocks on a free port of `host` (it cannot report a port 0)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam) as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    p = Proc([MICROSOCKS, "-i", host, "-p", str(port), *args], name="microsocks", stdin=False)
    servers.append(p)
    wait_for(lambda: port_open(host, port) or p.p.poll() is not None, 10, "microsocks listening")
    if p.p.poll() is not None:
        raise AssertionError(f"microsocks exited: {p.err_lines}")
    p.port = port
    return p


def connector(key, proxy, target_port, *extra, host="127.0.0.1", name="connector"):
    return LinkTest([binary("secirc"), "link-test", "connect", "--key", key, "--socks5", proxy,
                     "--host", host, "--port", str(target_port), *extra], name=name)


def connect_fails(key, proxy, target_port, *extra, host="127.0.0.1", timeout_ms=5000):
    """Runs a connector that must fail; returns (error, why, reason, seconds)."""
    t0 = time.monotonic()
    r = run([binary("secirc"), "link-test", "connect", "--key", key, "--socks5", proxy,
             "--host", host, "--port", str(target_port), "--timeout", str(timeout_ms), *extra])
    dt = time.monotonic() - t0
    m = re.search(r'^connect_failed error=(\S+) why="([^"]*)" reason=(\S+)$', r.stdout, re.M)
    if r.returncode != 1 or not m:
        raise AssertionError(f"expected a connect_failed line and exit 1: rc={r.returncode} "
                             f"stdout={r.stdout!r} stderr={r.stderr!r}")
    return m.group(1), m.group(2), m.group(3), dt


def link_through(lst, key, proxy, tag, transport, *extra, name="connector"):
    """A connector through `proxy` to the listener: both sides authenticated
    over `transport` (the listener sees the connector's relay ID), one
    message each way. Returns (ok, the connector's line, the connector)."""
    start = len(lst.snapshot())
    con = connector(key, proxy, lst.port, "--expect", lst.relay_id, *extra, name=name)
    procs.append(con)
    m = con.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)")
    ok = m.group(1) == lst.relay_id and m.group(2) == transport
    m2 = lst.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)", start=start)
    ok = ok and m2.group(1) == id_b and m2.group(2) == lst_transport(lst)
    con.send(f"send {tag} to the listener")
    lst.wait_line(f"text={tag} to the listener$", start=start)
    lst.send(f"send {tag} to the connector")
    con.wait_line(f"text={tag} to the connector$")
    return ok, m.group(0), con


def lst_transport(lst):
    """What the listener's side of the link says: the proxy is invisible."""
    return "tcp+xor" if "--layer" in lst.args else "tcp"


def isolation_user(peer_key):
    """src/transport/socks5_proto.h: "secirc-" + 16 hex digits of BLAKE2b-256."""
    return "secirc-" + hashlib.blake2b(peer_key.encode(), digest_size=32).hexdigest()[:16]


class ScriptedProxy:
    """One-connection SOCKS5 stand-in on a kernel-chosen port: records what
    the client sends; `mode` says how it answers."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.got = b""
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _read(self, conn, n):
        while len(self.got) < n:
            d = conn.recv(4096)
            if not d:
                return False
            self.got += d
        return True

    def _serve(self):
        self.sock.settimeout(30 * sclib.SLOW)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30 * sclib.SLOW)
            try:
                if not self._read(conn, 3):
                    return
                if self.mode == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    return
                if self.mode == "silent":
                    self._read(conn, 1 << 20)  # until the client gives up
                    return
                conn.sendall(b"\x05\x00")
                if not self._read(conn, 8):  # greeting 3 + request's VER CMD RSV ATYP LEN
                    return
                self._read(conn, 3 + 5 + self.got[7] + 2)
                # host unreachable, as a proxy whose resolver failed says it
                conn.sendall(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.t.join(5)


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest.listen(key_a, name="listener"); procs.append(lst)

    # 1. no authentication, through a real SOCKS5 server
    plain = microsocks()
    proxy = f"127.0.0.1:{plain.port}"
    ok, line, con = link_through(lst, key_b, proxy, "plain", "tcp+socks5")
    c.check("microsocks, no auth: linked end to end (transport=tcp+socks5), messages both ways",
            ok, line)
    con.send("quit")
    c.check("connector quits cleanly", con.wait_exit() == 0)

    # 2. username/password (RFC 1929)
    authd = microsocks("-u", "alice", "-P", "s3cret")
    aproxy = f"127.0.0.1:{authd.port}"
    ok, line, con = link_through(lst, key_b, aproxy, "userpass", "tcp+socks5", "--socks5-user",
                                 "alice", "--socks5-password", "s3cret", name="userpass")
    c.check("microsocks with username/password: linked, messages both ways", ok, line)
    con.send("quit")
    con.wait_exit()

    err, why, reason, _ = connect_fails(key_b, aproxy, lst.port, "--socks5-user", "alice",
                                        "--socks5-password", "wrong")
    c.check(f"wrong password: {err} reason={reason} ({why})",
            err == "EPROXYAUTH" and reason == "proxy_auth_failed"
            and why.startswith("socks5: username/password authentication failed (0x"))
    err, why, reason, _ = connect_fails(key_b, aproxy, lst.port)
    c.check(f"no credentials for a proxy that wants them: {err} reason={reason} ({why})",
            err == "EPROXYAUTH" and reason == "proxy_auth_failed" and "(0xff)" in why)

    # 3. Tor stream isolation credentials: the derived username reaches the
    # proxy (this microsocks accepts exactly it); a proxy without auth
    # refuses rather than letting the credentials be dropped
    iso = microsocks("-u", isolation_user(id_a), "-P", "x")
    ok, line, con = link_through(lst, key_b, f"127.0.0.1:{iso.port}", "isolated", "tcp+socks5",
                                 "--socks5-isolate", name="isolate")
    c.check(f"--socks5-isolate: username {isolation_user(id_a)} accepted by the proxy, linked",
            ok, line)
    con.send("quit")
    con.wait_exit()
    err, why, reason, _ = connect_fails(key_b, f"127.0.0.1:{iso.port}", lst.port, "--expect",
                                        "00" * 32, "--socks5-isolate")
    c.check(f"another relay ID gives other credentials: refused by that proxy ({reason})",
            err == "EPROXYAUTH" and reason == "proxy_auth_failed")
    err, why, reason, _ = connect_fails(key_b, proxy, lst.port, "--expect", id_a, "--socks5-isolate")
    c.check(f"isolation through a proxy without auth fails, never silently unisolated: {why}",
            err == "EPROXYAUTH" and reason == "proxy_auth_failed"
            and "we offered only username/password" in why)

    # 4. the xor test layer above socks5 (both sides)
    lx = LinkTest.listen(key_a, "--layer", "xor", name="xor-listener"); procs.append(lx)
    ok, line, con = link_through(lx, key_b, proxy, "xored", "tcp+socks5+xor", "--layer", "xor",
                                 name="xor")
    c.check("socks5 then xor: linked (transport=tcp+socks5+xor), messages both ways", ok, line)
    con.send("quit")
    con.wait_exit()
    lx.stop()

    # 5. bulk both ways through the proxy, content checked
    COUNT = 20000
    bulk = ["--quiet", "--send-count", str(COUNT), "--recv-check", str(COUNT), "--send-size", "2048"]
    lb = LinkTest.listen(key_a, *bulk, name="bulk-listener"); procs.append(lb)
    con = connector(key_b, aproxy, lb.port, "--expect", id_a, "--socks5-user", "alice",
                    "--socks5-password", "s3cret", "--exit-when-done", *bulk, name="bulk"); procs.append(con)
    for side, p in (("listener", lb), ("connector", con)):
        m = p.wait_line(r"^(verified count=(\d+) bytes=(\d+) .*|verify_failed.*)$", timeout=120)
        c.check(f"bulk through microsocks: the {side} got all {COUNT} messages, in order, intact",
                m.group(2) == str(COUNT), m.group(0))
    c.check("bulk connector exits cleanly, nothing unsent",
            con.wait_exit(60) == 0 and con.find(r"^closed .* unsent=0$"))
    lb.stop()

    # 6. failures, each with its reason
    dead = free_port()  # a port nobody listens on
    err, why, reason, dt = connect_fails(key_b, proxy, dead)
    c.check(f"unreachable target: the proxy's reply, {err} reason={reason} ({why}, {dt:.2f}s)",
            err == "EPROXY" and reason == "proxy_failed" and why == "socks5: connection refused (0x05)")
    nobody = free_port()
    err, why, reason, dt = connect_fails(key_b, f"127.0.0.1:{nobody}", lst.port)
    c.check(f"nothing on the SOCKS port: {err} reason={reason} ({why}, {dt:.2f}s)",
            err == "ECONNREFUSED" and reason == "tor_unavailable" and dt < 3 * sclib.SLOW)

    silent = ScriptedProxy("silent")
    err, why, reason, dt = connect_fails(key_b, f"127.0.0.1:{silent.port}", lst.port, timeout_ms=1000)
    c.check(f"a proxy that never answers: cut at the deadline ({err}, {why}, {dt:.2f}s)",
            err == "ETIMEDOUT" and why == "socks5: timed out" and 0.9 <= dt < 1.0 + 3 * sclib.SLOW)
    silent.close()
    http = ScriptedProxy("http")
    err, why, reason, _ = connect_fails(key_b, f"127.0.0.1:{http.port}", lst.port)
    c.check(f"not a SOCKS5 server: {err} reason={reason} ({why})",
            err == "EPROXY" and reason == "proxy_failed"
            and why == "socks5: not a SOCKS5 server: version byte 0x48 in the method choice")
    http.close()

    # 7. no local resolution of the target: dialled directly the name fails
    # in our resolver; through the proxy it goes out by name and the failure
    # is the proxy's reply
    r = run([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "relay.invalid",
             "--port", str(lst.port), "--timeout", "3000"])
    c.check("direct dial of relay.invalid: our resolver fails (ERESOLVE)",
            r.returncode == 1 and "error=ERESOLVE" in r.stdout, r.stdout)
    err, why, reason, _ = connect_fails(key_b, proxy, lst.port, host="relay.invalid")
    c.check(f"through microsocks: the proxy's reply, not our resolver ({err}, {why})",
            err == "EPROXY" and reason == "proxy_failed" and why.startswith("socks5: ")
            and why.endswith(")") and "resolve" not in why)
    rec = ScriptedProxy("record")
    err, why, reason, _ = connect_fails(key_b, f"127.0.0.1:{rec.port}", 4000, host="relay.invalid")
    rec.close()
    want = b"\x05\x01\x00" + b"\x05\x01\x00\x03\x0drelay.invalid\x0f\xa0"
    c.check(f"the CONNECT carries the name (ATYP 3 'relay.invalid'), byte-exact; then {why}",
            rec.got == want and err == "EPROXY" and why == "socks5: host unreachable (0x04)",
            rec.got)
    rec = ScriptedProxy("record")
    connect_fails(key_b, f"127.0.0.1:{rec.port}", 4000, host="192.0.2.7")
    rec.close()
    c.check("an address literal also goes as a name (ATYP 3), left to the proxy",
            rec.got == b"\x05\x01\x00" + b"\x05\x01\x00\x03\x09192.0.2.7\x0f\xa0", rec.got)

    # 8. the proxy by name and over IPv6
    ok, line, con = link_through(lst, key_b, f"localhost:{plain.port}", "named", "tcp+socks5",
                                 name="by-name")
    c.check("--socks5 localhost:PORT (the proxy's name resolved here, the target's not)", ok, line)
    con.send("quit")
    con.wait_exit()
    has_v6 = True
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        has_v6 = False
    if has_v6:
        v6 = microsocks(host="::1")
        ok, line, con = link_through(lst, key_b, f"[::1]:{v6.port}", "v6proxy", "tcp+socks5",
                                     name="v6")
        c.check("--socks5 [::1]:PORT", ok, line)
        con.send("quit")
        con.wait_exit()
    else:
        print("IPv6 loopback not available here: skipped")

    # 9. usage errors
    r = run([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "x", "--port", "1",
             "--socks5", "127.0.0.1"])
    c.check("--socks5 without a port: usage error (2)", r.returncode == 2 and "HOST:PORT" in r.stderr,
            r.stderr)
    r = run([binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "x", "--port", "1",
             "--socks5", proxy, "--socks5-user", "u"])
    c.check("--socks5-user without --socks5-password: usage error", r.returncode == 2, r.stderr)
    r = run([binary("secirc"), "link-test", "listen", "--key", key_a, "--socks5", proxy])
    c.check("--socks5 on listen: usage error", r.returncode == 2, r.stderr)
finally:
    for p in procs:
        p.stop()
    for p in servers:
        if p.p.poll() is None:
            p.p.terminate()
        p.stop()
    tmp.cleanup()
c.done()
