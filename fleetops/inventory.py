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
*any* group_vars file, even ``all`` - exactly Ansible's behaviour. A host defined again
(another line, another group, another file) takes the later inline value. For each
group or host only the first existing of ``<name>`` (file or directory), ``<name>.yml``,
``<name>.yaml``, ``<name>.json`` is read. Details: ``docs/inventory.md``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from fleetops.errors import InputError
from fleetops.inventory_finish import (
    LOCALHOST,
    Finisher,
    _GroupDef,
    _HostDef,
    address_problem,
    name_problem,
)
from fleetops.inventory_ini import parse_ini
from fleetops.inventory_model import Group, Host, Inventory
from fleetops.inventory_ssh import resolve_ssh
from fleetops.inventory_yaml import parse_yaml, read_text
from fleetops.vault import decrypt_file_text, is_vault_text

__all__ = ["LOCALHOST", "MAX_HOSTS", "Group", "Host", "Inventory", "address_problem",
           "load_inventory", "name_problem", "resolve_ssh"]

MAX_HOSTS = 200_000  # whole inventory (one host line's ranges: at most 100 000)
_YAML_EXTENSIONS = (".yml", ".yaml", ".json")
_YAML_KEY = re.compile(r"^[^\s\[\]=:#;]+:(?:\s|$)")


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Load an INI or YAML inventory (or a directory of them) and its group_vars/host_vars.

    A file: ``.yml``/``.yaml``/``.json`` files are YAML and ``.ini`` files INI; any other
    file is YAML when its first line looks like YAML (``---``, ``{`` or ``name:``),
    otherwise INI (Ansible tries its yaml plugin, then its ini plugin). group_vars/ and
    host_vars/ are read next to it.

    A directory (Ansible's directory source): every file in it and its subdirectories,
    in sorted order, except hidden ones, ``group_vars``/``host_vars``, and names ending
    in Ansible's ignored extensions (see :mod:`fleetops.inventory_dir`); group_vars/
    and host_vars/ are read inside it.
    """
    from fleetops.inventory_dir import source_files

    path = os.fspath(path)
    builder = _Builder(path)
    if os.path.isdir(path):
        for file in source_files(path):
            _parse_file(file, builder)
        base = path
    else:
        _parse_file(path, builder)
        base = os.path.dirname(os.path.abspath(path))
    builder.path = path
    return Finisher(builder, base).inventory()


def _parse_file(path: str, builder: _Builder) -> None:
    text = read_text(path, "inventory file")
    builder.path = path
    if is_vault_text(text):
        text = decrypt_file_text(text, path)
    if os.path.splitext(path)[1].lower() == ".toml":
        raise InputError("TOML inventories are not supported (use INI or YAML)", path=path)
    if _is_yaml(path, text):
        parse_yaml(text, path, builder)
    else:
        parse_ini(text, path, builder)
        builder.finish_pending()  # Ansible checks each INI file's references at its end


def _is_yaml(path: str, text: str) -> bool:
    ext = os.path.splitext(path)[1].lower()
    if ext in _YAML_EXTENSIONS or ext == ".ini":
        return ext != ".ini"
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return line.startswith(("---", "{")) or bool(_YAML_KEY.match(line))
    return False


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
