#!/usr/bin/env python3
"""tests/tor/selftest.py - prove a running privnet works end to end, without secirc.

Usage: selftest.py DIR   (DIR from `privnet.sh start DIR`; selftest.sh does it all)

Through the client's control port (cookie authentication) it creates an onion
service with ADD_ONION NEW:ED25519-V3 in front of a local TCP echo server,
waits for the descriptor upload (HS_DESC UPLOADED), then connects to the
.onion through the client's SOCKS port (SOCKS5, ATYP domain) until 100 KiB
echo back, twice. If privnet started its exit client (PRIVNET_EXIT_CLIENT=1,
as selftest.sh does), it first checks a plain exit stream through the network
to a 127.0.0.1 echo server, and that the exit refuses 127.0.0.2. Every wait is
bounded; it prints the elapsed times. Python standard library only; loopback
addresses only.
"""

import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torctl  # noqa: E402

ONION_SECONDS = float(os.environ.get("SELFTEST_ONION_SECONDS", "120"))
EXIT_SECONDS = float(os.environ.get("SELFTEST_EXIT_SECONDS", "60"))
VIRT_PORT = 6697
PAYLOAD = os.urandom(100 * 1024)

SOCKS5_ERRORS = {
    1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
    4: "host unreachable", 5: "connection refused", 6: "TTL expired",
    7: "command not supported", 8: "address type not supported",
    0xF0: "onion service descriptor can not be found",
    0xF1: "onion service descriptor is invalid",
    0xF2: "onion service introduction failed",
    0xF3: "onion service rendezvous failed",
    0xF4: "onion service missing client authorization",
    0xF5: "onion service wrong client authorization",
    0xF6: "onion service invalid address",
    0xF7: "onion service introduction timed out",
}


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep:
                env[key] = value.strip("'\"")
    return env


