#!/usr/bin/env python3
"""test_control — secircd's control socket and the `secirc` commands on it,
with real daemons on 127.0.0.1.

Relay A listens; relay B dials A. Checks: the socket file is a socket of
mode 0600; malformed requests (not JSON, not an object, no method, unknown
method, bad params, a batch, an oversized line) get their JSON-RPC errors
while the connection, or at least the socket, keeps serving; notifications
get no answer; a `watch` client that hangs up leaves nothing behind and
other watchers keep their events; the 65th client is refused; exit codes
0/1/2/3 of the CLI; --json output parses; --config and SECIRC_SOCKET find
the socket; a stale socket left by a killed daemon is replaced, a live one
or a regular file is not."""
import json
import os
import signal
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sclib  # noqa: E402

UNKNOWN_ID = "ab" * 32


class Rpc:
    """A raw control-socket client: lines of JSON, every wait bounded."""

    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout * sclib.SLOW)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        """The next line as JSON, or None at EOF (or a reset after it)."""
        while b"\n" not in self.buf:
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def call(self, method, params=None, rid=1):
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.send(json.dumps(req) + "\n")
        return self.line()

    def close(self):
        self.s.close()


def error_code(resp):
    return (resp or {}).get("error", {}).get("code")


def write_config(path, extra=""):
    with open(path, "w") as f:
        f.write("connection_manager:\n  tcp_port: 0\n  heartbeat_interval: 1\n"
                "listen:\n  - address: 127.0.0.1\n    port: 0\n"
                "http:\n  port: 0\n" + extra)


def start_daemon(config, name):
    """secircd on `config`; returns (proc, socket path) once `status` answers."""
    sock = os.path.join(os.path.dirname(config), "secircd.sock")
    p = sclib.Proc([sclib.binary("secircd"), "--config", config], name=name, stdin=False)

    def ready():
        if p.p.poll() is not None:
            raise AssertionError(f"{name} exited ({p.p.returncode}): {p.err_lines[-5:]}")
        if not os.path.exists(sock):
            return False
        try:
            c = Rpc(sock, timeout=2)
            r = c.call("status")
            c.close()
            return r
        except OSError:
            return False
    status = sclib.wait_for(ready, 20, f"{name}'s control socket")
    p.relay_id = status["result"]["relay_id"]
    p.port = status["result"]["listen"][0]["port"]
    return p, sock


def stop_daemon(p):
    if p.p.poll() is None:
        p.p.send_signal(signal.SIGTERM)
    return p.wait_exit(20)


def cli(*args, env=None):
    e = dict(os.environ)
    e.pop("SECIRC_SOCKET", None)
    e.update(env or {})
    return sclib.run([sclib.binary("secirc"), *args], env=e)


def check_socket_file(ck, sock):
    st = os.lstat(sock)
    ck.check("the control socket is a socket", stat.S_ISSOCK(st.st_mode))
    ck.check("the control socket has mode 0600", stat.S_IMODE(st.st_mode) == 0o600,
             oct(stat.S_IMODE(st.st_mode)))


def check_malformed(ck, sock):
    c = Rpc(sock)
    cases = [
        ("not JSON", b"hello there\n", -32700),
        ("not an object", b"[1, 2]\n", -32600),
        ("a number", b"42\n", -32600),
        ("no method", b'{"jsonrpc":"2.0","id":5}\n', -32600),
        ("no jsonrpc member", b'{"id":5,"method":"status"}\n', -32600),
        ("unknown method", b'{"jsonrpc":"2.0","id":5,"method":"shutdown"}\n', -32601),
        ("bad relay_id", b'{"jsonrpc":"2.0","id":5,"method":"explain","params":{"relay_id":"xyz"}}\n',
         -32602),
        ("send without message",
         ('{"jsonrpc":"2.0","id":5,"method":"send","params":{"to":"%s"}}\n' % UNKNOWN_ID).encode(),
         -32602),
        ("unknown param", b'{"jsonrpc":"2.0","id":5,"method":"status","params":{"verbose":true}}\n',
         -32602),
        ("a batch", b'[{"jsonrpc":"2.0","id":5,"method":"status"}]\n', -32600),
    ]
    for name, data, code in cases:
        c.send(data)
        r = c.line()
        ck.check(f"{name}: error {code}", error_code(r) == code, f"got {r}")
        ck.check(f"{name}: the connection still answers",
                 (c.call("status", rid=6) or {}).get("id") == 6)
    r = c.call("explain", {"relay_id": "xyz"})
    ck.check("invalid params: the message names the param",
             "relay_id" in (r or {}).get("error", {}).get("message", ""), f"got {r}")
    # a notification is run but not answered: the next line is the next request's
    c.send('{"jsonrpc":"2.0","method":"status"}\n{"jsonrpc":"2.0","id":"after","method":"status"}\n')
    r = c.line()
    ck.check("a notification gets no response", (r or {}).get("id") == "after", f"got {r}")
    # an oversized line: -32600, then the connection is closed
    c.send(b'{"jsonrpc":"2.0","id":1,"method":"status","pad":"' + b"x" * 70000 + b'"}\n')
    r = c.line()
    ck.check("oversized line: error -32600", error_code(r) == -32600, f"got {r}")
    ck.check("oversized line: the connection is closed", c.line() is None)
    c.close()
    c = Rpc(sock)
    ck.check("the socket keeps serving others", "result" in (c.call("status") or {}))
    c.close()


