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

from fleetops.cli.options import OPTIONS, FleetOptions, option_set

__all__ = ["FLEET_OPTIONS", "fleet_task"]

#: The shared fleet options (:data:`fleetops.cli.options.OPTIONS`, every group): name ->
#: (default, help), for code that lists them. Names are the built-in tasks'.
FLEET_OPTIONS: dict[str, tuple[Any, str]] = {o.name: (o.default, o.help_for()) for o in OPTIONS}
_SHARED = option_set()


def fleet_task(func: Callable[..., Any] | None = None, *, name: str | None = None,
               help: dict[str, str] | None = None, **task_kwargs: Any) -> Any:  # noqa: A002
    """Decorator: ``@fleet_task`` or ``@fleet_task(name=..., help={...}, ...)`` (other
    keywords go to ``invoke.task``). The result is an ``invoke.tasks.Task``; the plain
    function stays reachable as ``task.fleet_function`` (playbooks call it).

    Raises TypeError at import time if a parameter of the function has the name of a
    fleet option, or the function takes no ``c`` first."""
    if func is None:
        return functools.partial(fleet_task, name=name, help=help, **task_kwargs)
    from fleetops.cli.flags import task

    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if not params:
        raise TypeError(f"{func.__name__}: a fleet task takes the connection first: def "
                        f"{func.__name__}(c, ...)")
    own = params[1:]
    clash = [p.name for p in own if p.name in FLEET_OPTIONS or p.name == "opts"]
    if clash:
        raise TypeError(f"{func.__name__}: parameter {clash[0]!r} is a fleet option name "
                        f"({', '.join(FLEET_OPTIONS)})")
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in own):
        raise TypeError(f"{func.__name__}: *args/**kwargs cannot be task options")
    own_names = [p.name for p in own]

    def body(ctx: Any, *args: Any, opts: FleetOptions, **kwargs: Any) -> None:
        bound = dict(zip(own_names, args, strict=False))
        bound.update(kwargs)
        run_task(func, bound, opts)

    ctx = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in own]
    opts = inspect.Parameter("opts", inspect.Parameter.KEYWORD_ONLY)
    body.__signature__ = inspect.Signature([ctx, *positional, opts])  # type: ignore[attr-defined]
    body.__fleet_options__ = _SHARED  # type: ignore[attr-defined]
    body.__name__ = func.__name__
    body.__qualname__ = func.__qualname__
    body.__module__ = func.__module__
    body.__doc__ = func.__doc__ or f"Run {func.__name__} on every selected host."
    helps = dict(help or {})
    made = task(body, name=name, help=helps, **task_kwargs) if name else task(
        body, help=helps, **task_kwargs)
    made.fleet_function = func
    return made


def run_task(func: Callable[..., Any], bound: dict[str, Any], opts: FleetOptions) -> None:
    """The body of every fleet task: options -> Fleet -> progress, recap, retry, exit."""
    from fleetops.api.fleet import Fleet
    from fleetops.cli import common

    with common.cli_errors():
        options = opts.run_options()
        hosts = opts.hosts()
        fleet = Fleet.for_hosts(hosts, options, hide=True)
        printer = None if opts.json else ValuePrinter(len(hosts))
        result = fleet.execute(func, (), bound,
                               on_result=printer.host if printer else None,
                               on_tick=printer.tick if printer else None,
                               out_stream=sys.stderr if opts.json else None)
        opts.finish(result.run, printer)


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
