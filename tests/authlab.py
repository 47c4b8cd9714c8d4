"""Test helpers for authentication and sudo: a second, real OpenSSH sshd inside one lab
host's namespaces (so its users, passwords and sudoers live in that host's copy of /etc),
an ssh-agent of our own, and key/certificate making with ssh-keygen.

The sshd: keys from ``/tmp/fo-auth/keys/%u`` (set with ``authorize``), user certificates
from the test CA, password auth on, ``dave`` password-only. Users: alice (sudo with her
password), bob (sudo NOPASSWD), carol (sudo with password, ``requiretty``), dave
(password login only), erin (certificate only), frank (an encrypted key), gina (a key
and then a password: ``AuthenticationMethods publickey,password``)."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from fleetops.core.ssh import Target
from fleetops.lab.faults import NsPopen

USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "gina")
PASSWORDS = {u: f"pw-{u}-S3cret" for u in USERS}
SUDOERS = """alice ALL=(ALL) ALL
bob ALL=(ALL) NOPASSWD: ALL
Defaults:carol requiretty
carol ALL=(ALL) ALL
"""
BASE = "/tmp/fo-auth"


def keygen(path: Path, passphrase: str = "", comment: str = "") -> Path:
    for p in (path, Path(f"{path}.pub")):
        p.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C",
                    comment or path.name, "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return path


def sign(ca: Path, pub: Path, principals: str, ident: str = "test") -> Path:
    """A user certificate ``<key>-cert.pub`` for ``pub`` signed by ``ca``."""
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", ident, "-n", principals,
                    "-V", "-5m:+1h", str(pub)], check=True, stdin=subprocess.DEVNULL,
                   capture_output=True)
    return Path(str(pub).removesuffix(".pub") + "-cert.pub")


def fingerprint(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def pub_blob(path: Path) -> bytes:
    return base64.b64decode(path.read_text().split()[1])


class Agent:
    """Our own ssh-agent on a socket in ``tmp``; stopped by pid."""

    def __init__(self, tmp: Path) -> None:
        self.sock = str(tmp / "agent.sock")
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", self.sock],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.02)
        self.askpass = tmp / "askpass.sh"

    def add(self, key: Path, passphrase: str = "") -> None:
        """``ssh-add`` (with its certificate if one is beside it); the passphrase through
        SSH_ASKPASS, never on a command line."""
        self.askpass.write_text('#!/bin/sh\nprintf "%s\\n" "$FO_PASS"\n')
        self.askpass.chmod(0o700)
        env = {**os.environ, "SSH_AUTH_SOCK": self.sock, "SSH_ASKPASS": str(self.askpass),
               "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0", "FO_PASS": passphrase}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, timeout=20,
                       stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)


class AuthSshd:
    """The second sshd (see the module docstring) on ``host`` of the test lab."""

    def __init__(self, lab, host: str, tmp: Path) -> None:
        self.lab = lab
        self.host = lab.host(host)
        self.address = self.host.address
        self.port = _free_port(self.address)
        self.tmp = tmp
        self.ca = keygen(tmp / "user_ca", comment="fleetops test CA")
        self.client_key = Path(lab.client_key)
        self._setup()
        self.known_hosts = tmp / "known_hosts"
        host_pub = self.sh(f"cat {BASE}/host_key.pub").stdout.split()
        self.known_hosts.write_text(f"[{self.address}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.log = tmp / "sshd.log"
        self.proc = NsPopen(
            self._ns("/usr/sbin/sshd", "-D", "-e", "-f", f"{BASE}/sshd_config"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        self._wait()

    def _ns(self, *argv: str) -> list[str]:
        return self.host.nsenter(list(argv))  # every namespace of the host, its own /proc

    def sh(self, script: str, data: bytes | None = None) -> subprocess.CompletedProcess:
        """Run a root shell script inside the lab host (its /etc, its /tmp)."""
        proc = subprocess.run(self._ns("/bin/sh", "-c", script), input=data,
                              capture_output=True, timeout=30, check=False)
        if proc.returncode:
            raise RuntimeError(f"in {self.host.name}: {script[:60]}: {proc.stderr!r}")
        return subprocess.CompletedProcess(proc.args, 0, proc.stdout.decode(),
                                           proc.stderr.decode())

    def authorize(self, user: str, pub: Path | str) -> None:
        """Let ``user`` log in with the key ``pub`` (replaces earlier ones)."""
        text = Path(pub).read_bytes() if isinstance(pub, Path) else pub.encode()
        self.sh(f"cat > {BASE}/keys/{shlex.quote(user)}", text)

    def _setup(self) -> None:
        q = shlex.quote
        users = " ".join(USERS)
        chpasswd = "".join(f"{u}:{p}\n" for u, p in PASSWORDS.items())
        config = "\n".join([
            f"ListenAddress {self.address}:{self.port}", f"HostKey {BASE}/host_key",
            "PidFile none", f"AuthorizedKeysFile {BASE}/keys/%u",
            f"TrustedUserCAKeys {BASE}/ca.pub", "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no", "UsePAM no", "PermitRootLogin yes",
            "StrictModes no", "UseDNS no", "PrintMotd no", "PrintLastLog no",
            "MaxAuthTries 30", "MaxStartups 100:30:200", "LogLevel VERBOSE",
            *(["PerSourcePenalties no"] if _openssh() >= (9, 8) else []),
            "Match User dave", "  AuthenticationMethods password",
            "Match User gina", "  AuthenticationMethods publickey,password", ""])
        self.sh("set -eu\n"
                f"mkdir -p {BASE}/keys && chmod 755 {BASE} {BASE}/keys\n"
                f"for u in {users}; do id $u >/dev/null 2>&1 || "
                "useradd -M -d /tmp/home-$u -s /bin/sh $u; "
                "mkdir -p /tmp/home-$u; chown $u /tmp/home-$u; done\n"
                f"printf %s {q(chpasswd)} | chpasswd\n"
                f"printf %s {q(SUDOERS)} > /etc/sudoers.d/fleetops-auth-test\n"
                "chmod 440 /etc/sudoers.d/fleetops-auth-test\n"
                f"grep -q {q(self.host.name)} /etc/hosts || "
                f"echo '127.0.1.1 {self.host.name}' >> /etc/hosts\n"
                f"[ -f {BASE}/host_key ] || ssh-keygen -q -t ed25519 -N '' -f {BASE}/host_key\n"
                f"printf %s {q(config)} > {BASE}/sshd_config\n"
                f"cat > {BASE}/ca.pub", Path(f"{self.ca}.pub").read_bytes())
        lab_pub = Path(f"{self.client_key}.pub")
        for user in ("root", "alice", "bob", "carol", "gina"):
            self.authorize(user, lab_pub)

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-500:]}")
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not answer")

    def target(self, user: str, name: str | None = None, **fields) -> Target:
        fields.setdefault("key_files", ())
        return Target(name=name or f"{self.host.name}-{user}", address=self.address,
                      port=self.port, user=user, known_hosts=str(self.known_hosts),
                      identity_agent=fields.pop("identity_agent", "none"), **fields)

    def ssh_argv(self, user: str, *opts: str) -> list[str]:
        """OpenSSH's own client against this sshd (the reference)."""
        return ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o",
                f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                *opts, "-p", str(self.port), f"{user}@{self.address}"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _free_port(address: str) -> int:
    for port in range(2300, 2400):
        with socket.socket() as s:
            try:
                s.bind((address, port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port on {address}")


def _openssh() -> tuple[int, int]:
    from fleetops.lab.sshd import openssh_version

    return openssh_version()


def run_on_tty(argv: list[str], answers: dict[bytes, bytes], env: dict[str, str],
               timeout: float = 60.0) -> tuple[bytes, int, dict[bytes, int]]:
    """Run ``argv`` with a pseudo-terminal as its controlling tty (as a user at a
    terminal would); each time a prompt of ``answers`` appears, type its answer.
    Returns (everything the terminal showed, exit status, prompts seen per prompt)."""
    import pty
    import select as select_

    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once (the parent has threads)
        try:
            os.chdir(str(Path(__file__).resolve().parents[1]))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    shown, seen = b"", dict.fromkeys(answers, 0)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select_.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
            for prompt, answer in answers.items():
                if shown.count(prompt) > seen[prompt]:
                    seen[prompt] = shown.count(prompt)
                    os.write(fd, answer)
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return shown, os.waitstatus_to_exitcode(status), seen
