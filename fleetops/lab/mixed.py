"""The lab's ``mixed`` profile: the hosts of a real fleet, next to the ordinary ones.

Addresses (prefix ``127.N``, all on port 2222; see docs/lab.md)::

    bastion       10.253.N.2   in netns fleetops-lab-N, user jump, TCP forwarding on
    hidden01..    127.N.11.i   in netns fleetops-lab-N only: reachable through the bastion
                               (2 by default; ``hidden`` sets how many, up to 250)
    sudopw        127.N.10.3   user deploy, sudo asks deploy's password
    nopasswd      127.N.10.4   user ops, sudo NOPASSWD
    requiretty    127.N.10.5   user ops, sudo NOPASSWD with "Defaults requiretty"
    usercert      127.N.10.6   root by user certificate only (TrustedUserCAKeys)
    hostcert      127.N.10.7   host certificate, trusted by @cert-authority in known_hosts
    pwonly        127.N.10.8   root by password only
    noisyrc       127.N.10.9   ~/.bashrc, ~/.profile and /etc/bash.bashrc print lines
    nopython      127.N.10.10  no python3 at all
    maxstartups   127.N.10.11  MaxStartups 2:100:2

The network namespace ``fleetops-lab-N`` holds the bastion and the hidden hosts; a
veth pair joins it to this machine (10.253.N.1 here, 10.253.N.2 there), and the
hidden hosts listen on that namespace's loopback only: from the machine, 127.N.11.x
is this machine's own loopback, where nothing listens (connection refused).
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fleetops.lab.host import PORT, LabError, LabHost, write_file


@dataclass(frozen=True)
class Kind:
    """One special host: its name (= kind), inventory group, login user, sshd lines."""

    name: str
    group: str
    user: str
    octet: int
    sshd: tuple[str, ...] = ()

    @property
    def behind_bastion(self) -> bool:
        return self.group == "behind_bastion"


#: non-root users keep the lab's client key in their own ~/.ssh/authorized_keys
_USER_KEYS = "AuthorizedKeysFile .ssh/authorized_keys"
KINDS = (
    Kind("bastion", "bastion", "jump", 2, ("PermitRootLogin no", "AllowTcpForwarding yes",
                                            _USER_KEYS)),
    Kind("hidden", "behind_bastion", "root", 0),  # hosts hidden01, hidden02...
    Kind("sudopw", "sudo_password", "deploy", 3, (_USER_KEYS,)),
    Kind("nopasswd", "sudo_nopasswd", "ops", 4, (_USER_KEYS,)),
    Kind("requiretty", "requiretty", "ops", 5, (_USER_KEYS,)),
    Kind("usercert", "usercert", "root", 6, ("AuthorizedKeysFile none",)),
    Kind("hostcert", "hostcert", "root", 7),
    Kind("pwonly", "password_only", "root", 8,
         ("PasswordAuthentication yes", "PubkeyAuthentication no", "PermitRootLogin yes")),
    Kind("noisyrc", "noisy_rc", "root", 9),
    Kind("nopython", "nopython", "root", 10),
    Kind("maxstartups", "maxstartups", "root", 11, ("MaxStartups 2:100:2",)),
)
KIND = {k.name: k for k in KINDS}
GROUPS = tuple(dict.fromkeys(k.group for k in KINDS))
NOISY_LINES = {"/etc/bash.bashrc": "noisyrc: /etc/bash.bashrc says hello",
               "/root/.bashrc": "noisyrc: ~/.bashrc says hello",
               "/root/.profile": "noisyrc: ~/.profile says hello"}
_HIDE_PYTHON = """for f in /usr/bin/python3* /usr/local/bin/python3*; do
  case "${f##*/}" in python3|python3.[0-9]|python3.[0-9][0-9]) rm -f "$f" ;; esac
