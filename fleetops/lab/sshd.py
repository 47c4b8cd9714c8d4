"""The sshd_config of a lab host: the lab's defaults, then its kind's lines (the
``mixed`` profile's kinds, :mod:`fleetops.lab.mixed`)."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from fleetops.lab.host import LabHost
from fleetops.lab.mixed import sshd_lines


@functools.cache
def openssh_version() -> tuple[int, int]:
    out = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    found = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def sshd_config(host: LabHost, client_pub: Path, rekeyed: bool = False) -> str:
    key = host.rekey_key if rekeyed else host.host_key
    lines = [
        f"ListenAddress {host.address}:{host.port}",
        f"HostKey {key}",
        f"PidFile {host.pid_file}",
        f"AuthorizedKeysFile {client_pub}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "StrictModes no",
        "MaxStartups 300:30:600",
        "MaxSessions 50",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        "ClientAliveInterval 15",
    ]
    if openssh_version() >= (9, 8):  # penalties would refuse a test's deliberate failures
        lines.append("PerSourcePenalties no")
    kind = sshd_lines(host)  # a kind's lines replace the same keywords (some keep the last)
    replaced = {line.split()[0].lower() for line in kind}
    lines = kind + [line for line in lines if line.split()[0].lower() not in replaced]
    return "\n".join(lines) + "\n"
