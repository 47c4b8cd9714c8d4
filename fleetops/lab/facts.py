"""What a client needs to reach the mixed lab: known_hosts, ssh_config, inventory, facts.

:class:`MixedFacts` (``Lab.mixed()``) is the one place tests read paths, passwords and
addresses from; ``<state>/ssh_config`` lets plain OpenSSH reach every host by name
(``ssh -F <state>/ssh_config HOST``), the bastion's hosts through ``ProxyJump``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleetops.lab.host import LabHost, write_file
from fleetops.lab.mixed import GROUPS, KIND, Paths


@dataclass
class MixedFacts:
    """The mixed lab as its clients see it (every path absolute; hosts by name)."""

    state_dir: str
    prefix: str
    ssh_config: str
    known_hosts: str  # plain keys of every host, @cert-authority for hostcert (all use it)
    client_key: str
    cert_key: str
    cert: str
    user_ca: str
    host_ca: str
    askpass: str
    sudo_password: str
    login_password: str
    bastion: str
    netns: str
    #: name -> {"address", "port", "user", "group", "proxy_jump" ("" if direct)}
    hosts: dict[str, dict] = field(default_factory=dict)

    def jump_spec(self) -> str:
        """``user@address:port`` of the bastion (a ProxyJump / ``ssh -J`` value)."""
        b = self.hosts[self.bastion]
        return f"{b['user']}@{b['address']}:{b['port']}"

    def group(self, name: str) -> list[str]:
        return [h for h, doc in self.hosts.items() if doc["group"] == name]

    def ssh_argv(self, host: str, *command: str) -> list[str]:
        """Plain OpenSSH to ``host`` by its name in the lab's ssh_config."""
        return ["ssh", "-F", self.ssh_config, host, *command]

    def askpass_env(self, env: dict) -> dict:
        """``env`` plus SSH_ASKPASS settings that answer the password-only host's prompt."""
        return dict(env, SSH_ASKPASS=self.askpass, SSH_ASKPASS_REQUIRE="force",
                    DISPLAY=env.get("DISPLAY", ":0"))

    @classmethod
    def load(cls, path: Path) -> MixedFacts:
        """Read ``mixed.json``; keys this version does not know (an older lab's) are left out."""
        doc = json.loads(path.read_text())
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


def facts(state: Path, prefix: str, hosts: list[LabHost], client_key: Path,
          known_hosts: Path, passwords: dict[str, str]) -> MixedFacts:
    paths = Paths(state)
    bastion = next(h for h in hosts if h.kind == "bastion")
    doc = MixedFacts(str(state), prefix, str(paths.ssh_config), str(known_hosts),
                     str(client_key), str(paths.cert_key), str(paths.cert),
                     str(paths.user_ca), str(paths.host_ca), str(paths.askpass),
                     passwords["sudo_password"], passwords["login_password"], bastion.name,
                     bastion.netns)
    for h in hosts:
        kind = KIND.get(h.kind)
        doc.hosts[h.name] = {
            "address": h.address, "port": h.port, "user": kind.user if kind else "root",
            "group": kind.group if kind else "lab",
            "proxy_jump": bastion.name if kind and kind.behind_bastion else ""}
    return doc


def write_facts(doc: MixedFacts) -> None:
    write_file(Paths(Path(doc.state_dir)).facts, json.dumps(asdict(doc), indent=2) + "\n",
               0o600)


def known_hosts_lines(hosts: list[LabHost], host_ca_pub: Path | None) -> list[str]:
    """One plain key line a host; the hostcert host by ``@cert-authority`` instead."""
    lines = []
    for h in hosts:
        pattern = f"[{h.address}]:{h.port}"
        if h.kind == "hostcert" and host_ca_pub is not None:
            kind, blob = host_ca_pub.read_text().split()[:2]
            lines.append(f"@cert-authority {pattern} {kind} {blob} fleetops-lab host CA\n")
            continue
        kind, blob = Path(f"{h.host_key}.pub").read_text().split()[:2]
        lines.append(f"{pattern} {kind} {blob}\n")
    return lines


def ssh_config_text(doc: MixedFacts) -> str:
    """An ssh_config(5) for ``ssh -F``: every host by name, defaults last."""
    out = [f"# fleetops mixed lab: ssh -F {doc.ssh_config} HOST (written by 'invoke lab.up')"]
    for name, h in doc.hosts.items():
        out += [f"Host {name}", f"  HostName {h['address']}", f"  Port {h['port']}",
                f"  User {h['user']}"]
        if h["proxy_jump"]:
            out.append(f"  ProxyJump {h['proxy_jump']}")
        if h["group"] == "usercert":
            out += [f"  IdentityFile {doc.cert_key}", f"  CertificateFile {doc.cert}"]
        if h["group"] == "password_only":
            out += ["  PubkeyAuthentication no", "  PreferredAuthentications password",
                    "  BatchMode no", "  NumberOfPasswordPrompts 1"]
    out += ["Host *", f"  IdentityFile {doc.client_key}", "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {doc.known_hosts}", "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes", "  BatchMode yes", "  ConnectTimeout 10",
            "  LogLevel ERROR"]
    return "\n".join(out) + "\n"


def inventory_sections(doc: MixedFacts, hosts: list[LabHost]) -> list[str]:
    """INI sections of the mixed hosts: one group a kind, ``mixed`` = all of them."""
    out = []
    for group in GROUPS:
        out += ["", f"[{group}]"]
        for h in hosts:
            kind = KIND[h.kind]
            if kind.group != group:
                continue
            line = (f"{h.name} ansible_host={h.address} ansible_port={h.port} "
                    f"ansible_user={kind.user}")
            if h.kind in ("sudopw", "nopasswd", "requiretty"):
                line += " ansible_become=yes"
            if h.kind == "sudopw":
                line += f" ansible_become_password={doc.sudo_password}"
            if h.kind == "pwonly":
                line += f" ansible_password={doc.login_password}"
            if h.kind == "usercert":
                line += f" ansible_ssh_private_key_file={doc.cert_key}"
            out.append(line)
    out += ["", "[behind_bastion:vars]",
            # -F: the hop (like ssh's own -J hop) takes its key from the lab's ssh_config
            f"ansible_ssh_common_args='-F {doc.ssh_config} -o ProxyJump={doc.jump_spec()}'",
            "", "[mixed:children]", *GROUPS,
            "", "[mixed:vars]", f"ansible_ssh_private_key_file={doc.client_key}",
            f"fleetops_known_hosts={doc.known_hosts}"]
    return out
