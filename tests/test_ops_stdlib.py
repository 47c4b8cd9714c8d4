"""ops/ runs on managed hosts: standard library only, Python 3.8 syntax and APIs.

The checker walks every ops/*.py with ``ast``: imports must be ``ops.*`` or names in
``sys.stdlib_module_names`` (minus modules added after 3.8), the source must parse
with ``feature_version=(3, 8)``, and a few 3.9+ constructs that ``feature_version``
lets through are rejected explicitly. The checker itself is tested on bad snippets.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

OPS = Path(__file__).resolve().parent.parent / "ops"
NEW_MODULES = {"zoneinfo": "3.9", "graphlib": "3.9", "tomllib": "3.11", "_tokenize": "3.12"}
BUILTIN_GENERICS = {"list", "dict", "set", "frozenset", "tuple", "type"}
NEW_METHODS = {"removeprefix": "3.9", "removesuffix": "3.9", "bit_count": "3.10",
               "is_relative_to": "3.9", "with_stem": "3.9", "waitstatus_to_exitcode": "3.9",
               "randbytes": "3.9", "pairwise": "3.10", "TaskGroup": "3.11", "StrEnum": "3.11"}
NEW_NAMES = {("functools", "cache"): "3.9", ("math", "lcm"): "3.9", ("contextlib", "chdir"):
             "3.11", ("datetime", "UTC"): "3.11", ("typing", "Self"): "3.11",
             ("typing", "TypeAlias"): "3.10", ("typing", "ParamSpec"): "3.10",
             ("itertools", "pairwise"): "3.10", ("enum", "StrEnum"): "3.11"}
NEW_KEYWORDS = {("zip", "strict"): "3.10", ("dataclass", "slots"): "3.10",
                ("dataclass", "kw_only"): "3.10"}


def _module_ok(name: str) -> str | None:
    top = name.split(".")[0]
    if top == "ops":
        return None
    if top in NEW_MODULES:
        return f"module {top} needs Python {NEW_MODULES[top]}"
    if top not in sys.stdlib_module_names:
        return f"import {name} is not in the standard library"
    return None


def _is_dotted_name(node: ast.AST) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _decorator_ok(node: ast.AST) -> bool:
    """3.8 grammar: a dotted name, optionally called (PEP 614 relaxed this in 3.9)."""
    if isinstance(node, ast.Call):
        node = node.func
    return _is_dotted_name(node)


def _has_bitor(node: ast.AST | None) -> bool:
    return node is not None and any(
        isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node))


def _annotations(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
            yield from (a.annotation for a in every if a is not None and a.annotation)
            if node.returns:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _node_problems(node: ast.AST) -> list[str]:
    found = []
    if isinstance(node, ast.Import):
        found += [p for p in (_module_ok(a.name) for a in node.names) if p]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        problem = _module_ok(node.module)
        found += [problem] if problem else []
        for alias in node.names:
            if (node.module, alias.name) in NEW_NAMES:
                found.append(f"{node.module}.{alias.name} needs Python "
                             f"{NEW_NAMES[node.module, alias.name]}")
    elif isinstance(node, ast.Match):
        found.append("match statement needs Python 3.10")
    elif isinstance(node, ast.Subscript):
        value = node.value
        if isinstance(value, ast.Name) and value.id in BUILTIN_GENERICS:
            found.append(f"{value.id}[...] subscript needs Python 3.9")
        if isinstance(node.slice, ast.Tuple) and any(
                isinstance(e, ast.Starred) for e in node.slice.elts):
            found.append("star expression in a subscript needs Python 3.11")
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        if any(isinstance(side, (ast.Dict, ast.DictComp)) for side in (node.left, node.right)):
            found.append("dict | dict needs Python 3.9")
    elif isinstance(node, ast.Attribute):
        if node.attr in NEW_METHODS:
            found.append(f".{node.attr} needs Python {NEW_METHODS[node.attr]}")
        if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in NEW_NAMES:
            found.append(f"{node.value.id}.{node.attr} needs Python "
                         f"{NEW_NAMES[node.value.id, node.attr]}")
    elif isinstance(node, ast.Call):
        name = _call_name(node)
        if name in ("isinstance", "issubclass") and len(node.args) == 2 and _has_bitor(
                node.args[1]):
            found.append("X | Y in isinstance() needs Python 3.10")
        if name in ("__import__", "import_module") and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found += [p for p in [_module_ok(node.args[0].value)] if p]
        found += [f"{name}({kw.arg}=) needs Python {NEW_KEYWORDS[name, kw.arg]}"
                  for kw in node.keywords if (name, kw.arg) in NEW_KEYWORDS]
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        if not all(_decorator_ok(d) for d in node.decorator_list):
            found.append("arbitrary decorator expression needs Python 3.9")
    return found


def check_source(source: str, name: str = "<snippet>") -> list[str]:
    """Every reason ``source`` would not run on Python 3.8 with the standard library only."""
    try:
        ast.parse(source, filename=name, feature_version=(3, 8))
    except SyntaxError as exc:
        return [f"{name}:{exc.lineno}: not Python 3.8 syntax: {exc.msg}"]
    tree = ast.parse(source, filename=name)
    problems = []
    for node in ast.walk(tree):
        problems += [f"{name}:{getattr(node, 'lineno', '?')}: {p}" for p in _node_problems(node)]
    for annotation in _annotations(tree):
        if _has_bitor(annotation):
            problems.append(f"{name}:{annotation.lineno}: X | Y annotation needs Python 3.10")
    return problems


def ops_files() -> list[Path]:
    return sorted(OPS.glob("*.py"))


def test_there_are_ops_files():
    names = {p.name for p in ops_files()}
    assert {"__main__.py", "_contract.py", "_dispatch.py", "diskreport.py"} <= names


@pytest.mark.parametrize("path", ops_files(), ids=lambda p: p.name)
def test_ops_module_is_stdlib_python38(path: Path):
    assert check_source(path.read_text(encoding="utf-8"), f"ops/{path.name}") == []


BAD = {
    "third-party import": "import yaml\n",
    "third-party from-import": "from requests.adapters import HTTPAdapter\n",
    "dynamic third-party import": "import importlib\nimportlib.import_module('paramiko')\n",
    "3.9 module": "import zoneinfo\n",
    "match statement": "match x:\n    case 1:\n        pass\n",
    "parenthesized context managers": "with (open(a) as f, open(b) as g):\n    pass\n",
    "except star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "PEP 604 parameter": "def f(x: int | None) -> None:\n    pass\n",
    "PEP 604 return": "def f() -> 'int' | None:\n    pass\n",
    "PEP 604 variable": "x: int | None = None\n",
    "PEP 604 isinstance": "isinstance(x, int | str)\n",
    "builtin generic in annotation": "def f(x: list[int]):\n    pass\n",
    "builtin generic in code": "Alias = dict[str, int]\n",
    "dict union": "merged = {'a': 1} | other\n",
    "removeprefix": "name = 'ops.x'.removeprefix('ops.')\n",
    "functools.cache": "from functools import cache\n",
    "math.lcm attribute": "import math\nmath.lcm(2, 3)\n",
    "zip strict": "pairs = zip(a, b, strict=True)\n",
    "relaxed decorator": "@handlers[0].register\ndef f():\n    pass\n",
    "star in subscript": "x = arr[*idx]\n",
}

GOOD = {
    "stdlib and ops imports": "import os, json\nfrom ops import _contract\nfrom ops._mounts import x\n",
    "relative import": "from . import _contract\n",
    "typing annotations": "from typing import Optional, List\ndef f(x: Optional[int]) -> List[str]:\n"
                          "    return []\n",
    "parenthesized expression in with": "with (open(a)) as f:\n    pass\n",
    "bitwise or on ints": "flags = os.O_WRONLY | os.O_CREAT\n",
    "dotted decorator call": "@functools.lru_cache(maxsize=None)\ndef f():\n    pass\n",
    "walrus is 3.8": "if (n := len(x)) > 2:\n    pass\n",
    "subscripted typing generic": "from typing import Dict\nD = Dict[str, int]\n",
}


@pytest.mark.parametrize("snippet", BAD.values(), ids=BAD.keys())
def test_checker_rejects(snippet: str):
    assert check_source(snippet), "the checker let a non-3.8/non-stdlib construct through"


@pytest.mark.parametrize("snippet", GOOD.values(), ids=GOOD.keys())
def test_checker_accepts(snippet: str):
    assert check_source(snippet) == []


def test_checker_names_the_problem():
    problems = check_source("import os\nimport yaml\n", "ops/x.py")
    assert problems == ["ops/x.py:2: import yaml is not in the standard library"]
