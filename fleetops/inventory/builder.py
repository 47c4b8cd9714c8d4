"""The mutable model the inventory parsers fill (Ansible's ``InventoryData``): groups,
hosts, inline variables with their origin, pending ``:children``. The bottom of the
inventory package: the INI and YAML parsers fill a :class:`_Builder`,
:mod:`fleetops.inventory.finish` turns it into the immutable model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetops.errors import InputError

MAX_HOSTS = 200_000  # whole inventory (one host line's ranges: at most 100 000)


def name_problem(name: str) -> str | None:
    """Why ``name`` (a host name, a user) is unusable: empty, too long, or holding
    whitespace or control characters (they would forge output lines); else None."""
    if not name:
        return "is empty"
    if len(name) > 255:
        return "is longer than 255 characters"
    if not name.isprintable() or any(c.isspace() for c in name):
        return "contains whitespace or control characters"
    return None


@dataclass(slots=True)
class _GroupDef:
    name: str
    line: int
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    priority: Any = 1
    priority_at: tuple[str, int] | None = None


@dataclass(slots=True)
class _HostDef:
    name: str
    line: int
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


class _Builder:
    """Mutable model the INI and YAML parsers fill, as Ansible's ``InventoryData``.

    ``path`` is the file being parsed (a directory source parses several); per-variable
    origins are kept as ``(path, line)``. A host set again later (another line, another
    group) takes the later value, as in Ansible.
    """

    def __init__(self, path: str):
        self.path = path
        self.groups: dict[str, _GroupDef] = {
            "all": _GroupDef("all", 0, children=["ungrouped"]),
            "ungrouped": _GroupDef("ungrouped", 0, parents=["all"]),
        }
        self.hosts: dict[str, _HostDef] = {}
        self._declared = {"all", "ungrouped"}
        self.pending: dict[str, tuple[str, int, str, list[str]]] = {}

    def group(self, name: str, line: int) -> _GroupDef:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _GroupDef(name, line)
        return group

    def declare(self, name: str) -> None:
        self._declared.add(name)

    def declared(self, name: str) -> bool:
        return name in self._declared

    def set_group_var(self, group: str, key: str, value: Any, line: int) -> None:
        target = self.groups[group]
        if key == "ansible_group_priority":  # Ansible: sets the priority, not a variable
            target.priority, target.priority_at = value, (self.path, line)
            return
        target.vars[key] = value
        target.var_lines[key] = (self.path, line)

    def add_host(
        self,
        name: str,
        group: str,
        values: dict[str, Any],
        line: int,
        lines: dict[str, int] | None = None,
        port: int | None = None,
    ) -> None:
        """Add ``name`` to ``group`` with inline vars (``lines``: per-var line if known).

        ``port`` (from ``host:port``) counts only where the host first appears."""
        host = self.hosts.get(name)
        if host is None:
            if len(self.hosts) >= MAX_HOSTS:
                raise InputError(f"more than {MAX_HOSTS} hosts in the inventory",
                                 path=self.path, line=line)
            problem = name_problem(name)
            if problem:
                raise InputError(f"host name {name!r} {problem}", path=self.path, line=line)
            host = self.hosts[name] = _HostDef(name, line)
            if port is not None:
                host.vars["ansible_port"] = port
                host.var_lines["ansible_port"] = (self.path, line)
        for key, value in values.items():
            host.vars[key] = value
            host.var_lines[key] = (self.path, lines.get(key, line) if lines else line)
        if group not in host.groups:
            host.groups.append(group)
            self.groups[group].hosts.append(name)

    def add_child(self, parent: str, child: str, line: int) -> None:
        if child == "all":
            raise InputError("group 'all' cannot be a child group", path=self.path, line=line)
        chain = self._chain_up(parent, child)
        if chain is not None:
            loop = " > ".join([*reversed(chain), child])
            raise InputError(
                f"group '{child}' would contain itself: {loop}", path=self.path, line=line
            )
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)
            self.groups[child].parents.append(parent)

    def pend(self, child: str, parent: str, line: int) -> None:
        """A ``:children`` entry naming a group not declared yet (Ansible: pending)."""
        entry = self.pending.setdefault(child, (self.path, line, "children", []))
        entry[3].append(parent)

    def resolve_pending(self, name: str) -> None:
        """``name`` is now declared: attach it under the parents that were waiting."""
        entry = self.pending.pop(name, None)
        if entry is None or entry[2] != "children":
            return
        for parent in entry[3]:
            self.add_child(parent, name, entry[1])
            self.resolve_pending(parent)

    def finish_pending(self) -> None:
        """Ansible refuses a ``:children`` or ``:vars`` naming an undefined group."""
        for name, (path, line, kind, parents) in self.pending.items():
            if kind == "vars":
                message = f"section [{name}:vars] is for group '{name}', which is never defined"
            else:
                message = f"section [{parents[-1]}:children] names undefined group '{name}'"
            raise InputError(message, path=path, line=line)

    def _chain_up(self, start: str, target: str) -> list[str] | None:
        """Path start, parent, grandparent... up to ``target``, or None."""
        stack, seen = [[start]], set()
        while stack:
            path = stack.pop()
            if path[-1] == target:
                return path
            if path[-1] in seen:
                continue
            seen.add(path[-1])
            stack.extend([*path, up] for up in self.groups[path[-1]].parents)
        return None
