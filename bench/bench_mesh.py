#!/usr/bin/env python3
"""bench/bench_mesh.py BUILD_DIR [BROADCASTS] — mesh broadcast latency on a
10-relay mesh of real secircd processes on 127.0.0.1: from the moment one
relay is asked to broadcast (JSON-RPC over its control socket) to the
moment each of the other nine relays delivers the message to a `watch`
subscriber. Each relay links to its next two around a ring and to the one
opposite, so most copies cross several hops. Prints one JSON line:
{"relays":10,"broadcasts":N,"deliveries":M,"p50_ms":…,"p99_ms":…,"max_ms":…,
 "missing":K,"control":{…}}, where "control" is bench_control's line for
relay 0's control socket while the mesh is up (requests per second). Every wait is bounded; every process is stopped on exit."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

RELAYS = 10


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Rpc:
    """One JSON-RPC connection to a control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.n = 0

    def call(self, method, params=None):
        self.n += 1
        req = {"jsonrpc": "2.0", "id": self.n, "method": method}
        if params is not None:
            req["params"] = params
        self.s.sendall(json.dumps(req).encode() + b"\n")
        resp = json.loads(self.f.readline())
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp["result"]


def main():
    build = sys.argv[1]
    broadcasts = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    work = tempfile.mkdtemp(prefix="secirc-mesh-")
    procs, stop = [], threading.Event()
    try:
        ports = free_ports(RELAYS)
        ids = []
        for i in range(RELAYS):
            d = os.path.join(work, f"r{i}")
            os.makedirs(d)
            out = subprocess.run([os.path.join(build, "secirc"), "keygen", "--out",
                                  os.path.join(d, "identity.key")], capture_output=True, text=True,
                                 check=True, timeout=30)
            ids.append(out.stdout.strip())
        for i in range(RELAYS):
            d = os.path.join(work, f"r{i}")
            peers = sorted({(i + 1) % RELAYS, (i + 2) % RELAYS, (i + RELAYS // 2) % RELAYS} - {i})
            lines = ["connection_manager:", f"  tcp_port: {ports[i]}", "  min_connections: 3",
                     "  retry_delay: 1", "  reconnect_interval: 1", "listen:",
                     "  - address: 127.0.0.1", "relays:"]
            for p in peers:
                lines += [f"  - id: \"{ids[p]}\"", "    host: 127.0.0.1", f"    port: {ports[p]}",
                          "    priority: 8"]
            lines += ["http:", "  port: 0", "logging:", "  level: warn"]
            with open(os.path.join(d, "relay.yaml"), "w") as f:
                f.write("\n".join(lines) + "\n")
            procs.append(subprocess.Popen([os.path.join(build, "secircd"), "--config",
                                           os.path.join(d, "relay.yaml")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sock = [os.path.join(work, f"r{i}", "secircd.sock") for i in range(RELAYS)]
        deadline = time.monotonic() + 30
        while not all(os.path.exists(s) for s in sock):
            if time.monotonic() > deadline:
                raise SystemExit("bench_mesh: relays did not start")
            time.sleep(0.05)
        rpc = [Rpc(s) for s in sock]
        deadline = time.monotonic() + 30
        while min(r.call("status")["connected_peers"] for r in rpc) < 3:
            if time.monotonic() > deadline:
                raise SystemExit("bench_mesh: the mesh did not form")
            time.sleep(0.1)
        arrived = {}  # (relay, id) -> monotonic time
        lock = threading.Lock()

        def watch(i):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock[i])
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"watch"}\n')
            s.settimeout(0.5)
            buf = b""
            while not stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    now = time.monotonic()
                    e = json.loads(line).get("params") or {}
                    if e.get("event") == "message":
                        with lock:
                            arrived.setdefault((i, e["id"]), now)
            s.close()

        threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(1, RELAYS)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the watchers subscribe
        sent = {}
        for k in range(broadcasts):
            t0 = time.monotonic()
            res = rpc[0].call("broadcast", {"message": {"type": "relay_message", "seq": k}})
            sent[res["id"]] = t0
            time.sleep(0.01)
        deadline = time.monotonic() + 10
        want = broadcasts * (RELAYS - 1)
        while time.monotonic() < deadline:
            with lock:
                if len(arrived) >= want:
                    break
            time.sleep(0.05)
        stop.set()
        lat = sorted((t - sent[mid]) * 1000 for (i, mid), t in arrived.items() if mid in sent)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None
        # The control socket of one relay of the running mesh, by bench_control.
        control, exe = None, os.path.join(build, "bench_control")
        if os.access(exe, os.X_OK):
            r = subprocess.run([exe, "--socket", sock[0], "--seconds", "3"], capture_output=True,
                               text=True, timeout=120)
            if r.returncode == 0 and r.stdout.strip():
                control = json.loads(r.stdout.strip().splitlines()[-1])
        print(json.dumps({"relays": RELAYS, "broadcasts": broadcasts, "deliveries": len(lat),
                          "p50_ms": round(pick(0.5), 3), "p99_ms": round(pick(0.99), 3),
                          "max_ms": round(lat[-1], 3), "missing": want - len(lat),
                          "control": control}))
    finally:
        stop.set()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
