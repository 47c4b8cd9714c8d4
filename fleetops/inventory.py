"""Ansible-compatible inventories: INI or YAML files plus group_vars/ and host_vars/.

``load_inventory(path)`` returns an immutable :class:`Inventory` of :class:`Host`
objects with merged variables and connection settings; ``Inventory.select``
evaluates host patterns (see ``fleetops.patterns``).

Variable precedence (lowest first, as Ansible's default ``VARIABLE_PRECEDENCE``):

1. inline vars of group ``all`` (``[all:vars]`` / ``all: vars:``)
2. inline vars of the host's other groups, by (depth, ansible_group_priority, name)
3. ``group_vars/all`` files
4. ``group_vars/<group>`` files of the host's other groups, same order
5. the host's inline vars (``host key=value`` / ``hosts: {h: {...}}``)
6. ``host_vars/<host>`` files

Top-level keys replace (no deep merge). Inline vars of a group are thus beaten by
*any* group_vars file, even ``all`` - exactly Ansible's behaviour.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from fleetops.errors import InputError
from fleetops.inventory_ini import parse_ini
from fleetops.inventory_ssh import connection_settings, resolve_ssh
from fleetops.inventory_yaml import Layer, load_vars_dir, origin, parse_yaml, read_text

__all__ = ["Group", "Host", "Inventory", "load_inventory", "resolve_ssh"]

MAX_HOSTS = 200_000  # whole inventory (one host line's ranges: at most 100 000)
_YAML_EXTENSIONS = (".yml", ".yaml", ".json")
_YAML_KEY = re.compile(r"^[^\s\[\]=:#;]+:(?:\s|$)")


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

    def ssh_config(self, path: str | None = None) -> dict[str, Any]:
        """Connection settings merged with ssh_config; see :func:`resolve_ssh`."""
        return resolve_ssh(self, path)


@dataclass(frozen=True, slots=True)
class Group:
    """One group: ``hosts`` (in it or its descendants) in inventory order, relatives by name."""

    name: str
    depth: int
    parents: tuple[str, ...]
    children: tuple[str, ...]
    hosts: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)


@dataclass(frozen=True, slots=True, eq=False)
class Inventory:
    """Immutable result of :func:`load_inventory`; hosts are in inventory order."""

    path: str
    hosts: tuple[Host, ...]
    groups: Mapping[str, Group]
    index: Mapping[str, int] = field(repr=False)

    def host(self, name: str) -> Host:
        """The host called ``name`` (KeyError if there is none)."""
        return self.hosts[self.index[name]]

    def select(self, pattern: str = "all", limit: str | None = None) -> list[Host]:
        """Hosts matching an Ansible host pattern, then ``--limit``, in inventory order."""
        from fleetops.patterns import select

        return select(self, pattern, limit)

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts)

    def __contains__(self, name: object) -> bool:
        return name in self.index


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load an INI or YAML inventory and the group_vars/ and host_vars/ next to it.

    ``.yml``/``.yaml``/``.json`` files are YAML and ``.ini`` files INI; any other file
    is YAML when its first line looks like YAML (``---``, ``{`` or ``name:``),
    otherwise INI (Ansible tries its yaml plugin, then its ini plugin).
    """
    path = os.fspath(path)
    text = read_text(path, "inventory file")
    builder = _Builder(path)
    if _is_yaml(path, text):
        parse_yaml(text, path, builder)
    else:
        parse_ini(text, path, builder)
    return _Finisher(builder).inventory()


def _is_yaml(path: str, text: str) -> bool:
    ext = os.path.splitext(path)[1].lower()
    if ext in _YAML_EXTENSIONS or ext == ".ini":
        return ext != ".ini"
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return line.startswith(("---", "{")) or bool(_YAML_KEY.match(line))
    return False


@dataclass(slots=True)
class _GroupDef:
    name: str
    line: int
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, int] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _HostDef:
    name: str
    line: int
    vars: dict[str, Any] = field(default_factory=dict)
    var_lines: dict[str, int] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


