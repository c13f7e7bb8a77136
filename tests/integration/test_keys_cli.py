#!/usr/bin/env python3
"""test_keys_cli — `secirc keygen` and `secirc id` as a user runs them.

Runs the real binary in a temporary directory (removed at the end); checks
exit codes, stdout/stderr, the file mode and the byte layout of the key file
(docs/PROTOCOL.md, "Identity key file"). Never touches files outside it."""
import hashlib
import json
import os
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sclib  # noqa: E402

HEX64 = re.compile(r"^[0-9a-f]{64}\n$")


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_key(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


def main():
    secirc = sclib.binary("secirc")
    c = sclib.Checker()
    tmp = sclib.TempDir()
    try:
        run_checks(c, secirc, tmp)
    finally:
        tmp.cleanup()
    c.done()


def run_checks(c, secirc, tmp):
    def secirc_run(*args, **kw):
        return sclib.run([secirc, *args], cwd=tmp.path, **kw)

    # keygen: the ID on stdout, nothing else; mode 0600 even with umask 0
    r = secirc_run("keygen", "--out", "k", preexec_fn=lambda: os.umask(0))
    key = tmp.join("k")
    c.check("keygen exits 0", r.returncode == 0, f"rc={r.returncode} stderr={r.stderr!r}")
    c.check("keygen prints a 64-hex relay ID and nothing else",
            HEX64.match(r.stdout) is not None, repr(r.stdout))
    c.check("keygen is quiet on stderr", r.stderr == "", repr(r.stderr))
    relay_id = r.stdout.strip()
    c.check("key file is a regular file of mode 600 (umask 0)",
            os.path.isfile(key) and not os.path.islink(key) and mode_of(key) == 0o600,
            oct(mode_of(key)) if os.path.exists(key) else "missing")

    # byte layout, checked with an independent implementation (hashlib)
    data = read_bytes(key)
    c.check("key file is 92 bytes", len(data) == 92, str(len(data)))
    c.check("key file header: magic, version 1, type 1, reserved 0",
            data[:8] == b"SCIRCKEY" and data[8] == 1 and data[9] == 1 and data[10:12] == b"\0\0",
            data[:12].hex())
    c.check("bytes 44..75 are the relay ID", data[44:76].hex() == relay_id)
    c.check("bytes 76..91 are BLAKE2b-128 of bytes 0..75",
            hashlib.blake2b(data[:76], digest_size=16).digest() == data[76:92])
    c.check("the secret seed is not printed", data[12:44].hex() not in r.stdout + r.stderr)

    # id: the same relay ID, plain and JSON
    r = secirc_run("id", "--key", "k")
    c.check("id prints the same relay ID", r.returncode == 0 and r.stdout == relay_id + "\n",
            f"rc={r.returncode} out={r.stdout!r} err={r.stderr!r}")
    r = secirc_run("id", "-k", key, "--json")
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = None
    c.check("id --json prints {\"relay_id\": ...}",
            r.returncode == 0 and doc == {"relay_id": relay_id}, repr(r.stdout))
    r = secirc_run("keygen", "--json", "-o", "k-json")
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        doc = None
    c.check("keygen --json prints {\"relay_id\": ...}",
            r.returncode == 0 and isinstance(doc, dict) and list(doc) == ["relay_id"]
            and HEX64.match(doc["relay_id"] + "\n") is not None, repr(r.stdout))
    c.check("two keygens make two identities",
            doc is not None and doc.get("relay_id") != relay_id)

    # keygen never overwrites
    before = read_bytes(key)
    r = secirc_run("keygen", "--out", "k")
    c.check("keygen over an existing file exits 1", r.returncode == 1, f"rc={r.returncode}")
    c.check("  ... says the file exists", "exists" in r.stderr and "k" in r.stderr, repr(r.stderr))
    c.check("  ... prints nothing on stdout", r.stdout == "", repr(r.stdout))
    c.check("  ... leaves the file unchanged",
            read_bytes(key) == before and mode_of(key) == 0o600)
    other = tmp.join("not-a-key.txt")
    with open(other, "w") as f:
        f.write("precious\n")
    r = secirc_run("keygen", "--out", other)
    c.check("keygen refuses to overwrite any file",
            r.returncode == 1 and read_bytes(other) == b"precious\n", repr(r.stderr))

    # permissions
    for mode in (0o644, 0o640, 0o604):
        os.chmod(key, mode)
        r = secirc_run("id", "--key", "k")
        c.check(f"id refuses a key of mode {mode:o}",
                r.returncode == 1 and r.stdout == ""
                and f"mode {mode:04o}" in r.stderr and "chmod 600 k" in r.stderr
                and r.stderr.startswith("secirc: k: "),
                f"rc={r.returncode} err={r.stderr!r}")
    os.chmod(key, 0o600)
    r = secirc_run("id", "--key", "k")
    c.check("after chmod 600 the key loads again", r.returncode == 0 and r.stdout == relay_id + "\n")

    # damaged files
    write_key(tmp.join("short"), before[:50])
    r = secirc_run("id", "--key", "short")
    c.check("truncated key file: clear message",
            r.returncode == 1 and "truncated (50 of 92 bytes)" in r.stderr, repr(r.stderr))
    write_key(tmp.join("empty"), b"")
    r = secirc_run("id", "--key", "empty")
    c.check("empty key file: clear message",
            r.returncode == 1 and "truncated (0 of 92 bytes)" in r.stderr, repr(r.stderr))
    write_key(tmp.join("v2"), before[:8] + b"\x02" + before[9:])
    r = secirc_run("id", "--key", "v2")
    c.check("version 2 key file: clear message",
            r.returncode == 1 and "unsupported key file version 2" in r.stderr, repr(r.stderr))
    write_key(tmp.join("long"), before + b"\n")
    r = secirc_run("id", "--key", "long")
    c.check("key file with an extra byte is refused",
            r.returncode == 1 and "too long" in r.stderr, repr(r.stderr))
    damaged = bytearray(before)
    damaged[20] ^= 0x04
    write_key(tmp.join("flipped"), bytes(damaged))
    r = secirc_run("id", "--key", "flipped")
    c.check("a flipped bit is caught by the checksum",
            r.returncode == 1 and "checksum" in r.stderr, repr(r.stderr))
    write_key(tmp.join("text"), (b"-----BEGIN OPENSSH PRIVATE KEY-----\n" * 3)[:92])
    r = secirc_run("id", "--key", "text")
    c.check("another kind of file: 'not a secirc key file'",
            r.returncode == 1 and "not a secirc key file" in r.stderr, repr(r.stderr))
    r = secirc_run("id", "--key", "missing")
    c.check("missing key file: names the file",
            r.returncode == 1 and r.stderr.startswith("secirc: missing: "), repr(r.stderr))
    os.symlink("k", tmp.join("link"))
    r = secirc_run("id", "--key", "link")
    c.check("a symlinked key file is refused",
            r.returncode == 1 and "symbolic link" in r.stderr, repr(r.stderr))
    stdout = [secirc_run("id", "--key", f).stdout
              for f in ("short", "v2", "long", "flipped", "text", "missing", "link")]
    c.check("load failures print nothing on stdout", stdout == [""] * len(stdout), repr(stdout))

    # help and usage errors
    for cmd, opt in (("keygen", "--out"), ("id", "--key")):
        r = secirc_run(cmd, "--help")
        c.check(f"{cmd} --help: usage on stdout, exit 0",
                r.returncode == 0 and r.stdout.startswith(f"usage: secirc {cmd}") and opt in r.stdout,
                f"rc={r.returncode} out={r.stdout!r}")
        for bad in ([], [opt], ["--no-such-option", opt, "x"], [opt, "x", "extra"]):
            r = secirc_run(cmd, *bad)
            c.check(f"{cmd} {' '.join(bad) or '(no arguments)'}: usage on stderr, exit 2",
                    r.returncode == 2 and "usage: secirc " + cmd in r.stderr and r.stdout == "",
                    f"rc={r.returncode} err={r.stderr!r}")
    c.check("usage errors create no file", not os.path.exists(tmp.join("x")))


if __name__ == "__main__":
    main()
