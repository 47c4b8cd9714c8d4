"""The immutable inventory model: :class:`Host`, :class:`Group`, :class:`Inventory`.

Built by :func:`fleetops.inventory.load.load_inventory`; see that module for the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.inventory.ssh import resolve_ssh

__all__ = ["Group", "Host", "Inventory"]


@dataclass(frozen=True, slots=True)
class Host:
    """One inventory host. ``vars`` is the merged variable dict (treat it as read-only)."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None
    python: str | None = None
    become: bool = False
    become_user: str | None = None
    vars: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)
    groups: frozenset[str] = frozenset({"all"})
    unresolved: tuple[tuple[str, str], ...] = ()

    def ssh_config(self, path: str | None = None) -> dict[str, Any]:
        """Connection settings merged with ssh_config; see :func:`resolve_ssh`."""
        return resolve_ssh(self, path)


@dataclass(frozen=True, slots=True)
class Group:
    """One group. ``hosts``: in it or its descendants, in Ansible's order (its own
    hosts, then its children's level by level, first occurrence wins) - the order a
    play runs them in; ``own_hosts``: the hosts listed in the group itself."""

    name: str
    depth: int
    parents: tuple[str, ...]
    children: tuple[str, ...]
    hosts: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)
    own_hosts: tuple[str, ...] = ()
    priority: int = 1


@dataclass(frozen=True, slots=True, eq=False)
class Inventory:
    """Immutable result of :func:`load_inventory`; ``hosts`` in declaration order."""

    path: str
    hosts: tuple[Host, ...]
    groups: Mapping[str, Group]
    index: Mapping[str, int] = field(repr=False)
    implicit: Mapping[str, Host] = field(default_factory=dict, repr=False)

    def host(self, name: str) -> Host:
        """The host called ``name`` (KeyError if there is none)."""
        return self.hosts[self.index[name]]

    def implicit_localhost(self, name: str) -> Host | None:
        """Ansible's implicit ``localhost``/``127.0.0.1``/``::1`` (local connection)."""
        return self.implicit.get(name)

    def select(
        self,
        pattern: str = "all",
        limit: str | None = None,
        strict: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> list[Host]:
        """Hosts matching an Ansible host pattern, then ``--limit``, in Ansible's order.

        See :mod:`fleetops.inventory.patterns`; ``strict`` makes an element matching nothing an
        error instead of a warning (passed to ``warn``, default: stderr)."""
        from fleetops.inventory.patterns import select

        return select(self, pattern, limit, strict, warn)

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __contains__(self, name: object) -> bool:
        return name in self.index
