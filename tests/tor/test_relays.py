#!/usr/bin/env python3
"""tests/tor/test_relays.py — two secircd linked through a real, private Tor
network on 127.0.0.1 (privnet.sh: three directory authorities, relays and a
client tor, nothing outside this machine).

Relay B publishes its own onion service through the client tor's control
port (cookie authentication); relay A links to B's .onion through the
client's SOCKS port with a `type: tor` relay entry. Checked: `secirc peers`
on A shows the path type `tor`, authenticated; B sees A inbound; messages
flow both ways, each exactly once; the log of neither relay names the other's
address. Prints the time from A's start to the link and the link's RTT next
to a plain TCP link between the same two relays (BENCH_JSON=FILE also writes
them as JSON for scripts/bench).

Bounded: the network start by PRIVNET_TIMEOUT (180 s), the link by
TOR_LINK_SECONDS (180 s). Every tor started is stopped by PID (privnet.sh
stop), also on failure. Exit 0 pass, 1 fail."""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import torctl  # noqa: E402
from relays import Relay, messages, wait_linked  # noqa: E402
from sclib import Checker, TempDir, wait_for  # noqa: E402

LINK_SECONDS = float(os.environ.get("TOR_LINK_SECONDS", "180"))
c = Checker()
tmp = TempDir()
net = tmp.join("privnet")
procs = []
ctl = None


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                env[k] = v
    return env


def wait_uploaded(ctl, sid, seconds):
    """Until one HS_DESC UPLOADED for `sid` and every upload started has
    ended (a client that asks an HSDir too early remembers the miss)."""
    deadline = time.monotonic() + seconds
    uploaded, pending, settle = False, {}, deadline
    while time.monotonic() < min(deadline, settle):
        ev = ctl.read_event(max(0.1, min(deadline, settle) - time.monotonic()))
        words = (ev or "").split(" ")
        if len(words) < 5 or words[0] != "HS_DESC" or words[2] != sid:
            continue
        if words[1] == "UPLOAD":
            pending[words[4]] = pending.get(words[4], 0) + 1
        elif words[1] in ("UPLOADED", "FAILED"):
            pending[words[4]] = pending.get(words[4], 0) - 1
            if words[1] == "UPLOADED" and not uploaded:
                uploaded, settle = True, time.monotonic() + 15
        if uploaded and all(n <= 0 for n in pending.values()):
            break
    return uploaded


def path_of(r, peer, type_):
    return next((p for p in r.peers() if p["relay_id"] == peer.id and p["type"] == type_), None)


try:
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(HERE, "privnet.sh"), "start", net],
                       timeout=float(os.environ.get("PRIVNET_TIMEOUT", "180")) + 30)
    if r.returncode != 0:
        raise AssertionError(f"privnet.sh start failed ({r.returncode})")
    env = read_env(os.path.join(net, "env"))
    socks, control = int(env["SOCKS_PORT"]), int(env["CONTROL_PORT"])
    print(f"private Tor network up in {time.monotonic() - t0:.0f}s "
          f"(client bootstrapped after {env.get('BOOTSTRAP_SECONDS', '?')}s)")
    ctl = torctl.Controller(control)
    ctl.authenticate(cookie_path=env["CONTROL_COOKIE"])
    ctl.command("SETEVENTS HS_DESC")

    tor_yaml = f"tor:\n  socks_port: {socks}\n  dial_timeout: 60\n"
    b = Relay(tmp, "b", extra_manager={"enable_tor": True},
              extra_yaml=tor_yaml + f"  control_port: {control}\n")
    procs.append(b)
    b.start()
    addr = wait_for(lambda: b.status()["tor"].get("onion_address"), 60, "b's onion service published")
    c.check(f"b published its onion service through the control port: {addr}", addr.endswith(".onion"))
    c.check("b's descriptor reached the network (HS_DESC UPLOADED)",
            wait_uploaded(ctl, addr[:-len(".onion")], 120))

    # A links to b's .onion over Tor, and to b's TCP port as the reference.
    a = Relay(tmp, "a", extra_manager={"enable_tor": True, "max_retry_attempts": 100,
                                       "min_connections": 1},
              extra_yaml=tor_yaml)
    procs.append(a)
    a.links.append((b, 8, {"type": "tor", "host": addr, "port": b.port}))
    started = time.monotonic()
    a.start()

    def linked():
        p = path_of(a, b, "tor")
        if p and p["state"] == "authenticated":
            return p
        if p and p["last_reason"] == "onion_unreachable":
            ctl.command("SIGNAL NEWNYM")  # forget a failed descriptor fetch
        return None
    p = wait_for(linked, LINK_SECONDS, "a linked to b over Tor", interval=0.5)
    tor_link_s = time.monotonic() - started
    c.check(f"a linked to b's .onion in {tor_link_s:.1f}s: `secirc peers` shows type tor, authenticated",
            p["host"] == addr and p["direction"] == "outbound")
    c.check("b sees a inbound through its onion service (type tor)",
            any(q["relay_id"] == a.id and q["direction"] == "inbound" and q["type"] == "tor"
                for q in b.peers()), json.dumps(b.peers()))

    wa, wb = a.watch(), b.watch()
    procs += [wa, wb]
    for src, dst, w, tag in ((a, b, wb, "a-to-b"), (b, a, wa, "b-to-a")):
        r = src.ctl("send", "--to", dst.id, json.dumps({"type": "relay_message", "content": tag}))
        got = wait_for(lambda: [m for m in messages(w) if tag in json.dumps(m)], 60, f"{tag} over Tor")
        c.check(f"{tag} delivered over Tor, once", r.returncode == 0 and len(got) == 1)
    # Heartbeats (1 s) give RTT samples; take the smoothed value after a few.
    wait_for(lambda: path_of(a, b, "tor")["latency_ms"] > 0, 30, "an RTT sample over Tor")
    tor_rtt = path_of(a, b, "tor")["latency_ms"]
    c.check("no address of b in a's log and none of a in b's (privacy defaults)",
            not any(addr in l for l in a.log()) and
            not any(f"127.0.0.1:{a.port}" in l for l in b.log()))

    # The same two relays over plain TCP, for the comparison.
    a.stop()
    a.links = [(b, 8)]
    started = time.monotonic()
    a.start()
    wait_linked([a, b], timeout=30)
    tcp_link_s = time.monotonic() - started
    wait_for(lambda: (path_of(a, b, "tcp") or {}).get("latency_ms", 0) > 0, 30, "an RTT sample over TCP")
    tcp_rtt = path_of(a, b, "tcp")["latency_ms"]
    print(f"link established: tor {tor_link_s:.2f}s, tcp {tcp_link_s:.2f}s (from secircd start); "
          f"heartbeat RTT: tor {tor_rtt:.1f} ms, tcp {tcp_rtt:.2f} ms")
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump({"tor_link_s": tor_link_s, "tcp_link_s": tcp_link_s,
                       "tor_rtt_ms": tor_rtt, "tcp_rtt_ms": tcp_rtt}, f)
    for r in (a, b):
        c.check(f"{r.name}: SIGTERM exits 0", r.stop() == 0)
finally:
    for p in procs:
        p.stop()
    if ctl:
        ctl.close()
    stop = subprocess.run([os.path.join(HERE, "privnet.sh"), "stop", net], timeout=60)
    if stop.returncode != 0:
        c.check("every tor process stopped", False)
    tmp.cleanup()
c.done()
