"""The public Python API: run a user's own function on every selected host.

``fleetops.Fleet(inventory, pattern="all", limit=None, **options).run(func, *args,
**kwargs)`` calls ``func(c, *args, **kwargs)`` once per host in the runner's bounded
pool, ``c`` being a real ``fabric.Connection`` on the connection fleetops opened and
verified (:mod:`fleetops.api.fabric_conn`). Every runner guarantee holds: strict host keys,
connect/command timeouts and a whole-host deadline, one connection per host, a worker
never raises, Ctrl-C keeps what finished. See docs/api.md.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fleetops.errors import DEFAULT_COMMAND_TIMEOUT, DEFAULT_FORKS, InputError, OptionError
from fleetops.results import HostResult, RunResult, truncation

__all__ = ["Fleet", "FleetResult", "OPTIONS"]

#: Options of :class:`Fleet` (``RunOptions`` names; ``timeout`` and ``deadline`` are the
#: CLI spellings of ``connect_timeout`` and ``host_deadline``) and what they take.
OPTIONS: Mapping[str, str] = {
    "forks": "int >= 1: hosts in parallel (default 64)",
    "connect_timeout": "seconds > 0: connect + handshake + auth (default 10); alias timeout",
    "command_timeout": "seconds > 0 or None (no limit): each command (default 300)",
    "host_deadline": "seconds > 0 or None: the whole host (default connect + command + 5 "
                     "when command_timeout is set); alias deadline",
    "accept_new": "bool: record unknown host keys (changed keys are always refused)",
    "known_hosts": "path: the user known_hosts file (default ~/.ssh/known_hosts)",
    "become": "bool: commands go through sudo",
    "become_user": "str: sudo to this user (default root)",
    "become_password": "str or None: sent only to sudo's prompt",
    "password": "str or None: SSH password authentication",
    "connection_attempts": "int >= 1: tries when dropped before the banner (default 3)",
    "max_output": "int bytes >= 1: output kept per stream and host (default 4 MiB)",
    "hide": "Fabric's run.hide default (None: Fabric's own, output is echoed)",
}
_ALIASES = {"timeout": "connect_timeout", "deadline": "host_deadline"}
_POSITIVE = ("connect_timeout", "command_timeout", "host_deadline")


@dataclass(slots=True)
class FleetResult:
    """The result of :meth:`Fleet.run`.

    ``hosts``: every host's :class:`~fleetops.results.HostResult` in inventory order;
    ``succeeded``: name -> the function's return value (hosts ``ok``/``changed``);
    ``failed``: name -> HostResult with status ``failed`` or ``unreachable`` and a
    ``reason``; hosts skipped by Ctrl-C are only in ``hosts``. ``to_json()`` is the
    ``--json`` document of every task (``{"hosts": {...}, "summary": {...}}``; each host
    has ``value``, the return value, JSON-encoded with ``str`` for what JSON lacks)."""

    run: RunResult
    succeeded: dict[str, Any]
    failed: dict[str, HostResult]

    @property
    def hosts(self) -> dict[str, HostResult]:
        return self.run.hosts

    @property
    def summary(self) -> dict[str, int]:
        """Hosts per status: ``{"ok": n, "changed": n, "failed": n, ...}``."""
        return self.run.summary

    @property
    def interrupted(self) -> bool:
        return self.run.interrupted

    @property
    def elapsed(self) -> float:
        """Wall time of the run in seconds."""
        return self.run.elapsed

    @property
    def exit_code(self) -> int:
        """0, 2 (some failed), 3 (some unreachable) or 99 (interrupted): the CLI's codes."""
        return self.run.exit_code

    def to_json(self) -> dict[str, Any]:
        return self.run.to_json()

    def dumps(self) -> str:
        """``to_json()`` as strict JSON text (RFC 8259), as ``--json`` prints it."""
        return self.run.dumps()

    def __iter__(self) -> Iterator[str]:
        return iter(self.run.hosts)

    def __len__(self) -> int:
        return len(self.run.hosts)


