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
    address = ssh.get("hostname") or host.address
    port = int(ssh.get("port") or 22)
    user = ssh.get("user") or getpass.getuser()
    proxy = (host.vars or {}).get("fleetops_proxy_command") or ssh.get("proxycommand")
    if proxy:
        proxy = str(proxy).replace("%h", address).replace("%p", str(port)).replace("%r", user)
    known = host.known_hosts or next(iter(ssh.get("userknownhostsfile") or ()), None)
    return Target(
        name=host.name,
        address=address,
        port=port,
        user=user,
        key_files=tuple(keys),
        proxy_command=proxy or None,
        known_hosts=known,
        jump=_jump(ssh.get("proxyjump"), host),
    )


def _jump(spec: str | None, host: Any) -> tuple[Target, ...]:
    """ProxyJump hops (fleetops.jump); a bad value is an input error naming the host."""
    from fleetops.errors import InputError
    from fleetops.jump import jump_chain

    try:
        return jump_chain(spec, target_for)
    except ValueError as exc:
        raise InputError(f"{exc} (for host '{host.name}')") from None
