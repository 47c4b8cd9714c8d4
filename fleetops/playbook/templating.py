"""Jinja2 for playbooks: argument values and template files, rendered on the control side.

Undefined variables are errors (StrictUndefined), files keep their trailing newline,
nothing is HTML-escaped. A string that is exactly one ``{{ expression }}`` renders to
the expression's native value (a list stays a list, a number a number), like Ansible;
any other string renders to a string. Extra filter: ``quote`` (shell quoting).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from fleetops import shellquote
from fleetops.playbook.sandbox import PlaybookEnvironment

_SINGLE = re.compile(r"\A\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\Z", re.S)
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


class RenderError(Exception):
    """A per-host rendering problem: ``str()`` is a short reason."""


def templated(value: Any) -> bool:
    """Does ``value`` (or anything inside it) contain Jinja markup?"""
    if isinstance(value, str):
        return "{{" in value or "{%" in value or "{#" in value
    if isinstance(value, Mapping):
        return any(templated(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(templated(v) for v in value)
    return False


def describe_error(exc: Exception) -> str:
    """A one-line reason for a Jinja error (``undefined variable 'x'`` when it is one)."""
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, jinja2.UndefinedError):
        found = _UNDEFINED.match(message)
        return f"undefined variable '{found.group(1)}'" if found else f"undefined: {message}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{exc.filename or exc.name or 'template'}:{exc.lineno}: " if exc.lineno else ""
        return f"template syntax error: {where}{message}"
    return f"{type(exc).__name__}: {message}"


class Renderer:
    """One Jinja environment per playbook; ``search`` lists the template directories."""

    def __init__(self, search: Iterable[Path]) -> None:
        unique: list[Path] = []
        for path in search:
            resolved = Path(path).resolve()
            if resolved not in unique:
                unique.append(resolved)
        self.search = unique
        self.env = PlaybookEnvironment(  # Jinja's sandbox: see fleetops.playbook.sandbox
            loader=jinja2.FileSystemLoader([str(p) for p in unique]),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.filters["quote"] = lambda value: shlex.quote(str(value))
        shellquote.install(self.env)  # shquote, cronfield, oneline: for shipped templates
        # The same argument is rendered for every host: compile each text once.
        self._template = functools.lru_cache(maxsize=1024)(self.env.from_string)
        self._expression = functools.lru_cache(maxsize=1024)(
            functools.partial(self.env.compile_expression, undefined_to_none=False))

    # -- checks made before any host is contacted ---------------------------------------
    def check_syntax(self, value: Any) -> None:
        """Raise jinja2.TemplateSyntaxError for bad markup anywhere inside ``value``."""
        if isinstance(value, str):
            if templated(value):
                self.env.parse(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                self.check_syntax(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self.check_syntax(item)

    def check_expression(self, expression: str) -> None:
        self.env.compile_expression(expression)

    def find(self, name: str) -> Path | None:
        """The template file ``name`` resolves to, or None."""
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            return None
        for base in self.search:
            candidate = base / name
            if candidate.is_file():
                return candidate
        return None

    def load(self, name: str) -> jinja2.Template:
        """Load (and syntax-check) a template file; TemplateNotFound/TemplateSyntaxError."""
        return self.env.get_template(name)

    # -- per host -----------------------------------------------------------------------
    def value(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every string inside ``value``; RenderError on any Jinja error."""
        try:
            return self._value(value, context)
        except jinja2.TemplateError as exc:
            raise RenderError(describe_error(exc)) from None

    def _value(self, value: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            if not templated(value):
                return value
            single = _SINGLE.match(value)
            if single:
                result = self._expression(single.group("expr"))(**context)
                if isinstance(result, jinja2.Undefined):
                    str(result)  # StrictUndefined: raises UndefinedError naming the variable
                return result
            return self._template(value).render(context)
        if isinstance(value, Mapping):
            return {k: self._value(v, context) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._value(v, context) for v in value]
        return value

    def condition(self, expression: Any, context: Mapping[str, Any]) -> bool:
        """Evaluate a ``when:`` expression (a bool is taken as is)."""
        if isinstance(expression, bool):
            return expression
        try:
            text = str(expression).strip()
            single = _SINGLE.match(text)
            if single:
                text = single.group("expr")
            result = self._expression(text)(**context)
            return bool(result)  # StrictUndefined raises here when undefined
        except jinja2.TemplateError as exc:
            raise RenderError(describe_error(exc)) from None

    def file(self, name: str, context: Mapping[str, Any]) -> str:
        """Render the template file ``name``."""
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateNotFound:
            raise RenderError(f"template {name!r} not found in {self.where()}") from None
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {name}: {describe_error(exc)}") from None

    def where(self) -> str:
        return ", ".join(str(p) for p in self.search)
