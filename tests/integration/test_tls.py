"""The tls transport layer with real peers (openssl, stunnel4):
  - `openssl s_client -tls1_3 -alpn secirc/1` completes a TLS 1.3 handshake
    with the listener's certificate and ALPN; a TLS 1.2 client is refused
    and counted as tls_version;
  - a plain-TCP client on the TLS port and a TLS client on a plain port
    both fail with a reason, counted and logged, while a link on the same
    listener keeps carrying messages;
  - a TLS-terminating proxy (stunnel4 in server mode, forwarding plain TCP
    to a plain listener) is found out: with --channel-binding require the
    Noise handshake fails (handshake_failed); with --channel-binding off the
    client links through it;
  - --tls-min 1.3 against a TLS 1.2-only server (openssl s_server, and a
    link-test with --tls-max 1.2) fails with tls_version;
  - SPKI pins and CA verification: the right pin links, a wrong pin fails
    with tls_cert on both sides; a CA file and the address or --tls-sni
    name checked;
  - websocket over TLS (wss, --ws --tls): links with transport
    tcp+tls+websocket and binding, and ends cleanly from either side: the
    connector quits, the listener closes a link, the listener is stopped
    (SIGTERM) with a live link; whoever ends a link exits 0, a connector
    whose link the peer ended 1, none crashes (once the one that closed
    did: its TLS session was freed while the OpenSSL filter under the
    websocket layer still read with it);
  - start-up errors are distinct: certificate missing, certificate
    unreadable, key not matching the certificate, not PEM."""
import os
import shutil
import stat
import subprocess
import time

import sclib
from hostile import sanitizer_reports, stats
from sclib import Checker, LinkTest, Proc, TempDir, binary, free_port, keygen, run, wait_for

c = Checker()
tmp = TempDir()
procs = []
stopped = []


def linktest(mode, key, *args, name):
    """link-test on 127.0.0.1 with exactly these arguments (no SC_TEST_LAYER)."""
    host = ["--port", "0"] if mode == "listen" else []
    p = LinkTest([binary("secirc"), "link-test", mode, "--key", key, *host, *args], name=name)
    procs.append(p)
    if mode == "listen":
        m = p.wait_line(r"^listening address=\S+ port=(\d+) relay_id=([0-9a-f]{64})")
        p.port, p.relay_id = int(m.group(1)), m.group(2)
    return p


def connect(key, port, *args, name):
    return linktest("connect", key, "--host", "127.0.0.1", "--port", str(port), *args, name=name)


def talk(lst, con, tag):
    """A message each way (bounded waits)."""
    con.send(f"send up {tag}")
    lst.wait_line(f"text=up {tag}$")
    start = len(con.snapshot())
    lst.send(f"send down {tag}")
    con.wait_line(f"text=down {tag}$", start=start)
    return True


def end(p, timeout=10):
    """Stops a peer that ignores stdin (stunnel, s_server): SIGTERM, bounded."""
    if p.p.poll() is None:
        p.p.terminate()
        try:
            p.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.p.kill()
            p.p.wait(timeout=5)


def failed_line(con):
    """(the connector's failure line, its exit status)."""
    m = con.wait_line(r"^(connect_failed .*|closed peer=- .*)$", timeout=15)
    return m.group(1), con.wait_exit(10)


