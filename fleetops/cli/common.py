"""Glue shared by every invoke task: targets, options, errors, output and exit codes."""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Iterator
from typing import Any

from invoke.exceptions import Exit

from fleetops.errors import EXIT_INTERRUPTED, FleetopsError, OptionError
from fleetops.results import RunResult
from fleetops.runner import DEFAULT_FORKS, RunOptions
from fleetops.targets import check_targets, target_for  # noqa: F401  (target_for: tasks)

DEFAULT_RETRY_FILE = "fleetops.retry"


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """User mistakes become one line on stderr and the documented exit code."""
    try:
        yield
    except FleetopsError as exc:
        from fleetops.sanitize import clean

        raise Exit(f"fleetops: {clean(str(exc))}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("fleetops: interrupted", code=EXIT_INTERRUPTED) from None


def need(value: Any, flag: str) -> Any:
    if value in (None, ""):
        raise OptionError(f"{flag} is required")
    return value


def targets(inventory: str | None, pattern: str = "all", limit: str | None = None) -> list:
    """Hosts selected by pattern and limit; InputError (exit 4) on bad inventory/pattern."""
    from fleetops.inventory import load_inventory

    hosts = load_inventory(need(inventory, "-i/--inventory")).select(pattern or "all", limit)
    check_targets(hosts)  # a broken ssh_config is exit 4; each host is resolved once
    return hosts


def _number(value: Any, flag: str, minimum: float = 0.0, integer: bool = False) -> Any:
    if value in (None, ""):
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} must be a number, not {value!r}") from None
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
    password = _secret("FLEETOPS_BECOME_PASSWORD", ask_become_pass, "--ask-become-pass",
                       "BECOME password: ")
    ssh_password = _secret("FLEETOPS_PASSWORD", ask_pass, "--ask-pass", "SSH password: ")
    options = RunOptions(
        forks=_number(forks, "--forks", integer=True) or DEFAULT_FORKS,
        connect_timeout=_number(timeout, "--timeout") or 10.0,
        command_timeout=_number(command_timeout, "--command-timeout"),
        host_deadline=_number(deadline, "--deadline"),
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
    """Failed and unreachable hosts, one per line, for ``--limit @path``."""
    if not path:
        return None
    names = run.names("failed", "unreachable")
    if not names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(names) + "\n")
    return path


def finish(run: RunResult, as_json: bool, printer: Any = None,
           retry_file: str | None = DEFAULT_RETRY_FILE, code: int | None = None,
           **json_extra: Any) -> None:
    """Print the JSON document or the recap, write the retry file, exit with the code."""
    retry = write_retry(run, retry_file)
    if as_json:
        sys.stdout.write(run.dumps(**json_extra) + "\n")
        sys.stdout.flush()
    elif printer is not None:
        printer.recap(run, retry)
    exit_code = run.exit_code if code is None else code
    if exit_code:
        raise Exit(code=exit_code)