done"""


def lab_number(prefix: str) -> int:
    return int(prefix.split(".")[1])


def netns_name(prefix: str) -> str:
    return f"fleetops-lab-{lab_number(prefix)}"


def jump_addresses(prefix: str) -> tuple[str, str]:
    """(this machine's end, the bastion's end) of the veth pair."""
    n = lab_number(prefix)
    return f"10.253.{n}.1", f"10.253.{n}.2"


MAX_HIDDEN = 250


def plan(prefix: str, state_dir: Path, first_index: int, hidden: int = 2) -> list[LabHost]:
    """The special hosts: one of each kind, ``hidden`` hosts behind the bastion."""
    if not 1 <= hidden <= MAX_HIDDEN:
        raise LabError(f"the mixed lab takes 1..{MAX_HIDDEN} hidden hosts, not {hidden}")
    ns = netns_name(prefix)
    width = 3 if hidden > 99 else 2
    named: list[tuple[str, Kind, str]] = []
    for k in KINDS:
        if k.name == "hidden":
            named += [(f"hidden{i:0{width}d}", k, f"{prefix}.11.{i}")
                      for i in range(1, hidden + 1)]
        else:
            address = jump_addresses(prefix)[1] if k.name == "bastion" else \
                f"{prefix}.10.{k.octet}"
            named.append((k.name, k, address))
    return [LabHost(name, first_index + i, address, PORT, state_dir / f"x-{name}",
                    kind=k.name, netns=ns if k.behind_bastion or k.name == "bastion" else "")
            for i, (name, k, address) in enumerate(named)]


@dataclass(frozen=True)
class Paths:
    """The mixed profile's files in the state dir."""

    state: Path

    user_ca = property(lambda self: self.state / "user_ca")
    host_ca = property(lambda self: self.state / "host_ca")
    cert_key = property(lambda self: self.state / "id_usercert")
    cert = property(lambda self: self.state / "id_usercert-cert.pub")
    secrets = property(lambda self: self.state / "mixed-secrets")
    askpass = property(lambda self: self.state / "askpass")
    ssh_config = property(lambda self: self.state / "ssh_config")
    facts = property(lambda self: self.state / "mixed.json")


def sshd_lines(host: LabHost) -> list[str]:
    """The kind's sshd_config lines (they come first: sshd keeps the first value)."""
    kind = KIND.get(host.kind)
    if kind is None:
        return []
    lines = list(kind.sshd)
    if kind.name == "usercert":
        lines.append(f"TrustedUserCAKeys {Paths(host.dir.parent).user_ca}.pub")
    if kind.name == "hostcert":
        lines.append(f"HostCertificate {host.host_key}-cert.pub")
    return lines


def make_secrets(paths: Paths) -> dict[str, str]:
    """Random passwords of this lab (file mode 0600): sudo (deploy) and login (root@pwonly)."""
    found = {key: "lab" + secrets.token_urlsafe(12) for key in ("sudo_password", "login_password")}
    write_file(paths.secrets, "".join(f"{k}={v}\n" for k, v in found.items()), 0o600)
    write_file(paths.askpass, f"#!/bin/sh\n# SSH_ASKPASS for the lab's password-only host\n"
               f"sed -n 's/^login_password=//p' {shlex.quote(str(paths.secrets))}\n", 0o700)
    return found


