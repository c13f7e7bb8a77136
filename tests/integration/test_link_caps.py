"""Link caps: a stranger opening links with fresh identities is capped, and a
peer with --expect still links at the same moment.

tests/tools/strangers opens links that each have a fresh identity and come
from their own 127.0.x.k address, so no per-address cap helps the listener;
only the caps on authenticated links do:
  a. descriptors: with --fd-limit 128 --fd-reserve 32 strangers get REJECT
     busy once links reach the reserve, the listener never runs out of
     descriptors, and a trusted peer links and talks both ways while the
     strangers hold everything they got;
  a2. the same on a probe-resistant listener, the trusted peer arriving in
     the middle of the flood: it links within seconds, not after the
     strangers' held connections time out;
  b. --max-links/--links-reserved: strangers get exactly max-reserved, a
     trusted peer still links, an untrusted one is told busy;
  c. --max-links-per-peer 2: a third link with the same key is told busy;
  d. --max-links-per-address: strangers from one address get that many, a
     peer from another address links;
  e. dual stack (--address ::): IPv4 peers are keyed by their IPv4 address,
     not all in one IPv6 /64 (::ffff:0:0/96 would put every IPv4 peer in one
     bucket): four silent connections from 127.0.0.2 fill its handshake cap,
     a fifth from there is refused at once, a link from 127.0.0.3 completes."""
import time

import sclib
from hostile import (FdSampler, Strangers, connect_from, ipv6_available, read_to_end,
                     sanitizer_reports, stats)
from sclib import Checker, LinkTest, TempDir, keygen, open_fds, wait_for

c = Checker()
tmp = TempDir()
procs = []
stopped = []
socks = []


def talk(lst, peer, tag):
    """A message each way between the listener and `peer` (bounded waits)."""
    peer.send(f"send up {tag}")
    lst.wait_line(f"text=up {tag}$")
    start = len(peer.snapshot())
    lst.send(f"send down {tag}")
    peer.wait_line(f"text=down {tag}$", start=start)
    return True


def refused_busy(con):
    """Waits for a `link-test connect` to end; returns (its closed line, whether
    it was told busy by the listener, its exit status)."""
    m = con.wait_line(r"^closed peer=(\S+) reason=(\w+) by=(\w+)", timeout=15)
    rc = con.wait_exit(10)
    return m.group(0), (m.group(1), m.group(2), m.group(3)) == ("-", "busy", "peer"), rc


def stop_all():
    for p in procs:
        p.stop()
    stopped.extend(procs)
    procs.clear()
    for s in socks:
        s.close()
    socks.clear()


