"""Ansible-compatible inventories: INI or YAML files plus group_vars/ and host_vars/.

``load_inventory(path)`` returns an immutable :class:`Inventory` of :class:`Host`
objects with merged variables and connection settings; ``Inventory.select``
evaluates host patterns (see ``fleetops.inventory.patterns``).

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

from fleetops.errors import InputError
from fleetops.inventory.builder import MAX_HOSTS, _Builder
from fleetops.inventory.finish import (
    LOCALHOST,
    Finisher,
    address_problem,
    name_problem,
)
from fleetops.inventory.ini import parse_ini
from fleetops.inventory.model import Group, Host, Inventory
from fleetops.inventory.source import read_text
from fleetops.inventory.ssh import resolve_ssh
from fleetops.inventory.vault import decrypt_file_text, is_vault_text
from fleetops.inventory.yaml import parse_yaml

__all__ = ["LOCALHOST", "MAX_HOSTS", "Group", "Host", "Inventory", "address_problem",
           "load_inventory", "name_problem", "resolve_ssh"]

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
    in Ansible's ignored extensions (see :mod:`fleetops.inventory.dir`); group_vars/
    and host_vars/ are read inside it.
    """
    from fleetops.inventory.dir import source_files

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