def run_options(options: dict[str, Any]) -> Any:
    """``RunOptions`` from :data:`OPTIONS` keywords; OptionError (exit 5) naming a bad one."""
    from fleetops.core.runner import RunOptions

    values = {_ALIASES.get(k, k): v for k, v in options.items()}
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise OptionError(f"unknown Fleet option {unknown[0]!r} (options: {', '.join(OPTIONS)})")
    values.pop("hide", None)
    values.setdefault("command_timeout", DEFAULT_COMMAND_TIMEOUT)
    forks = values.get("forks", DEFAULT_FORKS)
    if isinstance(forks, bool) or not isinstance(forks, int) or forks < 1:
        raise OptionError(f"forks must be an integer >= 1, not {forks!r}")
    for key in _POSITIVE:
        value = values.get(key, 10.0 if key == "connect_timeout" else None)
        if value is None and key != "connect_timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0):
            raise OptionError(f"{key} must be a number of seconds > 0, not {value!r}")
    for key in ("connection_attempts", "max_output"):
        value = values.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"{key} must be an integer >= 1, not {value!r}")
    return RunOptions(**values)


class Fleet:
    """Selected hosts of an inventory and how to reach them (see the module docstring).

    ``inventory``: a path or a loaded :class:`~fleetops.inventory.load.Inventory`;
    ``pattern``/``limit``: Ansible host patterns (``limit`` may be ``@retry-file``);
    ``options``: :data:`OPTIONS`. Raises InputError (bad inventory, pattern, ssh_config;
    a pattern selecting no host) and OptionError (bad option), both FleetopsError.

    Used as a context manager, connections stay open across ``run`` calls (one per
    host); otherwise each ``run`` closes them at its end."""

    def __init__(self, inventory: Any, pattern: str = "all", limit: str | None = None,
                 **options: Any) -> None:
        from fleetops.config.targets import check_targets
        from fleetops.inventory.load import load_inventory

        self.hide = options.get("hide")
        self.options = run_options(options)
        loaded = load_inventory(inventory) if isinstance(inventory, str | os.PathLike) \
            else inventory
        self.inventory = loaded
        self.hosts: list[Any] = loaded.select(pattern or "all", limit)
        if not self.hosts:
            raise InputError(f"pattern {pattern!r}" + (f" with limit {limit!r}" if limit else "")
                             + " selects no host", path=getattr(loaded, "path", None))
        check_targets(self.hosts)
        self._runner: Any = None
        self._entered = False

    @classmethod
    def for_hosts(cls, hosts: list[Any], options: Any, hide: Any = None) -> Fleet:
        """A Fleet of already selected and checked inventory hosts with ready
        ``RunOptions`` (what ``fleet_task`` builds from the CLI options)."""
        fleet = cls.__new__(cls)
        fleet.inventory, fleet.hosts, fleet.options, fleet.hide = None, list(hosts), options, hide
        fleet._runner, fleet._entered = None, False
        return fleet

    def __enter__(self) -> Fleet:
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._entered = False
        self.close()

    def close(self) -> None:
        """Close every connection of this fleet (a later ``run`` reconnects)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> FleetResult:
        """``func(c, *args, **kwargs)`` on every host; returns a :class:`FleetResult`."""
        return self.execute(func, args, kwargs)

    def execute(self, func: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
                on_result: Callable[[HostResult, RunResult], None] | None = None,
                on_tick: Callable[[RunResult], None] | None = None,
                out_stream: Any = None) -> FleetResult:
        """:meth:`run` with the runner's progress callbacks (what ``fleet_task`` uses);
        ``out_stream``: where un-hidden command output is echoed (default stdout)."""
        from fleetops.api.fabric_conn import base_config
        from fleetops.config.targets import target_for
        from fleetops.core.runner import Fleet as Runner

        config = base_config(self.hide, self.options.command_timeout)
        if self._runner is None:
            self._runner = Runner(self.options, target_for)
        work = host_work(func, args, kwargs or {}, config, None, out_stream)
        try:
            with collector_eased():
                run = self._runner.run(self.hosts, work, on_result=on_result, on_tick=on_tick)
        finally:
            if not self._entered:
                self.close()
        succeeded = {n: r.extra.get("value") for n, r in run.hosts.items()
                     if r.status in ("ok", "changed")}
        failed = {n: r for n, r in run.hosts.items() if r.failed}
        return FleetResult(run, succeeded, failed)


#: gen0 threshold of the cyclic garbage collector while a run is on (CPython: 700)
RUN_GC_THRESHOLD = 20000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[tuple[int, ...], bool] | None = None


@contextlib.contextmanager
def collector_eased() -> Iterator[None]:
    """Make CPython's cyclic garbage collector cheaper for the length of a run.

    A run of 100 hosts keeps thousands of live objects (transports, channels, Fabric
    configs), and with the default gen0 threshold (700 allocations) the collector
    traverses them again and again: about a tenth of the control process's CPU. During
    the run the objects that existed before it (modules, inventory) are frozen
    (``gc.freeze``: never traversed, as they outlive the run) and gen0 collects every
    :data:`RUN_GC_THRESHOLD` allocations. Both are undone when the last concurrent run
    ends (``gc.unfreeze`` only if nothing was frozen before). Nothing is leaked: cycles
    made during the run are still collected, later or at the end."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        _gc_runs += 1
        if _gc_runs == 1:
            _gc_saved = (gc.get_threshold(), gc.get_freeze_count() == 0)
            if _gc_saved[1]:
                gc.freeze()
            first, *older = _gc_saved[0]
            gc.set_threshold(max(first, RUN_GC_THRESHOLD), *older)
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_saved is not None:
                threshold, unfreeze = _gc_saved
                _gc_saved = None
                gc.set_threshold(*threshold)
                if unfreeze:
                    gc.unfreeze()


