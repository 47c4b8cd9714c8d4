"""Playbook YAML with line numbers: mappings and sequences remember where they were.

Line numbers come from PyYAML's composed node tree; input limits (alias bombs,
self-references, depth) are :mod:`fleetops.yamllimits`'. Every problem is one
:class:`~fleetops.errors.InputError` naming ``file:line``.
"""

from __future__ import annotations

from typing import Any

import yaml

from fleetops.errors import InputError
from fleetops.yamllimits import compose, new_loader


class YMap(dict):
    """A YAML mapping that remembers its line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class YList(list):
    """A YAML sequence that remembers its line and the line of each item."""

    line: int = 0
    item_lines: list[int]



def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        mapping = YMap()
        mapping.line, mapping.key_lines = line, {}
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, path)
            key_line = key_node.start_mark.line + 1
            if isinstance(key, dict | list):
                raise InputError("a mapping key must be a scalar", path, key_line)
            if key in mapping:
                raise InputError(f"duplicate key {key!r} (first on line {mapping.key_lines[key]})",
                                 path, key_line)
            mapping[key] = _convert(loader, value_node, path)
            mapping.key_lines[key] = key_line
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = YList(_convert(loader, item, path) for item in node.value)
        items.line, items.item_lines = line, [item.start_mark.line + 1 for item in node.value]
        return items
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, path: str) -> Any:
    """The document as plain data whose mappings/sequences carry line numbers."""
    loader = new_loader(yaml.SafeLoader, text, path)
    try:
        node = compose(loader, text, path)  # no alias bomb, no self-reference, <= 100 deep
        return None if node is None else _convert(loader, node, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(f"YAML syntax error: {exc.problem or exc.context}", path,
                         mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"YAML error: {first}", path) from None
    finally:
        loader.dispose()
