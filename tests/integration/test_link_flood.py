"""200 connections that send nothing and 200 that send one byte per second,
opened at once, are all closed at connection_timeout (within a second),
while a real link to the same listener completes its handshake and carries
messages; afterwards the listener's descriptors and memory return to their
baseline (read from /proc).

Memory baseline: glibc keeps the heap pages the first flood touched (the
bytes in use drop back, but libevent's per-descriptor map entries, never
freed, pin pages), so the memory baseline is taken after a first flood and
the second, identical flood must come back to it. Descriptors are compared
with the idle listener from before any flood."""
import selectors
import socket
import time

import sclib
from sclib import Checker, LinkTest, TempDir, keygen, open_fds, rss_kib, wait_for

TIMEOUT_S = 3.0
N = 200
SLACK_S = 1.0 * (2 if sclib.SANITIZE else 1)
c = Checker()
tmp = TempDir()
procs = []
records = []


def flood(lst, key_b, id_a, round_name):
    """Opens the 2N hostile connections plus one real link; returns when all
    hostile ones are closed (bounded). The hostile ones are bare TCP on
    every transport: under a layer (xor-hello, tls) they stall the layer's
    own negotiation, which the same deadline must end."""
    sel = selectors.DefaultSelector()
    records.clear()
    for i in range(2 * N):
        s = socket.socket()
        # one source address each (127.0.1.x silent, 127.0.2.x slow): the
        # per-address cap stays at its default
        s.bind((f"127.0.{1 + i // N}.{1 + i % N}", 0))
        s.connect(("127.0.0.1", lst.port))
        s.setblocking(False)
        rec = {"sock": s, "kind": "silent" if i < N else "slow", "opened": time.monotonic(),
               "closed": None, "data": b"", "sent": 0}
        records.append(rec)
        sel.register(s, selectors.EVENT_READ, rec)
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, name=f"real-{round_name}")
    procs.append(real)
    closed, real_done = 0, None
    next_drip = time.monotonic() + 1.0
    deadline = time.monotonic() + (TIMEOUT_S + 10) * sclib.SLOW
    while closed < 2 * N and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_drip:  # the slow ones: one byte per second each
            for rec in records:
                if rec["kind"] == "slow" and rec["closed"] is None:
                    try:
                        rec["sock"].send(b"\x16")
                        rec["sent"] += 1
                    except OSError:
                        pass
            next_drip += 1.0
        for key, _ in sel.select(timeout=max(0.0, min(0.05, next_drip - now))):
            rec = key.data
            try:
                data = rec["sock"].recv(64)
            except ConnectionResetError:
                data = b""
            except BlockingIOError:
                continue
            if data:
                rec["data"] += data
                continue
            rec["closed"] = time.monotonic()
            sel.unregister(rec["sock"])
            rec["sock"].close()
            closed += 1
        if real_done is None and real.find("^authenticated"):
            real.send(f"send during the flood {round_name}")
            lst.wait_line(f"text=during the flood {round_name}$")
            lst.send(f"send reply during the flood {round_name}")
            real.wait_line(f"text=reply during the flood {round_name}$")
            real_done = time.monotonic()
    first_close = min((r["closed"] for r in records if r["closed"]), default=None)
    return real, real_done, closed, first_close


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    lst = LinkTest.listen(key_a, "--timeout", str(int(TIMEOUT_S * 1000)),
                          "--max-handshakes", "1024", "--heartbeat", "0")
    procs.append(lst)
    base_fds, base_rss = open_fds(lst.pid), rss_kib(lst.pid)
    print(f"baseline: fds={base_fds} rss={base_rss} KiB")

    for rnd in ("first", "second"):
        real, real_done, closed, first_close = flood(lst, key_b, id_a, rnd)
        c.check(f"{rnd}: all {2 * N} hostile connections closed", closed == 2 * N, f"closed={closed}")
        c.check(f"{rnd}: real link authenticated and carried messages both ways during the flood",
                real_done is not None and first_close is not None and real_done < first_close)
        lat = {"silent": [], "slow": []}
        for r in records:
            if r["closed"]:
                lat[r["kind"]].append(r["closed"] - r["opened"])
        for kind, vals in lat.items():
            lo, hi = (min(vals), max(vals)) if vals else (0, 0)
            c.check(f"{rnd}: {kind} connections closed in [{lo:.2f}, {hi:.2f}] s, "
                    f"timeout {TIMEOUT_S} s + {SLACK_S} s",
                    len(vals) == N and lo >= TIMEOUT_S - 0.05 and hi <= TIMEOUT_S + SLACK_S)
        c.check(f"{rnd}: no byte was ever sent to a hostile connection",
                all(r["data"] == b"" for r in records))
        c.check(f"{rnd}: slow connections did send bytes", all(r["sent"] >= 2 for r in records
                                                            if r["kind"] == "slow"))
        lst.send("stats")
        m = lst.wait_line(r"^stats .* handshaking=(\d+) .* timeout=(\d+)", start=len(lst.snapshot()) - 1)
        c.check(f"{rnd}: no handshake left in progress", m.group(1) == "0", m.group(0))
        real.stop()
        lst.wait_line(r"^closed peer=\w+ reason=shutdown by=peer", start=len(lst.snapshot()) - 3)
        fds = wait_for(lambda: (lambda n: n if n <= base_fds else None)(open_fds(lst.pid)), 10,
                       "listener descriptors back to baseline")
        c.check(f"{rnd}: open descriptors back to baseline ({fds} <= {base_fds})", fds <= base_fds)
        rss = rss_kib(lst.pid)
        print(f"{rnd}: rss after = {rss} KiB (idle listener before any flood: {base_rss} KiB)")
        if rnd == "first":
            rss_first = rss
    rss_second = rss_kib(lst.pid)
    if sclib.SANITIZE:  # ASan's quarantine keeps freed memory: RSS says nothing there
        print(f"rss not checked under ASan (first {rss_first} KiB, second {rss_second} KiB)")
    else:
        c.check(f"rss after the second flood ({rss_second} KiB) back to the baseline after the"
                f" first ({rss_first} KiB, +256 KiB allowed)", rss_second <= rss_first + 256)
        c.check(f"first flood's allocator high-water is bounded: {rss_first - base_rss} KiB for"
                f" {2 * N} connections (< 8 MiB)", rss_first - base_rss < 8192)
finally:
    for p in procs:
        p.stop()
    for r in records:
        try:
            r["sock"].close()
        except OSError:
            pass
    tmp.cleanup()
c.done()
