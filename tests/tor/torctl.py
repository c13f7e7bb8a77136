#!/usr/bin/env python3
"""tests/tor/torctl.py - helpers for the private Tor test network (privnet.sh).

Python 3 standard library only. Talks to a local tor's control port
(PROTOCOLINFO, SAFECOOKIE/COOKIE authentication, GETINFO, ADD_ONION, events)
and picks free 127.0.0.1 ports. It never listens or connects anywhere but
127.0.0.1, and every wait in it is bounded by a deadline.

Command line (used by privnet.sh):
  torctl.py ports N                       print N distinct free TCP ports on 127.0.0.1
  torctl.py wait-consensus DIRPORT NODES SECONDS
                                          poll an authority's DirPort until its current
                                          consensus lists NODES relays Running and
                                          Stable; exit 0, or 1 on timeout
  torctl.py wait-bootstrap PORT COOKIE SECONDS [NAME]
                                          poll GETINFO status/bootstrap-phase until
                                          PROGRESS=100; exit 0, or 1 on timeout
"""

import hashlib
import hmac
import os
import socket
import sys
import time
import urllib.error
import urllib.request

POLL_SECONDS = 0.5


def free_ports(count):
    """Return `count` distinct TCP ports free on 127.0.0.1 (bind port 0, read it back).

    All sockets stay bound until every port is chosen, so the ports differ;
    another process may still take one before tor binds it (unlikely)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ControlError(Exception):
    """A control-port reply that is not 2xx, or a broken connection."""


class Controller:
    """A minimal synchronous Tor control-port client (control-spec.txt).

    Replies are returned as a list of (status, text) lines; "250+" data blocks
    are folded into the text of their line. Asynchronous 650 events read while
    waiting for a reply are queued in self.events."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.events = []

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _readline(self, deadline=None):
        """One reply line; socket.timeout if `deadline` passes with no full line."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ControlError("control line too long")
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply from tor")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ControlError("control connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def _read_reply(self, first_deadline=None):
        """Read one complete reply (possibly an event) as [(status, text)].

        `first_deadline` bounds the wait for its first line; the rest of a
        reply must follow within the connection's timeout."""
        lines = []
        line = self._readline(first_deadline)
        try:
            while True:
                if len(line) < 4:
                    raise ControlError("malformed control line: %r" % line)
                status, sep, text = line[:3], line[3], line[4:]
                if sep == "+":
                    data = []
                    while True:
                        d = self._readline()
                        if d == ".":
                            break
                        data.append(d[1:] if d.startswith("..") else d)
                    text = text + "\n" + "\n".join(data)
                lines.append((status, text))
                if sep == " ":
                    return lines
                line = self._readline()
        except (socket.timeout, TimeoutError):
            raise ControlError("tor stopped in the middle of a reply") from None

    def read_event(self, timeout):
        """Return the next queued or incoming 650 event text, or None after timeout."""
        if self.events:
            return self.events.pop(0)
        try:
            reply = self._read_reply(time.monotonic() + timeout)
        except (socket.timeout, TimeoutError):
            return None  # a partial first line stays buffered for the next read
        return "\n".join(t for _, t in reply)

    def command(self, line):
        """Send one command line; return its reply lines, raise on non-2xx."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(line.encode() + b"\r\n")
        while True:
            reply = self._read_reply()
            if reply[0][0] == "650":
                self.events.append("\n".join(t for _, t in reply))
                continue
            if not reply[-1][0].startswith("2"):
                raise ControlError("%s -> %s %s" % (line.split(" ")[0], reply[-1][0], reply[-1][1]))
            return reply

    def authenticate(self, cookie_path=None, password=None):
        """PROTOCOLINFO, then SAFECOOKIE (preferred), COOKIE or password."""
        info = self.command("PROTOCOLINFO 1")
        methods, cookiefile = [], cookie_path
        for _, text in info:
            if text.startswith("AUTH METHODS="):
                first = text.split(" ")[1]
                methods = first.split("=", 1)[1].split(",")
                if "COOKIEFILE=" in text and cookiefile is None:
                    cookiefile = text.split('COOKIEFILE="', 1)[1].rsplit('"', 1)[0]
        if "NULL" in methods:
            self.command("AUTHENTICATE")
            return
        if password is not None and "HASHEDPASSWORD" in methods:
            self.command('AUTHENTICATE "%s"' % password.replace("\\", "\\\\").replace('"', '\\"'))
            return
        if cookiefile is None:
            raise ControlError("no usable authentication method in %s" % methods)
        with open(cookiefile, "rb") as f:
            cookie = f.read(64)
        if len(cookie) != 32:
            raise ControlError("cookie file %s is not 32 bytes" % cookiefile)
        if "SAFECOOKIE" in methods:
            client_nonce = os.urandom(32)
            reply = self.command("AUTHCHALLENGE SAFECOOKIE " + client_nonce.hex())
            fields = dict(kv.split("=", 1) for kv in reply[0][1].split(" ")[1:] if "=" in kv)
            server_hash = bytes.fromhex(fields["SERVERHASH"])
            server_nonce = bytes.fromhex(fields["SERVERNONCE"])
            msg = cookie + client_nonce + server_nonce
            want = hmac.new(b"Tor safe cookie authentication server-to-controller hash",
                            msg, hashlib.sha256).digest()
            if not hmac.compare_digest(want, server_hash):
                raise ControlError("SAFECOOKIE: tor's server hash does not match our cookie")
            mine = hmac.new(b"Tor safe cookie authentication controller-to-server hash",
                            msg, hashlib.sha256).digest()
            self.command("AUTHENTICATE " + mine.hex())
        elif "COOKIE" in methods:
            self.command("AUTHENTICATE " + cookie.hex())
        else:
            raise ControlError("no usable authentication method in %s" % methods)

    def getinfo(self, key):
        """Return the value of one GETINFO key (data blocks included)."""
        for _, text in self.command("GETINFO " + key):
            if text.startswith(key + "="):
                value = text[len(key) + 1:]
                return value[1:] if value.startswith("\n") else value
        raise ControlError("GETINFO %s: key missing in reply" % key)

    def add_onion(self, virt_port, target_port):
        """Create an ephemeral v3 onion service Port=virt -> 127.0.0.1:target.

        The service lives as long as this control connection. Returns the
        service id (the .onion name without the suffix)."""
        reply = self.command("ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=%d,127.0.0.1:%d"
                             % (virt_port, target_port))
        for _, text in reply:
            if text.startswith("ServiceID="):
                return text.split("=", 1)[1]
        raise ControlError("ADD_ONION: no ServiceID in reply")


def bootstrap_progress(ctl):
    """Return the client's bootstrap percentage (0..100)."""
    phase = ctl.getinfo("status/bootstrap-phase")
    for field in phase.split(" "):
        if field.startswith("PROGRESS="):
            return int(field.split("=", 1)[1])
    return 0


