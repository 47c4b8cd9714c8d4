"""Glue shared by every invoke task: targets, options, errors, output and exit codes."""

from __future__ import annotations

import getpass
import math
import os
import sys
from typing import Any

from invoke.exceptions import Exit

from fleetops.cli.exits import cli_errors  # noqa: F401  (re-exported for the tasks)
from fleetops.config.targets import check_targets, target_for  # noqa: F401  (target_for: tasks)
from fleetops.core.runner import DEFAULT_FORKS, RunOptions
from fleetops.errors import (
    DEFAULT_COMMAND_TIMEOUT,
    FleetopsError,
    InputError,
    OptionError,
)
from fleetops.results import RunResult

DEFAULT_RETRY_FILE = "fleetops.retry"


def need(value: Any, flag: str) -> Any:
    if value in (None, ""):
        raise OptionError(f"{flag} is required")
    return value


def targets(inventory: str | None, pattern: str = "all", limit: str | None = None) -> list:
    """Hosts selected by pattern and limit; InputError (exit 4) on bad inventory/pattern."""
    from fleetops.inventory.load import load_inventory

    loaded = load_inventory(need(inventory, "-i/--inventory"))
    if not len(loaded):
        raise InputError("the inventory has no hosts", path=loaded.path)
    hosts = loaded.select(pattern or "all", limit)
    if not hosts:
        where = f"pattern {pattern or 'all'!r}" + (f" with --limit {limit!r}" if limit else "")
        raise InputError(f"{where} selects no host", path=loaded.path)
    hosts = with_remote_user(hosts)
    check_targets(hosts)  # a broken ssh_config is exit 4; each host is resolved once
    return hosts


def with_remote_user(hosts: list) -> list:
    """``-u/--remote-user`` (fleetops.cli.flags) as the login user of hosts whose inventory
    sets none; OptionError (exit 5) for a name with blanks or control characters."""
    import dataclasses

    from fleetops.cli.flags import remote_user

    user = remote_user()
    if not user:
        return hosts
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in user):
        raise OptionError(f"-u/--remote-user: invalid user name {user!r}")
    return [h if h.user else dataclasses.replace(h, user=user) for h in hosts]


def _number(value: Any, flag: str, minimum: float = 0.0, integer: bool = False) -> Any:
    """A finite number > ``minimum`` (``nan``, ``inf``, words: OptionError, exit 5)."""
    if value in (None, ""):
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"{flag} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise OptionError(f"{flag} must be a finite number, not {value!r}")
    if number <= minimum:
        raise OptionError(f"{flag} must be > {minimum:g}, not {value!r}")
    return number


MAX_OUTPUT_HELP = ("bytes of stdout and of stderr kept per host and command, K/M/G suffixes "
                   "(default 4M); the rest is read and discarded, the host marked truncated")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: Any, flag: str = "--max-output") -> int | None:
    """``4096``, ``64K``, ``4M``, ``1G`` (binary units, optional ``B``/``iB``) -> bytes;
    OptionError (exit 5) unless a whole number >= 1; None/"" -> None."""
    if value in (None, ""):
        return None
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in ("K", "M", "G") else ""
    digits = text[: len(text) - len(unit)]
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise OptionError(f"{flag} must be a size in bytes such as 65536, 64K or 4M, "
                          f"not {value!r}")
    return int(digits) * _SIZE_UNITS[unit]


def _bound(value: Any, flag: str, default: float | None) -> float | None:
    """A time bound in seconds: unset -> ``default``, ``0`` -> none (``inf``), else > 0."""
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"{flag} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise OptionError(f"{flag} must be a finite number of seconds >= 0 (0 = no limit), "
                          f"not {value!r}")
    return math.inf if number == 0 else number


def runner_options(
    forks: Any = DEFAULT_FORKS,
    timeout: Any = 10,
    command_timeout: Any = None,
    deadline: Any = None,
    accept_new: bool = False,
    become: bool = False,
    become_user: str = "root",
    ask_become_pass: bool = False,
    ask_pass: bool = False,
    connection_attempts: Any = None,
    max_output: Any = None,
) -> RunOptions:
    """Runner options from task options; every task is bounded in time by default.

    ``command_timeout`` unset: :data:`DEFAULT_COMMAND_TIMEOUT`; ``deadline`` unset: derived
    by the runner (connect timeout + command timeout + 5 s); ``0`` for either: no limit.
    Bad values (words, ``nan``, ``inf``, negative): OptionError (exit 5).
    """
    command = _bound(command_timeout, "--command-timeout", DEFAULT_COMMAND_TIMEOUT)
    host_deadline = _bound(deadline, "--deadline", None)
    if command == math.inf:  # runner: None is "no timeout"; its derived deadline is then none
        command = None
    password = _secret("FLEETOPS_BECOME_PASSWORD", ask_become_pass, "--ask-become-pass",
                       "BECOME password: ")
    ssh_password = _secret("FLEETOPS_PASSWORD", ask_pass, "--ask-pass", "SSH password: ")
    options = RunOptions(
        forks=_number(forks, "--forks", integer=True) or DEFAULT_FORKS,
        connect_timeout=_number(timeout, "--timeout") or 10.0,
        command_timeout=command,
        host_deadline=host_deadline,
        accept_new=accept_new,
        become=become or False,
        become_user=become_user or "root",
        become_password=password,
        password=ssh_password,
        # --connection-attempts, else FLEETOPS_CONNECTION_ATTEMPTS (every task), else 3
        connection_attempts=_number(
            connection_attempts or os.environ.get("FLEETOPS_CONNECTION_ATTEMPTS"),
            "--connection-attempts", integer=True) or 3,
    )
    size = parse_size(max_output)
    if size is not None:
        options.max_output = size
    return options


def _secret(env: str, ask: bool, flag: str, prompt: str) -> str | None:
    """A secret from ``env``, else asked once on the terminal when ``ask``; OptionError
    (exit 5) when it must be asked and there is no terminal. Never echoed or logged."""
    value = os.environ.get(env)
    if value is not None or not ask:
        return value
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        raise OptionError(f"{flag} needs a terminal to ask on (or set {env})") from None
    return getpass.getpass(prompt)


def write_retry(run: RunResult, path: str | None) -> str | None:
    """Failed and unreachable hosts, one per line after a ``#`` header, for ``--limit @path``.

    Written by :mod:`fleetops.safefile`'s rule. With nothing to retry, only a regular
    file of ours that starts with the header is removed. A file that cannot be written
    is one warning on stderr (the run's output and exit code are not lost).
    """
    from fleetops import safefile

    if not path:
        return None
    names = run.names("failed", "unreachable")
    try:
        if not names:
            safefile.remove_retry_file(path)
            return None
        safefile.write_text(path, safefile.RETRY_HEADER + "\n".join(names) + "\n")
    except (OSError, FleetopsError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"fleetops: retry file {path} not written: {detail}", file=sys.stderr)
        return None
    return path


def finish(run: RunResult, as_json: bool, printer: Any = None,
           retry_file: str | None = DEFAULT_RETRY_FILE, code: int | None = None,
           **json_extra: Any) -> None:
    """Print the JSON document or the recap, write the retry file, exit with the code."""
    retry = write_retry(run, retry_file)
    if as_json:
        run.write_json(sys.stdout, **json_extra)
        sys.stdout.write("\n")
        sys.stdout.flush()
    elif printer is not None:
        printer.recap(run, retry)
    exit_code = run.exit_code if code is None else code
    if exit_code:
        raise Exit(code=exit_code)
