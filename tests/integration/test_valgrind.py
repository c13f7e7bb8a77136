"""Both ends of a link under valgrind memcheck, in three lives:
  1. the normal life cycle: start, link, exchange messages and heartbeats,
     shut down cleanly;
  2. a connector that quits (stdin `quit`) while bulk data is queued and its
     peer is frozen (SIGSTOP): it exits within a bounded time;
  3. a listener that quits while it holds a connection in every state at
     once: an authenticated link, a handshake after message 1, a silent
     connection, a probe being drained, a refused connection in the tarpit.
Any leak or memory error fails (valgrind exits 9; its report must say 0
bytes lost and 0 errors). Skipped in the ASan build, where ASan does the
same job."""
import os
import re
import select
import shutil
import signal
import socket
import time

import sclib
from sclib import run, Checker, LinkTest, TempDir, binary, keygen, layer_args, mac1, wait_for, wire

c = Checker()
if sclib.SANITIZE:
    print("ASan build: the sanitizer checks memory here; valgrind run skipped")
    c.check("skipped under ASan", True)
    c.done()
if not shutil.which("valgrind"):
    raise SystemExit("valgrind missing (scripts/deps test installs it)")
tmp = TempDir()
procs = []
socks = []


def vg(name):
    """valgrind's command line, its report in its own file."""
    log = tmp.join(f"vg-{name}.log")
    return log, ["valgrind", f"--log-file={log}", "--leak-check=full",
                 "--show-leak-kinds=definite,indirect,possible",
                 "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=9"]


def vg_clean(log):
    """(clean, summary): 0 errors and 0 bytes definitely, indirectly or
    possibly lost, from valgrind's report."""
    with open(log) as f:
        text = f.read()
    errors = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    lost = [int(n.replace(",", "")) for n in
            re.findall(r"(?:definitely|indirectly|possibly) lost: ([\d,]+) bytes", text)]
    no_leaks = "All heap blocks were freed" in text
    clean = errors is not None and errors.group(1) == "0" and (no_leaks or (len(lost) == 3 and not any(lost)))
    summary = [line for line in text.splitlines() if re.search(r"lost:|ERROR SUMMARY|in use at exit", line)]
    return clean, "\n".join(summary) if clean else text[-4000:]


def raw(port, source, payload=b""):
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    if payload:
        s.sendall(payload)
    s.setblocking(False)
    socks.append(s)
    return s


