"""known_hosts parsing and matching against OpenSSH's own matcher (``ssh-keygen -F``),
certificates against ``ssh-keygen -L``, concurrent accept-new, speed for 1000 hosts.
No sshd needed: these run in a second."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fleetops.core.hostcert import check_host, parse_cert
from fleetops.core.hostkeys import KnownHosts, ServerKey, known_hosts_files
from fleetops.core.knownhosts import HostFile, hash_name
from fleetops.core.ssh import Target

pytestmark = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("keys")
    found = {}
    for kind in ("ed25519", "ecdsa", "rsa"):
        path = base / kind
        extra = ["-b", "2048"] if kind == "rsa" else []
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", str(path)],
                       check=True)
        found[kind] = " ".join(Path(f"{path}.pub").read_text().split()[:2])
    found["base"] = str(base)
    return found


PATTERN_LINES = [
    "@cert-authority *.example.org {ed25519}",
    "@revoked * {ecdsa}",
    "[10.0.0.?]:2222 {ed25519}",
    "WEB1.example.org {rsa}",
    "*,!web1.example.org {ecdsa}",
    "not a key line",
    "host ssh-ed25519 AAAA",
    "# a comment",
    "",
    "   \t",
    "@bogus host {ed25519}",
    "db?,db1?.internal,!db13.internal {ed25519}",
    "[host]:2200,host {rsa}",
    "10.1.*.* {ecdsa}",
    "*.*.example.org,!*.dev.example.org {rsa}",
    "|1|notbase64!|AAAA {ed25519}",
    "host2 ssh-rsa {ed25519_blob}",
    "[::1]:2222 {ed25519}",
    "x[1]y {ed25519}",
]
NAMES = ["web1.example.org", "Web1.Example.org", "[10.0.0.5]:2222", "[10.0.0.15]:2222",
         "10.0.0.5", "other", "db1", "db12.internal", "db13.internal", "host",
         "[host]:2200", "[host]:2201", "10.1.2.3", "a.b.example.org", "a.dev.example.org",
         "host2", "[::1]:2222", "x[1]y", "db"]


def _write(path: Path, lines: list[str], keys: dict[str, str]) -> None:
    blob = keys["ed25519"].split()[1]
    path.write_text("\n".join(x.format(**keys, ed25519_blob=blob) for x in lines) + "\n")


def _openssh_matches(path: Path, name: str) -> list[int]:
    out = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True,
                         text=True, check=False).stdout
    return [int(n) for n in re.findall(r"^# Host .* found: line (\d+)", out, re.M)]


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_matching_equals_ssh_keygen_F(tmp_path, keys, hashed):
    """Lines matching each name: ours == OpenSSH's (ssh-keygen -F also lists lines whose
    key does not parse; ssh skips those, and so do we, with a warning)."""
    path = tmp_path / "known_hosts"
    _write(path, PATTERN_LINES, keys)
    bad = {int(w.split(":")[1]) for w in HostFile(str(path)).warnings}
    if hashed:  # ssh-keygen -H hashes the literal lines; it refuses files with bad lines
        _write(path, [x for n, x in enumerate(PATTERN_LINES, 1) if n not in bad], keys)
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True,
                       capture_output=True)
        assert path.read_text().count("|1|") >= 4
        bad = set()
    parsed = HostFile(str(path))
    for name in NAMES:
        ours = [e.line for e in parsed.match(name)]
        assert ours == [n for n in _openssh_matches(path, name) if n not in bad], name


def test_malformed_lines_reported_once_with_file_and_line(tmp_path, keys):
    path = tmp_path / "kh"
    _write(path, PATTERN_LINES, keys)
    parsed = HostFile(str(path))
    bad = {int(w.split(":")[1]): w for w in parsed.warnings}
    assert sorted(bad) == [6, 7, 11, 16, 17]
    assert "invalid marker" in bad[11] and "does not match its key" in bad[17]
    assert all(w.startswith(f"{path}:") and w.endswith("line skipped") for w in bad.values())
    known = KnownHosts([str(path)])
    known.entries("host")
    known.entries("other")
    assert known.warnings == parsed.warnings or len(known.warnings) == 5


def test_our_hashed_names_are_found_by_openssh(tmp_path, keys):
    path = tmp_path / "kh"
    path.write_text(f"{hash_name('[10.9.8.7]:2222')} {keys['ed25519']}\n")
    assert _openssh_matches(path, "[10.9.8.7]:2222") == [1]
    assert _openssh_matches(path, "10.9.8.7") == []
    assert [e.line for e in HostFile(str(path)).match("[10.9.8.7]:2222")] == [1]


def _server_key(pub: str) -> ServerKey:
    kind, b64 = pub.split()
    return ServerKey(kind, base64.b64decode(b64))


def test_concurrent_accept_new_appends_whole_lines(tmp_path, keys):
    path = tmp_path / "sub" / "known_hosts"
    known = KnownHosts([str(path)], accept_new=True)
    key = _server_key(keys["ed25519"])
    targets = [Target(name=f"h{i}", address=f"10.0.{i // 250}.{i % 250}", port=2222,
                      hash_known_hosts=bool(i % 2)) for i in range(200)]
    threads = [threading.Thread(target=known.verify, args=(t, key)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    text = path.read_text()
    assert len(text.splitlines()) == 200 and oct(path.stat().st_mode & 0o777) == "0o600"
    fresh = HostFile(str(path))
    assert fresh.warnings == []
    for t in targets[:20]:
        assert len(fresh.match(f"[{t.address}]:2222")) == 1
        assert known.verify(t, key) is False  # recorded, now known (no second line)
    assert len(path.read_text().splitlines()) == 200


def test_thousand_hosts_load_and_lookup_fast(tmp_path, keys):
    path = tmp_path / "kh"
    lines = [f"[10.1.{i // 250}.{i % 250}]:2222 {keys['ed25519']}" for i in range(1000)]
    lines += [f"{hash_name(f'h{i}.example.org')} {keys['rsa']}" for i in range(200)]
    lines += ["*.example.org,!*.dev.example.org " + keys["ecdsa"]]
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    known = KnownHosts([str(path)])
    loaded = time.perf_counter() - started
    targets = [Target(name=str(i), address=f"10.1.{i // 250}.{i % 250}", port=2222)
               for i in range(1000)]
    key = _server_key(keys["ed25519"])
    started = time.perf_counter()
    for t in targets:
        known.host_key_algorithms(t, ["ssh-ed25519", "rsa-sha2-512"])
        assert known.verify(t, key) is False
    looked = time.perf_counter() - started
    print(f"1201-line known_hosts: load {loaded * 1000:.1f} ms, "
          f"1000 hosts ordered+verified {looked * 1000:.1f} ms")
    assert loaded < 1.0 and looked < 3.0


def test_cert_fields_equal_ssh_keygen_L(tmp_path, keys):
    base = Path(keys["base"])
    subprocess.run(["ssh-keygen", "-q", "-s", str(base / "rsa"), "-h", "-I", "web-1",
                    "-z", "42", "-n", "web1,web1.example.org", "-V", "20300101:20300201",
                    str(base / "ecdsa.pub")], check=True, capture_output=True)
    cert_file = base / "ecdsa-cert.pub"
    cert = parse_cert(base64.b64decode(cert_file.read_text().split()[1]))
    listing = subprocess.run(["ssh-keygen", "-L", "-f", str(cert_file)], capture_output=True,
                             text=True, check=True).stdout
    assert "Type: ecdsa-sha2-nistp256-cert-v01@openssh.com host certificate" in listing
    assert cert.key_id == "web-1" and f"Serial: {cert.serial}" in listing
    assert cert.principals == ("web1", "web1.example.org")
    assert cert.key_blob == base64.b64decode(keys["ecdsa"].split()[1])
    assert cert.ca_blob == base64.b64decode(keys["rsa"].split()[1])
    assert "Signing CA: RSA" in listing and "rsa-sha2-512" in listing
    assert check_host(cert, "web1", now=1893456000 + 3600) is None        # 2030-01-01 01:00
    assert "not yet valid" in check_host(cert, "web1", now=1893456000 - 86400 * 2)
    assert "expired" in check_host(cert, "web1", now=1893456000 + 86400 * 40)
    assert "principal" in check_host(cert, "WEB1", now=1893456000 + 3600)  # exact, like OpenSSH


def test_files_from_target():
    t = Target(name="a", address="a", user_known_hosts=("~/kh1", "/x/kh2"),
               known_hosts="~/kh1", global_known_hosts=("/etc/g", "none"))
    user, glob = known_hosts_files(t)
    assert user[1] == "/x/kh2" and user[0].endswith("/kh1") and not user[0].startswith("~")
    assert glob == ("/etc/g",)
    inventory_wins = Target(name="a", address="a", user_known_hosts=("/x/kh2",),
                            known_hosts="/inv/kh")
    assert known_hosts_files(inventory_wins)[0] == ("/inv/kh",)
    default = known_hosts_files(Target(name="a", address="a"))[0]
    assert [p.rsplit("/", 1)[1] for p in default] == ["known_hosts", "known_hosts2"]
    assert known_hosts_files(Target(name="a", address="a"), "/run/kh")[0] == ("/run/kh",)


def test_tampered_certificate_is_refused(keys):
    import paramiko

    from fleetops.core.hostkeys import HostKeyError

    base = Path(keys["base"])
    subprocess.run(["ssh-keygen", "-q", "-s", str(base / "ed25519"), "-h", "-I", "host-AAAA",
                    "-n", "web1", str(base / "rsa.pub")], check=True, capture_output=True)
    blob = base64.b64decode((base / "rsa-cert.pub").read_text().split()[1])
    good = paramiko.RSAKey(msg=paramiko.Message(blob))
    assert ServerKey.from_paramiko(good).cert.principals == ("web1",)
    forged = blob.replace(b"host-AAAA", b"host-BBBB")
    assert forged != blob and parse_cert(forged).key_id == "host-BBBB"
    with pytest.raises(HostKeyError, match="bad host certificate: certificate signature"):
        ServerKey.from_paramiko(paramiko.RSAKey(msg=paramiko.Message(forged)))
