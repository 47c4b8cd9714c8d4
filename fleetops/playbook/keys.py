"""Ansible's play and task keywords beyond the basics, checked before any host is contacted.

Play keywords: ``handlers``, ``tags``, ``become``, ``become_user``. Task keywords:
``vars``, ``loop`` (+ ``loop_control.loop_var``), ``changed_when``, ``failed_when``,
``notify``, ``tags``, ``become``, ``become_user``; handlers also take ``listen``.
Each mistake is one :class:`~fleetops.errors.InputError` naming ``file:line``.

Tags follow ansible-core's ``Taggable.evaluate_tags`` (``always``, ``never``, ``all``,
``tagged``, ``untagged``); see :func:`should_run`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jinja2

from fleetops.playbook.templating import describe_error, templated

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")
UNTAGGED = frozenset({"untagged"})
# Ansible spellings fleetops does not implement: refused with a hint, never ignored.
HINTS = {
    "with_items": "use 'loop'", "with_list": "use 'loop'", "with_dict": "use 'loop'",
    "with_fileglob": "not supported", "with_sequence": "use 'loop'",
    "until": "not supported", "retries": "not supported", "delay": "not supported",
    "ignore_errors": "use 'failed_when: false'", "delegate_to": "not supported",
    "run_once": "not supported", "become_method": "fleetops always uses sudo",
    "async": "not supported", "poll": "not supported", "environment": "not supported",
    "args": "put the arguments under the action", "block": "not supported",
    "include_tasks": "not supported", "import_tasks": "not supported",
    "gather_facts": "fleetops gathers no facts",
}


FLEETOPS_CONNECTION = frozenset({
    "fleetops_host", "fleetops_port", "fleetops_user", "fleetops_key_file",
    "fleetops_known_hosts", "fleetops_python", "fleetops_proxy_command", "fleetops_password",
    "fleetops_become_password", "fleetops_ssh_config"})
CONNECTION_HINT = ("fleetops applies connection and become variables from the inventory "
                   "only (on the command line: -u, -b, --become-user, -T, -k, -K)")


def is_connection_var(name: str) -> bool:
    """``ansible_*`` and fleetops' connection variables: Ansible applies them from play
    vars and ``-e`` too; fleetops would only template them, so they are refused there."""
    return name.startswith("ansible_") or name in FLEETOPS_CONNECTION


def condition_list(checker: Any, value: Any, line: int, where: str) -> list[Any]:
    """``changed_when``/``failed_when``: a bool, an expression, or a list (all must hold)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        checker.fail(f"{where} must not be an empty list", line)
    for item in items:
        if isinstance(item, bool):
            continue
        if not isinstance(item, str) or not item.strip():
            checker.fail(f"{where} must be an expression or true/false, not {item!r}", line)
        try:
            checker.renderer.check_expression(
                item.strip().removeprefix("{{").removesuffix("}}"))
        except jinja2.TemplateSyntaxError as exc:
            checker.fail(f"{where}: {describe_error(exc)}", line)
    return list(items)


def names(checker: Any, value: Any, line: int, where: str) -> list[str]:
    """A string or a list of strings (``notify``, ``listen``, ``tags``); no templates."""
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = list(value)
    else:
        checker.fail(f"{where} must be a name or a list of names, not {value!r}", line)
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            continue
        if not isinstance(item, str) or not item.strip():
            checker.fail(f"{where} must be a name or a list of names, not {item!r}", line)
        if templated(item):
            checker.fail(f"{where}: templated names are not supported ({item!r})", line)
    return [str(item) for item in items]


def tag_list(checker: Any, value: Any, line: int, where: str) -> list[str]:
    """Ansible also splits a tags string on commas: ``tags: "a, b"`` is two tags."""
    items = names(checker, value, line, where)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def become(checker: Any, data: dict, where: str) -> tuple[bool | None, str | None]:
    lines = data.key_lines
    flag = data.get("become")
    if "become" in data and not isinstance(flag, bool):
        checker.fail(f"{where}: become must be true or false, not {flag!r}", lines["become"])
    user = data.get("become_user")
    if "become_user" in data and (not isinstance(user, str) or not _USER.match(user)):
        checker.fail(f"{where}: become_user must be a user name, not {user!r}",
                     lines["become_user"])
    return flag, user


