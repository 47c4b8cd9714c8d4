"""Second half of loading an inventory: Ansible's reconcile step, vars and checks.

:class:`Finisher` turns the filled ``_Builder`` of :mod:`fleetops.inventory.load` into an
:class:`~fleetops.inventory.model.Inventory`: top-level groups under ``all``, lone hosts
in ``ungrouped``, group depths, each group's hosts in Ansible's order, variables merged
by Ansible's precedence (see :mod:`fleetops.inventory.load`), connection settings checked,
and the implicit ``localhost``.
"""

from __future__ import annotations

import os
import re
import sys
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fleetops.errors import InputError
from fleetops.inventory.builder import _GroupDef, _HostDef, name_problem
from fleetops.inventory.model import Group, Host, Inventory
from fleetops.inventory.ssh import deferred_settings
from fleetops.inventory.yaml import Layer, load_vars_dir, origin

if TYPE_CHECKING:
    from fleetops.inventory.builder import _Builder

__all__ = ["LOCALHOST", "Finisher", "address_problem", "name_problem"]

LOCALHOST = ("127.0.0.1", "localhost", "::1")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")
_VAR_OF = {"address": ("fleetops_host", "ansible_host", "ansible_ssh_host"),
           "user": ("fleetops_user", "ansible_user", "ansible_ssh_user")}


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


class Finisher:
    """Turns a filled :class:`_Builder` into an :class:`Inventory` (done once per load)."""

    def __init__(self, builder: _Builder, base: str):
        self.b = builder
        self.path = builder.path
        self._reconcile()
        self.depth: dict[str, int] = {}
        self.ancestors: dict[str, frozenset[str]] = {}
        for name in self.b.groups:
            self._walk(name)
        self.group_files = load_vars_dir(os.path.join(base, "group_vars"), self.b.groups)
        names = [*self.b.hosts, *(n for n in LOCALHOST if n not in self.b.hosts)]
        self.host_files = load_vars_dir(os.path.join(base, "host_vars"), names)
        self.priority = {name: self._priority(g) for name, g in self.b.groups.items()}
        self._layers_cache: dict[frozenset[str], tuple[list[Layer], dict[str, Any]]] = {}

    def _reconcile(self) -> None:
        """Ansible's ``reconcile_inventory``: top-level groups under all, lone hosts in
        ungrouped (appended in host order), hosts with a real group out of ungrouped."""
        groups = self.b.groups
        for name, group in groups.items():
            if name != "all" and not group.parents:
                groups["all"].children.append(name)
                group.parents.append("all")
        ungrouped = groups["ungrouped"]
        for host in self.b.hosts.values():
            others = [g for g in host.groups if g not in ("all", "ungrouped")]
            if "ungrouped" in host.groups:
                if others:
                    host.groups.remove("ungrouped")
                    ungrouped.hosts.remove(host.name)
            elif not others:
                host.groups.append("ungrouped")
                ungrouped.hosts.append(host.name)

    def _walk(self, name: str) -> None:
        if name in self.depth:
            return
        parents = self.b.groups[name].parents
        for parent in parents:
            self._walk(parent)
        self.depth[name] = max((self.depth[p] + 1 for p in parents), default=0)
        self.ancestors[name] = frozenset([name]).union(*(self.ancestors[p] for p in parents))

    def _priority(self, group: _GroupDef) -> int:
        value = group.priority
        if isinstance(value, bool) or not isinstance(value, int | str):
            value = "bad"
        try:
            return int(value)
        except ValueError:
            path, line = group.priority_at or (self.path, None)
            raise InputError(
                f"ansible_group_priority of group '{group.name}' must be an integer",
                path=path,
                line=line,
            ) from None

    def _ordered_hosts(self, name: str) -> list[str]:
        """Ansible's ``Group.get_hosts``: own hosts, then descendants level by level."""
        groups = self.b.groups
        order, seen, level = [name], {name}, [name]
        while level:
            nxt: list[str] = []
            for group in level:
                for child in groups[group].children:
                    if child not in seen:
                        seen.add(child)
                        order.append(child)
                        nxt.append(child)
            level = nxt
        hosts: dict[str, None] = {}
        for group in order:
            hosts.update(dict.fromkeys(groups[group].hosts))
        return list(hosts)

    def inventory(self) -> Inventory:
        hosts = tuple(self._host(h) for h in self.b.hosts.values())
        groups = {name: self._group(g) for name, g in self.b.groups.items()}
        index = {host.name: i for i, host in enumerate(hosts)}
        declared = next((hosts[index[n]] for n in self.b.hosts if n in LOCALHOST), None)
        implicit = {  # Ansible: a localhost-like inventory host stands for all three
            name: declared
            or self._host(_HostDef(name, 0, {"ansible_connection": "local"}), implicit=True)
            for name in LOCALHOST
            if name not in self.b.hosts
        }
        return Inventory(
            self.path,
            hosts,
            MappingProxyType(groups),
            MappingProxyType(index),
            MappingProxyType(implicit),
        )

    def _group(self, group: _GroupDef) -> Group:
        merged = dict(group.vars)
        for layer in self.group_files.get(group.name, ()):
            merged.update(layer.vars)
        return Group(
            group.name,
            self.depth[group.name],
            tuple(sorted(group.parents)),
            tuple(sorted(group.children)),
            tuple(self._ordered_hosts(group.name)),
            merged,
            tuple(group.hosts),
            self.priority[group.name],
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

    def _host(self, hdef: _HostDef, implicit: bool = False) -> Host:
        names = frozenset(["all"]).union(*(self.ancestors[g] for g in hdef.groups))
        group_layers, merged = self._group_layers(names)
        own = [Layer(hdef.vars, self.path, hdef.var_lines), *self.host_files.get(hdef.name, ())]
        values = dict(merged)
        for layer in own:
            values.update(layer.vars)
        if implicit:
            values.setdefault("ansible_python_interpreter", sys.executable)
            names = frozenset()
        settings, unresolved = deferred_settings(values)
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
        return Host(name=hdef.name, vars=values, groups=names, unresolved=unresolved, **settings)
