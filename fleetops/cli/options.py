"""The options every fleet task takes, declared once (name, flags, type, default, help, check).

A task asks for them with :func:`fleet_options` under :func:`fleetops.cli.flags.task`, and
gets them resolved as one :class:`FleetOptions` in its ``opts`` parameter::

    @task(help={"command": "shell command run on each host"})
    @fleet_options()                      # every group; or fleet_options("targets", ...)
    def run(c, command, *, opts: FleetOptions):
        options = opts.run_options()      # RunOptions (may ask for passwords)
        hosts = opts.hosts()              # the selected inventory hosts
        ...
        opts.finish(result, printer)      # JSON or recap, retry file, exit code

Invoke sees each option as an ``Argument`` built here (``--help`` lists it with its help).
Its short flag: ``short``, fixed (Ansible's, :data:`fleetops.cli.flags.ANSIBLE_SHORT`, and
``-p``), never given to another option; else ``letter`` where the task's own options left
it free; else none (long-only).
Values are checked before the task body runs: a bad one is one line and exit 5
(:class:`fleetops.errors.OptionError`). Groups (Fabric's core flags, Ansible's option
groups): ``targets`` (inventory, pattern, limit, vault), ``connection`` (login user,
timeouts, host keys, SSH password), ``runner`` (forks, time bounds, output size),
``become`` (sudo), ``output`` (JSON, retry file). A task may change a default
(``defaults={"command_timeout": "60"}``; the help shows it), never a help text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleetops.cli.checks import check_login_user, number, parse_size, seconds
from fleetops.errors import DEFAULT_COMMAND_TIMEOUT, DEFAULT_FORKS

GROUPS = ("targets", "connection", "runner", "become", "output")


def _number(flag: str, integer: bool = False) -> Callable[[Any], None]:
    """A finite number > 0 (:func:`fleetops.cli.checks.number`)."""
    def check(value: Any) -> None:
        number(value, flag, integer=integer)
    return check


def _seconds(flag: str) -> Callable[[Any], None]:
    """A time bound in seconds >= 0, 0 = none (:func:`fleetops.cli.checks.seconds`)."""
    def check(value: Any) -> None:
        seconds(value, flag, None)
    return check


def _size(value: Any) -> None:
    parse_size(value, "--max-output")


@dataclass(frozen=True)
class Option:
    """One shared option. ``help`` may hold ``{default}``: the task's default, or ``shown``
    when the value itself is not what a user should read (``None`` -> ``300``)."""

    name: str
    group: str
    default: Any
    help: str
    short: str = ""  # a fixed one-letter flag (Ansible's), never given to a task's own option
    letter: str = ""  # a one-letter flag it gets unless the task's own option has it
    check: Callable[[Any], None] | None = None  # raises OptionError (exit 5); unset skipped
    shown: str | None = None

    @property
    def long(self) -> str:
        return self.name.replace("_", "-")

    @property
    def kind(self) -> type:
        return str if self.default is None else type(self.default)

    def help_for(self, default: Any = None, shown: str | None = None) -> str:
        """The help text with the default a task uses (the declaration's one if unchanged)."""
        if shown is None:
            shown = self.shown if default is None or default == self.default else str(default)
        return self.help.format(default=self.default if shown is None else shown)


OPTIONS: tuple[Option, ...] = (
    # -- targets: which hosts -------------------------------------------------------------
    Option("inventory", "targets", None, "inventory file (Ansible INI or YAML)", short="i"),
    Option("pattern", "targets", "all",
           "host pattern: names, globs, groups, a:b, a:&b, a:!b (default {default})", short="p"),
    Option("limit", "targets", None, "further limit the hosts (same syntax, or @retry-file)",
           short="l"),
    Option("vault_password_file", "targets", None,
           "file holding the vault password for !vault values and encrypted files "
           "(read, never run; or ANSIBLE_VAULT_PASSWORD_FILE)"),
    Option("ask_vault_pass", "targets", False,
           "ask once for the vault password (needs a terminal)"),
    # -- connection: how to reach them ----------------------------------------------------
    Option("remote_user", "connection", None,
           "login user for hosts whose inventory sets none (ansible_user wins; "
           "default: ~/.ssh/config, else the local user)", short="u", check=check_login_user),
    Option("timeout", "connection", "10",
           "connect/handshake/auth timeout in seconds (default {default})", short="T",
           check=_number("--timeout")),
    Option("connection_attempts", "connection", None,
           "tries when a server drops the connection before its SSH banner (default {default})",
           check=_number("--connection-attempts", integer=True), shown="3"),
    Option("accept_new", "connection", False,
           "record unknown host keys (changed keys are always refused)", letter="a"),
    Option("ask_pass", "connection", False,
           "prompt once for the SSH login password (or FLEETOPS_PASSWORD)", short="k"),
    # -- runner: how many at once, for how long, how much output --------------------------
    Option("forks", "runner", DEFAULT_FORKS, "parallel hosts (default {default})", short="f",
           check=_number("--forks", integer=True)),
    Option("command_timeout", "runner", None,
           "per-command timeout in seconds (default {default}; 0 = none)",
           check=_seconds("--command-timeout"), shown=f"{DEFAULT_COMMAND_TIMEOUT:g}",
           letter="c"),
    Option("deadline", "runner", None,
           "whole-host deadline in seconds (play: per task; default "
           "timeout+command-timeout+5; 0 = none)", check=_seconds("--deadline"),
           letter="d"),
    Option("max_output", "runner", None,
           "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)", check=_size,
           letter="x"),
    # -- become: sudo ---------------------------------------------------------------------
    Option("become", "become", False,
           "run with sudo (per host: ansible_become, ansible_become_user, ...)", short="b"),
    Option("become_user", "become", "root", "sudo to this user (default {default})"),
    Option("ask_become_pass", "become", False,
           "prompt once for the sudo password (or FLEETOPS_BECOME_PASSWORD)", short="K"),
    # -- output: what is printed and kept -------------------------------------------------
    Option("json", "output", False, "print one JSON document instead of text", letter="j"),
    Option("retry_file", "output", "fleetops.retry",
           "where to list failed/unreachable hosts (default {default})", letter="r"),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class Default:
    """A task's own default for a shared option, and how its help shows it."""

    value: Any
    shown: str | None = None


@dataclass(frozen=True)
class OptionSet:
    """The shared options one task takes, with its own defaults."""

    names: tuple[str, ...]
    defaults: Mapping[str, Default]

    def options(self) -> list[Option]:
        return [BY_NAME[name] for name in self.names]

    def default(self, name: str) -> Any:
        own = self.defaults.get(name)
        return BY_NAME[name].default if own is None else own.value

    def help(self, name: str) -> str:
        own = self.defaults.get(name)
        option = BY_NAME[name]
        return option.help_for() if own is None else option.help_for(own.value, own.shown)

    def resolve(self, kwargs: dict[str, Any]) -> FleetOptions:
        """Take this set's values out of ``kwargs`` (the rest are the task's own) and check
        them; OptionError (exit 5) for the first bad one."""
        values = {o.name: o.default for o in OPTIONS}
        for name in self.names:
            value = kwargs.pop(name, self.default(name))
            check = BY_NAME[name].check
            if check is not None and value not in (None, ""):
                check(value)
            values[name] = value
        return FleetOptions(values)


def option_set(groups: Iterable[str] = (), exclude: Iterable[str] = (),
               defaults: Mapping[str, Any] | None = None) -> OptionSet:
    """The options of ``groups`` (none: every group) minus ``exclude``; ValueError for an
    unknown group, option or default (a programming error, found at import time)."""
    groups = tuple(groups) or GROUPS
    unknown = [g for g in groups if g not in GROUPS]
    unknown += [n for n in [*exclude, *(defaults or {})] if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown fleet option group or name: {', '.join(unknown)}")
    names = tuple(o.name for o in OPTIONS if o.group in groups and o.name not in exclude)
    own = {k: v if isinstance(v, Default) else Default(v) for k, v in (defaults or {}).items()}
    return OptionSet(names, own)


def fleet_options(*groups: str, exclude: Iterable[str] = (),
                  defaults: Mapping[str, Any] | None = None) -> Callable[[Any], Any]:
    """Decorator (under :func:`fleetops.cli.flags.task`): the task takes the shared options
    of ``groups`` (none: all), minus ``exclude``, with its own ``defaults`` (a value or a
    :class:`Default`), and its body gets them as ``opts`` (a :class:`FleetOptions`)."""
    chosen = option_set(groups, exclude, defaults)

    def mark(func: Any) -> Any:
        func.__fleet_options__ = chosen
        return func
    return mark


class FleetOptions:
    """The resolved shared options of one task call: each option as an attribute
    (``opts.forks``, ``opts.json``, ``opts.retry_file``...), plus what tasks build from them.
    Options a task does not take have their declared defaults."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FleetOptions is read-only")

    def __repr__(self) -> str:
        return f"FleetOptions({self._values!r})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def hosts(self) -> list:
        """The hosts of ``--inventory`` selected by ``--pattern`` and ``--limit``, with the
        login user of ``-u`` (:func:`fleetops.cli.common.targets`; InputError, exit 4)."""
        from fleetops.cli import common

        return common.targets(self.inventory, self.pattern, self.limit)

    def run_options(self, **changes: Any) -> Any:
        """:class:`fleetops.core.runner.RunOptions` from these options (``changes`` win, e.g.
        ``command_timeout=None``); asks for the passwords of ``-K``/``-k`` here."""
        from fleetops.cli import common

        values = {name: self._values[name] for name in (
            "forks", "timeout", "command_timeout", "deadline", "accept_new", "become",
            "become_user", "ask_become_pass", "ask_pass", "connection_attempts",
            "max_output")}
        values.update(changes)
        return common.runner_options(**values)

    def finish(self, run: Any, printer: Any = None, code: int | None = None,
               **json_extra: Any) -> None:
        """:func:`fleetops.cli.common.finish` with ``--json`` and ``--retry-file``."""
        from fleetops.cli import common

        common.finish(run, self.json, printer, self.retry_file, code=code, **json_extra)