try:
    key_a, id_a = keygen(tmp, "a.key")  # the listener
    key_b, id_b = keygen(tmp, "b.key")  # a peer the listener trusts (or not)
    key_c, id_c = keygen(tmp, "c.key")  # another real peer, never trusted

    # --- a. descriptors: strangers stop at the reserve ------------------------
    FD_LIMIT, FD_RESERVE, N = 128, 32, 200
    lst = LinkTest.listen(key_a, "--fd-limit", str(FD_LIMIT), "--fd-reserve", str(FD_RESERVE),
                          "--trust", id_b); procs.append(lst)
    fds0 = open_fds(lst.pid)
    sampler = FdSampler(lst.pid)
    st = Strangers(lst.port, id_a, N, "127.0.9"); procs.append(st)
    linked, refused = st.wait_summary(timeout=40)
    reasons = st.refused_reasons()
    print(f"a: strangers linked={linked} refused={refused} reasons={dict(reasons)} idle fds={fds0}")
    c.check(f"a: every stranger's handshake ended ({linked} + {refused} = {N})", linked + refused == N)
    c.check(f"a: strangers were refused with busy beyond the reserve ({reasons['busy']})",
            reasons["busy"] > 0, str(dict(reasons)))
    c.check(f"a: strangers hold fewer links ({linked}) than fd-limit - fd-reserve "
            f"({FD_LIMIT - FD_RESERVE})", 0 < linked < FD_LIMIT - FD_RESERVE)
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="trusted"); procs.append(real)
    real.wait_line("^authenticated peer=" + id_a, timeout=15)
    c.check("a: a trusted peer with --expect links while strangers hold theirs",
            talk(lst, real, "trusted-fd"))
    s = stats(lst)
    peak = sampler.stop()
    c.check(f"a: the listener's descriptors stayed below the limit (peak {peak} of {FD_LIMIT}, "
            f"{sampler.samples} samples)", sampler.samples > 10 and peak < FD_LIMIT)
    emfile = [line for line in lst.err_lines if "accept_error" in line]
    c.check("a: the listener never ran out of descriptors (no tcp.accept_error in its log)",
            not emfile, emfile[:1])
    c.check(f"a: no stranger lost its link meanwhile ({linked} + 1 trusted open = {s.get('open')})",
            not st.find("^closed ") and s.get("open") == linked + 1, str(s))
    stop_all()

    # --- a2. the same flood on a probe-resistant listener; the trusted peer
    # comes while the strangers are still arriving --------------------------
    lst = LinkTest.listen(key_a, "--fd-limit", str(FD_LIMIT), "--fd-reserve", str(FD_RESERVE),
                          "--trust", id_b, "--probe-resistance"); procs.append(lst)
    sampler = FdSampler(lst.pid)
    st = Strangers(lst.port, id_a, N, "127.0.9"); procs.append(st)
    # Mid-flood: how many strangers link before the descriptors run short
    # depends on how handshakes race arrivals (27 to 42 of 200 seen); ten
    # linked means the flood is on.
    wait_for(lambda: len(st.find("^linked ")) >= 10, 20, "ten strangers linked")
    t0 = time.monotonic()
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, "--timeout", "30000",
                            name="trusted-pr"); procs.append(real)
    real.wait_line("^authenticated peer=" + id_a, timeout=30)
    dt = time.monotonic() - t0
    # the strangers give up on held connections after their own 10 s timeout
    limit = 2.0 + 1.0 * sclib.SLOW
    c.check(f"a2: probe resistance: a trusted peer links during the flood within {limit:.0f} s "
            f"({dt:.2f}s)", dt <= limit)
    c.check("a2: and talks both ways", talk(lst, real, "trusted-pr"))
    linked, refused = st.wait_summary(timeout=40)
    peak = sampler.stop()
    emfile = [line for line in lst.err_lines if "accept_error" in line]
    print(f"a2: strangers linked={linked} refused={refused} reasons={dict(st.refused_reasons())}")
    c.check(f"a2: the listener never ran out of descriptors (peak {peak} of {FD_LIMIT}, "
            f"{len(emfile)} tcp.accept_error lines)", peak < FD_LIMIT and not emfile, emfile[:1])
    stop_all()

    # --- b. max_links with links_reserved ------------------------------------
    MAX, RES, N = 20, 5, 30
    lst = LinkTest.listen(key_a, "--max-links", str(MAX), "--links-reserved", str(RES),
                          "--trust", id_b); procs.append(lst)
    st = Strangers(lst.port, id_a, N, "127.0.10"); procs.append(st)
    linked, refused = st.wait_summary(timeout=30)
    reasons = st.refused_reasons()
    c.check(f"b: strangers get max-links - links-reserved = {MAX - RES} links ({linked}), the rest "
            f"busy ({dict(reasons)})", linked == MAX - RES and reasons["busy"] == N - (MAX - RES))
    real = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="trusted"); procs.append(real)
    real.wait_line("^authenticated peer=" + id_a, timeout=15)
    c.check("b: a trusted peer links into the reserve and talks", talk(lst, real, "trusted-res"))
    other = LinkTest.connect(key_c, lst.port, "--expect", id_a, name="untrusted"); procs.append(other)
    line, busy, rc = refused_busy(other)
    c.check(f"b: an untrusted real peer is told busy, exit status {rc} ({line})", busy and rc == 1)
    s = stats(lst)
    c.check(f"b: listener counts {s.get('busy')} busy and {s.get('open')} links open",
            s.get("busy") == N - (MAX - RES) + 1 and s.get("open") == MAX - RES + 1, str(s))
    stop_all()

    # --- c. max_links_per_peer -----------------------------------------------
    lst = LinkTest.listen(key_a, "--max-links-per-peer", "2"); procs.append(lst)
    same = []
    for i in range(2):
        p = LinkTest.connect(key_b, lst.port, "--expect", id_a, name=f"same-{i}"); procs.append(p)
        p.wait_line("^authenticated peer=" + id_a)
        same.append(p)
    third = LinkTest.connect(key_b, lst.port, "--expect", id_a, name="same-2"); procs.append(third)
    line, busy, rc = refused_busy(third)
    c.check(f"c: a third link with the same key is told busy, exit status {rc} ({line})",
            busy and rc == 1)
    starts = [len(p.snapshot()) for p in same]
    lst.send("send to both")
    ok = all(p.wait_line("text=to both$", start=k) for p, k in zip(same, starts))
    c.check("c: the first two links with that key still carry messages", ok)
    fresh = LinkTest.connect(key_c, lst.port, "--expect", id_a, name="other-key"); procs.append(fresh)
    fresh.wait_line("^authenticated peer=" + id_a)
    c.check("c: a peer with another key links", talk(lst, fresh, "other-key"))
    stop_all()

    # --- d. max_links_per_address: strangers from one address ----------------
    K, N, SRC = 3, 10, "127.0.11.1"
    lst = LinkTest.listen(key_a, "--max-links-per-address", str(K),
                          "--max-handshakes-per-address", "64",
                          "--handshake-burst-per-address", "64"); procs.append(lst)
    st = Strangers(lst.port, id_a, N, SRC); procs.append(st)
    linked, refused = st.wait_summary(timeout=30)
    reasons = st.refused_reasons()
    c.check(f"d: {N} strangers from {SRC}: {K} link ({linked}), the rest busy ({dict(reasons)})",
            linked == K and reasons["busy"] == N - K)
    real = LinkTest.connect(key_c, lst.port, "--expect", id_a, name="elsewhere"); procs.append(real)
    real.wait_line("^authenticated peer=" + id_a, timeout=15)
    c.check("d: an untrusted peer from 127.0.0.1 links and talks", talk(lst, real, "elsewhere"))
    stop_all()

    # --- e. dual stack: IPv4-mapped peers keyed as IPv4 -----------------------
    if not ipv6_available():
        print("skip e: cannot bind the IPv6 wildcard '::' on this host")
    else:
        lst = LinkTest.listen(key_a, "--address", "::", "--max-handshakes-per-address", "4",
                              "--timeout", "20000"); procs.append(lst)
        for i in range(4):
            socks.append(connect_from("127.0.0.2", lst.port))
        wait_for(lambda: stats(lst).get("handshaking") == 4, 10, "four handshakes from 127.0.0.2")
        fifth = connect_from("127.0.0.2", lst.port); socks.append(fifth)
        data, end, dt = read_to_end(fifth, 3 * sclib.SLOW)
        c.check(f"e: a fifth connection from 127.0.0.2 is closed at once ({end} after {dt:.2f}s)",
                data == b"" and end in ("fin", "reset") and dt < 1.0 * sclib.SLOW)
        real = LinkTest.connect(key_b, lst.port, "--expect", id_a, "--source", "127.0.0.3",
                                name="from-127.0.0.3"); procs.append(real)
        real.wait_line("^authenticated peer=" + id_a, timeout=15)
        c.check("e: a link from 127.0.0.3 completes while 127.0.0.2 is at its cap",
                talk(lst, real, "dual-stack"))
        s = stats(lst)
        c.check(f"e: the listener refused exactly one (handshake_limit={s.get('handshake_limit')}) "
                f"and still has 127.0.0.2's four handshaking ({s.get('handshaking')})",
                s.get("handshake_limit") == 1 and s.get("refused") == 1 and s.get("handshaking") == 4,
                str(s))
        stop_all()
finally:
    stop_all()
    tmp.cleanup()
reports = sanitizer_reports(stopped)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
