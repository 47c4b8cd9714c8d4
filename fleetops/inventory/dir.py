"""A directory given as the inventory: Ansible's directory source, file by file.

ansible-core's ``InventoryManager`` parses every entry of the directory in sorted
order (by name, as bytes), recursing into subdirectories, and skips:

* names starting with ``.``, and ``group_vars``, ``host_vars``, ``vars_plugins``;
* names ending in an ignored extension (``INVENTORY_IGNORE_EXTS``): ``.pyc``, ``.pyo``,
  ``.swp``, ``.bak``, ``~``, ``.rpm``, ``.md``, ``.txt``, ``.rst``, ``.orig``, ``.cfg``,
  ``.retry``; ``$ANSIBLE_INVENTORY_IGNORE`` (comma-separated) replaces that list and
  ``$ANSIBLE_INVENTORY_IGNORE_REGEX`` adds patterns, as in Ansible.

Stricter than Ansible, by design: an executable file (Ansible would run it as an
inventory script) and a file that parses neither as YAML nor as INI are errors naming
the file, not warnings followed by a partial inventory.
"""

from __future__ import annotations

import os
import re
import stat

from fleetops.errors import InputError

__all__ = ["source_files"]

_ALWAYS = (r"^\.", r"^host_vars$", r"^group_vars$", r"^vars_plugins$")
_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
         ".retry")
_MAX_FILES = 10_000


def _ignored() -> re.Pattern[str]:
    exts_env = os.environ.get("ANSIBLE_INVENTORY_IGNORE")
    exts = [e.strip() for e in exts_env.split(",")] if exts_env else list(_EXTS)
    extra = os.environ.get("ANSIBLE_INVENTORY_IGNORE_REGEX", "")
    patterns = [*_ALWAYS, *(p.strip() for p in extra.split(",") if p.strip())]
    patterns += [re.escape(e) + "$" for e in exts if e]
    try:
        return re.compile("|".join(patterns))
    except re.error as exc:
        raise InputError(f"bad ANSIBLE_INVENTORY_IGNORE_REGEX {extra!r}: {exc}") from None


def source_files(folder: str) -> list[str]:
    """The inventory files of ``folder`` in Ansible's order; InputError on a bad entry."""
    ignored = _ignored()
    found: list[str] = []
    _walk(folder, ignored, found, 0)
    return found


def _walk(folder: str, ignored: re.Pattern[str], found: list[str], depth: int) -> None:
    if depth > 20:
        raise InputError("inventory directories nested more than 20 deep", path=folder)
    try:
        names = sorted(os.listdir(folder), key=os.fsencode)
    except OSError as exc:
        raise InputError(f"cannot list inventory directory: {exc.strerror}", path=folder) from None
    for name in names:
        if ignored.search(name):
            continue
        full = os.path.join(folder, name)
        try:
            info = os.stat(full)
        except OSError as exc:
            raise InputError(f"cannot read inventory entry: {exc.strerror}", path=full) from None
        if stat.S_ISDIR(info.st_mode):
            _walk(full, ignored, found, depth + 1)
            continue
        if not stat.S_ISREG(info.st_mode):
            raise InputError("inventory entry is not a regular file", path=full)
        if info.st_mode & 0o111:
            raise InputError(
                "inventory file is executable: Ansible would run it as an inventory script, "
                "fleetops does not run scripts (chmod -x it, or list the hosts in INI/YAML)",
                path=full,
            )
        if len(found) >= _MAX_FILES:
            raise InputError(f"more than {_MAX_FILES} files in the inventory directory",
                             path=folder)
        found.append(full)
