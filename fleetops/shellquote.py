"""Jinja filters for templates that become shell scripts, cron lines or systemd units.

``shquote``: ``shlex.quote`` of the value (POSIX sh single quotes), for every value
interpolated into a shell script. ``cronfield(kind)``: a cron.d field checked with the
host side's own validators (``ops._crontab``): ``name`` (also a file and lock name),
``schedule`` (five fields or ``@daily`` & co: extra words would become the user and
command of a second job), ``user``. ``oneline``: the value unchanged, for a line-based
format that is not a shell (systemd units quote with their own rules).

A value no quoting makes safe — NUL, a newline or any other control character, which
ends a cron line or a unit line and starts a new one — raises :class:`UnsafeValue`
(a ``jinja2.TemplateRuntimeError``: playbooks report it as the host's render error).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import jinja2

from ops import _crontab

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # C0 (tab allowed) and DEL


class UnsafeValue(jinja2.TemplateRuntimeError):
    """A template value that cannot be made safe where it goes."""


def oneline(value: Any) -> str:
    text = str(value)
    found = _CONTROL.search(text)
    if found:
        raise UnsafeValue(f"value {text[:40]!r} contains the control character "
                          f"{found.group()!r}: refusing to render it (no quoting makes it safe "
                          "in a shell script, cron line or unit file)")
    return text


def shquote(value: Any) -> str:
    return shlex.quote(oneline(value))


def cronfield(value: Any, kind: str) -> str:
    text = oneline(value)
    try:
        if kind == "schedule":
            return _crontab.validate_schedule(text)
        if kind == "name":
            return _crontab.validate_name(text, "cron.d")
        if kind == "user":
            return _crontab.validate_user(text)
    except _crontab.CronError as exc:
        raise UnsafeValue(f"cron {kind}: {exc}") from None
    raise UnsafeValue(f"cronfield: unknown kind {kind!r} (name, schedule or user)")


FILTERS = {"shquote": shquote, "cronfield": cronfield, "oneline": oneline}


def install(env: jinja2.Environment) -> jinja2.Environment:
    """Add the filters to ``env`` (the playbook renderer and the tests use this)."""
    env.filters.update(FILTERS)
    return env