try:
    key_a, id_a = keygen(tmp, "a.key")
    key_b, id_b = keygen(tmp, "b.key")
    key_c, id_c = keygen(tmp, "c.key")
    ssdir = tmp.join("tls")
    os.mkdir(ssdir)

    # --- a TLS listener and a healthy TLS link ---------------------------------
    lst = linktest("listen", key_a, "--tls", "--tls-self-signed", ssdir, "--timeout", "2000",
                   "--log-level", "info", name="tls-listener")
    pin = lst.wait_line(r"^tls cert=\S+ pin=(sha256//\S+)$").group(1)
    mode = stat.S_IMODE(os.stat(os.path.join(ssdir, "key.pem")).st_mode)
    c.check(f"--tls-self-signed made cert.pem and key.pem (mode {mode:o})", mode == 0o600)
    good = connect(key_b, lst.port, "--tls", "--expect", id_a, name="tls-good")
    m = good.wait_line(r"^authenticated peer=(\w+) .*transport=(\S+) alpn=(\S+) binding=yes")
    c.check(f"TLS link: transport={m.group(2)} alpn={m.group(3)}, bound to the session",
            m.group(1) == id_a and m.group(2) == "tcp+tls" and m.group(3) == "secirc/1+cb")
    m = lst.wait_line(r"^authenticated peer=(\w+) .*transport=(\S+) alpn=(\S+) binding=yes")
    c.check("the listener sees the same (tcp+tls, secirc/1+cb, bound)",
            m.group(1) == id_b and m.group(2, 3) == ("tcp+tls", "secirc/1+cb"))
    c.check("messages both ways over TLS", talk(lst, good, "tls"))

    # --- openssl s_client: TLS 1.3, the certificate, ALPN ------------------------
    r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{lst.port}", "-tls1_3", "-alpn",
             "secirc/1"], stdin=subprocess.DEVNULL, timeout=20)
    out = r.stdout
    c.check("s_client: TLS 1.3 handshake completed",
            "New, TLSv1.3, Cipher is" in out, out[-800:] + r.stderr[-400:])
    c.check("s_client: the listener's certificate (subject CN = 127.0.0.1)",
            "subject=CN = 127.0.0.1" in out, out[:400])
    c.check("s_client: ALPN secirc/1 negotiated", "ALPN protocol: secirc/1" in out)
    start = len(lst.snapshot())
    r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{lst.port}", "-tls1_2"],
            stdin=subprocess.DEVNULL, timeout=20)
    lst.wait_line(r"^closed peer=- reason=tls_version by=local", start=start)
    c.check("s_client -tls1_2: refused, counted as tls_version",
            "New, (NONE)" in r.stdout or r.returncode != 0)

    # --- a plain client on the TLS port ----------------------------------------------
    start = len(lst.snapshot())
    plain = connect(key_c, lst.port, "--expect", id_a, name="plain-on-tls")
    line, rc = failed_line(plain)
    c.check(f"plain client on the TLS port fails ({line}), exit {rc}",
            rc != 0 and plain.count("^authenticated") == 0)
    lst.wait_line(r"^closed peer=- reason=tls_failed by=local", start=start)
    logged = wait_for(lambda: [x for x in lst.err_lines if "listener.layer_failed" in x
                               and "reason=tls_failed" in x], 5, "the layer_failed log line")
    c.check(f"the listener logs it: {logged[-1].split(' ', 2)[-1]}",
            "not a TLS handshake record" in logged[-1])
    c.check("the TLS link still carries messages", talk(lst, good, "after-plain"))

    # --- a TLS client on a plain port ----------------------------------------------------
    plst = linktest("listen", key_a, "--timeout", "2000", name="plain-listener")
    pgood = connect(key_b, plst.port, "--expect", id_a, name="plain-good")
    pgood.wait_line("^authenticated peer=" + id_a)
    start = len(plst.snapshot())
    tcli = connect(key_c, plst.port, "--tls", "--expect", id_a, name="tls-on-plain")
    line, rc = failed_line(tcli)
    # the plain listener takes the ClientHello for a message 1 with extra
    # bytes and closes: the client's TLS handshake ends with the connection
    # (or, had a message 2 come back first, fails on it)
    c.check(f"TLS client on a plain port fails ({line}), exit {rc}",
            rc != 0 and ("reason=tls_failed" in line or "tls: closed during the handshake" in line))
    m = plst.wait_line(r"^closed peer=- reason=(\w+) by=local", start=start)
    s = stats(plst)
    c.check(f"the plain listener closed it with reason={m.group(1)}, counted ({s.get(m.group(1))})",
            s.get(m.group(1), 0) >= 1)
    c.check("the plain link still carries messages", talk(plst, pgood, "after-tls"))

    # --- stunnel terminates TLS in front of the plain listener ----------------------------
    if not shutil.which("stunnel4"):
        raise SystemExit("stunnel4 missing (scripts/deps installs it)")
    sport = free_port()
    conf = tmp.join("stunnel.conf")
    with open(conf, "w") as f:
        f.write(f"foreground = yes\nsyslog = no\npid =\ndebug = 5\n[relay]\n"
                f"accept = 127.0.0.1:{sport}\nconnect = 127.0.0.1:{plst.port}\n"
                f"cert = {ssdir}/cert.pem\nkey = {ssdir}/key.pem\n")
    st = Proc(["stunnel4", conf], name="stunnel", stdin=False)
    procs.append(st)
    wait_for(lambda: any("Configuration successful" in x for x in st.err_lines + st.lines), 10,
             "stunnel started")

    def listening(port):
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    wait_for(lambda: listening(sport), 10, "stunnel listening")
    start = len(plst.snapshot())
    bound = connect(key_c, sport, "--tls", "--expect", id_a, name="through-stunnel-bound")
    line, rc = failed_line(bound)
    c.check(f"through stunnel with --channel-binding require: the Noise handshake fails ({line})",
            "reason=handshake_failed" in line and rc != 0 and bound.count("^authenticated") == 0)
    unbound = connect(key_c, sport, "--tls", "--channel-binding", "off", "--expect", id_a,
                      name="through-stunnel-unbound")
    m = unbound.wait_line(r"^authenticated peer=(\w+) .*transport=(\S+)")
    c.check(f"through stunnel with --channel-binding off: links ({m.group(2)}, no binding)",
            m.group(1) == id_a and "binding=yes" not in m.group(0))
    plst.wait_line("^authenticated peer=" + id_c, start=start)
    c.check("and talks both ways through stunnel", talk(plst, unbound, "stunnel"))
    unbound.stop()
    end(st)

    # --- version: --tls-min 1.3 against TLS 1.2-only servers ------------------------------
    oport = free_port()
    srv = Proc(["openssl", "s_server", "-accept", str(oport), "-tls1_2", "-cert",
                f"{ssdir}/cert.pem", "-key", f"{ssdir}/key.pem", "-naccept", "1"], name="s_server")
    procs.append(srv)
    srv.wait_line("^ACCEPT")
    v = connect(key_b, oport, "--tls", "--tls-min", "1.3", name="min13-vs-s_server")
    line, rc = failed_line(v)
    c.check(f"--tls-min 1.3 vs openssl s_server -tls1_2: {line}",
            "error=ETLSVERSION " in line and "reason=tls_version" in line and rc != 0)
    end(srv)
    old = linktest("listen", key_a, "--tls", "--tls-self-signed", ssdir, "--tls-min", "1.2",
                   "--tls-max", "1.2", name="tls12-listener")
    start = len(old.snapshot())
    v = connect(key_b, old.port, "--tls", name="min13-vs-tls12")
    line, rc = failed_line(v)
    old.wait_line(r"^closed peer=- reason=tls_version by=local", start=start)
    c.check(f"--tls-min 1.3 vs link-test --tls-max 1.2: {line}; the listener counts tls_version",
            "reason=tls_version" in line and stats(old).get("tls_version") == 1)
    v12 = connect(key_b, old.port, "--tls", "--tls-min", "1.2", "--expect", id_a, name="tls12")
    v12.wait_line(r"^authenticated .*binding=yes")
    c.check("a TLS 1.2 link binds too (extended master secret)", talk(old, v12, "tls12"))

    # --- pins and CA verification -------------------------------------------------------------
    other_dir = tmp.join("other")
    os.mkdir(other_dir)
    other_cert, _ = sclib.make_tls_cert(other_dir, cn="elsewhere")
    olst = linktest("listen", key_c, "--tls", "--tls-cert", other_cert, "--tls-key",
                    os.path.join(other_dir, "key.pem"), name="other-listener")
    other_pin = [olst.wait_line(r"^tls cert=\S+ pin=(sha256//\S+)$").group(1)]
    olst.stop()
    c.check("link-test prints a certificate's pin", other_pin[0] != pin)
    p_ok = connect(key_b, lst.port, "--tls", "--tls-pin", other_pin[0], "--tls-pin", pin,
                   "--expect", id_a, name="pin-ok")
    p_ok.wait_line("^authenticated peer=" + id_a)
    c.check("the right pin (one of two) links", True)
    start = len(lst.snapshot())
    p_bad = connect(key_b, lst.port, "--tls", "--tls-pin", other_pin[0], name="pin-bad")
    line, rc = failed_line(p_bad)
    c.check(f"a wrong pin fails with tls_cert ({line})",
            "error=ETLSCERT " in line and "reason=tls_cert" in line and "matches no pin" in line
            and rc != 0)
    lst.wait_line(r"^closed peer=- reason=tls_cert by=local", start=start)
    c.check("the listener counts it as tls_cert (bad_certificate alert)", True)
    ca_ok = connect(key_b, lst.port, "--tls", "--tls-verify", "ca", "--tls-ca",
                    os.path.join(ssdir, "cert.pem"), "--expect", id_a, name="ca-ok")
    ca_ok.wait_line("^authenticated peer=" + id_a)
    c.check("--tls-verify ca with the listener's certificate as CA: links (127.0.0.1 matches)", True)
    ca_bad = connect(key_b, lst.port, "--tls", "--tls-verify", "ca", "--tls-ca",
                     os.path.join(ssdir, "cert.pem"), "--tls-sni", "relay.example", name="ca-sni")
    line, rc = failed_line(ca_bad)
    c.check(f"--tls-verify ca with --tls-sni relay.example: the name does not match ({line})",
            "reason=tls_cert" in line and rc != 0)
    ca_other = connect(key_b, lst.port, "--tls", "--tls-verify", "ca", "--tls-ca", other_cert,
                       name="ca-other")
    line, rc = failed_line(ca_other)
    c.check(f"--tls-verify ca with another CA: not verified ({line})",
            "reason=tls_cert" in line and "not verified" in line and rc != 0)
    s = stats(lst)
    c.check(f"TLS listener counts: tls_failed={s.get('tls_failed')} tls_version="
            f"{s.get('tls_version')} tls_cert={s.get('tls_cert')}",
            s.get("tls_failed") == 1 and s.get("tls_version") == 1 and s.get("tls_cert") >= 2,
            str(s))
    c.check("the first TLS link carried messages throughout", talk(lst, good, "at-end"))

    # --- websocket over TLS (wss), ended from either side -----------------------------------------
    wlst = linktest("listen", key_a, "--ws", "--tls", "--tls-self-signed", ssdir, name="wss-listener")
    w1 = connect(key_b, wlst.port, "--ws", "--tls", "--expect", id_a, name="wss-quits")
    m = w1.wait_line(r"^authenticated peer=(\w+) .*transport=(\S+) alpn=(\S+) binding=yes")
    c.check(f"wss link: transport={m.group(2)} alpn={m.group(3)}, bound to the session",
            m.group(1) == id_a and m.group(2, 3) == ("tcp+tls+websocket", "secirc/1+cb"))
    c.check("messages both ways over wss", talk(wlst, w1, "wss"))
    start = len(wlst.snapshot())
    w1.send("quit")
    rc = w1.wait_exit(10)
    wlst.wait_line(r"^closed peer=\w+ reason=shutdown by=peer", start=start)
    c.check(f"the wss connector quits: exit {rc}; the listener hears its shutdown", rc == 0)
    w2 = connect(key_c, wlst.port, "--ws", "--tls", "--expect", id_a, name="wss-closed")
    w2.wait_line("^authenticated peer=" + id_a)
    start = len(w2.snapshot())
    wlst.send("close")
    m = w2.wait_line(r"^closed peer=\w+ reason=(\w+) by=peer", start=start)
    rc = w2.wait_exit(10)
    c.check(f"the wss listener closes a link: the connector hears {m.group(1)}, exits {rc}",
            m.group(1) == "local_close" and rc == 0)
    w3 = connect(key_b, wlst.port, "--ws", "--tls", "--expect", id_a, name="wss-stopped")
    w3.wait_line("^authenticated peer=" + id_a)
    c.check("the wss listener links again and carries messages", talk(wlst, w3, "wss-again"))
    start = len(w3.snapshot())
    wlst.p.terminate()
    rc = wlst.wait_exit(10)
    m = w3.wait_line(r"^closed peer=\w+ reason=(\w+) by=peer", start=start)
    rc3 = w3.wait_exit(10)
    c.check(f"the wss listener stopped (SIGTERM) with a live link: exit {rc}; the connector "
            f"hears {m.group(1)}, exits {rc3} (1: a link the peer ended)",
            rc == 0 and m.group(1) == "shutdown" and rc3 == 1)

    # --- start-up errors, each its own ---------------------------------------------------------
    def start_error(*args, user=None):
        prog = binary("secirc")
        if user:  # a copy it can run wherever the build directory is
            prog = tmp.join("secirc")
            shutil.copy(binary("secirc"), prog)
            os.chmod(prog, 0o755)
        cmd = [prog, "link-test", "listen", "--key", key_a, "--port", "0", "--tls", *args]
        if user:
            cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
        r = run(cmd, stdin=subprocess.DEVNULL, timeout=20)
        return r.returncode, r.stderr.strip()
    rc, err = start_error("--tls-cert", tmp.join("missing.pem"), "--tls-key", tmp.join("k.pem"))
    c.check(f"missing certificate file: exit {rc}, '{err}'",
            rc == 1 and "missing.pem" in err and "No such file" in err and "ENOENT" in err)
    rc, err = start_error("--tls-cert", os.path.join(ssdir, "cert.pem"), "--tls-key",
                          os.path.join(other_dir, "key.pem"))
    c.check(f"key not matching the certificate: exit {rc}, '{err}'",
            rc == 1 and "does not match" in err and "ETLSKEY" in err)
    junk = tmp.join("junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    rc, err = start_error("--tls-cert", junk, "--tls-key", os.path.join(ssdir, "key.pem"))
    c.check(f"not a PEM certificate: exit {rc}, '{err}'", rc == 1 and "EFORMAT" in err)
    # unreadable: root reads anything, so as root the listener runs as nobody
    hidden = tmp.join("hidden.pem")
    shutil.copy(os.path.join(ssdir, "cert.pem"), hidden)
    os.chmod(hidden, 0)
    user = None
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            raise SystemExit("setpriv missing (util-linux)")
        user = "nobody"
        os.chmod(tmp.path, 0o755)
        shutil.chown(key_a, user="nobody")
    rc, err = start_error("--tls-cert", hidden, "--tls-key", os.path.join(ssdir, "key.pem"),
                          user=user)
    if user:
        shutil.chown(key_a, user=0)
    c.check(f"unreadable certificate file: exit {rc}, '{err}'",
            rc == 1 and "hidden.pem" in err and "Permission denied" in err and "EACCES" in err)
finally:
    for p in procs:
        if p.name in ("stunnel", "s_server"):
            end(p)
        p.stop()
    stopped.extend(procs)
    tmp.cleanup()
reports = sanitizer_reports(stopped)
c.check("no sanitizer report from any process", not reports, reports[:3])
c.done()
