"""Host-key decisions against OpenSSH's own, on the same known_hosts files and servers.

Each case writes known_hosts files, then runs the real ``ssh -o BatchMode=yes
-o StrictHostKeyChecking=...`` and fleetops's connect (through ``Fleet.run``) against the
same real sshd, and asserts both accept or both refuse (and that this is the decision the
case documents, so a change in either is noticed). Servers are our own ``sshd -D -e`` on
127.0.0.1 (a free port each), one per host-key set, started once per module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from paramiko import Transport

from fleetops.core.runner import Fleet, RunOptions
from fleetops.core.ssh import Target

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ssh") or not os.path.exists("/usr/sbin/sshd"),
    reason="needs root, ssh and /usr/sbin/sshd")

ADDR = "127.0.0.1"


def keygen(path: Path, kind: str = "ed25519") -> Path:
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", path.name,
                    "-f", str(path)], check=True, capture_output=True)
    return path


def sign(ca: Path, key: Path, principals: str | None, validity: str, alg: str = "") -> Path:
    argv = ["ssh-keygen", "-q", "-s", str(ca), "-h", "-I", f"id-{key.name}", "-V", validity]
    argv += ["-t", alg] if alg else []
    if principals is not None:
        argv += ["-n", principals]
    subprocess.run([*argv, f"{key}.pub"], check=True, capture_output=True)
    return key.with_name(key.name + "-cert.pub")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((ADDR, 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen


class Lab:
    """Keys, CAs and the sshd servers of this module."""

    SERVERS = {  # name -> [(host key type, certificate: (principals, validity) or None)]
        "multi": [("ed25519", None), ("rsa", None), ("ecdsa", None)],
        "edonly": [("ed25519", None)],
        "cert": [("ed25519", ("127.0.0.1,certhost", "-5m:+1h")), ("rsa", None)],
        "expired": [("ed25519", ("127.0.0.1", "20200101:20200102"))],
        "future": [("ed25519", ("127.0.0.1", "+1d:+2d"))],
        "noprinc": [("ed25519", (None, "-5m:+1h"))],
        # signed by an RSA CA (rsa-sha2-512), and by the same CA with SHA-1 ("ssh-rsa")
        "certrsa": [("rsa", ("127.0.0.1", "-5m:+1h", "", "rsa_ca")),
                    ("ecdsa", ("127.0.0.1", "-5m:+1h", "", "rsa_ca"))],
        "certsha1": [("ecdsa", ("127.0.0.1", "-5m:+1h", "ssh-rsa", "rsa_ca")), ("rsa", None)],
    }

    def __init__(self, base: Path) -> None:
        self.base = base
        self.client = keygen(base / "id_client")
        (base / "authorized_keys").write_text((base / "id_client.pub").read_text())
        self.ca = keygen(base / "ca")
        self.other_ca = keygen(base / "other_ca")
        self.rsa_ca = keygen(base / "rsa_ca", "rsa")
        self.stray = keygen(base / "stray_ed25519")   # a key no server has
        self.servers: dict[str, Server] = {}
        self.pub: dict[str, str] = {}                 # "multi.rsa" -> "ssh-rsa AAAA..."
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for name, keys in self.SERVERS.items():
            self.servers[name] = self._start(name, keys)
        for server in self.servers.values():
            self._wait(server)

    def _start(self, name: str, keys: list) -> Server:
        port = free_port()
        lines = [f"ListenAddress {ADDR}:{port}", f"AuthorizedKeysFile {self.base}/authorized_keys",
                 "StrictModes no", "UsePAM no", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no", "PidFile none", "LogLevel ERROR",
                 "PermitRootLogin prohibit-password", "MaxStartups 100:30:200"]
        for kind, cert in keys:
            key = keygen(self.base / f"{name}_{kind}", kind)
            self.pub[f"{name}.{kind}"] = " ".join(Path(f"{key}.pub").read_text().split()[:2])
            lines.append(f"HostKey {key}")
            if cert is not None:
                principals, validity, alg, ca = (*cert, "", "ca")[:4]
                cert_file = sign(self.base / ca, key, principals, validity, alg)
                lines.append(f"HostCertificate {cert_file}")
        config = self.base / f"sshd_{name}.conf"
        config.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(self.base / f"sshd_{name}.log", "wb"))
        return Server(name, port, proc)

    @staticmethod
    def _wait(server: Server) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert server.proc.poll() is None, f"sshd {server.name} exited"
            with socket.socket() as sock, __import__("contextlib").suppress(OSError):
                sock.settimeout(1)
                sock.connect((ADDR, server.port))
                if sock.recv(4) == b"SSH-":
                    return
            time.sleep(0.05)
        raise AssertionError(f"sshd {server.name} did not start")

    def stop(self) -> None:
        for server in self.servers.values():
            server.proc.terminate()
            try:
                server.proc.wait(5)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)

    def ca_pub(self, which: str = "ca") -> str:
        return " ".join((self.base / f"{which}.pub").read_text().split()[:2])

    def stray_pub(self) -> str:
        return " ".join((self.base / "stray_ed25519.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def hk_lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("hostkeys"))
    try:
        yield lab
    finally:
        lab.stop()


# ---- running both clients -----------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    server: str
    user: tuple[str, ...]            # lines of the user known_hosts file
    accepted: bool                   # OpenSSH's decision (asserted too)
    global_: tuple[str, ...] = ()    # lines of the global known_hosts file
    alias: str | None = None
    strict: str = "yes"
    hashed: bool = False             # run ssh-keygen -H over the user file first
    user2: tuple[str, ...] | None = None   # a second user file


def render(lab: Lab, server: str, line: str) -> str:
    port = lab.servers[server].port
    values = {"hp": f"[{ADDR}]:{port}", "h": ADDR, "port": str(port),
              "ca": lab.ca_pub(), "other_ca": lab.ca_pub("other_ca"), "rsa_ca": lab.ca_pub("rsa_ca"), "stray": lab.stray_pub(),
              "other_rsa": lab.pub["multi.rsa"]}
    salt = os.urandom(20)
    mac = hmac.new(salt, values["hp"].encode(), hashlib.sha1).digest()
    values["hashed_hp"] = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"
    values.update({k.split(".", 1)[1]: v for k, v in lab.pub.items()
                   if k.startswith(server + ".")})
    return line.format(**values)


def write_files(lab: Lab, case: Case, where: Path) -> tuple[list[Path], Path]:
    where.mkdir(parents=True, exist_ok=True)
    users = [where / "known_hosts"]
    users[0].write_text("".join(render(lab, case.server, x) + "\n" for x in case.user))
    if case.hashed:
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(users[0])], check=True,
                       capture_output=True)
        assert "|1|" in users[0].read_text()
    if case.user2 is not None:
        users.append(where / "known_hosts_2")
        users[1].write_text("".join(render(lab, case.server, x) + "\n" for x in case.user2))
    glob = where / "ssh_known_hosts"
    glob.write_text("".join(render(lab, case.server, x) + "\n" for x in case.global_))
    return users, glob


def run_openssh(lab: Lab, case: Case, users: list[Path], glob: Path, hash_hosts: bool = False
                ) -> subprocess.CompletedProcess:
    return start_openssh(lab, case, users, glob, hash_hosts)()


def start_openssh(lab: Lab, case: Case, users: list[Path], glob: Path, hash_hosts: bool = False):
    """Start ``ssh`` in the background; call the result to wait for it (CompletedProcess)."""
    argv = ["ssh", "-vv", "-F", "/dev/null", "-o", "BatchMode=yes",
            "-o", f"StrictHostKeyChecking={case.strict}",
            "-o", "UserKnownHostsFile=" + " ".join(map(str, users)),
            "-o", f"GlobalKnownHostsFile={glob}", "-o", "UpdateHostKeys=no",
            "-o", f"HashKnownHosts={'yes' if hash_hosts else 'no'}",
            "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", "-i", str(lab.client),
            "-p", str(lab.servers[case.server].port)]
    if case.alias:
        argv += ["-o", f"HostKeyAlias={case.alias}"]
    proc = subprocess.Popen([*argv, f"root@{ADDR}", "true"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish() -> subprocess.CompletedProcess:
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    return finish


class _Host:
    def __init__(self, name: str) -> None:
        self.name = name


def run_fleetops(lab: Lab, case: Case, users: list[Path], glob: Path, hash_hosts: bool = False,
                 accept_new: bool = False):
    target = Target(name="h", address=ADDR, port=lab.servers[case.server].port, user="root",
                    key_files=(str(lab.client),), known_hosts=str(users[0]),
                    user_known_hosts=tuple(map(str, users)), global_known_hosts=(str(glob),),
                    host_key_alias=case.alias, strict_host_key_checking=case.strict,
                    hash_known_hosts=hash_hosts)
    def work(session):
        session.host.negotiated = session.connection.transport.host_key_type

    host = _Host("h")
    with Fleet(RunOptions(connect_timeout=5, accept_new=accept_new), lambda h: target) as fleet:
        run = fleet.run([host], work)
        return run.hosts["h"], fleet.known_hosts_warnings(), getattr(host, "negotiated", None)


CASES = [
    Case("exact", "multi", ("{hp} {ed25519}",), True),
    Case("only-rsa-known-server-offers-ed25519", "multi", ("{hp} {rsa}",), True),
    Case("only-ecdsa-known", "multi", ("{hp} {ecdsa}",), True),
    Case("wildcard-question", "multi", ("[127.0.0.?]:{port} {ed25519}",), True),
    Case("wildcard-star", "multi", ("* {ed25519}",), True),
    Case("wildcard-star-port", "multi", ("[127.0.*]:* {rsa}",), True),
    # "[h]:port" is negated, but the plain "h" lookup OpenSSH retries matches "*"
    Case("negated-port-form-only", "multi", ("*,!{hp} {ed25519}",), True),
    Case("negated", "multi", ("*,!{hp},!{h} {ed25519}",), False),
    Case("negated-other", "multi", ("*,!10.* {ed25519}",), True),
    Case("comma-list", "multi", ("foo,{hp},bar {ed25519}",), True),
    Case("upper-case-pattern", "multi", ("[127.0.0.1]:{port},FOO {ed25519}",), True),
    Case("wrong-ed25519", "multi", ("{hp} {stray}",), False),
    Case("wrong-then-right", "multi", ("{hp} {stray}", "{hp} {ed25519}"), True),
    Case("hashed", "multi", ("{hp} {ed25519}", "other {rsa}"), True, hashed=True),
    Case("hashed-wrong", "multi", ("{hp} {stray}",), False, hashed=True),
    Case("plain-name-any-port-fallback", "multi", ("{h} {ed25519}",), True),
    Case("plain-name-rsa-only-no-fallback", "multi", ("{h} {rsa}",), False),
    Case("other-port", "multi", ("[{h}]:1 {ed25519}",), False),
    Case("port-line-wins-over-plain", "multi", ("{h} {stray}", "{hp} {ed25519}"), True),
    Case("revoked", "multi", ("{hp} {ed25519}", "@revoked * {ed25519}"), False),
    Case("revoked-other-type-known", "multi", ("{hp} {rsa}", "@revoked * {ed25519}"), True),
    Case("ca-line-for-other-hosts", "multi", ("@cert-authority *.example.org {ca}",
                                               "{hp} {ed25519}"), True),
    Case("malformed-next-to-good", "multi", ("{hp} ssh-ed25519 AAAA!!notbase64",
                                             "@bogus * {ed25519}", "{hp} {ed25519}"), True),
    Case("unknown", "multi", ("other {ed25519}",), False),
    Case("global-file", "multi", ("other {ed25519}",), True, global_=("{hp} {ed25519}",)),
    Case("user-wrong-global-right", "multi", ("{hp} {stray}",), True,
         global_=("{hp} {ed25519}",)),
    Case("second-user-file", "multi", ("other {rsa}",), True, user2=("{hp} {ecdsa}",)),
    Case("alias", "multi", ("myalias {ed25519}",), True, alias="myalias"),
    Case("alias-not-address", "multi", ("{hp} {ed25519}",), False, alias="myalias"),
    Case("ed-only-rsa-known", "edonly", ("{hp} {other_rsa}",), False),
    Case("cert", "cert", ("@cert-authority * {ca}",), True),
    Case("cert-port-pattern", "cert", ("@cert-authority [127.0.0.1]:{port} {ca}",), True),
    Case("cert-pattern-no-match", "cert", ("@cert-authority other {ca}",), False),
    Case("cert-wrong-ca", "cert", ("@cert-authority * {other_ca}",), False),
    Case("cert-wrong-ca-plain-known", "cert", ("@cert-authority * {other_ca}",
                                                "{hp} {ed25519}"), True),
    Case("cert-alias-principal", "cert", ("@cert-authority certhost {ca}",), True,
         alias="certhost"),
    Case("cert-alias-not-principal", "cert", ("@cert-authority * {ca}",), False,
         alias="otherhost"),
    Case("cert-revoked-ca", "cert", ("@cert-authority * {ca}", "@revoked * {ca}"), False),
    Case("cert-revoked-ca-plain-known", "cert", ("@revoked * {ca}", "{hp} {ed25519}"), False),
    Case("cert-revoked-key", "cert", ("@cert-authority * {ca}", "@revoked * {ed25519}"), False),
    Case("cert-rsa-plain-known", "cert", ("{hp} {rsa}",), True),
    Case("cert-expired", "expired", ("@cert-authority * {ca}",), False),
    Case("cert-expired-plain-known", "expired", ("@cert-authority * {ca}", "{hp} {ed25519}"),
         True),
    Case("cert-not-yet-valid", "future", ("@cert-authority * {ca}",), False),
    Case("cert-rsa-ca-rsa-and-ecdsa-certs", "certrsa", ("@cert-authority * {rsa_ca}",), True),
    Case("cert-rsa-ca-plain-rsa-known", "certrsa", ("{hp} {rsa}",), True),
    Case("cert-sha1-signed", "certsha1", ("@cert-authority * {rsa_ca}",), False),
    Case("cert-sha1-signed-plain-known", "certsha1", ("@cert-authority * {rsa_ca}",
                                                      "{hp} {ecdsa}"), True),
    Case("cert-no-principals", "noprinc", ("@cert-authority * {ca}",), True, alias="anything"),
    # ssh-keygen -H leaves @cert-authority lines alone: hash this one by hand
    Case("cert-hashed-ca", "cert", ("@cert-authority {hashed_hp} {ca}",), True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_decision_as_openssh(hk_lab, tmp_path, case):
    users, glob = write_files(hk_lab, case, tmp_path)
    before = [p.read_text() for p in users]
    ssh = start_openssh(hk_lab, case, users, glob)  # both at once: the files are read-only
    result, warnings, negotiated = run_fleetops(hk_lab, case, users, glob)
    ssh = ssh()
    decisions = (ssh.returncode == 0, result.status == "ok")
    assert decisions[0] == decisions[1], (ssh.stderr, result.reason)
    assert decisions[0] == case.accepted, f"OpenSSH decided otherwise: {ssh.stderr}"
    if not case.accepted:
        assert result.status == "unreachable" and "authentication" not in result.reason
    assert [p.read_text() for p in users] == before  # strict: nothing written
    theirs = negotiated_by_openssh(ssh.stderr)
    assert negotiated_by_fleetops(hk_lab, case, users, glob, ssh.stderr) == theirs
    if case.accepted:
        assert negotiated == theirs
    if case.id == "malformed-next-to-good":
        assert len(warnings) == 2 and warnings[0].startswith(f"{users[0]}:1: ")
        assert warnings[1].startswith(f"{users[0]}:2: invalid marker")


def _added(before: str, after: str) -> list[str]:
    assert after.startswith(before)
    return after[len(before):].splitlines()


def _same_line(ours: str, theirs: str, name: str) -> None:
    """Two recorded lines: same key; same host name (plain, or both hashes of ``name``)."""
    (h1, *k1), (h2, *k2) = ours.split(), theirs.split()
    assert k1[:2] == k2[:2]
    for host in (h1, h2):
        if host.startswith("|1|"):
            salt, mac = (base64.b64decode(x) for x in host[3:].split("|"))
            assert hmac.new(salt, name.encode(), hashlib.sha1).digest() == mac
        else:
            assert host == name
    assert h1.startswith("|1|") == h2.startswith("|1|")


def negotiated_by_openssh(log: str) -> str:
    """The host-key algorithm ``ssh -vv`` reports it agreed on."""
    return re.search(r"kex: host key algorithm: (\S+)", log).group(1)


def negotiated_by_fleetops(lab: Lab, case: Case, users: list[Path], glob: Path, log: str
                           ) -> str:
    """What fleetops's order picks from the server's offer (as ``ssh -vv`` logged it)."""
    offer = log.split("peer server KEXINIT proposal", 1)[1]
    server_algs = re.search(r"host key algorithms: (\S+)", offer).group(1).split(",")
    target = Target(name="h", address=ADDR, port=lab.servers[case.server].port,
                    user_known_hosts=tuple(map(str, users)), global_known_hosts=(str(glob),),
                    host_key_alias=case.alias)
    with Fleet(RunOptions(), lambda h: target) as fleet:
        ours = fleet.known_hosts(target).host_key_algorithms(target, Transport._key_info)
    return next(a for a in ours if a in server_algs)


ACCEPT_NEW = [
    Case("new", "multi", ("other {ed25519}",), True, strict="accept-new"),
    Case("new-hashed", "multi", (), True, strict="accept-new", hashed=True),
    Case("new-run-option", "multi", (), True, strict="accept-new"),  # fleetops: --accept-new
    Case("changed", "multi", ("{hp} {stray}",), False, strict="accept-new"),
    Case("revoked", "multi", ("@revoked * {ed25519}",), False, strict="accept-new"),
    Case("other-type-only", "edonly", ("{hp} {other_rsa}",), False, strict="accept-new"),
    Case("plain-name-rsa-only", "multi", ("{h} {rsa}",), True, strict="accept-new"),
    Case("cert-expired", "expired", ("@cert-authority * {ca}",), True, strict="accept-new"),
    Case("cert-wrong-ca", "cert", ("@cert-authority * {other_ca}",), True,
         strict="accept-new"),
    Case("cert-revoked-ca", "cert", ("@revoked * {ca}",), False, strict="accept-new"),
]


@pytest.mark.parametrize("case", ACCEPT_NEW, ids=lambda c: c.id)
def test_accept_new_records_what_openssh_records(hk_lab, tmp_path, case):
    hashed = case.hashed
    case_files = Case(**{**case.__dict__, "hashed": False})
    ours, ours_glob = write_files(hk_lab, case_files, tmp_path / "fleetops")
    theirs, theirs_glob = write_files(hk_lab, case_files, tmp_path / "openssh")
    before = ours[0].read_text()
    ssh = start_openssh(hk_lab, case, theirs, theirs_glob, hash_hosts=hashed)
    option = case.id == "new-run-option"
    ours_case = Case(**{**case.__dict__, "strict": "yes"}) if option else case
    result, *_ = run_fleetops(hk_lab, ours_case, ours, ours_glob, hash_hosts=hashed,
                             accept_new=option)
    ssh = ssh()
    assert (ssh.returncode == 0, result.status == "ok") == (case.accepted, case.accepted), (
        ssh.stderr, result.reason)
    added_ours = _added(before, ours[0].read_text())
    added_theirs = _added(before, theirs[0].read_text())
    assert len(added_ours) == len(added_theirs) == (1 if case.accepted else 0)
    if case.accepted:
        _same_line(added_ours[0], added_theirs[0], f"[{ADDR}]:{hk_lab.servers[case.server].port}")
        assert added_ours[0].startswith("|1|") == hashed
        assert oct(ours[0].stat().st_mode & 0o777) in ("0o600", "0o644")
        again, *_ = run_fleetops(hk_lab, Case(**{**case.__dict__, "strict": "yes"}), ours,
                                ours_glob)
        assert again.status == "ok", again.reason     # the recorded line is good for ssh too
        check = run_openssh(hk_lab, Case(**{**case.__dict__, "strict": "yes"}), ours, ours_glob)
        assert check.returncode == 0, check.stderr


REASONS = [
    (Case("changed", "multi", ("{hp} {stray}",), False),
     r"^HOST KEY CHANGED for \[127.0.0.1\]:\d+ \(ssh-ed25519 SHA256:\S+\): refusing to connect "
     r"\(possible man-in-the-middle\); check and update \S+known_hosts:1$"),
    (Case("other-type", "edonly", ("{hp} {other_rsa}",), False),
     r"^no known ssh-ed25519 host key for .* only other key types are known "
     r"\(ssh-rsa in \S+:1\)"),
    (Case("revoked", "multi", ("@revoked * {ed25519}",), False, strict="accept-new"),
     r"^REVOKED host key for .*marked @revoked in \S+known_hosts:1; refusing to connect$"),
    (Case("unknown", "multi", (), False), r"^unknown host key for .*use --accept-new"),
    (Case("ask-is-batch-mode", "multi", (), False, strict="ask"), r"^unknown host key for"),
    (Case("cert-expired", "expired", ("@cert-authority * {ca}",), False),
     r"host certificate not accepted: Certificate invalid: expired \(CA in \S+:1\)"),
    (Case("cert-sha1", "certsha1", ("@cert-authority * {rsa_ca}",), False),
     r"Certificate signed with disallowed algorithm"),
    (Case("cert-principal", "cert", ("@cert-authority * {ca}",), False, alias="other"),
     r"Certificate invalid: name is not a listed principal \(other\)"),
]


@pytest.mark.parametrize("case,reason", REASONS, ids=lambda c: getattr(c, "id", ""))
def test_refusal_reasons(hk_lab, tmp_path, case, reason):
    users, glob = write_files(hk_lab, case, tmp_path)
    assert run_openssh(hk_lab, case, users, glob).returncode != 0
    result, *_ = run_fleetops(hk_lab, case, users, glob)
    assert result.status == "unreachable"
    assert re.search(reason, result.reason), result.reason
    assert ("man-in-the-middle" in result.reason) == (case.id == "changed")


def test_strict_no_is_refused_with_its_reason(hk_lab, tmp_path):
    """OpenSSH connects to an unknown host with StrictHostKeyChecking=no; fleetops does not
    (it never runs on a host it cannot verify) and says why, naming the setting's source."""
    case = Case("no", "multi", (), False, strict="no")
    users, glob = write_files(hk_lab, case, tmp_path / "fleetops")
    theirs, theirs_glob = write_files(hk_lab, case, tmp_path / "openssh")
    assert run_openssh(hk_lab, case, theirs, theirs_glob).returncode == 0
    assert theirs[0].read_text()  # and OpenSSH recorded the key
    result, *_ = run_fleetops(hk_lab, case, users, glob)
    assert result.status == "unreachable"
    assert "StrictHostKeyChecking=no is not honoured" in result.reason
    assert users[0].read_text() == ""
    known = fleet_target_known(users, glob)
    target = Target(name="h", address=ADDR, port=hk_lab.servers["multi"].port,
                    strict_host_key_checking="no",
                    source={"stricthostkeychecking": "/etc/ssh/ssh_config:7"})
    key = __import__("fleetops.core.hostkeys", fromlist=["ServerKey"]).ServerKey(
        "ssh-ed25519", base64.b64decode(hk_lab.pub["multi.ed25519"].split()[1]))
    with pytest.raises(Exception, match="StrictHostKeyChecking=no in /etc/ssh/ssh_config:7"):
        known.verify(target, key)