class EchoServer:
    """A threaded TCP echo server on a loopback address, port chosen by the kernel."""

    def __init__(self, address="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        conn.settimeout(60)
        with conn:
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return

    def close(self):
        self.sock.close()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def socks5_connect(socks_port, host, port, timeout):
    """SOCKS5 CONNECT (no auth) through tor; host is a domain or an IPv4 literal.

    Returns the connected socket; raises ConnectionError with tor's reason."""
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    try:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise ConnectionError("SOCKS5: no acceptable auth method")
        try:
            addr = b"\x01" + socket.inet_aton(host)
        except OSError:
            name = host.encode()
            addr = b"\x03" + bytes([len(name)]) + name
        s.sendall(b"\x05\x01\x00" + addr + struct.pack(">H", port))
        ver, rep, _, atyp = recv_exact(s, 4)
        if ver != 5:
            raise ConnectionError("SOCKS5: bad reply version %d" % ver)
        if atyp == 1:
            recv_exact(s, 4 + 2)
        elif atyp == 4:
            recv_exact(s, 16 + 2)
        elif atyp == 3:
            recv_exact(s, recv_exact(s, 1)[0] + 2)
        if rep != 0:
            raise ConnectionError("SOCKS5 reply 0x%02x (%s)" % (rep, SOCKS5_ERRORS.get(rep, "?")))
        return s
    except BaseException:
        s.close()
        raise


def echo_through(socks_port, host, port, timeout):
    """Connect through tor, send PAYLOAD, check that exactly it comes back."""
    with socks5_connect(socks_port, host, port, timeout) as s:
        s.settimeout(timeout)
        sender = threading.Thread(target=s.sendall, args=(PAYLOAD,), daemon=True)
        sender.start()
        got = recv_exact(s, len(PAYLOAD))
        sender.join(timeout)
        if got != PAYLOAD:
            raise ConnectionError("echo mismatch")


def try_until(deadline, what, attempt, on_fail=None):
    """Call attempt() until it succeeds or the deadline passes; return seconds taken."""
    t0 = time.monotonic()
    tries, last = 0, None
    while time.monotonic() < deadline:
        tries += 1
        try:
            attempt(max(1.0, min(20.0, deadline - time.monotonic())))
            print("selftest: %s OK after %.1fs (%d attempt%s)"
                  % (what, time.monotonic() - t0, tries, "" if tries == 1 else "s"))
            return time.monotonic() - t0
        except (OSError, ConnectionError, torctl.ControlError) as e:
            if str(e) != last or os.environ.get("SELFTEST_VERBOSE"):
                print("selftest: %s: attempt %d after %.1fs: %s"
                      % (what, tries, time.monotonic() - t0, e))
                last = str(e)
            if on_fail:
                on_fail()
            time.sleep(1.0)  # poll interval between attempts
    raise SystemExit("selftest: FAIL: %s did not succeed within the deadline (%d attempts, last: %s)"
                     % (what, tries, last))


def check_exit(socks_port, echo):
    """An exit stream to 127.0.0.1 echoes; one to 127.0.0.2 (another loopback
    address, with its own echo server) is refused by the exit policy."""
    took = try_until(time.monotonic() + EXIT_SECONDS,
                     "exit stream to 127.0.0.1:%d (exit client)" % echo.port,
                     lambda t: echo_through(socks_port, "127.0.0.1", echo.port, t))
    other = EchoServer("127.0.0.2")
    try:
        echo_through(socks_port, "127.0.0.2", other.port, 30.0)
    except (OSError, ConnectionError) as e:
        print("selftest: exit stream to 127.0.0.2:%d refused as it should be: %s" % (other.port, e))
    else:
        raise SystemExit("selftest: FAIL: the exit policy let a stream to 127.0.0.2 through")
    finally:
        other.close()
    return took


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    env = read_env(os.path.join(argv[1], "env"))
    socks_port, control_port = int(env["SOCKS_PORT"]), int(env["CONTROL_PORT"])
    print("selftest: privnet start: consensus after %ss, client bootstrapped after %ss"
          % (env.get("CONSENSUS_SECONDS", "?"), env.get("BOOTSTRAP_SECONDS", "?")))

    echo = EchoServer()
    exit_took = None
    if "EXIT_SOCKS_PORT" in env and EXIT_SECONDS > 0:
        exit_took = check_exit(int(env["EXIT_SOCKS_PORT"]), echo)
    else:
        print("selftest: no exit client (PRIVNET_EXIT_CLIENT=1 starts one): exit not tested")
    with torctl.Controller(control_port) as ctl:
        ctl.authenticate(cookie_path=env["CONTROL_COOKIE"])
        ctl.command("SETEVENTS HS_DESC")
        t0 = time.monotonic()
        deadline = t0 + ONION_SECONDS
        sid = ctl.add_onion(VIRT_PORT, echo.port)
        onion = sid + ".onion"
        print("selftest: ADD_ONION -> %s port %d -> 127.0.0.1:%d" % (onion, VIRT_PORT, echo.port))

        # Wait until every upload tor started (HS_DESC UPLOAD, one per HSDir
        # and descriptor) has ended (UPLOADED or FAILED) and one succeeded: a
        # fetch from an HSDir that has not got it yet fails with 0xF0 and makes
        # the client skip that HSDir for a while.
        uploaded, pending, settle = None, {}, deadline
        while time.monotonic() < min(deadline, settle):
            ev = ctl.read_event(max(0.1, min(deadline, settle) - time.monotonic()))
            if ev is None:
                continue
            if os.environ.get("SELFTEST_VERBOSE"):
                print("selftest: %.1fs event %s" % (time.monotonic() - t0, ev[:120]))
            words = ev.split(" ")
            if len(words) < 5 or words[0] != "HS_DESC" or words[2] != sid:
                continue
            hsdir = words[4]
            if words[1] == "UPLOAD":
                pending[hsdir] = pending.get(hsdir, 0) + 1
            elif words[1] in ("UPLOADED", "FAILED"):
                pending[hsdir] = pending.get(hsdir, 0) - 1
                if words[1] == "UPLOADED" and uploaded is None:
                    uploaded = time.monotonic() - t0
                    settle = time.monotonic() + 15  # bound the wait for the others
            if uploaded is not None and all(n <= 0 for n in pending.values()):
                break
        if uploaded is None:
            raise SystemExit("selftest: FAIL: no HS_DESC UPLOADED for %s within %.0fs"
                             % (sid, ONION_SECONDS))
        print("selftest: descriptor uploads done %.1fs after ADD_ONION (first at %.1fs)"
              % (time.monotonic() - t0, uploaded))

        def newnym():
            # forget failed descriptor fetches so that the next attempt asks again
            ctl.command("SIGNAL NEWNYM")

        try_until(deadline, "onion echo via %s" % onion,
                  lambda t: echo_through(socks_port, onion, VIRT_PORT, t), newnym)
        first = time.monotonic() - t0
        print("selftest: first onion connection %.1fs after ADD_ONION" % first)
        try_until(time.monotonic() + 30, "second onion connection",
                  lambda t: echo_through(socks_port, onion, VIRT_PORT, t))
        ctl.command("DEL_ONION " + sid)

    echo.close()
    print("selftest: PASS (bootstrap %ss, descriptor uploaded %.1fs and first onion connection"
          " %.1fs after ADD_ONION, first exit stream %s)"
          % (env.get("BOOTSTRAP_SECONDS", "?"), uploaded, first,
             "%.1fs" % exit_took if exit_took is not None else "not tested"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
