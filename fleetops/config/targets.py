"""Resolve an inventory host once into a :class:`fleetops.core.ssh.Target`, as ``ssh`` would.

The host's address is the destination (``ssh ADDRESS``); inventory vars are command-line
options in Ansible's order (``ansible_ssh_args``, ``StrictHostKeyChecking=no`` when host key
checking is off, ``-o Port``/``IdentityFile``/``User`` from ``ansible_port``/key/
``ansible_user``, ``ConnectTimeout`` from ``ansible_timeout``, then
``ansible_ssh_common_args`` and ``ansible_ssh_extra_args``), so they win over ssh_config
like ``ssh -o``;
``fleetops_known_hosts`` and ``fleetops_proxy_command`` come first of all. ProxyJump hops
are resolved like the ``ssh -l USER -p PORT -J EARLIER HOP`` OpenSSH runs for them (same
``-F`` file; of the inventory, ``fleetops_known_hosts`` and the key file apply to them too). Bad config or vars raise
:class:`fleetops.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import getpass
import os
from functools import lru_cache
from typing import Any

from fleetops.config.ansible_ssh_args import connection_vars
from fleetops.config.sshconfig import ConfigError, Line, Refused, Resolved, option_line, resolve
from fleetops.config.tokens import expand_proxy_command, tilde_expand
from fleetops.config.values import convert
from fleetops.core.ssh import Target
from fleetops.errors import InputError

__all__ = ["MAX_HOPS", "HostRefused", "check_targets", "command_line", "target_for",
           "target_from"]

MAX_HOPS = 16
# Target field -> ssh_config keyword, for Target.source.
_SOURCES = {
    "address": "hostname", "port": "port", "user": "user", "key_files": "identityfile",
    "proxy_command": "proxycommand", "user_known_hosts": "userknownhostsfile",
    "global_known_hosts": "globalknownhostsfile", "host_key_alias": "hostkeyalias",
    "strict_host_key_checking": "stricthostkeychecking", "hash_known_hosts": "hashknownhosts",
    "identities_only": "identitiesonly", "identity_agent": "identityagent",
    "certificate_files": "certificatefile", "jump": "proxyjump",
    "connect_timeout": "connecttimeout", "connection_attempts": "connectionattempts",
}


def _line(keyword: str, value: str, label: str) -> Line:
    """A command-line option with one value taken as is (no re-quoting needed)."""
    kw = keyword.lower()
    try:
        return Line(kw, (value,), value, label, 0, convert(kw, (value,), value))
    except ValueError as exc:
        raise InputError(f"{label}: {keyword} {exc}") from None


def command_line(host: Any, conn: dict[str, Any]) -> tuple[list[Line], str | None]:
    """The ssh command-line options the inventory gives ``host``, and its ``-F`` file."""
    lines: list[Line] = []
    config = conn.get("ssh_config")
    if host.known_hosts:
        lines.append(_line("UserKnownHostsFile", host.known_hosts, "fleetops_known_hosts"))
    if conn.get("proxy_command"):
        lines.append(_line("ProxyCommand", conn["proxy_command"], "fleetops_proxy_command"))
    args = conn.get("ssh_args", ())
    inventory = []
    if conn.get("host_key_checking") is False:
        inventory.append(_line("StrictHostKeyChecking", "no", "ansible_host_key_checking"))
    if host.port is not None:
        inventory.append(_line("Port", str(host.port), "inventory port"))
    if host.key_file:
        inventory.append(_line("IdentityFile", host.key_file, "inventory key file"))
    if host.user:
        inventory.append(_line("User", host.user, "inventory user"))
    if conn.get("timeout") is not None:
        inventory.append(_line("ConnectTimeout", str(conn["timeout"]), "ansible_timeout"))
    first = [a for a in args if a[2] == "ansible_ssh_args"]
    rest = [a for a in args if a[2] != "ansible_ssh_args"]
    for group in (first, inventory, rest):
        for item in group:
            if isinstance(item, Line):
                lines.append(item)
                continue
            kind, value, var = item
            if kind == "F":
                config = config or value
            else:
                try:
                    lines.append(option_line(value, var))
                except ConfigError as exc:
                    raise InputError(f"host '{host.name}': {exc}") from None
    return lines, config


class HostRefused(InputError):
    """Something in this host's settings fleetops refuses: it stops this host only."""


# Targets resolved by check_targets, each handed out once to target_for: id(host) ->
# (host, Target or the InputError that stops that host).
_RESOLVED: dict[int, tuple[Any, Target | InputError]] = {}


def check_targets(hosts: list[Any]) -> None:
    """Resolve every host once before a run. A broken ssh_config file (bad syntax, unknown
    keyword, unsafe permissions) raises InputError (exit 4) for the whole run; a directive
    fleetops refuses for one host, or an unsafe value, stops that host only: its
    target_for raises that InputError and the runner reports the host failed."""
    for host in hosts:
        try:
            outcome: Target | InputError = _target_for(host)
        except HostRefused as exc:
            outcome = exc
        _RESOLVED[id(host)] = (host, outcome)


def target_for(host: Any) -> Target:
    """Everything needed to reach ``host``: inventory vars, then ssh_config, then defaults."""
    hit = _RESOLVED.pop(id(host), None)
    if hit is not None and hit[0] is host:
        if isinstance(hit[1], InputError):
            raise hit[1]
        return hit[1]
    return _target_for(host)


