"""Limits for untrusted YAML (inventories, vars files, playbooks): no bomb, no loop.

PyYAML resolves an alias to the very node it names, so ``a: &x [*y, *y, ...]`` chains
describe exponentially large data in a few lines ("billion laughs"), and ``&a [*a]`` a
structure that contains itself. :func:`check_tree` walks the composed node graph once
(memoised, iterative: linear in the distinct nodes) before anything is constructed and
refuses, as one :class:`InputError` naming ``file:line``:

* a structure that contains itself (a self-referencing alias);
* more than :data:`MAX_DEPTH` levels of nesting;
* more than :data:`MAX_NODES` nodes once every alias is expanded.

:func:`reader_error` turns PyYAML's reader error (a control character or other
character YAML does not allow, which has a position, not a mark) into ``file:line``.
"""

from __future__ import annotations

from typing import Any

import yaml

from fleetops.errors import InputError

MAX_DEPTH = 100
MAX_NODES = 1_000_000


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def check_tree(root: yaml.Node, path: str) -> None:
    """Raise InputError for a self-containing, too deep or too large (expanded) tree."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if depth[key] > MAX_DEPTH:
                raise InputError(f"YAML nested more than {MAX_DEPTH} levels deep", path,
                                 _line(node))
            if size[key] > MAX_NODES:
                raise InputError(f"YAML expands to more than {MAX_NODES} nodes (alias bomb?)",
                                 path, _line(node))
            continue
        if key in size:
            continue
        on_path.add(key)
        if len(on_path) > MAX_DEPTH:
            raise InputError(f"YAML nested more than {MAX_DEPTH} levels deep", path, _line(node))
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:
                raise InputError("YAML alias refers to a structure that contains it "
                                 "(self-referencing alias)", path, _line(kid))
            if id(kid) not in size:
                stack.append((kid, False))


def reader_error(exc: yaml.reader.ReaderError, text: str, path: str) -> InputError:
    """``file:line: YAML: character U+0001 is not allowed`` for a reader error."""
    code = exc.character if isinstance(exc.character, int) else None
    position = text.find(chr(code)) if code is not None else -1  # libyaml counts bytes
    if position < 0:
        position = exc.position if isinstance(exc.position, int) else len(text) + 1
    line = text.count("\n", 0, position) + 1 if position <= len(text) else None
    what = f"character U+{code:04X}" if code is not None else "a character"
    return InputError(f"YAML: {what} is not allowed (control or non-printable character)",
                      path, line)


def new_loader(loader_class: Any, text: str, path: str) -> Any:
    """``loader_class(text)``; the pure-Python reader checks characters right here."""
    try:
        return loader_class(text)
    except yaml.reader.ReaderError as exc:
        raise reader_error(exc, text, path) from None


def compose(loader: Any, text: str, path: str) -> yaml.Node | None:
    """``loader.get_single_node()`` checked by :func:`check_tree`; reader errors and
    too deep nesting are InputErrors (syntax errors are left to the caller)."""
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise reader_error(exc, text, path) from None
    except RecursionError:
        mark = getattr(loader, "get_mark", lambda: None)()
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"YAML nested more than {MAX_DEPTH} levels deep", path, line) from None
    if node is not None:
        check_tree(node, path)
    return node