def read_secrets(paths: Paths) -> dict[str, str]:
    try:
        text = paths.secrets.read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def password_hash(password: str) -> str:
    """A SHA-512 crypt(3) hash (openssl passwd -6; the password on stdin)."""
    proc = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                          capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode or not proc.stdout.startswith("$6$"):
        raise LabError(f"openssl passwd failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def sign(ca: Path, pub: Path, identity: str, principals: list[str], host: bool) -> None:
    argv = ["ssh-keygen", "-q", "-s", str(ca), "-I", identity, "-n", ",".join(principals),
            "-V", "-5m:+520w", *(["-h"] if host else []), str(pub)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30,
                          stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise LabError(f"ssh-keygen -s failed for {pub}: {proc.stderr.strip()}")


def setup_lines(host: LabHost, hashes: dict[str, str], client_pub: Path,
                hidden: list[LabHost] | None = None) -> list[str]:
    """Shell run inside the new host's root (as root) to make it its kind; the bastion's
    /etc/hosts also names the ``hidden`` hosts (as an internal DNS would)."""
    q = shlex.quote
    name = host.kind
    if name in ("bastion", "sudopw", "nopasswd", "requiretty"):
        user = KIND[name].user
        pw = hashes["sudo"] if name == "sudopw" else "*"
        keys = f"/home/{user}/.ssh/authorized_keys"
        lines = [f"useradd -m -s /bin/bash -p {q(pw)} {user}",
                 f"install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh",
                 f"install -m 0600 -o {user} -g {user} {q(str(client_pub))} {keys}"]
        if name == "bastion" and hidden:
            names = "".join(f"{h.address}\t{h.name}\n" for h in hidden)
            lines.append(f"printf %s {q(names)} >> /etc/hosts")
        rule = {"sudopw": f"{user} ALL=(ALL:ALL) ALL",
                "nopasswd": f"{user} ALL=(ALL:ALL) NOPASSWD: ALL",
                "requiretty": f"Defaults requiretty\n{user} ALL=(ALL:ALL) NOPASSWD: ALL"}
        if name in rule:
            lines += [f"printf '%s\\n' {q(rule[name])} > /etc/sudoers.d/fleetops-lab",
                      "chmod 0440 /etc/sudoers.d/fleetops-lab"]
        return lines
    if name == "pwonly":
        return [f"usermod -p {q(hashes['login'])} root"]
    if name == "noisyrc":
        lines = []
        for path, text in NOISY_LINES.items():
            lines.append(f"{{ echo {q('echo ' + q(text))}; cat {path} 2>/dev/null || true; }}"
                         f" > {path}.new && mv {path}.new {path}")
        return lines
    if name == "nopython":
        return [_HIDE_PYTHON]
    return []


# -- the network namespace of the bastion -------------------------------------------------
def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30,
                          check=False)
    if check and proc.returncode:
        raise LabError(f"ip {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def netns_up(prefix: str) -> None:
    """Create the bastion's namespace, its veth pair and loopback (refuses a taken range)."""
    import ipaddress

    from fleetops.lab.scan import LabError as ScanLabError
    from fleetops.lab.scan import assert_unrouted

    ns, n = netns_name(prefix), lab_number(prefix)
    here, there = jump_addresses(prefix)
    netns_down(prefix)
    try:
        assert_unrouted(ipaddress.ip_network(f"{here}/30", strict=False))
    except ScanLabError as exc:
        raise LabError(f"mixed lab: {exc}") from None
    outer, inner = f"fol{n}j0", f"fol{n}j1"
    _ip("netns", "add", ns)
    _ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
    _ip("addr", "add", f"{here}/30", "dev", outer)
    _ip("link", "set", outer, "up")
    _ip("-n", ns, "addr", "add", f"{there}/30", "dev", inner)
    _ip("-n", ns, "link", "set", inner, "up")
    _ip("-n", ns, "link", "set", "lo", "up")


def netns_down(prefix: str) -> bool:
    """Delete the bastion's namespace (its veth pair goes with it); True if it existed."""
    ns, veth = netns_name(prefix), f"fol{lab_number(prefix)}j0"
    found = Path("/run/netns", ns).exists()
    if found:
        _ip("netns", "del", ns, check=False)
    if Path("/sys/class/net", veth).exists():  # left alone by a crash between the two
        _ip("link", "del", veth, check=False)
    return found


def prepare(state: Path, prefix: str, hosts: list[LabHost]) -> dict[str, list[str]]:
    """Keys, certificates, passwords and the namespace of the mixed hosts (after keygen).

    Returns each special host's setup lines (run inside its root at start).
    """
    paths = Paths(state)
    sign(paths.user_ca, Path(f"{paths.cert_key}.pub"), "fleetops-lab usercert",
         ["root"], host=False)
    for h in hosts:
        if h.kind == "hostcert":
            sign(paths.host_ca, Path(f"{h.host_key}.pub"), f"fleetops-lab {h.name}",
                 [h.address, h.name], host=True)
    passwords = make_secrets(paths)
    hashes = {"sudo": password_hash(passwords["sudo_password"]),
              "login": password_hash(passwords["login_password"])}
    netns_up(prefix)
    pub = state / "id_ed25519.pub"
    hidden = [h for h in hosts if h.kind == "hidden"]
    return {h.name: setup_lines(h, hashes, pub, hidden) for h in hosts}


def key_jobs(state: Path) -> list[tuple[Path, str]]:
    """(key path, comment) of the mixed profile's own keys: both CAs and the cert's key."""
    paths = Paths(state)
    return [(paths.user_ca, "fleetops-lab user CA"), (paths.host_ca, "fleetops-lab host CA"),
            (paths.cert_key, "fleetops-lab usercert client")]
