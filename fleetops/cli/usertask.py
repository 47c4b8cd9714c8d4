"""``fleetops.fleet_task``: a user's ``def deploy(c, version): ...`` as an invoke task.

The task gets the function's own parameters (first, so ``version`` stays positional)
and the shared fleet options of the built-in tasks (``--inventory``, ``--pattern``,
``--limit``, ``--forks``, timeouts, ``--json``, ``--accept-new``, become and SSH
password, ``--retry-file``, ``--max-output``). It runs the function on every selected
host through :class:`fleetops.Fleet`, prints each finished host whole with a live
progress line, then the recap; writes the retry file; exits 0/2/3/4/5/99 exactly like
``invoke run``. With ``--json`` stdout is the one JSON document (command output the
function does not hide is echoed to stderr then); otherwise Fabric's ``hide`` defaults
to True and each host's command output is printed with its result, never interleaved.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from fleetops.errors import DEFAULT_FORKS

__all__ = ["FLEET_OPTIONS", "fleet_task"]

#: The shared fleet options: name -> (default, help). Names are the built-in tasks'.
FLEET_OPTIONS: dict[str, tuple[Any, str]] = {
    "inventory": (None, "inventory file (Ansible INI or YAML)"),
    "pattern": ("all", "host pattern: names, globs, groups, a:b, a:&b, a:!b (default all)"),
    "limit": (None, "further limit the hosts (same syntax, or @retry-file)"),
    "forks": (DEFAULT_FORKS, f"parallel hosts (default {DEFAULT_FORKS})"),
    "timeout": ("10", "connect/handshake/auth timeout in seconds (default 10)"),
    "command_timeout": (None, "per-command timeout in seconds (default 300; 0 = none)"),
    "deadline": (None, "whole-host deadline in seconds (default timeout+command-timeout+5; "
                          "0 = none)"),
    "json": (False, "print one JSON document instead of text"),
    "accept_new": (False, "record unknown host keys (changed keys are always refused)"),
    "become": (False, "c.run goes through sudo too (c.sudo always does)"),
    "become_user": ("root", "sudo to this user (default root)"),
    "ask_become_pass": (False, "prompt once for the sudo password "
                               "(or FLEETOPS_BECOME_PASSWORD)"),
    "ask_pass": (False, "prompt once for the SSH password (or FLEETOPS_PASSWORD)"),
    "connection_attempts": (None, "tries when a server drops the connection before its "
                                  "SSH banner (default 3)"),
    "retry_file": ("fleetops.retry", "where to list failed/unreachable hosts "
                                     "(default fleetops.retry)"),
    "max_output": (None, "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)"),
}


def fleet_task(func: Callable[..., Any] | None = None, *, name: str | None = None,
               help: dict[str, str] | None = None, **task_kwargs: Any) -> Any:  # noqa: A002
    """Decorator: ``@fleet_task`` or ``@fleet_task(name=..., help={...}, ...)`` (other
    keywords go to ``invoke.task``). The result is an ``invoke.tasks.Task``; the plain
    function stays reachable as ``task.fleet_function`` (playbooks call it).

    Raises TypeError at import time if a parameter of the function has the name of a
    fleet option, or the function takes no ``c`` first."""
    if func is None:
        return functools.partial(fleet_task, name=name, help=help, **task_kwargs)
    try:  # the built-in tasks' Ansible short flags (-i -l -f -b -K -k -T), where present
        from fleetops.cli.flags import task
    except ImportError:
        from invoke import task

    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if not params:
        raise TypeError(f"{func.__name__}: a fleet task takes the connection first: def "
                        f"{func.__name__}(c, ...)")
    own = params[1:]
    clash = [p.name for p in own if p.name in FLEET_OPTIONS]
    if clash:
        raise TypeError(f"{func.__name__}: parameter {clash[0]!r} is a fleet option name "
                        f"({', '.join(FLEET_OPTIONS)})")
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in own):
        raise TypeError(f"{func.__name__}: *args/**kwargs cannot be task options")
    own_names = [p.name for p in own]

    def body(ctx: Any, *args: Any, **kwargs: Any) -> None:
        fleet = {k: kwargs.pop(k) for k in list(kwargs) if k in FLEET_OPTIONS}
        bound = dict(zip(own_names, args, strict=False))
        bound.update(kwargs)
        run_task(func, bound, **{k: fleet.get(k, d) for k, (d, _) in FLEET_OPTIONS.items()})

    fleet_params = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d)
                    for k, (d, _) in FLEET_OPTIONS.items()]
    ctx = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in own]
    body.__signature__ = inspect.Signature([ctx, *positional, *fleet_params])  # type: ignore[attr-defined]
    body.__name__ = func.__name__
    body.__qualname__ = func.__qualname__
    body.__module__ = func.__module__
    body.__doc__ = func.__doc__ or f"Run {func.__name__} on every selected host."
    helps = {k.replace("_", "-"): h for k, (_, h) in FLEET_OPTIONS.items()}
    helps.update(help or {})
    made = task(body, name=name, help=helps, **task_kwargs) if name else task(
        body, help=helps, **task_kwargs)
    made.fleet_function = func
    return made


def run_task(func: Callable[..., Any], bound: dict[str, Any], **o: Any) -> None:
    """The body of every fleet task: options -> Fleet -> progress, recap, retry, exit."""
    from fleetops.api.fleet import Fleet
    from fleetops.cli import common

    with common.cli_errors():
        options = common.runner_options(
            forks=o["forks"], timeout=o["timeout"], command_timeout=o["command_timeout"],
            deadline=o["deadline"], accept_new=o["accept_new"], become=o["become"],
            become_user=o["become_user"], ask_become_pass=o["ask_become_pass"],
            ask_pass=o["ask_pass"], connection_attempts=o["connection_attempts"],
            max_output=o["max_output"])
        hosts = common.targets(o["inventory"], o["pattern"], o["limit"])
        fleet = Fleet.for_hosts(hosts, options, hide=True)
        printer = None if o["json"] else ValuePrinter(len(hosts))
        result = fleet.execute(func, (), bound,
                               on_result=printer.host if printer else None,
                               on_tick=printer.tick if printer else None,
                               out_stream=sys.stderr if o["json"] else None)
        common.finish(result.run, o["json"], printer, o["retry_file"])


def _value_line(name: str, value: Any) -> str:
    from fleetops.sanitize import clean

    text = repr(value) if not isinstance(value, str) else value
    text = text if len(text) <= 500 else text[:497] + "..."
    return f"{clean(name)} | => {clean(text)}\n"


def _printer_class() -> type:
    from fleetops.cli.output import Printer, format_host  # noqa: I001

    class _ValuePrinter(Printer):
        """The built-in Printer, plus ``name | => VALUE`` for a non-None return value."""

        def host(self, result: Any, run: Any) -> None:
            with self._lock:
                self._clear_progress()
                text = format_host(result, self.color)
                value = result.extra.get("value")
                if value is not None and result.status in ("ok", "changed"):
                    text += _value_line(result.name, value)
                self.out.write(text)
                self.out.flush()
                self._progress(run)

    return _ValuePrinter


def ValuePrinter(total: int) -> Any:  # noqa: N802 (a class made on first use)
    return _printer_class()(total)