def host_work(func: Callable[..., Any], args: tuple, kwargs: dict, config: Any,
              app: Any, echo_to: Any = None) -> Callable[[Any], HostResult]:
    """The runner's ``work(session)``: connect (Unreachable propagates: the runner says
    ``unreachable``), call ``func(c, ...)``, turn what happened into a HostResult."""
    from fleetops.api import fabric_conn

    def work(session: Any) -> HostResult:
        c = fabric_conn.make(session, config, app, echo_to)
        try:
            value = func(c, *args, **kwargs)
        except Exception as exc:
            result = HostResult(session.host.name, "failed", reason=describe(exc))
            return _with_output(result, c)
        finally:
            c.close()
        result = HostResult(session.host.name, "changed" if c.changed else "ok",
                            extra={"value": value})
        return _with_output(result, c)

    return work


def _with_output(result: HostResult, c: Any) -> HostResult:
    output = c.output
    result.stdout = "".join(output.stdout)
    result.stderr = "".join(output.stderr)
    result.rc = output.last_rc
    if output.discarded:
        truncation(result, output.discarded)
    return result


def describe(exc: BaseException) -> str:
    """One line naming the exception: ``UnexpectedExit: 'cmd' exited with rc=1: last
    stderr line``, ``CommandTimedOut: 'cmd' timed out after 5s``, ``Type: message``."""
    name = type(exc).__name__
    result = getattr(exc, "result", None)
    command = getattr(result, "command", None)
    if command is not None and hasattr(result, "exited"):
        cmd = shlex.quote(command) if len(command) <= 120 else shlex.quote(command[:117] + "...")
        timeout = getattr(exc, "timeout", None)
        if timeout is not None:
            return f"{name}: {cmd} timed out after {timeout:g}s"
        lines = [ln.strip() for ln in (result.stderr or "").splitlines() if ln.strip()]
        tail = f": {lines[-1][:200]}" if lines else ""
        return f"{name}: {cmd} exited with rc={result.exited}{tail}"
    text = " ".join(str(exc).split())
    return f"{name}: {text[:300]}" if text else name
