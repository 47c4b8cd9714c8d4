"""Connection settings of inventory hosts: connection vars, then ssh_config as ssh reads it.

Connection vars, first spelling found wins (a fleetops spelling beats Ansible's,
whatever precedence level each came from); a null value counts as unset:

- address:     fleetops_host, ansible_host, ansible_ssh_host (default: the host name)
- port:        fleetops_port, ansible_port, ansible_ssh_port (default None = ssh config or 22)
- user:        fleetops_user, ansible_user, ansible_ssh_user
- key_file:    fleetops_key_file, ansible_ssh_private_key_file, ansible_private_key_file
- known_hosts: fleetops_known_hosts
- python:      fleetops_python, ansible_python_interpreter (``auto...`` values -> None)
- become:      ansible_become (bool, or yes/no/true/false/on/off/1/0)
- become_user: ansible_become_user

``~`` is expanded in key_file and known_hosts. The other Ansible connection vars are
checked here and read by fleetops.config.targets (see fleetops.config.ansible_ssh_args); ssh_config
resolution is fleetops.config.sshconfig.
"""

from __future__ import annotations

import os
from typing import Any

from fleetops.config.ansible_ssh_args import connection_vars
from fleetops.errors import InputError

__all__ = ["DEFAULT_SSH_CONFIG", "connection_settings", "deferred_settings", "resolve_ssh"]

DEFAULT_SSH_CONFIG = "~/.ssh/config"
_AUTO_PYTHON = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")
_TRUE = ("1", "true", "yes", "on", "y")
_FALSE = ("0", "false", "no", "off", "n", "")


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a port number 1-65535")
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"must be a port number 1-65535, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"must be a port number 1-65535, got {value!r}")
    return port


def _path(value: Any) -> str:
    return os.path.expanduser(_text(value))


def _python(value: Any) -> str | None:
    text = _text(value)
    return None if text in _AUTO_PYTHON else text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"must be a boolean (yes/no/true/false), got {value!r}")


_CONNECTION = (
    ("address", ("fleetops_host", "ansible_host", "ansible_ssh_host"), _text),
    ("port", ("fleetops_port", "ansible_port", "ansible_ssh_port"), _port),
    ("user", ("fleetops_user", "ansible_user", "ansible_ssh_user"), _text),
    (
        "key_file",
        ("fleetops_key_file", "ansible_ssh_private_key_file", "ansible_private_key_file"),
        _path,
    ),
    ("known_hosts", ("fleetops_known_hosts",), _path),
    ("python", ("fleetops_python", "ansible_python_interpreter"), _python),
    ("become", ("ansible_become",), _bool),
    ("become_user", ("ansible_become_user",), _text),
)


def connection_settings(values: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
    """Host attributes from merged vars; ``(var, problem)`` for a bad value.

    The other connection vars (passwords, become method, ``ansible_connection``,
    ``ansible_ssh_*_args``) are checked here so a bad one names its file and line, and
    read again by fleetops.config.targets (see fleetops.config.ansible_ssh_args)."""
    extra = connection_vars(values)
    if isinstance(extra, tuple):
        return extra
    settings: dict[str, Any] = {}
    for attr, keys, convert in _CONNECTION:
        for key in keys:
            value = values.get(key)
            if value is not None:
                try:
                    settings[attr] = convert(value)
                except ValueError as exc:
                    return key, str(exc)
                break
    return settings


def is_template(value: Any) -> bool:
    """A string holding a Jinja expression or statement (``{{ ... }}``, ``{% ... %}``)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def deferred_settings(
    values: dict[str, Any],
) -> tuple[dict[str, Any] | tuple[str, str], tuple[tuple[str, str], ...]]:
    """:func:`connection_settings` for a host whose connection vars may be templates.

    fleetops does not evaluate Jinja in inventories. A connection variable
    (``ansible_*``/``fleetops_*``) holding a template, e.g.
    ``ansible_port="{{ lookup('env','SSH_PORT') }}"``, does not refuse the inventory
    (Ansible loads it too): it is left out of the settings and returned as
    ``(var, reason)`` in the second item; connecting to that host is then refused
    with the reason (fleetops.config.targets), while listing or selecting it works."""
    unresolved = tuple(
        (key, f"holds a Jinja template ({value[:60]!r}); fleetops does not evaluate templates "
         "in inventory connection variables: give the value itself")
        for key, value in values.items()
        if key.startswith(("ansible_", "fleetops_")) and is_template(value)
    )
    if unresolved:
        skip = {key for key, _ in unresolved}
        values = {k: v for k, v in values.items() if k not in skip}
    return connection_settings(values), unresolved


def resolve_ssh(host: Any, config_path: str | None = None) -> dict[str, Any]:
    """Connection settings for ``host`` as ``ssh`` resolves them (see fleetops.config.targets).

    ``config_path`` is like ``ssh -F``: only that file, which must exist; by default
    ``~/.ssh/config`` then ``/etc/ssh/ssh_config``. The config is looked up by
    ``host.address``, as ``ssh <address>`` would. Returns ``hostname``, ``port`` (int),
    ``user``, ``identityfile`` (list: the inventory key first, then the config's),
    ``userknownhostsfile`` (list), ``proxycommand`` (tokens expanded and quoted) and
    ``proxyjump`` (None when unset). Raises InputError (``file:line: message``)."""
    from fleetops.config.sshconfig import ConfigError, resolve
    from fleetops.config.targets import command_line, target_from

    for key, reason in getattr(host, "unresolved", ()):
        raise InputError(f"host '{host.name}': {key} {reason}")
    conn = connection_vars(host.vars or {})
    if isinstance(conn, tuple):
        raise InputError(f"host '{host.name}': {conn[0]} {conn[1]}")
    lines, config = command_line(host, conn)
    try:
        resolved = resolve(host.address, lines, config_path or config)
        target = target_from(host.name, resolved)
    except ConfigError as exc:
        raise InputError(exc.message, path=exc.path, line=exc.line) from None
    except ValueError as exc:
        raise InputError(f"{exc} (host '{host.name}')") from None
    return {
        "hostname": target.address,
        "port": target.port,
        "user": target.user,
        "identityfile": [] if resolved.identity_default else list(target.key_files),
        "userknownhostsfile": list(target.user_known_hosts),
        "proxycommand": target.proxy_command,
        "proxyjump": ",".join(h.spec() for h in resolved.jump) if resolved.jump else None,
    }
