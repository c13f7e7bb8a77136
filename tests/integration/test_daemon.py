"""secircd end to end, with real processes and the real CLI: status and
peers agree with what was set up; a direct message arrives at exactly the
named relay; a mesh broadcast on a 5-relay line reaches every relay exactly
once; SIGHUP adding a relay makes it connect while existing links stay up;
a bad SIGHUP configuration is refused while the relay keeps running; a
half-open link (a frozen peer) is replaced when the peer comes back;
SIGTERM exits 0 and the peers log `shutdown`; privacy: nothing but keys and
pins on disk, no message content and no peer address in any log."""
import json
import os
import signal
import time

import sclib
from relays import Relay, messages, wait_linked
from sclib import Checker, TempDir, wait_for

c = Checker()
tmp = TempDir()
relays = []
watchers = []


def content(i):
    return {"type": "relay_message", "content": f"secret-payload-{i}", "timestamp": 1767225600 + i}


try:
    # --- a line of five relays: r0 - r1 - r2 - r3 - r4 -----------------------
    line = [Relay(tmp, f"r{i}") for i in range(5)]
    # r4's heartbeats are slow (30 s), so that below only the liveness probe
    # can explain how fast it drops a half-open link.
    line[4].extra_manager = {"heartbeat_interval": 30}
    relays += line
    for i in range(4):
        line[i].links.append((line[i + 1], 8))
    for r in line:
        r.start()
    wait_linked(line)
    st = line[1].status()
    c.check(f"status agrees: r1 has 2 peers linked, 2 active paths, 0 failed ({st['connected_peers']}, "
            f"{st['active_connections']}, {st['failed_connections']})",
            st["connected_peers"] == 2 and st["active_connections"] == 2 and st["failed_connections"] == 0)
    c.check("status carries the seed's keys", all(k in st for k in (
        "total_connections", "active_connections", "failed_connections")) and all(
        k in st["stats"] for k in ("total_messages_sent", "total_messages_received",
                                   "total_bytes_sent", "total_bytes_received")))
    peers = line[1].peers()
    out = [p for p in peers if p["direction"] == "outbound"]
    c.check("peers agrees: r1 dials r2 (outbound, authenticated, its port) and r0 dialed r1 (inbound)",
            len(out) == 1 and out[0]["relay_id"] == line[2].id and out[0]["port"] == line[2].port and
            out[0]["state"] == "authenticated" and
            any(p["direction"] == "inbound" and p["relay_id"] == line[0].id for p in peers), json.dumps(peers))

    for r in line:
        watchers.append(r.watch())
    w = dict(zip([r.name for r in line], watchers))

    # --- a direct message arrives at exactly the named relay ------------------
    r = line[2].ctl("send", "--to", line[3].id, json.dumps(content(1)), "--json")
    c.check("send: exit 0 and a message ID", r.returncode == 0 and len(json.loads(r.stdout)["id"]) == 32,
            r.stderr)
    msg_id = json.loads(r.stdout)["id"]
    wait_for(lambda: any(m["id"] == msg_id for m in messages(w["r3"])), 10, "r3 got the message")
    got = {n: [m for m in messages(w[n]) if m["id"] == msg_id] for n in w}
    c.check("the direct message reached r3 only, once, with its body intact",
            len(got["r3"]) == 1 and got["r3"][0]["body"] == content(1) and
            got["r3"][0]["from"] == line[2].id and
            all(not got[n] for n in w if n != "r3"), str({n: len(v) for n, v in got.items()}))

    # --- a mesh broadcast on the line reaches every relay exactly once --------
    r = line[0].ctl("broadcast", json.dumps(content(2)), "--json")
    bid = json.loads(r.stdout)["id"]
    wait_for(lambda: all(any(m["id"] == bid for m in messages(w[n])) for n in ("r1", "r2", "r3", "r4")),
             10, "the broadcast at every relay")
    time.sleep(0.5 * sclib.SLOW)  # observe: no second copy arrives late
    counts = {n: sum(1 for m in messages(w[n]) if m["id"] == bid) for n in w}
    c.check(f"the broadcast reached r1..r4 exactly once each, and not back to r0 ({counts})",
            counts == {"r0": 0, "r1": 1, "r2": 1, "r3": 1, "r4": 1})
    hops = {n: next(m["hop_limit"] for m in messages(w[n]) if m["id"] == bid) for n in ("r1", "r4")}
    c.check(f"its hop limit went down one per link ({hops})", hops["r1"] == 8 and hops["r4"] == 5)

    # --- SIGHUP adds a relay: it connects, existing links stay up -------------
    extra = Relay(tmp, "r5")
    relays.append(extra)
    extra.start()
    before = {p["path_id"]: p for p in line[4].peers() if p["state"] == "authenticated"}
    line[4].links.append((extra, 6))
    line[4].write_config()
    line[4].signal(signal.SIGHUP)
    wait_for(lambda: extra.id in line[4].linked_to(), 15, "r4 linked to the new relay r5")
    after = {p["path_id"]: p for p in line[4].peers()}
    kept = all(pid in after and after[pid]["state"] == "authenticated" and
               after[pid]["uptime_s"] >= before[pid]["uptime_s"] for pid in before)
    c.check(f"SIGHUP: r5 linked while r4's {len(before)} existing link(s) stayed up (same path IDs, "
            "uptime kept)", kept and before, json.dumps(after))

    # --- a bad configuration on SIGHUP is refused; the relay runs on ----------
    with open(line[4].config, "a") as f:
        f.write("no_such_section: 1\n")
    line[4].signal(signal.SIGHUP)
    wait_for(lambda: any("config.reload_refused" in l for l in line[4].log()), 10, "the refusal logged")
    refusal = next(l for l in line[4].log() if "config.reload_refused" in l)
    c.check("a bad SIGHUP config is refused with FILE:LINE:COL, the old one kept",
            f"{line[4].config}:" in refusal and "kept=previous" in refusal, refusal)
    c.check("...and the relay keeps running with its links",
            line[4].proc.p.poll() is None and line[3].id in line[4].linked_to())
    r = line[4].ctl("reload")
    c.check("the same refusal through `secirc reload`: exit 1 with the position",
            r.returncode == 1 and f"{line[4].config}:" in (r.stdout + r.stderr), r.stdout + r.stderr)

    # --- a frozen peer (half-open link) is replaced when it comes back -------
    # r5 freezes (no FIN: r4's link to it is half-open), then a new r5 with
    # the same identity starts on another port and dials r4; r4 must take it
    # at once, not refuse it as a duplicate until its heartbeats give up.
    extra.signal(signal.SIGSTOP)
    twin = Relay(tmp, "r5b")
    relays.append(twin)
    os.replace(extra.key, twin.key)  # the same identity
    twin.id = extra.id
    twin.extra_manager = {"heartbeat_interval": 30}
    twin.links.append((line[4], 6))
    t0 = time.monotonic()
    twin.start()

    def replaced():
        paths = [p for p in line[4].peers() if p["relay_id"] == extra.id]
        return (any(p["direction"] == "inbound" and p["state"] == "authenticated" for p in paths) and
                not any(p["direction"] == "outbound" and p["state"] == "authenticated" for p in paths))
    wait_for(replaced, 15, "r4 took the returning r5's link and dropped the half-open one")
    dt = time.monotonic() - t0
    c.check(f"a half-open old link does not block the returning relay: replaced in {dt:.1f}s "
            "(heartbeats alone would take 90 s)", dt < 10 * sclib.SLOW)
    extra.signal(signal.SIGCONT)
    extra.stop()
    twin.stop()

    # --- SIGTERM: exit 0, and the peers are told `shutdown` -------------------
    rc = line[2].stop()
    c.check("SIGTERM: secircd exits 0", rc == 0, "\n".join(line[2].log()[-5:]))
    wait_for(lambda: any("reason=shutdown by=peer" in l for l in line[1].log()) and
             any("reason=shutdown by=peer" in l for l in line[3].log()), 10, "neighbours told shutdown")
    c.check("its neighbours logged reason=shutdown by=peer", True)

    # --- privacy: only keys and pins on disk; no content, no address in logs ---
    for r in relays:
        r.stop()
    for wt in watchers:
        wt.stop()
    files = []
    for r in relays:
        for name in os.listdir(r.dir):
            files.append(name)
    leftover = sorted(set(files) - {"identity.key", "relay.yaml", "pins"})
    c.check(f"data directories hold only identity.key, pins (and the test's relay.yaml): {leftover}",
            not leftover)
    logs = "\n".join("\n".join(r.log()) for r in relays)
    c.check("no message content in any log", "secret-payload" not in logs)
    c.check("no peer address in any log (privacy.log_peer_addresses is false)",
            "127.0.0.1:" not in logs.replace(f"address=127.0.0.1", ""), [l for l in logs.splitlines()
                                                                      if "127.0.0.1:" in l][:3])
finally:
    for wt in watchers:
        wt.stop()
    for r in relays:
        if r.proc:
            try:
                os.kill(r.proc.pid, signal.SIGCONT)
            except OSError:
                pass
            r.stop()
    tmp.cleanup()
c.done()