def check_clients_bound(ck, sock):
    conns = [Rpc(sock) for _ in range(64)]
    for c in conns:
        c.send('{"jsonrpc":"2.0","id":1,"method":"status"}\n')
    answered = sum(1 for c in conns if "result" in (c.line() or {}))
    ck.check("64 clients at once are all served", answered == 64, f"{answered}")
    extra = Rpc(sock)
    r = extra.line()
    ck.check("the 65th client is refused with a message", error_code(r) == -32000 and
             "too many" in r["error"]["message"], f"got {r}")
    extra.close()
    for c in conns:
        c.close()

    def served():
        c = Rpc(sock)
        r = c.call("status")
        c.close()
        return r is not None and "result" in r
    sclib.wait_for(served, 10, "a client to be served after the 64 left")
    ck.check("after they leave, a new client is served", True)


def check_cli_errors(ck, sock, tmp):
    r = cli("status", "--socket", tmp.join("nowhere.sock"))
    ck.check("exit 3 when the socket is missing", r.returncode == 3, f"{r.returncode} {r.stderr}")
    ck.check("the message names the path", tmp.join("nowhere.sock") in r.stderr, r.stderr)
    stale = tmp.join("stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)  # bound, never listening: connect is refused
    r = cli("peers", "--socket", stale)
    s.close()
    ck.check("exit 3 when the connection is refused", r.returncode == 3 and stale in r.stderr,
             f"{r.returncode} {r.stderr}")
    r = cli("send", "--socket", sock, "--to", UNKNOWN_ID, '{"type": "relay_message",')
    ck.check("exit 2 for invalid JSON", r.returncode == 2, f"{r.returncode} {r.stderr}")
    ck.check("the JSON error gives its position", "column" in r.stderr, r.stderr)
    r = cli("explain", "--socket", sock, "not-a-relay-id")
    ck.check("exit 2 for a bad relay ID", r.returncode == 2, f"{r.returncode} {r.stderr}")
    r = cli("status", "--socket", sock, "extra")
    ck.check("exit 2 for an extra argument", r.returncode == 2, f"{r.returncode}")
    r = cli("send", "--socket", sock, "--to", UNKNOWN_ID, '{"type":"relay_message"}')
    ck.check("exit 1 when the daemon refuses (relay not linked)",
             r.returncode == 1 and "not linked" in r.stderr, f"{r.returncode} {r.stderr}")
    r = cli("connect", "--socket", sock, UNKNOWN_ID)
    ck.check("exit 1 for connect to an unknown relay", r.returncode == 1, f"{r.returncode} {r.stderr}")
    for cmd in ("status", "peers", "explain", "connect", "disconnect", "send", "broadcast",
                "watch", "reload", "rotate-link-key"):
        r = cli(cmd, "--help")
        ck.check(f"secirc {cmd} --help", r.returncode == 0 and r.stdout.startswith(
            f"usage: secirc {cmd}") and "--socket" in r.stdout and "--json" in r.stdout,
                 f"{r.returncode} {r.stdout[:80]}")


def main():
    ck = sclib.Checker()
    tmp = sclib.TempDir()
    procs = []
    try:
        os.makedirs(tmp.join("a"))
        os.makedirs(tmp.join("b"))
        conf_a = tmp.join("a", "relay.yaml")
        write_config(conf_a)
        a, sock_a = start_daemon(conf_a, "relay-a")
        procs.append(a)
        check_socket_file(ck, sock_a)
        check_malformed(ck, sock_a)
        check_clients_bound(ck, sock_a)

        # status: exit 0, --json parses, --config and SECIRC_SOCKET find the socket
        r = cli("status", "--socket", sock_a, "--json")
        ok = r.returncode == 0 and len(r.stdout.splitlines()) == 1
        st = json.loads(r.stdout) if ok else {}
        ck.check("status --json: exit 0, one line of JSON with the relay ID",
                 st.get("relay_id") == a.relay_id, f"{r.returncode} {r.stdout} {r.stderr}")
        r = cli("status", "--config", conf_a)
        ck.check("status --config FILE: the human block", r.returncode == 0 and
                 f"relay id:     {a.relay_id}" in r.stdout, f"{r.returncode} {r.stdout} {r.stderr}")
        r = cli("status", env={"SECIRC_SOCKET": sock_a})
        ck.check("SECIRC_SOCKET is honoured", r.returncode == 0 and a.relay_id in r.stdout,
                 f"{r.returncode} {r.stderr}")
        check_cli_errors(ck, sock_a, tmp)

        # a watcher that hangs up: nothing leaks; another watcher keeps its events
        fds_before = sclib.open_fds(a.pid)
        w1 = Rpc(sock_a)
        r = w1.call("watch")
        ck.check("watch answers {watching: true}", (r or {}).get("result") == {"watching": True},
                 f"{r}")
        w1.close()
        sclib.wait_for(lambda: sclib.open_fds(a.pid) <= fds_before, 10,
                       "the daemon to close the watcher that hung up")
        ck.check("a watcher that hangs up leaves no descriptor behind", True)
        watcher = sclib.Proc([sclib.binary("secirc"), "watch", "--socket", sock_a, "--json"],
                             name="watch-json", stdin=False)
        procs.append(watcher)
        human = sclib.Proc([sclib.binary("secirc"), "watch", "--socket", sock_a],
                           name="watch-human", stdin=False)
        procs.append(human)
        # each says on stderr when its events start
        for w in (watcher, human):
            sclib.wait_for(lambda: any("watching secircd at" in ln for ln in w.err_lines), 10,
                           f"{w.name} to start watching")

        conf_b = tmp.join("b", "relay.yaml")
        write_config(conf_b, f"relays:\n  - id: \"{a.relay_id}\"\n    host: 127.0.0.1\n"
                             f"    port: {a.port}\n    priority: 8\n")
        b, sock_b = start_daemon(conf_b, "relay-b")
        procs.append(b)
        m = watcher.wait_line(r'"event":"path".*"state":"authenticated"', timeout=20)
        ev = json.loads(m.string)
        ck.check("watch --json: a path event for the new link", ev.get("relay_id") == b.relay_id,
                 m.string)
        human.wait_line(r"path \d+ %s tcp: \S+ -> authenticated" % b.relay_id[:16], timeout=20)
        ck.check("watch: one readable line per event", True)

        def linked():
            r = cli("peers", "--socket", sock_b, "--json")
            return r.returncode == 0 and any(p.get("state") == "authenticated"
                                             for p in json.loads(r.stdout))
        sclib.wait_for(linked, 20, "relay B to be linked to A")
        r = cli("peers", "--socket", sock_b)
        lines = r.stdout.splitlines()
        ck.check("peers: a header and one row for the path", r.returncode == 0 and len(lines) == 2
                 and lines[0].split()[:3] == ["RELAY", "TYPE", "ADDRESS"], r.stdout)
        row = lines[1].split() if len(lines) == 2 else []
        ck.check("peers: relay ID cut to 16 hex, host:port, state, direction, priority",
                 row[:5] == [a.relay_id[:16], "tcp", f"127.0.0.1:{a.port}", "authenticated",
                             "outbound"] and row[-1] == "8", r.stdout)
        r = cli("explain", "--socket", sock_b, a.relay_id)
        ck.check("explain prints the sentence", r.returncode == 0 and r.stdout.strip() != ""
                 and not r.stdout.startswith("{"), f"{r.returncode} {r.stdout}")
        r = cli("explain", "--socket", sock_b, a.relay_id, "--json")
        ck.check("explain --json parses", r.returncode == 0 and
                 json.loads(r.stdout).get("relay_id") == a.relay_id, r.stdout)

        # send from B to A: the message ID printed, the body in A's watchers
        body = {"type": "relay_message", "content": "hello over the control socket",
                "timestamp": 1700000000}
        r = cli("send", "--socket", sock_b, "--to", a.relay_id, json.dumps(body))
        msg_id = r.stdout.strip()
        ck.check("send: exit 0 and a 32-hex message ID", r.returncode == 0 and len(msg_id) == 32,
                 f"{r.returncode} {r.stdout} {r.stderr}")
        m = watcher.wait_line(r'"event":"message"', timeout=20)
        ev = json.loads(m.string)
        ck.check("the watcher gets the message with its ID and body",
                 ev.get("id") == msg_id and ev.get("body") == body and ev.get("from") == b.relay_id,
                 m.string)
        human.wait_line(r"message from %s id=%s" % (b.relay_id[:16], msg_id), timeout=20)
        r = cli("broadcast", "--socket", sock_b, "--json", '["any", "JSON", 1]')
        res = json.loads(r.stdout) if r.returncode == 0 else {}
        ck.check("broadcast --json: its ID and the peer count", res.get("peers") == 1 and
                 len(res.get("id", "")) == 32, f"{r.returncode} {r.stdout} {r.stderr}")
        m = watcher.wait_line(r'"broadcast":true', timeout=20)
        ck.check("the broadcast reaches A's watcher", json.loads(m.string)["body"] == ["any", "JSON", 1])

        r = cli("rotate-link-key", "--socket", sock_b)
        ck.check("rotate-link-key: exit 0", r.returncode == 0, f"{r.returncode} {r.stderr}")
        r = cli("reload", "--socket", sock_b)
        ck.check("reload: exit 0", r.returncode == 0, f"{r.returncode} {r.stderr}")
        with open(conf_b, "a") as f:
            f.write("bogus_section: 1\n")
        r = cli("reload", "--socket", sock_b)
        ck.check("reload of a broken file: exit 1 with FILE:LINE:COL",
                 r.returncode == 1 and "relay.yaml:" in r.stderr and "bogus_section" in r.stderr,
                 f"{r.returncode} {r.stderr}")
        r = cli("disconnect", "--socket", sock_b, a.relay_id)
        ck.check("disconnect: exit 0", r.returncode == 0, f"{r.returncode} {r.stderr}")
        watcher.wait_line(r'"event":"path".*"old_state":"authenticated"', timeout=20)
        ck.check("the watcher sees the link go", True)

        # watchers end with exit 3 when the daemon goes away
        ck.check("relay A stops cleanly", stop_daemon(a) == 0)
        ck.check("watch exits 3 when the daemon closes", watcher.wait_exit(10) == 3)
        human.wait_exit(10)
        ck.check("the socket file is removed at exit", not os.path.exists(sock_a))

        # a daemon killed hard leaves its socket: the next start replaces it
        b.p.kill()
        b.wait_exit(10)
        ck.check("a killed daemon leaves a stale socket", os.path.exists(sock_b))
        write_config(conf_b)
        b, sock_b = start_daemon(conf_b, "relay-b2")
        procs.append(b)
        ck.check("the next daemon replaces the stale socket",
                 cli("status", "--socket", sock_b).returncode == 0)
        check_socket_file(ck, sock_b)
        second = sclib.run([sclib.binary("secircd"), "--config", conf_b], timeout=20 * sclib.SLOW)
        ck.check("a second daemon on a live socket refuses to start",
                 second.returncode != 0 and "listening" in second.stderr,
                 f"{second.returncode} {second.stderr[-300:]}")
        ck.check("the live socket still serves", cli("status", "--socket", sock_b).returncode == 0)
        ck.check("relay B stops cleanly", stop_daemon(b) == 0)
        with open(sock_b, "w") as f:
            f.write("not a socket\n")
        third = sclib.run([sclib.binary("secircd"), "--config", conf_b], timeout=20 * sclib.SLOW)
        ck.check("a regular file at control.socket: the daemon refuses to start",
                 third.returncode != 0 and "not a socket" in third.stderr,
                 f"{third.returncode} {third.stderr[-300:]}")
        with open(sock_b) as f:
            ck.check("... and leaves the file alone", f.read() == "not a socket\n")
    finally:
        for p in procs:
            if p.p.poll() is None:
                p.p.kill()
                p.p.wait(timeout=10)
        tmp.cleanup()
    ck.done()


if __name__ == "__main__":
    main()
