"""Link health and limits with real processes: heartbeats measure RTT and a
peer that stops answering is closed with heartbeat_timeout; a peer that
stops reading cannot make the sender buffer without bound; link-key
rotation gives new links the new key while old links keep working; the
handshake caps refuse at once what is over them."""
import os
import signal
import socket
import time

import sclib
from sclib import Checker, LinkTest, TempDir, keygen, rss_kib, wait_for

c = Checker()
tmp = TempDir()
procs = []
try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")

    # --- heartbeat: RTT samples, then heartbeat_timeout when the peer freezes --
    hb = ["--heartbeat", "200", "--heartbeat-misses", "3"]
    lst = LinkTest.listen(key_a, *hb); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--expect", id_a, *hb); procs.append(con)
    con.wait_line("^authenticated")
    wait_for(lambda: len(lst.find(r"^rtt peer=\w+ us=\d+")) >= 3, 5, "three RTT samples")
    m = lst.find(r"^rtt peer=\w+ us=(\d+) srtt_us=(\d+) rttvar_us=(\d+)")[-1][1]
    c.check(f"heartbeats give RTT samples with EWMA latency and jitter ({m.group(0)})", int(m.group(2)) > 0)
    os.kill(con.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    lst.wait_line(r"^closed peer=\w+ reason=heartbeat_timeout by=local", timeout=5)
    dt = time.monotonic() - t0
    c.check(f"frozen peer closed with heartbeat_timeout after {dt:.2f}s (3 misses of 200 ms)",
            0.4 <= dt <= 1.5 * sclib.SLOW)
    os.kill(con.pid, signal.SIGCONT)
    con.wait_line(r"^closed peer=\w+ reason=heartbeat_timeout by=peer")
    c.check("the peer, once thawed, learns why it was closed", True)
    lst.stop(); con.stop()

    # --- a receiver that stops reading: the sender's memory stays bounded -----
    lst = LinkTest.listen(key_a, "--quiet"); procs.append(lst)
    con = LinkTest.connect(key_b, lst.port, "--quiet", "--send-count", "100000000", "--send-size", "16384",
                           "--send-queue-bytes", "1048576"); procs.append(con)
    lst.wait_line("^authenticated")
    os.kill(lst.pid, signal.SIGSTOP)  # stops reading; the kernel buffers fill up
    m = con.wait_line(r"^backpressure full=1 queued_bytes=(\d+)", timeout=20)
    c.check(f"sender told to stop producing at {int(m.group(1)) // 1024} KiB queued", int(m.group(1)) <= 1048576)
    rss0 = rss_kib(con.pid)
    t0 = time.monotonic()
    samples = []
    while time.monotonic() < t0 + 3.0:  # observe for three seconds
        samples.append((time.monotonic() - t0, rss_kib(con.pid)))
        time.sleep(0.1)
    peak = max(r for _, r in samples)
    late = [r for t, r in samples if t >= 2.0]
    # After the signal the queue may still fill to its limit (1 MiB) and the
    # output buffer to its high-water mark (256 KiB); then nothing grows.
    if sclib.SANITIZE:  # ASan's quarantine holds freed memory: RSS says nothing there
        print(f"RSS not checked under ASan ({rss0} -> peak {peak} KiB)")
    else:
        c.check(f"sender RSS bounded while the peer does not read ({rss0} -> peak {peak} KiB)",
                peak <= rss0 + 1536)
        c.check(f"sender RSS flat in the last second ({min(late)}..{max(late)} KiB)",
                max(late) - min(late) <= 64)
    os.kill(lst.pid, signal.SIGCONT)
    lst.stop(); con.stop()

    # --- link-key rotation ------------------------------------------------------
    lst = LinkTest.listen(key_a, "--rotate-key-ms", "500"); procs.append(lst)
    old = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="old-link"); procs.append(old)
    k1 = old.wait_line(r"^authenticated .*peer_link_key=(\w+)").group(1)
    start = len(lst.snapshot())
    k2 = lst.wait_line(r"^link_key_rotated link_key=(\w+)", start=start).group(1)
    new = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="new-link"); procs.append(new)
    kn = new.wait_line(r"^authenticated .*peer_link_key=(\w+)").group(1)
    rotated = [m.group(1) for _, m in lst.find(r"^link_key_rotated link_key=(\w+)")]
    c.check(f"new link uses a rotated link key ({kn} != {k1})", kn != k1 and kn in rotated)
    lst.wait_line(r"^link_key_rotated", start=len(lst.snapshot()))  # one more rotation
    old.send("send old link after rotation")
    lst.wait_line("text=old link after rotation$")
    lst.send("send both links hear this")
    old.wait_line("text=both links hear this$")
    new.wait_line("text=both links hear this$")
    c.check("the old link keeps working across rotations, both ways", True)
    lst.stop(); old.stop(); new.stop()

    # --- handshake caps: over the per-address cap is closed at once; at the
    # total cap the busiest source's oldest handshake makes room -------------
    lst = LinkTest.listen(key_a, "--timeout", "3000", "--max-handshakes-per-address", "4",
                          "--max-handshakes", "12"); procs.append(lst)
    socks = []
    for i in range(10):
        socks.append(sclib.raw_connect(lst.port, source="127.0.3.1"))
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="real"); procs.append(real)
    t0 = time.monotonic()
    fast = 0
    for s in socks[4:]:
        try:
            d = s.recv(10)
        except ConnectionResetError:
            d = b""
        fast += d == b"" and time.monotonic() - t0 < 1.0
    c.check(f"per-address cap 4: the other 6 closed at once ({fast}/6)", fast == 6)
    real.wait_line("^authenticated")
    c.check("a link from another address still completes", True)
    others = []
    for i in range(10):  # 10 more sources: 4 + 10 > 12 in total
        others.append(sclib.raw_connect(lst.port, source=f"127.0.4.{i + 1}"))
    lst.send("stats")
    m = lst.wait_line(r"^stats .*refused=(\d+) evicted=(\d+) .*handshaking=(\d+)")
    refused, evicted, hs = int(m.group(1)), int(m.group(2)), int(m.group(3))
    c.check(f"total cap 12: {hs} handshaking, {refused} refused (per address), {evicted} of the "
            "busiest source evicted for newcomers", hs == 12 and refused == 6 and evicted == 2, m.group(0))
    def closed_now(s):
        s.settimeout(0.3)
        try:
            return s.recv(10) == b""
        except (socket.timeout, BlockingIOError):
            return False
        except ConnectionResetError:
            return True
    gone = [closed_now(s) for s in socks[:4]]
    c.check(f"the evicted ones are that source's two oldest ({gone})", gone == [True, True, False, False])
    for s in socks + others:
        s.close()
    lst.stop(); real.stop()
finally:
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGCONT)
        except OSError:
            pass
        p.stop()
    tmp.cleanup()
c.done()