class _Builder:
    """Mutable model the INI and YAML parsers fill; checks duplicates and cycles."""

    def __init__(self, path: str):
        self.path = path
        self.groups: dict[str, _GroupDef] = {"all": _GroupDef("all", 0)}
        self.groups["ungrouped"] = _GroupDef("ungrouped", 0)
        self.hosts: dict[str, _HostDef] = {}
        self._declared = {"all", "ungrouped"}

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
        target.vars[key] = value
        target.var_lines[key] = line

    def add_host(
        self,
        name: str,
        group: str,
        values: dict[str, Any],
        line: int,
        lines: dict[str, int] | None = None,
    ) -> None:
        """Add ``name`` to ``group`` with inline vars (``lines``: per-var line if known)."""
        host = self.hosts.get(name)
        if host is None:
            if len(self.hosts) >= MAX_HOSTS:
                raise InputError(f"more than {MAX_HOSTS} hosts in the inventory",
                                 path=self.path, line=line)
            problem = name_problem(name)
            if problem:
                raise InputError(f"host name {name!r} {problem}", path=self.path, line=line)
            host = self.hosts[name] = _HostDef(name, line)
        for key, value in values.items():
            if key in host.vars and not _same(host.vars[key], value):
                raise InputError(
                    f"host '{name}' is defined again with {key}={value!r}, but line "
                    f"{host.var_lines[key]} set {key}={host.vars[key]!r}",
                    path=self.path,
                    line=line,
                )
            host.vars[key] = value
            host.var_lines.setdefault(key, lines.get(key, line) if lines else line)
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


_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")
_VAR_OF = {"address": ("fleetops_host", "ansible_host", "ansible_ssh_host"),
           "user": ("fleetops_user", "ansible_user", "ansible_ssh_user")}


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


def address_problem(address: str) -> str | None:
    """None when ``address`` is an IPv4/IPv6 address (optionally ``%zone``) or a host
    name of letters, digits, ``_``, ``.`` and ``-`` (not starting with ``-``, as in
    RFC 1123 plus ``_`` for ssh_config aliases), <= 253 characters; else why not."""
    import ipaddress

    if len(address) <= 253 and _HOSTNAME.match(address):  # names and IPv4: the fast path
        return None
    base, _, zone = address.partition("%")
    try:
        ipaddress.ip_address(base)
        if not zone or _HOSTNAME.match(zone):
            return None
    except ValueError:
        pass
    return "is not a host name or an IP address"


def _same(old: Any, new: Any) -> bool:
    return type(old) is type(new) and old == new