def fleet_target_known(users: list[Path], glob: Path):
    from fleetops.core.hostkeys import KnownHosts

    return KnownHosts(tuple(map(str, users)), (str(glob),))


def test_malformed_line_warned_once_per_run_on_stderr(hk_lab, tmp_path, capsys):
    case = Case("m", "multi", ("@cert-authority", "{hp} {ed25519}"), True)
    users, glob = write_files(hk_lab, case, tmp_path)
    port = hk_lab.servers["multi"].port
    targets = {n: Target(name=n, address=ADDR, port=port, user="root",
                         key_files=(str(hk_lab.client),), user_known_hosts=(str(users[0]),),
                         global_known_hosts=(str(glob),)) for n in ("a", "b", "c")}
    with Fleet(RunOptions(connect_timeout=5), lambda h: targets[h.name]) as fleet:
        run = fleet.run([_Host(n) for n in targets], lambda s: s.connection and None)
    assert run.summary["ok"] == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: {users[0]}:1: no key after the host patterns; line skipped"]


def test_cli_run_on_the_lab_with_markers_hashed_lines_and_a_bad_line(lab, tmp_path, hk_lab):
    """The original bug: one @cert-authority or @revoked line failed every host. Through
    ``invoke run``: markers, a hashed copy of the lab's lines and a malformed line; every
    host ok, the bad line reported once on stderr."""
    import json
    import sys

    known = tmp_path / "known_hosts"
    known.write_text(lab.known_hosts.read_text())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    known.write_text(f"@cert-authority * {hk_lab.ca_pub()}\n@revoked * {hk_lab.stray_pub()}\n"
                     "lab01 ssh-ed25519 AAAA-broken\n" + known.read_text())
    text = lab.inventory_path.read_text()
    inventory = tmp_path / "inv.ini"
    inventory.write_text(re.sub(r"fleetops_known_hosts=\S+", f"fleetops_known_hosts={known}",
                                text))
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(Path(__file__).parents[1]),
                           "run", "-i", str(inventory), "--json", "-p", "lab[0:5]",
                           "--retry-file", str(tmp_path / "retry"), "true"],
                          capture_output=True, text=True, timeout=120, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, doc
    assert doc["summary"]["ok"] == 6
    assert proc.stderr.count("warning: ") == 1
    assert f"warning: {known}:3: bad ssh-ed25519 key" in proc.stderr
