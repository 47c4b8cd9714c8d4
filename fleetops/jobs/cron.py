"""Control-side checks for the ``cron.*`` tasks, run before any host is touched.

The rules are the host's own (:mod:`ops._crontab`), so a schedule, name or command
refused here would be refused by ``ops/cron`` too; every failure is an
:class:`~fleetops.errors.OptionError` (exit 5) with a one-line message.
"""

from __future__ import annotations

from fleetops.errors import OptionError
from ops import _crontab

TARGETS: tuple[str, ...] = _crontab.TARGETS
RUN_PARTS_TARGETS: tuple[str, ...] = _crontab.RUN_PARTS_TARGETS


def _check(flag: str, func, value: str, *extra: str) -> str:
    try:
        return func(value, *extra)
    except _crontab.CronError as exc:
        raise OptionError(f"{flag}: {exc}") from None


def validate_schedule(spec: str) -> str:
    """The normalised schedule (five fields or an @special), else OptionError."""
    if not isinstance(spec, str):
        raise OptionError("--schedule: a schedule is required")
    return _check("--schedule", _crontab.validate_schedule, spec)


def validate_target(target: str) -> str:
    if target not in TARGETS:
        raise OptionError(f"--target: unknown target {target!r} (use one of {', '.join(TARGETS)})")
    return target


def validate_name(name: str, target: str = "user") -> str:
    if not name:
        raise OptionError("--name is required")
    return _check("--name", _crontab.validate_name, name, validate_target(target))


def validate_job(command: str) -> str:
    if not command:
        raise OptionError("--job is required")
    return _check("--job", _crontab.validate_command, command)


def validate_user(user: str | None) -> str | None:
    return None if user in (None, "") else _check("--user", _crontab.validate_user, user)


def install_argv(name: str, schedule: str | None, job: str, target: str = "user",
                 user: str | None = None, check: bool = False) -> list[str]:
    """The remote ``cron install`` argv, every value checked first."""
    target = validate_target(target)
    argv = ["install", f"--name={validate_name(name, target)}", f"--target={target}"]
    if schedule is not None or target not in RUN_PARTS_TARGETS:
        argv.append(f"--schedule={validate_schedule(schedule)}")
    argv.append(f"--job={validate_job(job)}")  # "=": a command may start with "-"
    if target in ("user", "cron.d"):
        check_length(name, job, schedule)
    return argv + _tail(user, check)


def check_length(name: str, job: str, schedule: str | None) -> None:
    """Refuse early a job cron would find too long (its command over 998 bytes): measured
    with the shortest wrapper the host can add (``/bin/flock``, a lock directory no
    shorter than ``/.cache/fleetops/lock``, no user in the lock name), so this check
    never refuses what the host's exact one (ops/_crontab.job_line) accepts."""
    wrapped = _crontab.wrap(job, name, "/.cache/fleetops/lock", "/bin/flock", inline_env=True)
    try:
        _crontab.job_line(schedule or "@daily", wrapped)
    except _crontab.CronError as exc:
        raise OptionError(f"--job: {exc}") from None


def remove_argv(name: str, target: str = "user", user: str | None = None,
                check: bool = False) -> list[str]:
    target = validate_target(target)
    return ["remove", f"--name={validate_name(name, target)}", f"--target={target}",
            *_tail(user, check)]


def list_argv(user: str | None = None) -> list[str]:
    user = validate_user(user)
    return ["list"] + ([f"--user={user}"] if user else [])


def _tail(user: str | None, check: bool) -> list[str]:
    user = validate_user(user)
    return ([f"--user={user}"] if user else []) + (["--check"] if check else [])
