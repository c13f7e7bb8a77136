#!/usr/bin/env python3
"""test_config — `secircd --check-config FILE` as an operator runs it.

The seed's connection_manager block alone passes; ten broken configurations
each give their own one-line FILE:LINE:COL message on stderr and exit 2;
examples/relay.yaml passes; key file checks go through the identity loader.
Works in a temporary directory (removed at the end) and never creates a file
next to the configuration it checks."""
import os
import signal
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sclib  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

SEED_BLOCK = """\
connection_manager:
  max_connections: 10
  min_connections: 3
  connection_timeout: 30
  heartbeat_interval: 60
  reconnect_interval: 30
  max_retry_attempts: 3
  retry_delay: 30
  enable_tcp: true
  enable_tor: false
  enable_websocket: false
  tcp_port: 6667
  websocket_port: 8080
  tor_socks_port: 9050
  ssl_enabled: false
  ssl_cert_path: "tls/relay.crt"
  ssl_key_path: "tls/relay.key"
"""

ID = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"

# (name, file name, content or None for "make it a directory", expected message after "FILE:")
BROKEN = [
    ("unknown key", "unknown.yaml",
     "connection_manager:\n  max_connections: 10\n  max_conections: 5\n",
     "3:3: unknown key 'max_conections' in connection_manager; did you mean 'max_connections'?"),
    ("wrong type", "type.yaml",
     "connection_manager:\n  retry_delay: \"thirty\"\n",
     "2:16: retry_delay must be an integer, found the quoted string \"thirty\""),
    ("min_connections > max_connections", "minmax.yaml",
     "connection_manager:\n  max_connections: 4\n  min_connections: 5\n",
     "3:3: min_connections (5) is greater than max_connections (4)"),
    ("port 70000", "port.yaml",
     "relays:\n  - host: relay.example.com\n    port: 70000\n",
     "3:11: port must be between 1 and 65535, found '70000'"),
    ("missing key file directory", "keydir.yaml",
     "connection_manager:\n  max_connections: 10\nidentity:\n  key_file: \"keys/relay.key\"\n",
     "4:13: directory {dir}/keys of key_file does not exist"),
    ("unreadable file (a directory)", "unreadable.yaml", None,
     "1:1: cannot read: Is a directory"),
    ("bad relay id", "badid.yaml",
     "relays:\n  - id: \"" + ID[:-1] + "g\"\n    host: relay.example.com\n",
     "2:9: id must be a relay ID of 64 hex digits; character 64 is not a hex digit"),
    ("duplicate relay", "duprelay.yaml",
     "relays:\n  - id: \"" + ID + "\"\n    host: relay.example.com\n"
     "  - host: relay.example.net\n  - host: RELAY.example.com\n    port: 6667\n",
     "5:5: duplicate relay: same type, host and port as the relay at line 2"),
    ("tab indentation", "tabs.yaml",
     "connection_manager:\n  max_connections: 10\n\tmin_connections: 3\n",
     "3:1: tabs are not allowed for indentation; indent with spaces"),
    ("empty file", "empty.yaml", "",
     "1:1: the configuration is empty"),
]


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def main():
    secircd = sclib.binary("secircd")
    c = sclib.Checker()
    tmp = sclib.TempDir()
    try:
        run_checks(c, secircd, tmp)
    finally:
        tmp.cleanup()
    c.done()


def check_config(secircd, path, cwd):
    return sclib.run([secircd, "--check-config", path], cwd=cwd)


