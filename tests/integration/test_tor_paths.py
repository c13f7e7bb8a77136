"""secircd's `tor` paths through a real SOCKS5 server (Debian's microsocks
stands in for tor's SOCKS port; tests/tor/ does the same through a real Tor
network): two relays link over a `tor` path and carry messages both ways,
`secirc peers` shows the path type `tor`; with stream isolation the proxy
sees the per-peer username (microsocks only lets that one in) and without
it no authentication; a proxy refusing our credentials fails with
`proxy_auth_failed`; a SOCKS port with nothing behind it is
`tor_unavailable`: every Tor path waits out one shared backoff and then
one of them tries alone (a bounded number of dials, not a storm), `secirc explain` says it waits for the
local tor, and when the proxy appears the paths link without a restart."""
import hashlib
import json
import shutil
import socket

from relays import Relay, free_ports, messages, wait_linked
from sclib import Checker, Proc, TempDir, wait_for

c = Checker()
tmp = TempDir()
procs = []
MICROSOCKS = shutil.which("microsocks")
if not MICROSOCKS:
    raise SystemExit("microsocks is not installed (scripts/deps test installs it)")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def microsocks(port, *args):
    p = Proc([MICROSOCKS, "-i", "127.0.0.1", "-p", str(port), *args], name="microsocks", stdin=False)
    procs.append(p)
    wait_for(lambda: port_open(port) or p.p.poll() is not None, 10, "microsocks listening")
    if p.p.poll() is not None:
        raise AssertionError(f"microsocks exited: {p.err_lines}")
    return p


def isolation_user(relay_id):
    return "secirc-" + hashlib.blake2b(relay_id.encode(), digest_size=32).hexdigest()[:16]


def tor_relay(name, socks_port, isolation=True):
    r = Relay(tmp, name, extra_manager={"enable_tor": True})
    r.extra_yaml = f"tor:\n  socks_port: {socks_port}\n  stream_isolation: {json.dumps(isolation)}\n"
    procs.append(r)
    return r


def tor_path(r, peer):
    return next((p for p in r.peers() if p["relay_id"] == peer.id and p["type"] == "tor"), None)


try:
    # --- linked through the proxy with isolation credentials ---------------
    socks1, socks2, dead = free_ports(3)
    b = Relay(tmp, "b")
    procs.append(b)
    a = tor_relay("a", socks1)
    a.links.append((b, 8, {"type": "tor"}))
    # microsocks admits exactly the username secircd derives for b.
    microsocks(socks1, "-u", isolation_user(b.id), "-P", "x")
    b.start()
    a.start()
    wait_linked([a, b])
    p = tor_path(a, b)
    c.check("`secirc peers` on a shows b over a tor path, authenticated, outbound",
            p and p["state"] == "authenticated" and p["direction"] == "outbound", json.dumps(a.peers()))
    wa, wb = a.watch(), b.watch()
    procs += [wa, wb]
    for src, dst, w, tag in ((a, b, wb, "a-to-b"), (b, a, wa, "b-to-a")):
        r = src.ctl("send", "--to", dst.id, json.dumps({"type": "relay_message", "content": tag}))
        c.check(f"send {tag} accepted", r.returncode == 0, r.stderr)
        got = wait_for(lambda: [m for m in messages(w) if tag in json.dumps(m)], 15, f"{tag} delivered")
        c.check(f"{tag} delivered over the tor path", len(got) == 1)
    a.stop()

    # --- no isolation: no authentication offered --------------------------
    microsocks(socks2)
    n = tor_relay("n", socks2, isolation=False)
    n.links.append((b, 8, {"type": "tor"}))
    n.start()
    wait_linked([n, b])
    c.check("stream_isolation false links through a proxy without authentication",
            tor_path(n, b)["state"] == "authenticated")
    n.stop()

    # --- credentials refused: proxy_auth_failed ----------------------------
    w = tor_relay("w", socks1)  # socks1 admits only b's derived username; w asks for a
    w.links.append((a, 8, {"type": "tor"}))
    w.start()
    wait_for(lambda: (tor_path(w, a) or {}).get("last_reason") == "proxy_auth_failed", 30,
             "proxy_auth_failed")
    c.check("a proxy refusing our credentials: proxy_auth_failed in peers and in the log",
            any("path.dial_failed" in l and "reason=proxy_auth_failed" in l for l in w.log()),
            "\n".join(w.log()[-5:]))
    w.stop()

    # --- tor unavailable: one shared backoff, then linked when it appears ---
    d = tor_relay("d", dead)
    d.extra_manager.update({"retry_delay": 1, "min_connections": 3})
    others = [Relay(tmp, f"t{i}") for i in range(3)]
    procs += others
    for o in others:
        o.start()
        d.links.append((o, 8, {"type": "tor"}))
    d.start()
    wait_for(lambda: sum("manager.tor_unavailable" in l for l in d.log()) >= 3, 30,
             "three tor_unavailable backoffs")
    dials = sum("path.dial_failed" in l for l in d.log())
    backoffs = sum("manager.tor_unavailable" in l for l in d.log())
    # The first look dials all three; after that one path tries alone per backoff.
    c.check(f"three Tor paths share one backoff: {dials} failed dials over {backoffs} backoffs "
            f"(at most 3 + backoffs)", dials <= 3 + backoffs, "\n".join(d.log()[-10:]))
    e = json.loads(d.ctl("explain", others[0].id, "--json").stdout)
    c.check(f"explain: {e.get('text')}", "waiting for the local tor" in e.get("text", ""), json.dumps(e))
    st = {p["relay_id"]: p for p in d.peers()}
    c.check("tor_unavailable does not fail the paths (reconnecting, not failed)",
            all(st[o.id]["state"] in ("reconnecting", "connecting") for o in others), json.dumps(st))
    microsocks(dead, "-u", isolation_user(others[0].id), "-P", "x")
    linked = wait_for(lambda: others[0].id in d.linked_to(), 60, "linked once the SOCKS port appears")
    c.check("the SOCKS port appears: linked without a restart", linked)
    c.check("SIGTERM exits 0", d.stop() == 0)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
