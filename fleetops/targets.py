"""Resolve an inventory host to SSH connection parameters."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from fleetops.ssh import Target

DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


def target_for(host: Any) -> Target:
    """Connection parameters: inventory vars win over ~/.ssh/config, which wins over defaults."""
    from fleetops.inventory import resolve_ssh

    ssh = resolve_ssh(host)
    keys = [k for k in ssh.get("identityfile") or () if k]
    if not keys:
        keys = [k for k in DEFAULT_KEYS if Path(k).expanduser().exists()]
    return Target(
        name=host.name,
        address=ssh.get("hostname") or host.address,
        port=int(ssh.get("port") or 22),
        user=ssh.get("user") or getpass.getuser(),
        key_files=tuple(keys),
    )