def run_checks(c, secircd, tmp):
    # the seed's block, as it stands
    seed = tmp.join("seed.yaml")
    write(seed, SEED_BLOCK)
    r = check_config(secircd, seed, tmp.path)
    c.check("seed block: exit 0", r.returncode == 0, f"rc={r.returncode} err={r.stderr!r}")
    c.check("seed block: prints 'configuration OK'", r.stdout == "configuration OK\n",
            repr(r.stdout))
    c.check("seed block: quiet on stderr", r.stderr == "", repr(r.stderr))
    c.check("--check-config creates no file", sorted(os.listdir(tmp.path)) == ["seed.yaml"],
            str(os.listdir(tmp.path)))

    # a relative path is reported as given, and resolves from the file's directory
    os.mkdir(tmp.join("sub"))
    write(tmp.join("sub", "rel.yaml"), "identity:\n  key_file: nowhere/k.key\n")
    r = check_config(secircd, "sub/rel.yaml", tmp.path)
    c.check("relative config path: message names it as given and resolves paths from its dir",
            r.returncode == 2 and r.stderr ==
            f"sub/rel.yaml:2:13: directory {os.path.realpath(tmp.path)}/sub/nowhere of key_file "
            "does not exist\n", repr(r.stderr))

    # ten broken configurations, ten distinct messages
    seen = {}
    for name, fname, text, want in BROKEN:
        path = tmp.join(fname)
        if text is None:
            os.mkdir(path)
        else:
            write(path, text)
        want_line = f"{path}:{want.format(dir=os.path.realpath(tmp.path))}\n"
        r = check_config(secircd, path, tmp.path)
        c.check(f"{name}: exit 2", r.returncode == 2, f"rc={r.returncode}")
        c.check(f"{name}: stderr is the one line '{want_line.strip()}'", r.stderr == want_line,
                repr(r.stderr))
        c.check(f"{name}: nothing on stdout", r.stdout == "", repr(r.stdout))
        message = r.stderr.split(": ", 1)[-1]
        c.check(f"{name}: its message differs from every other case", message not in seen,
                f"same as {seen.get(message)}")
        seen[message] = name

    # a missing file
    r = check_config(secircd, tmp.join("missing.yaml"), tmp.path)
    c.check("missing file: FILE:1:1: cannot read: No such file or directory, exit 2",
            r.returncode == 2 and
            r.stderr == f"{tmp.join('missing.yaml')}:1:1: cannot read: No such file or directory\n",
            repr(r.stderr))

    # key files go through the identity loader
    keys = tmp.join("keys")
    os.mkdir(keys)
    key, _ = sclib.keygen(tmp, "keys/relay.key")
    cfg = tmp.join("withkey.yaml")
    write(cfg, "identity:\n  key_file: keys/relay.key\n")
    r = check_config(secircd, cfg, tmp.path)
    c.check("an existing key file of mode 0600 passes", r.returncode == 0 and
            r.stdout == "configuration OK\n", repr(r.stderr))
    os.chmod(key, 0o644)
    r = check_config(secircd, cfg, tmp.path)
    c.check("a key file readable by others is refused with the loader's reason",
            r.returncode == 2 and r.stderr ==
            f"{cfg}:2:13: key file {key} is accessible by group/others (mode 0644); "
            f"run: chmod 600 {key}\n", repr(r.stderr))
    os.chmod(key, 0o600)
    with open(key, "r+b") as f:
        f.truncate(50)
    r = check_config(secircd, cfg, tmp.path)
    c.check("a truncated key file is refused", r.returncode == 2 and
            r.stderr.startswith(f"{cfg}:2:13: ") and "\n" not in r.stderr.rstrip("\n"),
            repr(r.stderr))
    os.unlink(key)
    os.mkdir(key)
    r = check_config(secircd, cfg, tmp.path)
    c.check("a key file that is a directory is refused", r.returncode == 2 and
            r.stderr == f"{cfg}:2:13: key file {key} is not a regular file\n", repr(r.stderr))

    # the other file checks, each at the value that names the file
    real = os.path.realpath(tmp.path)
    os.mkdir(tmp.join("certdir"))
    write(tmp.join("onion.key"), "x", mode=0o640)
    for name, text, want in [
        ("data_dir missing", "identity:\n  data_dir: state\n",
         f"2:13: data_dir {real}/state does not exist"),
        ("ca_file missing with verify: ca", "tls:\n  verify: ca\n  ca_file: ca.pem\n",
         f"3:12: ca_file {real}/ca.pem: cannot read: No such file or directory"),
        ("TLS certificate that is a directory",
         "connection_manager:\n  ssl_enabled: true\n  ssl_cert_path: certdir\n",
         f"3:18: ssl_cert_path {real}/certdir is not a regular file"),
        ("onion key readable by others", "tor:\n  control_port: 9051\n",
         f"1:1: onion_key_file {real}/onion.key is accessible by group/others (mode 0640); "
         f"run: chmod 600 {real}/onion.key"),
        ("control socket directory missing", "control:\n  socket: run/ctl.sock\n",
         f"2:11: directory {real}/run of control.socket does not exist"),
    ]:
        path = tmp.join("files.yaml")
        write(path, text)
        r = check_config(secircd, path, tmp.path)
        c.check(f"{name}: exit 2 with '{want}'", r.returncode == 2 and
                r.stderr == f"{path}:{want}\n", repr(r.stderr))

    # the example passes, from any working directory, and stays untouched
    example = os.path.join(ROOT, "examples", "relay.yaml")
    before = sorted(os.listdir(os.path.dirname(example)))
    r = check_config(secircd, example, tmp.path)
    c.check("examples/relay.yaml passes --check-config", r.returncode == 0 and
            r.stdout == "configuration OK\n", f"rc={r.returncode} err={r.stderr!r}")
    c.check("checking the example creates nothing in examples/",
            sorted(os.listdir(os.path.dirname(example))) == before)

    # the rest of the command line
    r = sclib.run([secircd, "--help"])
    c.check("--help exits 0 and names every option", r.returncode == 0 and all(
        o in r.stdout for o in ("--config FILE", "--check-config FILE", "--version")), r.stdout)
    r = sclib.run([secircd, "--version"])
    c.check("--version prints the version", r.returncode == 0 and
            r.stdout.startswith("secircd "), r.stdout)
    # no arguments: the embedded default (a loopback listener on the seed's
    # port 6667 and the status server on 6680, identity created 0600 in the
    # data directory it names first), stopped by SIGTERM. When something else
    # holds one of those ports (another relay on this machine), it must say
    # so clearly and exit 1 instead.
    data = tmp.join("default-data")
    env = dict(os.environ, SECIRC_DATA_DIR=data)
    port_free = True
    for default_port in (6667, 6680):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", default_port))
            except OSError:
                port_free = False
    d = sclib.Proc([secircd], name="secircd-default", stdin=False, env=env)
    try:
        key = os.path.join(data, "identity.key")
        if port_free:
            sclib.wait_for(lambda: any("secircd.started" in l for l in d.err_lines), 20,
                           "secircd (embedded default) started")
            first = next(l for l in d.err_lines if "secircd.starting" in l)
            c.check("no arguments: runs on the embedded default and names its data directory first",
                    f"data_dir={data}" in first and os.path.exists(key), first)
            d.p.send_signal(signal.SIGTERM)
            c.check("SIGTERM: exit 0", d.wait_exit(15) == 0, "\n".join(d.err_lines[-5:]))
        else:
            rc = d.wait_exit(15)
            c.check("no arguments with port 6667 or 6680 taken: a clear error and exit 1",
                    rc == 1 and any("address already in use" in l for l in d.err_lines),
                    "\n".join(d.err_lines[-3:]))
        c.check("the identity it created has mode 0600", stat.S_IMODE(os.stat(key).st_mode) == 0o600)
    finally:
        d.stop()
    r = sclib.run([secircd, "--check-config"])
    c.check("--check-config without FILE: exit 2", r.returncode == 2 and "usage:" in r.stderr)
    r = sclib.run([secircd, "--config", tmp.join("tabs.yaml")])
    c.check("--config with a broken file reports it and exits 2", r.returncode == 2 and
            r.stderr.startswith(tmp.join("tabs.yaml") + ":3:1: tabs"), repr(r.stderr))
    mode = stat.S_IMODE(os.stat(seed).st_mode)
    c.check("the checked files keep their mode", mode == 0o644, oct(mode))


if __name__ == "__main__":
    main()
