"""A server-side transport layer runs under the link's connection_timeout:
with link-test's xor-hello layer (the client first sends one hello byte the
server waits for), the whole accept (layer, Noise handshake, ACCEPT) is one
deadline counted from accept. A client that sends nothing, or the hello a
second late and then message 1 after the deadline, or message 1 in time
but never message 3, is cut at connection_timeout from accept and counted
under timeout; a wrong hello byte is closed at once and counted as
protocol_error; a real link-test over the same layer links and carries
messages both ways."""
import os
import select
import socket
import time

import sclib
from sclib import Checker, LinkTest, TempDir, keygen, mac1

TIMEOUT_S = 1.5
HELLO = b"X"          # src/transport/xor.c: XOR_HELLO
XOR_KEY = 0x5C        # link-test's xor key
SLACK_S = 1.0 * sclib.SLOW
c = Checker()
tmp = TempDir()
procs = []


def xor(data):
    """Bytes above the hello travel XORed (this listener always has the
    layer, whatever SC_TEST_LAYER says)."""
    return bytes(b ^ XOR_KEY for b in data)


def raw_client(port, sends, limit_s=10.0):
    """Connects and sends each (at_s, bytes) at at_s seconds after connect
    while the connection is open. Returns (bytes received, seconds from
    connect to the close, the sends made)."""
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    s.setblocking(False)
    got, done, pending = b"", [], list(sends)
    try:
        while time.monotonic() - t0 < limit_s * sclib.SLOW:
            now = time.monotonic() - t0
            while pending and pending[0][0] <= now:
                at, data = pending.pop(0)
                s.sendall(data)
                done.append(at)
            wait = min(0.05, max(0.0, pending[0][0] - now)) if pending else 0.05
            r, _, _ = select.select([s], [], [], wait)
            if not r:
                continue
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                d = b""
            if not d:
                return got, time.monotonic() - t0, done
            got += d
        raise AssertionError(f"connection still open after {limit_s * sclib.SLOW:.0f} s")
    finally:
        s.close()


def cut_at_deadline(dt):
    return TIMEOUT_S - 0.1 <= dt <= TIMEOUT_S + SLACK_S


def stat(lst, name):
    start = len(lst.snapshot())
    lst.send("stats")
    return int(lst.wait_line(rf"^stats .* {name}=(\d+)", start=start).group(1))


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest.listen(key_a, "--layer", "xor-hello", "--timeout", str(int(TIMEOUT_S * 1000)))
    procs.append(lst)

    # (a) connects, sends nothing: the layer waits for its hello until the deadline
    before = stat(lst, "timeout")
    got, dt, _ = raw_client(lst.port, [])
    c.check(f"silent client: nothing sent to it, closed at connection_timeout ({dt:.2f} s, "
            f"{TIMEOUT_S} s)", got == b"" and cut_at_deadline(dt), (got, dt))
    lst.wait_line(r"^closed peer=- reason=timeout by=local")
    c.check("silent client counted under timeout", stat(lst, "timeout") == before + 1)

    # (b) the hello one second late, then message 1 after the deadline: the
    # layer's slowness is not forgiven by the handshake that follows
    e = os.urandom(32)
    msg1 = xor(e + mac1(id_a, e))
    start = len(lst.snapshot())
    got, dt, sent = raw_client(lst.port, [(1.0, HELLO), (TIMEOUT_S + 0.5, msg1)])
    c.check(f"hello at 1.0 s, message 1 after the deadline: cut {dt:.2f} s after accept "
            f"(deadline {TIMEOUT_S} s from accept, not from the hello), nothing sent back",
            got == b"" and cut_at_deadline(dt) and sent == [1.0], (got, dt, sent))
    lst.wait_line(r"^closed peer=- reason=timeout by=local", start=start)
    c.check("late hello counted under timeout", stat(lst, "timeout") == before + 2)

    # (b') the hello late and message 1 in time: message 2 comes back, and
    # the wait for message 3 still ends at the same deadline
    e = os.urandom(32)
    start = len(lst.snapshot())
    got, dt, sent = raw_client(lst.port, [(1.0, HELLO), (1.2, xor(e + mac1(id_a, e)))])
    c.check(f"hello at 1.0 s, message 1 at 1.2 s: message 2 back ({len(got)} bytes), then cut "
            f"{dt:.2f} s after accept (one deadline: layer + handshake + ACCEPT)",
            len(got) == 224 and cut_at_deadline(dt), (len(got), dt, sent))
    lst.wait_line(r"^closed peer=- reason=timeout by=local", start=start)
    c.check("message 3 never sent: counted under timeout", stat(lst, "timeout") == before + 3)

    # (d) a wrong hello byte: refused at once
    before_pe = stat(lst, "protocol_error")
    start = len(lst.snapshot())
    got, dt, _ = raw_client(lst.port, [(0.0, b"Y" + msg1)])
    c.check(f"wrong hello byte: closed at once ({dt:.2f} s), nothing sent back",
            got == b"" and dt < 0.5 * sclib.SLOW, (got, dt))
    lst.wait_line(r"^closed peer=- reason=protocol_error by=local", start=start)
    c.check("wrong hello counted under protocol_error", stat(lst, "protocol_error") == before_pe + 1)

    # (c) a real initiator over the same layer
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a, "--layer", "xor-hello")
    procs.append(con)
    m = con.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)")
    c.check(f"xor-hello initiator linked: transport={m.group(2)}",
            m.group(1) == id_a and m.group(2) == "tcp+xor", m.group(0))
    m = lst.wait_line(r"^authenticated peer=([0-9a-f]{64}) .*transport=(\S+)")
    c.check(f"responder: transport={m.group(2)}", m.group(1) == id_b and m.group(2) == "tcp+xor",
            m.group(0))
    con.send("send over the hello layer")
    lst.wait_line("text=over the hello layer$")
    lst.send("send and back over it")
    con.wait_line("text=and back over it$")
    c.check("messages both ways over tcp+xor (hello)", True)
    c.check("no handshake left in progress, the link counted",
            stat(lst, "handshaking") == 0 and stat(lst, "authenticated") == 1)
    lst.send("quit")
    con.wait_line(r"^closed peer=\w+ reason=shutdown by=peer")
    c.check("listener quit: the peer is told 'shutdown', both exit",
            lst.wait_exit() == 0 and con.wait_exit() == 1)
finally:
    for p in procs:
        p.stop()
    tmp.cleanup()
c.done()
