"""Glue shared by every invoke task: targets, options, errors, output and exit codes."""

from __future__ import annotations

import getpass
import math
import os
from typing import Any

from fleetops.cli.checks import (  # noqa: F401  (parse_size, check_login_user: re-exported)
    check_login_user,
    number,
    parse_size,
    seconds,
)
from fleetops.cli.exits import cli_errors  # noqa: F401  (re-exported for the tasks)
from fleetops.config.targets import check_targets, target_for  # noqa: F401  (target_for: tasks)
from fleetops.core.retry import write_retry  # noqa: F401  (re-exported; lives in core)
from fleetops.core.runner import DEFAULT_FORKS, RunOptions
from fleetops.errors import (
    DEFAULT_COMMAND_TIMEOUT,
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

    from fleetops.cli.checks import remote_user

    user = remote_user()
    if not user:
        return hosts
    check_login_user(user)
    return [h if h.user else dataclasses.replace(h, user=user) for h in hosts]


_number = number  # the name the daemons' task module imports


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
    command = seconds(command_timeout, "--command-timeout", DEFAULT_COMMAND_TIMEOUT)
    host_deadline = seconds(deadline, "--deadline", None)
    if command == math.inf:  # runner: None is "no timeout"; its derived deadline is then none
        command = None
    password = _secret("FLEETOPS_BECOME_PASSWORD", ask_become_pass, "--ask-become-pass",
                       "BECOME password: ")
    ssh_password = _secret("FLEETOPS_PASSWORD", ask_pass, "--ask-pass", "SSH password: ")
    options = RunOptions(
        forks=number(forks, "--forks", integer=True) or DEFAULT_FORKS,
        connect_timeout=number(timeout, "--timeout") or 10.0,
        command_timeout=command,
        host_deadline=host_deadline,
        accept_new=accept_new,
        become=become or False,
        become_user=become_user or "root",
        become_password=password,
        password=ssh_password,
        # --connection-attempts, else FLEETOPS_CONNECTION_ATTEMPTS (every task), else 3
        connection_attempts=number(
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


def finish(run: RunResult, as_json: bool, printer: Any = None,
           retry_file: str | None = DEFAULT_RETRY_FILE, code: int | None = None,
           **json_extra: Any) -> None:
    """Print the JSON document or the recap, write the retry file, exit with the code
    (:func:`fleetops.cli.output.finish` with the JSON reporter or ``printer``)."""
    from fleetops.cli.output import JsonReporter
    from fleetops.cli.output import finish as report_finish

    reporter = JsonReporter() if as_json else printer
    report_finish(run, reporter, retry_file, code, **json_extra)
