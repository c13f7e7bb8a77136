"""secircd over WebSocket, with real processes: a relay with a WebSocket
listener (`type: websocket` in `listen`) and one that dials it with a
`type: websocket` relay entry link and carry messages both ways, and
`secirc peers` shows the path type `websocket`; a third relay reaches it
through a real HTTP CONNECT proxy (Debian's tinyproxy, with Basic
authentication) given as the relay's `http_proxy`; a wrong proxy password
is `proxy_auth_failed` in `secirc peers` and the log, never the password;
and a plain HTTP GET of the listener's path gets the short page saying this
is a secirc relay while the links stay up."""
import json
import urllib.request

from relays import Relay, messages, wait_linked
from sclib import Checker, TempDir, Tinyproxy, wait_for

c = Checker()
tmp = TempDir()
procs = []


def ws_path(r, peer):
    return next((p for p in r.peers() if p["relay_id"] == peer.id and p["type"] == "websocket"), None)


try:
    a = Relay(tmp, "a", ws=True)
    b = Relay(tmp, "b", extra_manager={"enable_websocket": True})
    procs += [a, b]
    b.links.append((a, 8, {"type": "websocket", "port": a.ws_port}))
    a.start()
    b.start()
    wait_linked([a, b])
    p = ws_path(b, a)
    c.check("b dialed a over WebSocket: `secirc peers` shows type websocket, authenticated",
            p and p["state"] == "authenticated" and p["port"] == a.ws_port, json.dumps(b.peers()))
    c.check("a sees b inbound on its WebSocket listener (type websocket)",
            any(q["relay_id"] == b.id and q["direction"] == "inbound" and q["type"] == "websocket"
                for q in a.peers()), json.dumps(a.peers()))
    wa, wb = a.watch(), b.watch()
    procs += [wa, wb]
    for src, dst, w, tag in ((a, b, wb, "a-to-b"), (b, a, wa, "b-to-a")):
        r = src.ctl("send", "--to", dst.id, json.dumps({"type": "relay_message", "content": tag}))
        got = wait_for(lambda: [m for m in messages(w) if tag in json.dumps(m)], 15, f"{tag} delivered")
        c.check(f"{tag} delivered over WebSocket", r.returncode == 0 and len(got) == 1)

    with urllib.request.urlopen(f"http://127.0.0.1:{a.ws_port}/relay", timeout=10) as resp:
        page = resp.read().decode(errors="replace")
    c.check(f"a plain GET of /relay gets the page ({resp.status}: {page.strip()[:60]})",
            resp.status == 200 and "secirc" in page.lower())

    # --- through an HTTP CONNECT proxy with Basic authentication ---------------
    proxy = Tinyproxy(tmp, a.ws_port, auth=("alice", "s3cret"))
    procs.append(proxy)
    d = Relay(tmp, "d", extra_manager={"enable_websocket": True})
    procs.append(d)
    d.links.append((a, 8, {"type": "websocket", "port": a.ws_port,
                           "http_proxy": f"http://alice:s3cret@127.0.0.1:{proxy.port}"}))
    d.start()
    wait_linked([a, d])
    c.check("d linked to a through tinyproxy (CONNECT with Basic auth)",
            ws_path(d, a)["state"] == "authenticated" and "CONNECT" in proxy.log_text())
    c.check("a kept its link to b meanwhile", b.id in a.linked_to())

    e = Relay(tmp, "e", extra_manager={"enable_websocket": True})
    procs.append(e)
    e.links.append((a, 8, {"type": "websocket", "port": a.ws_port,
                           "http_proxy": f"http://alice:wrong-password@127.0.0.1:{proxy.port}"}))
    e.start()
    wait_for(lambda: (ws_path(e, a) or {}).get("last_reason") in ("proxy_auth_failed", "proxy_failed"), 30,
             "the proxy's refusal")
    r = ws_path(e, a)["last_reason"]
    # tinyproxy answers a wrong password 401 (proxy_failed); no credentials, 407.
    c.check(f"a wrong proxy password fails the path ({r}), logged without the password",
            any("path.dial_failed" in l for l in e.log()) and
            not any("wrong-password" in l for l in e.log() + d.log()))
    for r in (a, b, d, e):
        c.check(f"{r.name}: SIGTERM exits 0", r.stop() == 0)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
