"""One nightly fleet disk report from the control machine: a crontab entry here.

``invoke disk-report.schedule --on control`` puts one entry in a user's crontab on this
machine (default: the current user) that runs the fleet report, appends to the history
and sends one mail. The entry is marked ``#Ansible: fleetops-disk-report`` (Ansible's
``cron`` module marker: Ansible finds, updates and removes it too) and is edited with
the same code and rules as ``ops/cron`` (``ops/_crontab.py``: ``flock -n`` so runs never
overlap, ``/bin/sh``, explicit PATH, ``%`` escaped); the crontab is read and written
through the real ``crontab`` binary. Installing twice is ``ok`` (no change); ``check``
computes the diff and changes nothing.
"""

from __future__ import annotations

import os
import pwd
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ops import _cronfs as fs
from ops import _crontab as ct

NAME = "fleetops-disk-report"
REPO = Path(__file__).resolve().parents[3]


@dataclass(slots=True)
class ControlChange:
    """The outcome: ``action`` created/updated/removed/none, ``diff`` (unified)."""

    user: str
    action: str
    diff: str
    changed: bool


def user_data_dir(user: str) -> Path:
    """Where the user's history and report files go: ``~user/.local/share/fleetops`` for
    another user, this process's ``$XDG_DATA_HOME/fleetops`` for the current one."""
    from fleetops.jobs.disk.history import default_path

    if user == fs.current_user():
        return default_path().parent
    home = pwd.getpwnam(user).pw_dir
    return default_path({"HOME": home}).parent


def report_command(inventory: str, pattern: str, limit: str | None, report_args: Sequence[str],
                   email: Sequence[str], mail_config: str | None, history: str,
                   state_dir: Path, python: str | None = None) -> str:
    """The shell command cron runs (every value quoted): the fleet report as HTML into
    ``state_dir/disk-report-latest.html``, mailed once, its log appended to
    ``state_dir/disk-report.log``."""
    argv = [python or sys.executable, "-m", "invoke", "-r", str(REPO), "disk-report",
            "-i", str(Path(inventory).resolve()), "-p", pattern]
    if limit:
        argv += ["--limit", _absolute_limit(limit)]
    argv += list(report_args)
    for address in email:
        argv += ["--email", address]
    if mail_config:
        argv += ["--mail-config", str(Path(mail_config).resolve())]
    argv += ["--history", os.path.abspath(os.path.expanduser(history)), "--format", "html",
             "--output", str(state_dir / "disk-report-latest.html"),
             "--retry-file", str(state_dir / "disk-report.retry")]
    log = shlex.quote(str(state_dir / "disk-report.log"))
    return (f"mkdir -p {shlex.quote(str(state_dir))} && "
            + " ".join(shlex.quote(a) for a in argv) + f" >>{log} 2>&1")


def _absolute_limit(limit: str) -> str:
    """``--limit`` with its ``@file`` elements made absolute: cron runs in ``$HOME``."""
    if "@" not in limit:
        return limit
    return ",".join("@" + os.path.abspath(os.path.expanduser(p.strip()[1:]))
                    if p.strip().startswith("@") else p for p in limit.split(","))


def _flock() -> str:
    import shutil

    found = shutil.which("flock", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if not found:
        raise ct.CronError("flock not found in /usr/bin or /bin (util-linux)")
    return found


def _job(user: str, when: str, command: str) -> str:
    wrapped = ct.wrap(command, NAME, "/run/lock", _flock(), inline_env=True, owner=user)
    return ct.job_line(when, wrapped)


def _apply(user: str, new_lines_for, check: bool) -> ControlChange:
    old, _ = fs.read_crontab(user)
    lines = ct.strip_spool_header(ct.split_lines(old))
    old = ct.render(lines)
    new_lines, action = new_lines_for(lines)
    new = ct.render(new_lines)
    if new == old:
        return ControlChange(user, "none", "", False)
    if not check:
        fs.write_crontab(user, new)
    return ControlChange(user, action, ct.diff(old, new, f"crontab.{user}"), True)


def install(user: str, when: str, command: str, check: bool = False) -> ControlChange:
    """Create or update the entry (an existing one keeps its place and marker)."""
    ct.validate_command(command)
    when = ct.validate_schedule(when)
    job = _job(user, when, command)

    def plan(lines: list[str]) -> tuple[list[str], str]:
        if not any(e.name == NAME for e in ct.entries(lines)):
            lines = lines + [ct.marker_line(NAME, "ansible")]
            new, _ = ct.set_entry(lines, NAME, job)
            return new, "created"
        return ct.set_entry(lines, NAME, job)

    return _apply(user, plan, check)


def remove(user: str, check: bool = False) -> ControlChange:
    """Remove the entry (absent: ``none``)."""
    return _apply(user, lambda lines: ct.remove_entry(lines, NAME), check)


def check_user(user: str | None) -> str:
    user = user or fs.current_user()
    ct.validate_user(user)
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ct.CronError(f"no such user {user!r} on this machine") from None
    if user != fs.current_user() and os.geteuid() != 0:
        raise ct.CronError(f"only root can edit {user}'s crontab")
    return user
