"""relays — real secircd processes for integration tests: each relay gets an
identity, a configuration on free ports, its own data directory, and is
driven through the real `secirc` CLI over its control socket. Every wait is
bounded (sclib.wait_for)."""
import json
import os
import signal
import socket

import sclib
from sclib import Proc, binary, run, wait_for


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Relay:
    """One secircd. `links` are (relay, priority) pairs it dials, or
    (relay, priority, {key: value}) with more keys for the relays entry
    (e.g. {"type": "tor"})."""

    def __init__(self, tmp, name, extra_manager=None, http=False, extra_yaml="", ws=False,
                 tls=False):
        self.tmp = tmp
        self.name = name
        self.dir = tmp.join(name)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "identity.key")
        r = run([binary("secirc"), "keygen", "--out", self.key])
        if r.returncode != 0:
            raise AssertionError(f"keygen: {r.stderr}")
        self.id = r.stdout.strip()
        self.port, self.http_port, self.ws_port = free_ports(3)
        self.ws = ws  # also a WebSocket listener on ws_port
        self.tls = tls  # TLS on its listeners (a self-signed certificate made at start)
        self.ws_tls = tls  # ... on the WebSocket one too (wss)
        self.http = http
        self.extra_manager = extra_manager or {}
        self.extra_yaml = extra_yaml
        self.links = []
        self.proc = None
        self.config = os.path.join(self.dir, "relay.yaml")
        self.socket = os.path.join(self.dir, "secircd.sock")

    def write_config(self):
        m = {"tcp_port": self.port, "heartbeat_interval": 1, "retry_delay": 1,
             "reconnect_interval": 1}
        if self.ws:
            m["enable_websocket"] = True
        m.update(self.extra_manager)
        lines = ["connection_manager:"] + [f"  {k}: {json.dumps(v)}" for k, v in m.items()]
        lines += ["listen:", "  - address: 127.0.0.1"]
        if self.tls:
            lines.append("    ssl_enabled: true")
        if self.ws:
            lines += ["  - address: 127.0.0.1", "    type: websocket", f"    port: {self.ws_port}"]
            if self.ws_tls:
                lines.append("    ssl_enabled: true")
        if self.links:
            lines.append("relays:")
            for peer, prio, *more in self.links:
                entry = {"id": peer.id, "host": "127.0.0.1", "port": peer.port, "priority": prio}
                entry.update(more[0] if more else {})
                if "url" in entry:  # the url names host and port
                    del entry["host"], entry["port"]
                lines += [("  - " if i == 0 else "    ") + f"{k}: {json.dumps(v)}"
                          for i, (k, v) in enumerate(entry.items())]
        lines += ["http:", f"  port: {self.http_port if self.http else 0}",
                  "logging:", "  level: info"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_yaml)

    def start(self, wrapper=()):
        self.write_config()
        self.proc = Proc([*wrapper, binary("secircd"), "--config", self.config],
                         name=f"secircd-{self.name}", stdin=False)
        wait_for(lambda: os.path.exists(self.socket) or self.proc.p.poll() is not None, 30,
                 f"{self.name}'s control socket")
        if self.proc.p.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.proc.err_lines[-5:]}")
        return self

    def ctl(self, *args, timeout=30):
        return run([binary("secirc"), *args, "--socket", self.socket], timeout=timeout)

    def ctl_json(self, *args):
        r = self.ctl(*args, "--json")
        if r.returncode != 0:
            raise AssertionError(f"secirc {' '.join(args)} on {self.name}: {r.returncode} {r.stderr}")
        return json.loads(r.stdout)

    def status(self):
        return self.ctl_json("status")

    def peers(self):
        return self.ctl_json("peers")

    def linked_to(self):
        """Relay IDs with an authenticated path."""
        return {p["relay_id"] for p in self.peers() if p["state"] == "authenticated"}

    def watch(self):
        w = Proc([binary("secirc"), "watch", "--json", "--socket", self.socket],
                 name=f"watch-{self.name}", stdin=False)
        wait_for(lambda: w.err_lines or w.p.poll() is not None, 10, f"watch on {self.name}")
        return w

    def log(self):
        return list(self.proc.err_lines) if self.proc else []

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=15):
        if self.proc and self.proc.p.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait_exit(timeout)
            finally:
                self.proc.stop()
        return self.proc.p.returncode if self.proc else None


def wait_linked(relays, timeout=30):
    """Until every relay is linked to all it dials and all that dial it."""
    want = {r.name: set() for r in relays}
    for r in relays:
        for peer, *_ in r.links:
            want[r.name].add(peer.id)
            want[peer.name].add(r.id)
    by_name = {r.name: r for r in relays}
    wait_for(lambda: all(want[n] <= by_name[n].linked_to() for n in want), timeout,
             "every relay linked to its neighbours", interval=0.1)


def messages(watcher):
    """The message events a `secirc watch --json` has printed."""
    out = []
    for line in watcher.snapshot():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "message":
            out.append(e)
    return out
