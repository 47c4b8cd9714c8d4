"""Connection settings of inventory hosts: connection vars and ``~/.ssh/config``.

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

``~`` is expanded in key_file and known_hosts.
"""

from __future__ import annotations

import getpass
import os
from functools import lru_cache
from typing import Any

import paramiko

from fleetops.errors import InputError
from fleetops.inventory_yaml import read_text

__all__ = ["DEFAULT_SSH_CONFIG", "connection_settings", "resolve_ssh"]

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
    """Host attributes from merged vars; ``(var, problem)`` for a bad value."""
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


def resolve_ssh(host: Any, config_path: str | None = None) -> dict[str, Any]:
    """Connection settings for ``host``: inventory vars, then ssh_config, then defaults.

    ``config_path`` defaults to ``~/.ssh/config`` (fine if missing; an explicit path
    must exist). The config is looked up by ``host.address``, as ``ssh <address>``
    would. Returns ``hostname``, ``port`` (int), ``user``, ``identityfile`` (list:
    the inventory key first, then the config's), ``userknownhostsfile`` (list),
    ``proxycommand`` and ``proxyjump`` (None when unset).
    """
    explicit = config_path is not None
    path = os.path.expanduser(config_path if explicit else DEFAULT_SSH_CONFIG)
    found = _ssh_lookup(path, explicit, host.address)
    port = host.port
    if port is None:
        try:
            port = _port(found.get("port", 22))
        except ValueError as exc:
            raise InputError(f"Port {exc} (for host '{host.name}')", path=path) from None
    keys = [host.key_file] if host.key_file else []
    for key in found.get("identityfile", []):
        key = os.path.expanduser(key)
        if key not in keys:
            keys.append(key)
    known = [host.known_hosts] if host.known_hosts else []
    known = known or [os.path.expanduser(k) for k in found.get("userknownhostsfile", "").split()]
    return {
        "hostname": found.get("hostname", host.address),
        "port": port,
        "user": host.user or found.get("user") or getpass.getuser(),
        "identityfile": keys,
        "userknownhostsfile": known,
        "proxycommand": found.get("proxycommand"),
        "proxyjump": found.get("proxyjump"),
    }


def _ssh_lookup(path: str, explicit: bool, address: str) -> dict[str, Any]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if explicit:
            raise InputError("ssh config file not found", path=path) from None
        return {}
    except OSError as exc:
        raise InputError(f"cannot read ssh config: {exc.strerror}", path=path) from None
    config = _parse_ssh_config(path, stat.st_mtime_ns, stat.st_size)
    try:
        return dict(config.lookup(address))
    except (paramiko.SSHException, ValueError) as exc:
        raise InputError(f"ssh config lookup for '{address}' failed: {exc}", path=path) from None


@lru_cache(maxsize=8)
def _parse_ssh_config(path: str, mtime_ns: int, size: int) -> paramiko.SSHConfig:
    """Parsed once per (path, mtime, size): resolving a whole fleet reads the file once."""
    text = read_text(path, "ssh config")
    config = paramiko.SSHConfig()
    try:
        config.parse(text.splitlines())
    except paramiko.ssh_exception.ConfigParseError as exc:
        bad = str(exc).removeprefix("Unparsable line ").strip()
        line = next((n for n, t in enumerate(text.splitlines(), 1) if t.strip() == bad), None)
        raise InputError(f"ssh config: {exc}", path=path, line=line) from None
    return config
