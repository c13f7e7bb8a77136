#!/usr/bin/env python3
"""test_http — secircd's HTTP status server as an operator and Prometheus
see it, on two real relays linked over 127.0.0.1.

/status has the seed's keys and tells what the test set up (relay ID,
listener port, limits, an authenticated link); /peers shows the link from
both ends; /metrics passes `promtool check metrics`, lists every family,
agrees with /status, and its counters move: messages and bytes received,
delivered and invalid messages from a third peer, heartbeat RTTs, hostile
connections by reason. Unknown paths are 404, other methods 405 with
Allow: GET, oversized heads are refused, idle connections time out, other
Host names are refused (DNS rebinding), the default bind is 127.0.0.1 and a
configured one (::1) is used as given. With the `secirc` control commands
built, `secirc status --json` agrees with /status and `secirc send` moves
the sender's counters too."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import sclib
from sclib import Checker, LinkTest, Proc, TempDir, binary, free_port, keygen, run, wait_for

# The seed's status object (src/relay/daemon.h).
STATUS_KEYS = {"relay_id", "uptime_s", "total_connections", "active_connections",
               "failed_connections", "connected_peers", "min_connections", "max_connections",
               "listen", "tor", "stats"}
STATS_KEYS = {"total_messages_sent", "total_messages_received", "total_bytes_sent",
              "total_bytes_received", "messages_undelivered", "messages_forwarded",
              "messages_deduplicated", "evictions", "duplicates_closed", "rekeys", "key_rotations"}
PEER_KEYS = {"path_id", "relay_id", "type", "tls", "host", "port", "state", "direction", "authenticated",
             "priority", "latency_ms", "jitter_ms", "last_seen", "uptime_s", "heartbeats_missed",
             "messages_sent", "messages_received", "bytes_sent", "bytes_received", "reconnects",
             "failures", "last_reason", "next_attempt_in_ms"}
# Every family of docs/CONFIG.md, with its type.
FAMILIES = {
    "secirc_relay_info": "gauge", "secirc_uptime_seconds": "gauge",
    "secirc_reloads_total": "counter", "secirc_reloads_failed_total": "counter",
    "secirc_paths": "gauge", "secirc_connected_peers": "gauge",
    "secirc_min_connections": "gauge", "secirc_max_connections": "gauge",
    "secirc_dials_in_flight": "gauge", "secirc_reconnects_total": "counter",
    "secirc_evictions_total": "counter", "secirc_duplicates_closed_total": "counter",
    "secirc_rekeys_total": "counter", "secirc_key_rotations_total": "counter",
    "secirc_handshakes_ok_total": "counter", "secirc_handshakes_failed_total": "counter",
    "secirc_messages_sent_total": "counter", "secirc_messages_received_total": "counter",
    "secirc_sent_bytes_total": "counter", "secirc_received_bytes_total": "counter",
    "secirc_messages_undelivered_total": "counter", "secirc_messages_forwarded_total": "counter",
    "secirc_messages_deduplicated_total": "counter", "secirc_messages_delivered_total": "counter",
    "secirc_messages_invalid_total": "counter", "secirc_heartbeat_rtt_seconds": "histogram",
    "secirc_listener_accepted_total": "counter", "secirc_listener_refused_total": "counter",
    "secirc_listener_evicted_total": "counter", "secirc_listener_authenticated_total": "counter",
    "secirc_listener_handshakes_in_progress": "gauge", "secirc_listener_links_open": "gauge",
    "secirc_listener_tarpit_connections": "gauge", "secirc_listener_closed_total": "counter",
}
HOSTILE_REASONS = ["probe_dropped", "probe_replayed", "rate_limited", "handshake_limit", "busy",
                   "timeout", "protocol_error", "handshake_failed"]


# ---- HTTP over raw sockets (every read bounded) ----------------------------------------------

def exchange(host, port, raw, timeout=10):
    """Sends raw bytes, reads until the server closes (it closes after every
    response). Returns (status, headers with lowercase names, body, raw
    response); status 0 when the server closed without answering."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout * sclib.SLOW)
        s.connect((host, port))
        s.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout * sclib.SLOW
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        else:
            raise AssertionError(f"server at {host}:{port} did not close within {timeout}s")
    if not data:
        return 0, {}, b"", data
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body, data