def wait_bootstrap(port, cookie, seconds, name="client"):
    """Poll until tor on `port` reports PROGRESS=100; True on success."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            with Controller(port, timeout=5.0) as ctl:
                ctl.authenticate(cookie_path=cookie)
                while time.monotonic() < deadline:
                    progress = bootstrap_progress(ctl)
                    if progress != last:
                        print("privnet: %s bootstrap %d%% (%.0fs)"
                              % (name, progress, seconds - (deadline - time.monotonic())),
                              file=sys.stderr)
                        last = progress
                    if progress >= 100:
                        return True
                    time.sleep(POLL_SECONDS)
        except (OSError, ControlError):
            # tor not listening yet or cookie not written yet: poll again
            time.sleep(POLL_SECONDS)
    return False


def running_relays(dirport):
    """Count the relays an authority's current consensus lists Running and Stable."""
    url = "http://127.0.0.1:%d/tor/status-vote/current/consensus" % dirport
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read(4 << 20).decode("ascii", "replace")
    count = 0
    for line in text.split("\n"):
        if line.startswith("s "):
            flags = line.split()[1:]
            if "Running" in flags and "Stable" in flags:
                count += 1
    return count


def wait_consensus(dirport, nodes, seconds):
    """Poll until the authority's consensus lists `nodes` usable relays."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            count = running_relays(dirport)
        except (OSError, urllib.error.URLError):
            count = 0  # no consensus yet (404) or authority not listening yet
        if count != last:
            print("privnet: consensus lists %d of %d relays (%.0fs)"
                  % (count, nodes, seconds - (deadline - time.monotonic())), file=sys.stderr)
            last = count
        if count >= nodes:
            return True
        time.sleep(POLL_SECONDS)
    return False


def main(argv):
    if len(argv) == 3 and argv[1] == "ports":
        print(" ".join(str(p) for p in free_ports(int(argv[2]))))
        return 0
    if len(argv) == 5 and argv[1] == "wait-consensus":
        return 0 if wait_consensus(int(argv[2]), int(argv[3]), float(argv[4])) else 1
    if len(argv) in (5, 6) and argv[1] == "wait-bootstrap":
        name = argv[5] if len(argv) == 6 else "client"
        return 0 if wait_bootstrap(int(argv[2]), argv[3], float(argv[4]), name) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
