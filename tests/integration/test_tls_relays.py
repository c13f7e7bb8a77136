"""secircd over TLS, with real processes: a relay whose listeners have
`ssl_enabled` makes its own self-signed certificate at first start (key
mode 0600) and logs its pin; a relay that dials it with `ssl_enabled` and
that `tls_pin` links and carries messages both ways, also over wss (TLS
under WebSocket, a `wss://` url); a wrong pin fails the path with
`tls_cert` and a plain TCP dialer on the TLS port gets nowhere, while the
links already up stay; after the certificate is replaced on disk, SIGHUP
makes new connections use it (a dialer pinned to the new key links) while
the link already up stays up."""
import json
import os
import re
import signal
import stat
import subprocess

from relays import Relay, messages, wait_linked
from sclib import Checker, TempDir, wait_for

c = Checker()
tmp = TempDir()
procs = []


def path_to(r, peer, type_="tcp"):
    return next((p for p in r.peers() if p["relay_id"] == peer.id and p["type"] == type_), None)


def pin_of(cert):
    der = subprocess.run(f"openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform der "
                         "| openssl dgst -sha256 -binary | base64", shell=True, capture_output=True,
                         text=True, timeout=30)
    return "sha256//" + der.stdout.strip()


try:
    a = Relay(tmp, "a", ws=True, tls=True)
    procs.append(a)
    a.start()
    m = wait_for(lambda: next((re.search(r"tls\.certificate_created cert=(\S+) key=(\S+) .*tls_pin=(\S+)", l)
                               for l in a.log() if "tls.certificate_created" in l), None), 15,
                 "a's certificate made")
    cert, key, pin = m.group(1), m.group(2), m.group(3)
    c.check(f"a made a self-signed certificate at first start, key mode "
            f"{oct(stat.S_IMODE(os.stat(key).st_mode))}, pin logged = the certificate's",
            os.path.exists(cert) and stat.S_IMODE(os.stat(key).st_mode) == 0o600 and pin == pin_of(cert),
            f"{pin} vs {pin_of(cert)}")

    b = Relay(tmp, "b", extra_manager={"enable_websocket": True})
    procs.append(b)
    b.links.append((a, 8, {"ssl_enabled": True, "tls_pin": pin}))
    b.start()
    wait_linked([a, b])
    c.check("b links to a over TLS with a's pin; both sides' `secirc peers` say tls",
            path_to(b, a)["state"] == "authenticated" and path_to(b, a)["tls"] and path_to(a, b)["tls"])
    r = b.ctl("peers")
    c.check("the peers table shows the type tcp+tls", "tcp+tls" in r.stdout, r.stdout)
    wa, wb = a.watch(), b.watch()
    procs += [wa, wb]
    for src, dst, w, tag in ((a, b, wb, "a-to-b"), (b, a, wa, "b-to-a")):
        r = src.ctl("send", "--to", dst.id, json.dumps({"type": "relay_message", "content": tag}))
        got = wait_for(lambda: [x for x in messages(w) if tag in json.dumps(x)], 15, f"{tag} delivered")
        c.check(f"{tag} delivered over TLS", r.returncode == 0 and len(got) == 1)

    # --- wss: TLS under WebSocket, from a url -----------------------------------
    e = Relay(tmp, "e", extra_manager={"enable_websocket": True})
    procs.append(e)
    e.links.append((a, 8, {"url": f"wss://127.0.0.1:{a.ws_port}/relay", "tls_pin": pin}))
    e.start()
    wait_linked([a, e])
    c.check("e links to a over wss (url wss://…/relay, pinned)",
            path_to(e, a, "websocket")["state"] == "authenticated")

    # --- a wrong pin, a plain dialer: refused; the links up stay ---------------
    wrong = "sha256//" + "A" * 43 + "="
    f = Relay(tmp, "f")
    procs.append(f)
    f.links.append((a, 8, {"ssl_enabled": True, "tls_pin": wrong}))
    g = Relay(tmp, "g")
    procs.append(g)
    g.links.append((a, 8))  # plain TCP to a TLS port
    f.start()
    g.start()
    wait_for(lambda: (path_to(f, a) or {}).get("last_reason") == "tls_cert", 30, "f's pin refused")
    c.check("a wrong pin fails the path with tls_cert", path_to(f, a)["last_reason"] == "tls_cert")
    wait_for(lambda: (path_to(g, a) or {}).get("failures", 0) >= 1, 30, "g's plain dial failed")
    c.check(f"a plain TCP dialer on the TLS port does not link ({path_to(g, a)['last_reason']})",
            path_to(g, a)["state"] != "authenticated")
    c.check("a kept its links to b and e meanwhile", {b.id, e.id} <= a.linked_to())

    # --- a renewed certificate: SIGHUP, new connections use it -----------------
    os.rename(cert, cert + ".old")
    os.rename(key, key + ".old")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=renewed"],
                   capture_output=True, timeout=60, check=True)
    os.chmod(key, 0o600)
    new_pin = pin_of(cert)
    a.signal(signal.SIGHUP)
    wait_for(lambda: any("config.reloaded" in l or "secircd.reloaded" in l for l in a.log()), 15,
             "a reloaded")
    h = Relay(tmp, "h")
    procs.append(h)
    h.links.append((a, 8, {"ssl_enabled": True, "tls_pin": new_pin}))
    h.start()
    wait_linked([a, h])
    c.check("after SIGHUP a new dialer pinned to the renewed key links", path_to(h, a)["state"] == "authenticated")
    c.check("and b's link from before the renewal is still up", b.id in a.linked_to())
    for r in (a, b, e, f, g, h):
        c.check(f"{r.name}: SIGTERM exits 0", r.stop() == 0)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