class _Finisher:
    """Turns a filled :class:`_Builder` into an :class:`Inventory` (done once per load)."""

    def __init__(self, builder: _Builder):
        self.b = builder
        self.path = builder.path
        self._reconcile()
        self.depth: dict[str, int] = {}
        self.ancestors: dict[str, frozenset[str]] = {}
        for name in self.b.groups:
            self._walk(name)
        base = os.path.dirname(os.path.abspath(self.path))
        self.group_files = load_vars_dir(os.path.join(base, "group_vars"), self.b.groups)
        self.host_files = load_vars_dir(os.path.join(base, "host_vars"), self.b.hosts)
        self.priority = {name: self._priority(g) for name, g in self.b.groups.items()}
        self._layers_cache: dict[frozenset[str], tuple[list[Layer], dict[str, Any]]] = {}

    def _reconcile(self) -> None:
        """Ansible's implicit groups: top-level groups under all, lone hosts in ungrouped."""
        groups = self.b.groups
        for name, group in groups.items():
            if name != "all" and not group.parents:
                groups["all"].children.append(name)
                group.parents.append("all")
        ungrouped = groups["ungrouped"]
        for host in self.b.hosts.values():
            others = [g for g in host.groups if g not in ("all", "ungrouped")]
            if others and "ungrouped" in host.groups:
                host.groups.remove("ungrouped")
            elif not others and "ungrouped" not in host.groups:
                host.groups.append("ungrouped")
        ungrouped.hosts = [h for h in self.b.hosts if "ungrouped" in self.b.hosts[h].groups]

    def _walk(self, name: str) -> None:
        if name in self.depth:
            return
        parents = self.b.groups[name].parents
        for parent in parents:
            self._walk(parent)
        self.depth[name] = max((self.depth[p] + 1 for p in parents), default=0)
        self.ancestors[name] = frozenset([name]).union(*(self.ancestors[p] for p in parents))

    def _priority(self, group: _GroupDef) -> int:
        value = group.vars.get("ansible_group_priority", 1)
        if isinstance(value, bool) or not isinstance(value, int | str):
            value = "bad"
        try:
            return int(value)
        except ValueError:
            raise InputError(
                f"ansible_group_priority of group '{group.name}' must be an integer",
                path=self.path,
                line=group.var_lines.get("ansible_group_priority"),
            ) from None

    def inventory(self) -> Inventory:
        hosts = tuple(self._host(h) for h in self.b.hosts.values())
        members: dict[str, list[str]] = {name: [] for name in self.b.groups}
        for host in hosts:
            for name in host.groups:
                members[name].append(host.name)
        groups = {name: self._group(g, members[name]) for name, g in self.b.groups.items()}
        index = {host.name: i for i, host in enumerate(hosts)}
        return Inventory(self.path, hosts, MappingProxyType(groups), MappingProxyType(index))

    def _group(self, group: _GroupDef, members: list[str]) -> Group:
        merged = dict(group.vars)
        for layer in self.group_files.get(group.name, ()):
            merged.update(layer.vars)
        return Group(
            group.name,
            self.depth[group.name],
            tuple(sorted(group.parents)),
            tuple(sorted(group.children)),
            tuple(members),
            merged,
        )

    def _group_layers(self, names: frozenset[str]) -> tuple[list[Layer], dict[str, Any]]:
        cached = self._layers_cache.get(names)
        if cached is None:
            ordered = sorted(names - {"all"}, key=lambda n: (self.depth[n], self.priority[n], n))
            groups = self.b.groups
            inline = [
                Layer(groups[n].vars, self.path, groups[n].var_lines) for n in ["all", *ordered]
            ]
            files = [layer for n in ["all", *ordered] for layer in self.group_files.get(n, ())]
            layers = inline + files
            merged: dict[str, Any] = {}
            for layer in layers:
                merged.update(layer.vars)
            cached = self._layers_cache[names] = (layers, merged)
        return cached

    def _host(self, hdef: _HostDef) -> Host:
        names = frozenset(["all"]).union(*(self.ancestors[g] for g in hdef.groups))
        group_layers, merged = self._group_layers(names)
        own = [Layer(hdef.vars, self.path, hdef.var_lines), *self.host_files.get(hdef.name, ())]
        values = dict(merged)
        for layer in own:
            values.update(layer.vars)
        settings = connection_settings(values)
        if isinstance(settings, tuple):
            key, problem = settings
            path, line = origin([*group_layers, *own], key)
            raise InputError(f"host '{hdef.name}': {key} {problem}", path=path, line=line)
        settings.setdefault("address", hdef.name)
        for key, check in (("address", address_problem), ("user", name_problem)):
            value = settings.get(key)
            problem = check(value) if value is not None else None
            if problem:
                var = next((v for v in _VAR_OF[key] if values.get(v) is not None), None)
                path, line = (origin([*group_layers, *own], var) if var
                              else (self.path, hdef.line))
                raise InputError(f"host '{hdef.name}': {var or 'name as address'} {value!r} "
                                 f"{problem}", path=path, line=line)
        return Host(name=hdef.name, vars=values, groups=names, **settings)