def task_vars(checker: Any, data: dict, where: str) -> dict[str, Any]:
    """A play's or a task's ``vars``: a mapping of identifiers, no connection variables,
    templates that parse; ``checker.fail`` (file:line) otherwise."""
    values = data.get("vars")
    if values is None:
        return {}
    line = data.key_lines["vars"]
    if not isinstance(values, dict):
        kind = ("a list" if isinstance(values, list) else "a string" if isinstance(values, str)
                else "a number" if isinstance(values, int | float) else "null")
        checker.fail(f"{where}: 'vars' must be a mapping, not {kind}", line)
    for key, value in values.items():
        key_line = values.key_lines.get(key, line)
        if not isinstance(key, str) or not _IDENT.match(key):
            checker.fail(f"{where}: variable name {key!r} is not an identifier", key_line)
        if is_connection_var(key):
            checker.fail(f"{where}: variable {key!r}: {CONNECTION_HINT}", key_line)
        checker._syntax(value, key_line, f"{where}: variable {key!r}")
    return dict(values)


def loop(checker: Any, data: dict, where: str) -> tuple[Any, str]:
    """(loop value, loop variable name): a list, or one ``{{ expression }}`` giving a list."""
    lines = data.key_lines
    value = data.get("loop")
    if "loop" in data:
        if isinstance(value, list):
            checker._syntax(value, lines["loop"], f"{where}: loop")
        elif isinstance(value, str) and templated(value):
            checker._syntax(value, lines["loop"], f"{where}: loop")
        else:
            checker.fail(f"{where}: loop must be a list or a \"{{{{ expression }}}}\" giving "
                         f"one, not {value!r}", lines["loop"])
    control = data.get("loop_control")
    loop_var = "item"
    if "loop_control" in data:
        if "loop" not in data:
            checker.fail(f"{where}: loop_control without loop", lines["loop_control"])
        if not isinstance(control, dict):
            checker.fail(f"{where}: loop_control must be a mapping", lines["loop_control"])
        for key in control:
            if key != "loop_var":
                checker.fail(f"{where}: loop_control: unknown key {key!r} (known: loop_var)",
                             control.key_lines.get(key, lines["loop_control"]))
        loop_var = control.get("loop_var", "item")
        if not isinstance(loop_var, str) or not _IDENT.match(loop_var):
            checker.fail(f"{where}: loop_control.loop_var must be a variable name, not "
                         f"{loop_var!r}", control.key_lines.get("loop_var"))
    return value if "loop" in data else None, loop_var


def check_notify(checker: Any, play_name: str, tasks: Iterable[Any], handlers: list[Any]) -> None:
    """Every ``notify`` names a handler (its name or a ``listen`` topic) of the same play."""
    known = {h.name for h in handlers} | {topic for h in handlers for topic in h.listen}
    for task in tasks:
        for name in task.notify:
            if name not in known:
                checker.fail(f"play {play_name!r}: task {task.name!r} notifies {name!r}, "
                             f"which is no handler of this play (handlers: "
                             f"{', '.join(sorted(known)) or 'none'})", task.notify_line)


def split_tags(values: Iterable[str] | str | None) -> frozenset[str]:
    """``--tags a,b --tags c`` -> {a, b, c}."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = [values]
    return frozenset(p.strip() for v in values for p in str(v).split(",") if p.strip())


def should_run(tags: Iterable[str], only: frozenset[str], skip: frozenset[str]) -> bool:
    """ansible-core ``Taggable.evaluate_tags`` (``only`` empty means ``all``)."""
    found = frozenset(tags) or UNTAGGED
    only = only or frozenset({"all"})
    if "always" in found:
        run = True
    elif "all" in only and "never" not in found:
        run = True
    elif not found.isdisjoint(only):
        run = True
    else:
        run = "tagged" in only and found != UNTAGGED and "never" not in found
    if run and skip:
        if "all" in skip:
            run = "always" in found and "always" not in skip
        elif not found.isdisjoint(skip):
            run = False
        elif "tagged" in skip and found != UNTAGGED:
            run = False
    return run
