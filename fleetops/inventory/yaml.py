"""YAML inventories, group_vars/host_vars files, with line numbers in every error.

The loader is PyYAML's safe loader (the C one when available) with one change:
mappings come back as :class:`LineDict`, a dict that remembers the line of each
key, so structure errors found after loading still name ``path:line``. Unlike
plain PyYAML, a key repeated in one mapping is an error instead of "last wins".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml

from fleetops.errors import InputError
from fleetops.inventory.ini import expand_host_pattern
from fleetops.inventory.source import read_text
from fleetops.yamllimits import compose, new_loader

if TYPE_CHECKING:
    from fleetops.inventory.builder import _Builder

_SECTIONS = ("hosts", "vars", "children")
_VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict):
    """A YAML mapping that knows its own line and each key's line (1-based)."""

    __slots__ = ("line", "key_lines")

    def __init__(self) -> None:
        super().__init__()
        self.line = 0
        self.key_lines: dict[Any, int] = {}


class _LineLoader(_BaseLoader):
    """Safe loader building :class:`LineDict` mappings."""


def _construct_map(loader: Any, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key}' (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
    data.update(loader.construct_mapping(node))
    data.key_lines = seen


class Unsafe(str):
    """A YAML ``!unsafe`` string: Ansible never templates it; fleetops keeps it as text."""

    __slots__ = ()


