"""The import graph keeps the layers of docs/architecture.md (issue 12, point 1).

Read from the source (ast, every import including those inside functions, not those
under ``if TYPE_CHECKING:``), no module is executed. Rules: every control-side module has a layer; a module imports only its
own layer and the layers its layer may use; the library never imports the lab; the
remote side (``ops/``) never imports the control side; no import cycle beyond the
known ones listed here (each must still exist: remove it once broken).

When modules move into subpackages, update ``LAYER_OF`` (module -> layer) and nothing
else; a new module gets its layer here and a line in docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Layer -> the layers it may import (besides its own). Bottom first.
MAY_USE: dict[str, set[str]] = {
    "base": set(),
    "core": {"base"},
    "config": {"base", "core"},
    "inventory": {"base", "core", "config"},
    "ship": {"base", "core", "config"},
    "jobs": {"base", "core", "config", "ship"},
    "api": {"base", "core", "config", "inventory", "ship", "jobs"},
    "playbook": {"base", "core", "config", "inventory", "ship", "jobs", "api"},
    # at the edge: the lab and benchmarks may drive the library, never the reverse
    "lab": {"base", "core", "config", "inventory", "ship", "jobs", "api", "playbook"},
    "cli": {"base", "core", "config", "inventory", "ship", "jobs", "api", "playbook", "lab"},
    "facade": {"base", "core", "config", "inventory", "ship", "jobs", "api", "playbook",
               "cli"},
}
LIBRARY = {"base", "core", "config", "inventory", "ship", "jobs", "api", "playbook"}

# The folder is the layer: ``fleetops/<layer>/...`` belongs to ``<layer>``; the modules
# directly in ``fleetops/`` are the base (and ``__init__`` the facade). A new module goes
# in the folder of its layer (docs/architecture.md says which).
PACKAGES = {"core", "config", "inventory", "ship", "jobs", "api", "playbook", "cli", "lab"}
BASE = {"errors", "results", "sanitize", "safefile", "yamllimits", "shellquote"}
MAX_TOP_LEVEL = 8  # issue 12: at most 8 modules directly in fleetops/

# Cycles that exist today (sets of modules). Each must still be a cycle, so this list
# only shrinks.
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / "fleetops").rglob("*.py")):
        parts = path.relative_to(REPO / "fleetops").with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        found[name] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    """``module`` (dotted, under fleetops; "" is the package) -> its layer."""
    if module == "":
        return "facade"
    top = module.split(".")[0]
    if top in PACKAGES:
        return top
    if module in BASE:
        return "base"
    raise KeyError(module)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never
    imported when the program runs)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path, package: str) -> set[str]:
    """fleetops modules ``path`` imports (dotted, under fleetops; "" is the package)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(["fleetops", *[p for p in up if p], *([base] if base else [])])
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            if name == "fleetops" or name.startswith("fleetops."):
                module = name.removeprefix("fleetops").lstrip(".")
                while module and module not in MODULES:
                    module = module.rpartition(".")[0]  # an attribute, not a module
                found.add(module)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = _imports(path, package) - {name}
        if "" in deps and name:  # ``from fleetops import x`` names x, not the facade
            deps.discard("")
        graph[name] = deps
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = set()
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.add(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    """Every module sits in the folder of a layer; a new top-level module is a decision
    (add it to BASE) and there are at most MAX_TOP_LEVEL of them."""
    top = sorted(m for m in MODULES if m and "." not in m and m not in PACKAGES)
    stray = [m for m in top if m not in BASE]
    assert not stray, f"put these modules in the package of their layer: {stray}"
    assert len(top) <= MAX_TOP_LEVEL, top


def test_no_import_from_a_lower_layer_to_a_higher_one():
    wrong = []
    for module, deps in GRAPH.items():
        mine = layer(module)
        for dep in deps:
            theirs = layer(dep)
            if theirs != mine and theirs not in MAY_USE[mine]:
                wrong.append(f"{module} ({mine}) imports {dep} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_library_never_imports_the_lab():
    wrong = [f"{m} imports {d}" for m, deps in GRAPH.items() if layer(m) in LIBRARY
             for d in deps if layer(d) == "lab"]
    assert not wrong


def test_no_import_cycle_beyond_the_known_ones():
    cycles = _cycles(GRAPH)
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in cycles and c <= MODULES.keys()]
    assert not gone, f"these cycles are broken now: remove them from KNOWN_CYCLES: {gone}"


def test_the_remote_side_never_imports_the_control_side():
    wrong = []
    for path in sorted((REPO / "ops").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            wrong += [f"{path.name}: {n}" for n in names
                      if n.split(".")[0] in ("fleetops", "invoke", "paramiko", "tasks")]
    assert not wrong


def test_architecture_doc_places_every_module():
    doc = (REPO / "docs" / "architecture.md").read_text()
    missing = [m for m, path in MODULES.items() if path.name != "__init__.py"
               and f"`{path.relative_to(REPO).as_posix()}`" not in doc]
    assert not missing, f"docs/architecture.md does not place: {missing}"


@pytest.mark.parametrize("module, dep", [("core.runner", "lab.lab"), ("errors", "core.runner"),
                                         ("core.ssh", "ship.run"),
                                         ("inventory.load", "playbook.load")])
def test_the_rules_can_fail(module, dep):
    """The checks above see a wrong edge (the rules are not vacuous)."""
    assert layer(dep) not in MAY_USE[layer(module)]