def request(host, port, method="GET", path="/status", extra="", host_header=None, body=b""):
    hh = host_header if host_header is not None else (
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if body:
        extra += f"Content-Length: {len(body)}\r\n"
    raw = f"{method} {path} HTTP/1.1\r\nHost: {hh}\r\n{extra}\r\n".encode() + body
    return exchange(host, port, raw)


class IdleConnection:
    """A connection that never sends a byte; a thread notes when the server
    closes it."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.opened = time.monotonic()
        self.closed_after = None
        self.sock.settimeout(60 * sclib.SLOW)
        self.t = threading.Thread(target=self._wait, daemon=True)
        self.t.start()

    def _wait(self):
        try:
            data = self.sock.recv(1)
        except OSError:
            data = b""
        if data == b"":
            self.closed_after = time.monotonic() - self.opened

    def close(self):
        self.sock.close()
        self.t.join(5)


def get_json(host, port, path):
    st, hd, body, _ = request(host, port, path=path)
    if st != 200:
        raise AssertionError(f"GET {path}: {st} {body[:200]!r}")
    return json.loads(body), hd


def parse_metrics(text):
    """{series: value} and {family: type} of an exposition."""
    series, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            types[name] = typ
        elif line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            series[key] = float(value)
    return series, types


class Relay:
    def __init__(self, tmp, name, http_bind=None, relays=(), extra=""):
        self.dir = tmp.join(name)
        os.mkdir(self.dir, 0o700)
        self.key, self.id = keygen(tmp, f"{name}/relay.key")
        self.http_host = http_bind or "127.0.0.1"
        self.http_port = free_port()
        self.socket = os.path.join(self.dir, "secircd.sock")
        rl = "".join(f"  - id: \"{r.id}\"\n    host: 127.0.0.1\n    port: {r.port}\n"
                     f"    priority: 8\n" for r in relays)
        http = f"http:\n  port: {self.http_port}\n" + (f"  bind: \"{http_bind}\"\n" if http_bind else "")
        self.config = os.path.join(self.dir, "relay.yaml")
        with open(self.config, "w") as f:
            f.write("connection_manager:\n  min_connections: 1\n  max_connections: 7\n"
                    "  heartbeat_interval: 1\n" + extra +
                    "identity:\n  key_file: relay.key\n  data_dir: .\n"
                    "listen:\n  - address: \"127.0.0.1\"\n    port: 0\n"
                    + ("relays:\n" + rl if rl else "") + http)
        self.proc = Proc([binary("secircd"), "--config", self.config], name=f"secircd-{name}",
                         stdin=False)
        self.status = wait_for(self._status, 20, f"{name}'s /status")
        self.port = self.status["listen"][0]["port"]

    def _status(self):
        if self.proc.p.poll() is not None:
            raise AssertionError(f"secircd exited ({self.proc.p.returncode}): {self.proc.err_lines[-5:]}")
        try:
            return get_json(self.http_host, self.http_port, "/status")[0]
        except OSError:
            return None

    def get(self, path):
        return get_json(self.http_host, self.http_port, path)[0]

    def metrics(self):
        st, hd, body, _ = request(self.http_host, self.http_port, path="/metrics")
        if st != 200:
            raise AssertionError(f"/metrics: {st}")
        return parse_metrics(body.decode())[0]

    def stop(self):
        if self.proc.p.poll() is None:
            self.proc.p.send_signal(signal.SIGTERM)
        return self.proc.wait_exit(20)


def listening_addresses(port):
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp{,6}."""
    out = []
    for fn, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(fn) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            addr, p = cols[1].split(":")
            if cols[3] != "0A" or int(p, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            if v6:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                out.append(socket.inet_ntop(socket.AF_INET6, words))
            else:
                out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return out


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def have_ctl():
    """The control commands of `secirc` (status/send over the control socket)."""
    r = run([binary("secirc"), "status", "--help"])
    return r.returncode == 0 and "--socket" in r.stdout


c = Checker()
tmp = TempDir()
relays, procs, idle = [], [], None
try:
    a = Relay(tmp, "a"); relays.append(a)
    # An idle connection opened now must be closed by the server's timeout.
    idle = IdleConnection(a.http_port)
    v6 = have_ipv6_loopback()
    b = Relay(tmp, "b", http_bind="::1" if v6 else None, relays=[a]); relays.append(b)
    wait_for(lambda: a.get("/status")["active_connections"] >= 1
             and b.get("/status")["active_connections"] >= 1, 30, "a and b linked")

    # ---- /status --------------------------------------------------------------------------------
    st, hd, body, _ = request("127.0.0.1", a.http_port, path="/status")
    s = json.loads(body)
    c.check("/status: 200 application/json, no-store",
            st == 200 and hd.get("content-type") == "application/json"
            and hd.get("cache-control") == "no-store", hd)
    c.check("/status: the seed's keys", set(s) == STATUS_KEYS and set(s["stats"]) == STATS_KEYS,
            sorted(s))
    c.check("/status: relay_id is a's key", s["relay_id"] == a.id, s["relay_id"])
    c.check("/status: limits as configured", s["min_connections"] == 1 and s["max_connections"] == 7)
    c.check("/status: the listener as configured, its port bound",
            s["listen"] == [{"type": "tcp", "address": "127.0.0.1", "port": a.port}] and a.port > 0,
            s["listen"])
    c.check("/status: linked (active_connections >= 1, one peer)",
            s["active_connections"] >= 1 and s["connected_peers"] == 1, s)
    sb = b.get("/status")
    c.check("/status of b: linked to one peer", sb["connected_peers"] == 1 and sb["relay_id"] == b.id)

    # ---- /peers ---------------------------------------------------------------------------------
    pa, pb = a.get("/peers"), b.get("/peers")
    c.check("/peers: the seed's keys on every path",
            pa and pb and all(set(p) == PEER_KEYS for p in pa + pb), pa + pb)
    c.check("/peers of a: b inbound, authenticated, address hidden",
            any(p["relay_id"] == b.id and p["direction"] == "inbound" and p["authenticated"]
                and p["state"] == "authenticated" and p["host"] == "-" for p in pa), pa)
    c.check("/peers of b: a outbound to its configured port",
            any(p["relay_id"] == a.id and p["direction"] == "outbound" and p["authenticated"]
                and p["host"] == "127.0.0.1" and p["port"] == a.port for p in pb), pb)

    # ---- /metrics -------------------------------------------------------------------------------
    st, hd, body, _ = request("127.0.0.1", a.http_port, path="/metrics")
    text = body.decode()
    c.check("/metrics: 200, text format 0.0.4, no-store",
            st == 200 and hd.get("content-type", "").startswith("text/plain; version=0.0.4")
            and hd.get("cache-control") == "no-store", hd)
    promtool = shutil.which("promtool")
    if c.check("promtool is installed (scripts/deps test installs Debian's prometheus)",
               promtool is not None):
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        c.check("/metrics passes `promtool check metrics`", r.returncode == 0 and not r.stdout.strip()
                and not r.stderr.strip(), r.stdout + r.stderr)
    series, types = parse_metrics(text)
    c.check("/metrics: every family with its type", types == FAMILIES,
            {k: (types.get(k), v) for k, v in FAMILIES.items() if types.get(k) != v}
            or set(types) - set(FAMILIES))
    c.check("/metrics: relay_info names a", series.get(f'secirc_relay_info{{relay_id="{a.id}"}}') == 1)
    c.check("/metrics: one authenticated tcp path, one peer",
            series['secirc_paths{state="authenticated",transport="tcp"}'] == 1
            and series["secirc_connected_peers"] == 1, text[:0])
    c.check("/metrics: limits as configured",
            series["secirc_min_connections"] == 1 and series["secirc_max_connections"] == 7)
    c.check("/metrics: a handshake counted", series["secirc_handshakes_ok_total"] >= 1)
    c.check("/metrics: every hostile-connection reason listed, even at zero",
            all(f'secirc_listener_closed_total{{reason="{r}"}}' in series for r in HOSTILE_REASONS))
    s = a.get("/status")
    c.check("/metrics agrees with /status",
            series["secirc_messages_received_total"] == s["stats"]["total_messages_received"]
            and series["secirc_received_bytes_total"] == s["stats"]["total_bytes_received"]
            and series["secirc_connected_peers"] == s["connected_peers"])

    # ---- counters move ---------------------------------------------------------------------------
    before = a.metrics()
    key_t, id_t = keygen(tmp, "t.key")
    t = LinkTest.connect(key_t, a.port, "--expect", a.id, name="third-peer"); procs.append(t)
    t.wait_line(r"^authenticated peer=")
    msg = '{"type":"relay_message","content":"hello over http test","timestamp":1}'
    for _ in range(3):
        t.send(f"send {msg}")
    t.send("send not json")
    after = wait_for(lambda: (lambda m: m if m["secirc_messages_received_total"]
                              >= before["secirc_messages_received_total"] + 4 else None)(a.metrics()),
                     15, "a's messages_received_total to grow by 4")
    c.check("messages received +4 after a peer's sends",
            after["secirc_messages_received_total"] - before["secirc_messages_received_total"] == 4)
    c.check("bytes received grow by at least the payloads",
            after["secirc_received_bytes_total"] - before["secirc_received_bytes_total"]
            >= 3 * len(msg) + len("not json"))
    c.check("3 JSON messages delivered, 1 invalid",
            after["secirc_messages_delivered_total"] - before["secirc_messages_delivered_total"] == 3
            and after["secirc_messages_invalid_total"] - before["secirc_messages_invalid_total"] == 1)
    c.check("a second peer and a second handshake",
            after["secirc_connected_peers"] == 2
            and after["secirc_handshakes_ok_total"] > before["secirc_handshakes_ok_total"])
    t.stop()

    # heartbeats every second: RTT samples land in the histogram
    m = wait_for(lambda: (lambda m: m if m["secirc_heartbeat_rtt_seconds_count"] >= 1 else None)(
        b.metrics()), 20, "a heartbeat RTT sample on b")
    buckets = sorted(((float(k.split('le="')[1].rstrip('"}')), v) for k, v in m.items()
                      if k.startswith("secirc_heartbeat_rtt_seconds_bucket")))
    c.check("RTT histogram: buckets cumulative up to +Inf == count, sum > 0",
            all(x[1] <= y[1] for x, y in zip(buckets, buckets[1:]))
            and buckets[-1] == (float("inf"), m["secirc_heartbeat_rtt_seconds_count"])
            and m["secirc_heartbeat_rtt_seconds_sum"] > 0, buckets)

    # a hostile connection: garbage where message 1 should be
    before = a.metrics()
    with socket.create_connection(("127.0.0.1", a.port), timeout=5) as h:
        h.sendall(os.urandom(300))
        h.shutdown(socket.SHUT_WR)
        try:
            while h.recv(4096):
                pass
        except OSError:
            pass

    def closed_sum(m):
        return sum(v for k, v in m.items() if k.startswith("secirc_listener_closed_total"))
    after = wait_for(lambda: (lambda m: m if closed_sum(m) > closed_sum(before) else None)(a.metrics()),
                     15, "a hostile connection counted")
    grown = [k for k in after if k.startswith("secirc_listener_closed_total") and after[k] > before[k]]
    c.check("hostile connection: accepted, then closed under one reason",
            after["secirc_listener_accepted_total"] > before["secirc_listener_accepted_total"]
            and len(grown) == 1, grown)
    failed = sum(v for k, v in after.items() if k.startswith("secirc_handshakes_failed_total")) - \
        sum(v for k, v in before.items() if k.startswith("secirc_handshakes_failed_total"))
    c.check("hostile connection: a failed handshake by reason", failed >= 1, grown)

    # ---- the control socket, when secirc has its control commands -----------------------------
    if have_ctl():
        r = run([binary("secirc"), "status", "--socket", a.socket, "--json"])
        hs = a.get("/status")
        try:
            cs = json.loads(r.stdout)
        except ValueError:
            cs = None
        same = cs is not None and {k: v for k, v in cs.items() if k != "uptime_s"} == \
            {k: v for k, v in hs.items() if k != "uptime_s"}
        c.check("`secirc status --json` agrees with /status", same, (r.stdout, r.stderr, hs))
        before_a, before_b = a.metrics(), b.metrics()
        r = run([binary("secirc"), "send", "--socket", b.socket, "--to", a.id, msg])
        c.check("secirc send b -> a", r.returncode == 0, r.stdout + r.stderr)
        after_a = wait_for(lambda: (lambda m: m if m["secirc_messages_delivered_total"]
                                    > before_a["secirc_messages_delivered_total"] else None)(a.metrics()),
                           15, "a to count the delivery")
        after_b = b.metrics()
        c.check("a sent message counted on both ends",
                after_b["secirc_messages_sent_total"] == before_b["secirc_messages_sent_total"] + 1
                and after_b["secirc_sent_bytes_total"] >= before_b["secirc_sent_bytes_total"] + len(msg)
                and after_a["secirc_messages_received_total"]
                == before_a["secirc_messages_received_total"] + 1)
    else:
        print("skip `secirc status --json` and `secirc send`: secirc has no control commands yet")

    # ---- what the server refuses ----------------------------------------------------------------
    for path in ("/", "/nope", "/status/", "/metrics.txt", "/../status", "/STATUS"):
        st, hd, body, _ = request("127.0.0.1", a.http_port, path=path)
        c.check(f"GET {path}: 404 text/plain, no-store",
                st == 404 and hd.get("content-type", "").startswith("text/plain")
                and hd.get("cache-control") == "no-store", (st, hd))
    st, hd, body, _ = request("127.0.0.1", a.http_port, path="/status?verbose=1")
    c.check("a query string is ignored", st == 200 and json.loads(body)["relay_id"] == a.id)
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        st, hd, body, _ = request("127.0.0.1", a.http_port, method=method, path="/metrics",
                                  body=b"{}" if method in ("POST", "PUT") else b"")
        c.check(f"{method} /metrics: 405 with Allow: GET",
                st == 405 and hd.get("allow") == "GET" and hd.get("cache-control") == "no-store",
                (st, hd))
    st, hd, _, _ = request("127.0.0.1", a.http_port, method="POST", path="/status", body=b"{}")
    c.check("POST /status: 405 with Allow: GET", st == 405 and hd.get("allow") == "GET", st)
    st, _, _, _ = exchange("127.0.0.1", a.http_port,
                           b"POST /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
    c.check("a body over the limit is refused before it is read", st in (0, 400, 413), st)
    st, _, _, _ = request("127.0.0.1", a.http_port, extra="X-Big: " + "a" * 20000 + "\r\n")
    c.check("a 20 kB head is refused", st in (0, 400, 413, 431), st)
    st, _, _, _ = exchange("127.0.0.1", a.http_port, b"BREW /status HTTP/1.1\r\n\r\n")
    c.check("an unknown method is refused", st in (400, 405, 501), st)
    st, hd, body, _ = request("127.0.0.1", a.http_port, host_header="evil.example:80")
    c.check("DNS rebinding: Host evil.example refused with 403", st == 403 and b"relay_id" not in body,
            (st, body))
    for hh in ("localhost", f"localhost:{a.http_port}", "127.0.0.1", "127.0.0.5:1"):
        st, _, _, _ = request("127.0.0.1", a.http_port, host_header=hh)
        c.check(f"Host {hh}: served", st == 200, st)
    st, _, _, _ = exchange("127.0.0.1", a.http_port, b"GET /status HTTP/1.0\r\n\r\n")
    c.check("HTTP/1.0 without Host: served", st == 200, st)
    _, _, _, raw = request("127.0.0.1", a.http_port)
    c.check("the server closes after one response", raw.count(b"HTTP/1.1 ") == 1)
    waited = wait_for(lambda: idle.closed_after, 30, "the idle connection to be closed")
    c.check("an idle connection is closed by the server's timeout (10 s)",
            9 <= waited <= 10 + 5 * sclib.SLOW, waited)

    # ---- where it listens -----------------------------------------------------------------------
    c.check("http.bind by default: 127.0.0.1 only",
            listening_addresses(a.http_port) == ["127.0.0.1"], listening_addresses(a.http_port))
    if v6:
        c.check("http.bind \"::1\": ::1 only", listening_addresses(b.http_port) == ["::1"],
                listening_addresses(b.http_port))
        st, _, _, _ = request("::1", b.http_port, path="/metrics")
        c.check("served on [::1]", st == 200, st)
    else:
        print("skip http.bind ::1: no IPv6 loopback here")
    c.check("never 0.0.0.0 or ::", not any(x in ("0.0.0.0", "::")
                                           for r in relays for x in listening_addresses(r.http_port)))

    # a port already taken: the daemon says so and does not start
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    cfg = tmp.join("taken.yaml")
    with open(cfg, "w") as f:
        f.write(f"identity:\n  key_file: {a.dir}/relay.key\n  data_dir: {a.dir}\n"
                f"listen:\n  - address: \"127.0.0.1\"\n    port: 0\n"
                f"control:\n  socket: \"\"\nhttp:\n  port: {taken.getsockname()[1]}\n")
    r = run([binary("secircd"), "--config", cfg], timeout=30 * sclib.SLOW)
    taken.close()
    c.check("http port in use: exit 1 with the reason",
            r.returncode == 1 and "http: cannot listen on 127.0.0.1 port" in r.stderr
            and "address already in use" in r.stderr, (r.returncode, r.stderr[-300:]))

    for rl in relays:
        c.check(f"{rl.proc.name} stops cleanly", rl.stop() == 0, rl.proc.err_lines[-5:])
finally:
    if idle is not None:
        idle.close()
    for p in procs:
        p.stop()
    for rl in relays:
        if rl.proc.p.poll() is None:
            rl.proc.p.kill()
            rl.proc.p.wait(timeout=10)
    tmp.cleanup()
c.done()