def _construct_unsafe(loader: Any, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return Unsafe(loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return [Unsafe(v) if isinstance(v, str) else v for v in loader.construct_sequence(node)]
    return loader.construct_mapping(node)


def _construct_vault(loader: Any, node: yaml.Node) -> Any:
    from fleetops.inventory.vault import decrypt

    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!vault must tag a string (the vault text)", node.start_mark
        )
    return decrypt(loader.construct_scalar(node), loader.fleetops_path, line)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("!unsafe", _construct_unsafe)
_LineLoader.add_constructor("!vault", _construct_vault)


def load_yaml(text: str, path: str) -> Any:
    """Parse YAML text; syntax errors become ``InputError`` at the offending line.

    The node graph is checked by :func:`fleetops.yamllimits.compose` before it is
    constructed: no alias bomb, no self-referencing alias, nesting <= 100 levels.
    """
    loader = new_loader(_LineLoader, text, path)  # a SafeLoader subclass: no arbitrary objects
    loader.fleetops_path = path  # for !vault errors
    try:
        node = compose(loader, text, path)
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context == "while scanning a simple key" and exc.context_mark is not None:
            mark = exc.context_mark  # the key missing its ':', not the line after it
        what = exc.problem or exc.context or "bad YAML"
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"YAML syntax error: {what}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"YAML syntax error: {first}", path=path) from None
    finally:
        loader.dispose()


def load_vars_text(text: str, path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Variables from a group_vars/host_vars file: ``(vars, line of each key)``."""
    from fleetops.inventory.vault import decrypt_file_text, is_vault_text

    if is_vault_text(text):
        text = decrypt_file_text(text, path)
    if path.endswith(".json"):
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise InputError(f"JSON syntax error: {exc.msg}", path=path, line=exc.lineno) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path=path) from None
    else:
        data = load_yaml(text, path)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of variable names to values, got {_kind(data)}",
            path=path,
            line=1,
        )
    lines = getattr(data, "key_lines", {})
    for key in data:
        if not isinstance(key, str):
            raise InputError(
                f"variable name {key!r} is not a string", path=path, line=lines.get(key)
            )
    return dict(data), lines


def parse_yaml(text: str, path: str, builder: _Builder) -> None:
    """Feed a YAML inventory (``all: {hosts:, vars:, children:}``) into ``builder``."""
    data = load_yaml(text, path)
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping of group names at the top level, got {_kind(data)}",
            path=path,
            line=1,
        )
    if "plugin" in data:
        raise InputError(
            "inventory plugin configuration files are not supported",
            path=path,
            line=data.key_lines.get("plugin"),
        )
    _Walker(path, builder).groups(data, parent=None)


class _Walker:
    def __init__(self, path: str, builder: _Builder):
        self.path = path
        self.builder = builder

    def fail(self, message: str, line: int | None) -> InputError:
        return InputError(message, path=self.path, line=line)

    def groups(self, mapping: LineDict, parent: str | None) -> None:
        for name, body in mapping.items():
            line = mapping.key_lines.get(name, mapping.line)
            if not isinstance(name, str) or not name:
                raise self.fail(f"group name {name!r} must be a non-empty string", line)
            self.builder.group(name, line)
            self.builder.declare(name)
            if parent is not None:
                self.builder.add_child(parent, name, line)
            self.group_body(name, body, line)

    def group_body(self, name: str, body: Any, line: int) -> None:
        if body is None:
            return
        if not isinstance(body, dict):
            raise self.fail(
                f"group '{name}' must be a mapping with hosts, vars or children, got {_kind(body)}",
                line,
            )
        for key, value in body.items():
            key_line = body.key_lines.get(key, body.line)
            if key not in _SECTIONS:
                raise self.fail(
                    f"unexpected key '{key}' in group '{name}' (expected hosts, vars or children)",
                    key_line,
                )
            if isinstance(value, str) and key != "vars":
                value = _single(value, key_line)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise self.fail(
                    f"'{key}' of group '{name}' must be a mapping, got {_kind(value)}", key_line
                )
            getattr(self, key)(name, value)

    def hosts(self, group: str, mapping: LineDict) -> None:
        for pattern, host_vars in mapping.items():
            line = mapping.key_lines.get(pattern, mapping.line)
            if host_vars is not None and not isinstance(host_vars, dict):
                raise self.fail(
                    f"variables of host '{pattern}' must be a mapping, got {_kind(host_vars)}",
                    line,
                )
            if not isinstance(pattern, str):  # Ansible: "must be a string" (1.10: is 1.1)
                raise self.fail(
                    f"host name {pattern!r} must be a string: YAML read it as "
                    f"{type(pattern).__name__}; quote it",
                    line,
                )
            try:
                names, port = expand_host_pattern(pattern)
            except ValueError as exc:
                raise self.fail(str(exc), line) from None
            values = dict(host_vars or {})
            self.check_names(values, host_vars, line)
            lines = getattr(host_vars, "key_lines", {})
            for name in names:
                self.builder.add_host(name, group, values, line, lines, port)

    def vars(self, group: str, mapping: LineDict) -> None:
        if not isinstance(mapping, dict):
            raise self.fail(f"'vars' of group '{group}' must be a mapping", None)
        self.check_names(mapping, mapping, mapping.line)
        for key, value in mapping.items():
            self.builder.set_group_var(group, key, value, mapping.key_lines.get(key, mapping.line))

    def children(self, group: str, mapping: LineDict) -> None:
        self.groups(mapping, parent=group)

    def check_names(self, values: dict, mapping: Any, line: int) -> None:
        lines = getattr(mapping, "key_lines", {})
        for key in values:
            if not isinstance(key, str):
                raise self.fail(f"variable name {key!r} is not a string", lines.get(key, line))


def _single(value: str, line: int) -> LineDict:
    """Ansible accepts ``hosts: web1`` for ``hosts: {web1: null}``."""
    data = LineDict()
    data[value] = None
    data.line = line
    data.key_lines = {value: line}
    return data


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"[:60]


class Layer(NamedTuple):
    """One source of variables, kept to say where a bad value came from."""

    vars: dict[str, Any]
    path: str
    lines: dict[str, int]


def origin(layers: list[Layer], key: str) -> tuple[str, int | None]:
    """``(path, line)`` of the layer whose value of ``key`` won the merge."""
    for layer in reversed(layers):
        if key in layer.vars:
            where = layer.lines.get(key)
            if isinstance(where, tuple):  # inline vars: (file, line)
                return where
            return layer.path, where
    return layers[0].path if layers else "", None


def load_vars_dir(folder: str, names: Iterable[str]) -> dict[str, list[Layer]]:
    """Variable files in ``group_vars/`` or ``host_vars/`` for each known name.

    For a name, the first that exists of ``<name>`` (a file, or a directory read
    recursively in sorted order), ``<name>.yml``, ``<name>.yaml`` and ``<name>.json``
    is loaded, and only that one (Ansible's ``find_vars_files``: with
    ``group_vars/web/`` beside ``group_vars/web.yml`` only the directory is read).
    The folder is listed once, not per name.
    """
    try:
        with os.scandir(folder) as scan:
            entries = {entry.name: entry.is_dir() for entry in scan}
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise InputError(f"cannot list directory: {exc.strerror}", path=folder) from None
    found: dict[str, list[Layer]] = {}
    for name in names:
        paths: list[str] = []
        for suffix in _VARS_SUFFIXES:
            is_dir = entries.get(name + suffix)
            if is_dir is not None:
                full = os.path.join(folder, name + suffix)
                paths.extend(_dir_files(full) if is_dir else [full])
                break
        if paths:
            found[name] = [_vars_layer(path) for path in paths]
    return found


def _dir_files(folder: str) -> list[str]:
    """Ansible's vars directory walk: sorted, recursive, no hidden or backup files."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise InputError(f"cannot list directory: {exc.strerror}", path=folder) from None
    files: list[str] = []
    for name in names:
        full = os.path.join(folder, name)
        if name.startswith(".") or name.endswith("~"):
            continue
        if os.path.isdir(full):
            files.extend(_dir_files(full))
        elif os.path.splitext(name)[1] in _VARS_SUFFIXES:
            files.append(full)
    return files


def _vars_layer(path: str) -> Layer:
    values, lines = load_vars_text(read_text(path, "variables file"), path)
    return Layer(values, path, lines)