def _target_for(host: Any) -> Target:
    for key, reason in getattr(host, "unresolved", ()):  # fleetops.inventory.ssh
        raise InputError(f"host '{host.name}': {key} {reason}")
    conn = connection_vars(host.vars or {})
    if isinstance(conn, tuple):
        raise InputError(f"host '{host.name}': {conn[0]} {conn[1]}")
    vars_ = host.vars or {}
    # The Ansible vars that are not ssh options: straight into the Target's constructor.
    inventory = dict(
        password=conn.get("password"), connection=conn.get("connection", "ssh"),
        become=host.become if "ansible_become" in vars_ else None,
        become_user=host.become_user, become_password=conn.get("become_password"))
    if inventory["connection"] == "local":
        return Target(name=host.name, address=host.address, user=getpass.getuser(),
                      **inventory)
    lines, config = command_line(host, conn)
    try:
        resolved = resolve(host.address, lines, config)
        hops = _hops(resolved, config, _hop_lines(lines), 0)
        return target_from(host.name, resolved, jump=hops, **inventory)
    except (ConfigError, ValueError) as exc:
        per_host = isinstance(exc, Refused) or not isinstance(exc, ConfigError)
        raise (HostRefused if per_host else InputError)(f"{exc} (host '{host.name}')") from None


def _hop_lines(lines: list[Line]) -> list[Line]:
    """The inventory options that apply to jump hops too: ``fleetops_known_hosts`` and
    the inventory key file (``ansible_ssh_private_key_file``). ``ssh -o ProxyJump=`` gives
    its hop only ``-F``; an inventory has no other way to name the bastion's key or known
    hosts, so fleetops offers them to the hops as well (before the hop's own config)."""
    keep = {"fleetops_known_hosts", "inventory key file"}
    return [line for line in lines if line.path in keep]


def _hops(resolved: Resolved, config: str | None, known: list[Line],
          depth: int) -> tuple[Target, ...]:
    """ProxyJump hops, first hop first: the last hop is reached through the earlier ones
    (``ssh -J``), and a single hop through its own ProxyJump/ProxyCommand. ``known``:
    the inventory options that (unlike ssh's own ``-o``) apply to hops (:func:`_hop_lines`)."""
    if not resolved.jump:
        return ()
    if depth >= MAX_HOPS:
        raise ValueError(f"{resolved.where.get('proxyjump')}: more than {MAX_HOPS} jump hops")
    *earlier, last = resolved.jump
    label = resolved.where.get("proxyjump", "ProxyJump")
    lines = list(known)
    if last.user:
        lines.append(_line("User", last.user, label))
    if last.port:
        lines.append(_line("Port", str(last.port), label))
    if earlier:
        lines.append(_line("ProxyJump", ",".join(h.spec() for h in earlier), label))
    hop = resolve(last.host, lines, config)
    target = target_from(last.host, hop)
    return (*_hops(hop, config, known, depth + 1), target)


def _agent(value: str | None) -> str | None:
    if value is None or value == "SSH_AUTH_SOCK":
        return None
    if value.startswith("$") and not value.startswith("${"):
        return os.environ.get(value[1:]) or "none"
    return value


def _existing(paths: tuple[str, ...]) -> list[str]:
    """The default identities that exist (ssh skips missing ones), cached while their
    directory is unchanged."""
    directory = os.path.dirname(paths[0]) if paths else ""
    try:
        mtime = os.stat(directory).st_mtime_ns
    except OSError:
        return []
    return _existing_cached(paths, mtime)


@lru_cache(maxsize=16)
def _existing_cached(paths: tuple[str, ...], mtime_ns: int) -> list[str]:
    return [p for p in paths if os.path.exists(p)]


def target_from(name: str, r: Resolved, **inventory: Any) -> Target:
    """The Target for a resolved destination, built in one go: ssh_config's values from
    ``r``, plus ``inventory``: Target fields ssh_config has no word for (``jump`` hops
    already resolved, ``password``, ``connection``, ``become*``). ValueError when a
    ProxyCommand token would insert an unsafe value."""
    keys = [k for k in r.identity_files if k.lower() != "none"]  # ssh skips "none"
    if r.identity_default:
        keys = _existing(tuple(keys))
    proxy = None
    if r.proxy_command:
        try:
            proxy = expand_proxy_command(r.proxy_command, {
                "h": r.hostname, "k": r.host_key_alias or r.host_arg, "n": r.host_arg,
                "p": str(r.port), "r": r.user})
        except ValueError as exc:
            raise ValueError(f"{r.where.get('proxycommand', 'ProxyCommand')}: {exc}") from None
    source = {field: r.where[kw] for field, kw in _SOURCES.items() if kw in r.where}
    return Target(
        name=name, address=r.hostname, port=r.port, user=r.user, key_files=tuple(keys),
        proxy_command=proxy, known_hosts=r.user_known_hosts[0] if r.user_known_hosts else None,
        user_known_hosts=tuple(r.user_known_hosts),
        global_known_hosts=tuple(tilde_expand(p, r.tokens["d"]) for p in r.global_known_hosts),
        host_key_alias=r.host_key_alias, hash_known_hosts=r.hash_known_hosts,
        identities_only=r.identities_only, identity_agent=_agent(r.identity_agent),
        certificate_files=tuple(c for c in r.certificate_files if c.lower() != "none"),
        connect_timeout=None if r.connect_timeout is None else float(r.connect_timeout),
        connection_attempts=r.connection_attempts, source=source,
        strict_host_key_checking=("yes" if r.strict_host_key_checking is None
                                  else r.strict_host_key_checking), **inventory,
    )