def read_now(s):
    """(bytes available now, closed?) without blocking."""
    got = b""
    while select.select([s], [], [], 0)[0]:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            return got, True
        if not d:
            return got, True
        got += d
    return got, False


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")

    # --- 1. the normal life cycle ----------------------------------------------
    log_l, vg_l = vg("listener")
    lst = LinkTest([*vg_l, binary("secirc"), "link-test", "listen", "--key", key_a, "--port", "0",
                    *layer_args(), "--heartbeat", "300"], name="listener")
    procs.append(lst)
    port = int(lst.wait_line(r"^listening .* port=(\d+)", timeout=30).group(1))
    log_c, vg_c = vg("connector")
    con = LinkTest([*vg_c, binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "localhost",
                    "--port", str(port), *layer_args(), "--expect", id_a, "--heartbeat", "300"],
                   name="connector")
    procs.append(con)
    con.wait_line("^authenticated", timeout=30)
    con.send("send hello under valgrind")
    lst.wait_line("text=hello under valgrind$", timeout=30)
    lst.send("send and back")
    con.wait_line("text=and back$", timeout=30)
    con.wait_line("^rtt ", timeout=30)
    lst.send("quit")
    rc = lst.wait_exit(60)
    clean, report = vg_clean(log_l)
    c.check("listener: clean exit, no leak, no memory error", rc == 0 and clean, report)
    con.wait_line("^closed .*reason=shutdown by=peer", timeout=30)
    rc = con.wait_exit(60)
    clean, report = vg_clean(log_c)
    c.check("connector: no leak, no memory error (exit 1 = peer shut down)", rc == 1 and clean, report)

    # --- 2. quit while the peer is frozen and bulk data is queued ------------------
    peer = LinkTest.listen(key_a, "--quiet", name="frozen-peer"); procs.append(peer)
    log_q, vg_q = vg("quitter")
    q = LinkTest([*vg_q, binary("secirc"), "link-test", "connect", "--key", key_b, "--host", "127.0.0.1",
                  "--port", str(peer.port), *layer_args(), "--expect", id_a, "--quiet",
                  "--send-count", "1000000", "--send-size", "16384"], name="quitter")
    procs.append(q)
    q.wait_line("^authenticated", timeout=30)
    os.kill(peer.pid, signal.SIGSTOP)  # reads nothing, answers nothing from now on
    # the send queue fills (and stays full) once the kernel buffers are full
    wait_for(lambda: (lambda b: b and b[-1][1].group(1) == "1")(q.find(r"^backpressure full=(\d)")),
             60, "the quitter's send queue full behind the frozen peer")
    t0 = time.monotonic()
    q.send("quit")
    rc = q.wait_exit(30)
    dt = time.monotonic() - t0
    clean, report = vg_clean(log_q)
    c.check(f"connector quit with a frozen peer: exit 0 after {dt:.1f} s (bounded: < 15 s), "
            "no leak, no memory error", rc == 0 and dt < 15 and clean, report)
    m = q.find(r"^closed .*reason=(\w+) .*unsent=(\d+)")
    c.check(f"its link ended locally with the queue dropped ({m[-1][1].group(0) if m else None})",
            bool(m) and int(m[-1][1].group(2)) > 0)
    os.kill(peer.pid, signal.SIGCONT)
    peer.stop()

    # --- 3. quit while holding a connection in every state ------------------------------
    log_s, vg_s = vg("states")
    st = LinkTest([*vg_s, binary("secirc"), "link-test", "listen", "--key", key_a, "--port", "0",
                   *layer_args(), "--probe-resistance", "--timeout", "60000",
                   "--max-handshakes-per-address", "1"], name="states")
    procs.append(st)
    port = int(st.wait_line(r"^listening .* port=(\d+)", timeout=30).group(1))
    good = LinkTest.connect(key_b, port, "--expect", id_a, name="authenticated"); procs.append(good)
    good.wait_line("^authenticated", timeout=30)
    st.wait_line("^authenticated", timeout=30)
    e = os.urandom(32)
    mid = raw(port, "127.0.6.1", wire(e + mac1(id_a, e)))   # message 1, then nothing
    silent = raw(port, "127.0.6.2")                          # nothing at all
    probe = raw(port, "127.0.6.3", os.urandom(48))           # a probe: drained in silence
    held = {"mid": b""}

    def message2():
        held["mid"] += read_now(mid)[0]
        return len(held["mid"]) >= 224
    wait_for(message2, 30, "message 2 for the mid-handshake connection")

    def three_handshaking():
        start = len(st.snapshot())
        st.send("stats")
        m = st.wait_line(r"^stats .* handshaking=(\d+)", start=start, timeout=30)
        return int(m.group(1)) == 3
    wait_for(three_handshaking, 30, "the listener holding three handshakes", interval=0.2)
    tarpit = raw(port, "127.0.6.2")                          # over the per-address cap
    start = len(st.snapshot())
    wait_for(lambda: st.find(r"^closed peer=- reason=handshake_limit", start), 30,
             "the refusal of the connection over the cap")
    start = len(st.snapshot())
    st.send("stats")
    m = st.wait_line(r"^stats .* refused=(\d+) .* authenticated=(\d+) handshaking=(\d+) open=(\d+) "
                     r"tarpit=(\d+)", start=start, timeout=30)
    c.check(f"listener holds every state at once ({m.group(0)[:110]}...)",
            m.groups() == ("1", "1", "3", "1", "1"), m.group(0))
    states = {"mid": mid, "silent": silent, "probe": probe, "tarpit": tarpit}
    now = {k: read_now(s) for k, s in states.items()}
    c.check("no connection closed yet; only the handshake got bytes (message 2)",
            not any(closed for _, closed in now.values()) and len(held["mid"]) == 224
            and not any(got for k, (got, _) in now.items()), now)
    t0 = time.monotonic()
    st.send("quit")
    rc = st.wait_exit(60)
    dt = time.monotonic() - t0
    clean, report = vg_clean(log_s)
    c.check(f"listener quit in {dt:.1f} s: exit 0, no leak, no memory error", rc == 0 and clean, report)
    good.wait_line("^closed .*reason=shutdown by=peer", timeout=30)
    c.check("the authenticated peer was told 'shutdown'", True)

    def all_closed():
        for k, s in states.items():
            got, closed = read_now(s)
            if got or not closed:
                return None if not got else k
        return "all"
    r = wait_for(all_closed, 10, "every raw connection closed")
    c.check("every other connection closed, with no byte sent to any of them", r == "all", r)

    # --- the connection manager: three relays link, exchange messages, stop --
    log_m, vg_m = vg("manager")
    r = run([*vg_m, binary("basic_setup")], timeout=120)
    clean, summary = vg_clean(log_m)
    c.check("manager life cycle (examples/basic_setup: link, send, broadcast, stop): "
            "no leak, no memory error", r.returncode == 0 and "basic_setup: done" in r.stdout and clean,
            summary)

    # --- the daemon: starts, links, exchanges messages, stops on SIGTERM ------
    import json
    from relays import Relay, messages, wait_linked
    log_a, vg_a = vg("secircd-a")
    log_b, vg_b = vg("secircd-b")
    # b listens with TLS on tcp and on WebSocket (wss); a dials both paths
    # (tcp+tls first, the wss one comes up beside it), so the transports'
    # own life cycles, TLS under WebSocket included, run under valgrind too.
    ra = Relay(tmp, "vg-a", extra_manager={"enable_websocket": True})
    rb = Relay(tmp, "vg-b", ws=True, tls=True)
    ra.links.append((rb, 8, {"ssl_enabled": True}))
    ra.links.append((rb, 6, {"type": "websocket", "port": rb.ws_port, "ssl_enabled": True}))
    daemons = [ra, rb]
    rb.start(wrapper=vg_b)
    ra.start(wrapper=vg_a)
    wait_linked(daemons, timeout=60)
    wait_for(lambda: {(p["type"], p["tls"]) for p in ra.peers() if p["state"] == "authenticated"}
             == {("tcp", True), ("websocket", True)}, 60, "a linked to b over tcp+tls and wss")
    watch = rb.watch()
    r = ra.ctl("send", "--to", rb.id, json.dumps({"type": "relay_message", "content": "under valgrind"}))
    wait_for(lambda: messages(watch), 30, "the message at b")
    r = ra.ctl("broadcast", json.dumps({"content": "everyone"}))
    wait_for(lambda: len(messages(watch)) >= 2, 30, "the broadcast at b")
    watch.stop()
    rc_a, rc_b = ra.stop(timeout=60), rb.stop(timeout=60)
    clean_a, sum_a = vg_clean(log_a)
    clean_b, sum_b = vg_clean(log_b)
    c.check("secircd life cycle under valgrind (start, link over TLS and wss, send, broadcast, "
            "SIGTERM): exit 0, no leak, no memory error", rc_a == 0 and rc_b == 0 and clean_a and clean_b,
            f"rc {rc_a}/{rc_b}\n{sum_a}\n{sum_b}")
finally:
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGCONT)
        except OSError:
            pass
        p.stop()
    for s in socks:
        s.close()
    tmp.cleanup()
c.done()
