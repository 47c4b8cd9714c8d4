"""The Jinja environment for playbook templates: Jinja's sandbox plus a load-time check.

Playbook templates come from files anyone with the playbook wrote, and are rendered on
the control machine as root, in ``--check`` too. :class:`PlaybookEnvironment` is
:class:`jinja2.sandbox.SandboxedEnvironment` (no ``_``-prefixed attributes, no function
internals, bounded ``range``: a violation at render time is a ``SecurityError``, which
fails that host with a one-line reason). On top, every template and expression is
checked when it is parsed or compiled: an attribute or constant subscript whose name
starts with ``_`` (``cycler.__init__.__globals__``, ``x['__class__']``) is a
``TemplateSyntaxError`` naming the template and line, so the playbook is refused before
any host is contacted (exit 4).
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment


def refuse_private(tree: nodes.Node, name: str | None, filename: str | None) -> None:
    """TemplateSyntaxError at the first ``_``-prefixed attribute or constant key."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            attr: Any = node.attr
        elif isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        else:
            continue
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateSyntaxError(
                f"access to the private attribute {attr!r} is not allowed in a playbook "
                "template (sandboxed)", node.lineno, name, filename)


class PlaybookEnvironment(SandboxedEnvironment):
    """Sandboxed environment refusing private attribute access when a template loads."""

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        refuse_private(tree, name, filename)
        return tree

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        refuse_private(source, name, filename)
        return super()._generate(source, name, filename, defer_init=defer_init)
