"""``invoke disk-report``: the fleet disk report (the main job)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.cli.flags import task
from fleetops.cli.options import FleetOptions, fleet_options
from fleetops.errors import OptionError
from fleetops.ship.programs import arg as spec_arg
from fleetops.ship.programs import help_entries


def _threshold(value, flag: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} must be a percentage, not {value!r}") from None
    if not 0 < number <= 100:
        raise OptionError(f"{flag} must be between 0 and 100, not {value!r}")
    return number


def _days(value, flag: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} must be a number of days, not {value!r}") from None
    if not 0 < number <= 3650:
        raise OptionError(f"{flag} must be between 0 and 3650 days, not {value!r}")
    return number


def _check_overrides(overrides: list[str]) -> None:
    from ops._mounts import parse_override

    for text in overrides:
        try:
            parse_override(text)
        except ValueError as exc:
            raise OptionError(f"--threshold: {exc}") from None


def _check_output(path: str | None) -> Path | None:
    """``--output`` must be writable by :mod:`fleetops.safefile`'s rule (exit 5 if not)."""
    from fleetops import safefile

    if not path:
        return None
    safefile.check(path)
    return Path(path)


def program_args(warn: float, crit: float, inode_warn: float, inode_crit: float,
                 thresholds: list[str], local: bool, include: list[str],
                 exclude: list[str], containers: bool = False) -> list[str]:
    argv = ["--warn", f"{warn:g}", "--crit", f"{crit:g}",
            "--inode-warn", f"{inode_warn:g}", "--inode-crit", f"{inode_crit:g}"]
    for flag, values in (("--threshold", thresholds), ("--include", include),
                         ("--exclude", exclude)):
        for value in values:
            argv += [flag, value]
    if local:
        argv.append("--local")
    if containers:
        argv.append("--include-containers")
    return argv


HOST_VAR_FLAGS = (("fleetops_disk_include", "--include"), ("fleetops_disk_exclude", "--exclude"),
                  ("fleetops_disk_thresholds", "--threshold"))


def host_args(base: list[str], host) -> list[str]:
    """``base`` plus the host's own inventory vars: ``fleetops_disk_include``/``_exclude``
    (mountpoint globs) and ``fleetops_disk_thresholds`` (MOUNT=WARN:CRIT), each a list or
    a comma-separated string."""
    argv = list(base)
    for var, flag in HOST_VAR_FLAGS:
        value = (getattr(host, "vars", None) or {}).get(var)
        items = value.split(",") if isinstance(value, str) else list(value or ())
        for item in items:
            if str(item).strip():
                argv += [flag, str(item).strip()]
    return argv


@dataclass(frozen=True)
class DiskView:
    """A disk report as the reporter renders it (``--format``): the fleet report, the
    host results its JSON is built from, colour and ``--all``."""

    report: Any
    run: Any
    color: bool = False
    show_all: bool = False


def _register_formats() -> None:
    """Each disk-report ``--format`` as a renderer of :class:`DiskView` (cli.output)."""
    from fleetops.cli.output import formats, renders
    from fleetops.jobs.disk.output import FORMATS, render

    if formats(DiskView):
        return
    for fmt in FORMATS:
        def rendered(view: DiskView, fmt: str = fmt) -> str:
            text = render(view.report, fmt, color=view.color, show_all=view.show_all,
                          run=view.run)
            return text if text.endswith("\n") else text + "\n"
        renders(DiskView, fmt)(rendered)


@task(
    default=True,
    iterable=["email", "threshold", "include", "exclude"],
    letters={"no_history": "y", "growth_window": "", "fill_warn_days": "",
             "include_containers": ""},
    help={
        "warn": "space warning threshold in percent (default 80)",
        "crit": "space critical threshold in percent (default 90)",
        "inode-warn": "inode warning threshold (default: the space one)",
        "inode-crit": "inode critical threshold (default: the space one)",
        "threshold": "per-mount override MOUNT=WARN:CRIT (repeatable)",
        **help_entries("diskreport", ("local", "include_containers")),
        "include": "only mountpoints matching this glob (repeatable)",
        "exclude": "skip mountpoints matching this glob (repeatable)",
        "format": "table (default), json, csv, html or prometheus",
        "history": "disk history file (default $XDG_DATA_HOME/fleetops/disk-history.sqlite)",
        "no-history": "neither read nor append the history (no forecast, no changes)",
        "growth-window": "days of history the growth is fitted on (default 7)",
        "fill-warn-days": "SOON: under threshold but full within this many days (default 7)",
        "all": "list every mount in the table (default: the ones that matter at large sizes)",
        "output": "write the report to this file instead of stdout",
        "email": "mail the report to this address (repeatable), once, from here",
        "mail-config": "SMTP settings file (mode 0600; see README), else FLEETOPS_SMTP_* env",
    },
)
@fleet_options(exclude=["json"], defaults={"command_timeout": "60"})  # --format json
def report(c, warn="80", crit="90", inode_warn=None,
           inode_crit=None, threshold=None, local=False, include=None, exclude=None, format="table", output=None, email=None,
           mail_config=None,
           history=None, no_history=False,
           growth_window="7", fill_warn_days="7", all=False, include_containers=False, *,
           opts: FleetOptions):
    """Fleet disk report: df -P figures of every host, worst mounts first.

    Exit codes: 0 all fine, 2/3 some host failed/unreachable, 8 every host answered but
    some mount is over the critical threshold, 6 the mail could not be sent (the report is
    saved under ./reports), 4 bad inventory, 5 bad option."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.jobs.disk.output import FORMATS
    from fleetops.jobs.disk.run import DiskReportSettings, disk_report

    with common.cli_errors():
        if format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        w, k = _threshold(warn, "--warn"), _threshold(crit, "--crit")
        if w > k:
            raise OptionError(f"--warn ({w:g}) must not be above --crit ({k:g})")
        iw = _threshold(inode_warn, "--inode-warn") if inode_warn else w
        ik = _threshold(inode_crit, "--inode-crit") if inode_crit else k
        if iw > ik:
            raise OptionError(f"inode warning ({iw:g}) must not be above critical ({ik:g})")
        _check_overrides(threshold or [])
        out = _check_output(output)
        window = _days(growth_window, "--growth-window")
        fill_days = _days(fill_warn_days, "--fill-warn-days")
        _check_emails(email or [])
        mail = _mail_settings(mail_config) if email else None
        options = opts.run_options()
        hosts = opts.hosts()
        argv = program_args(w, k, iw, ik, threshold or [], local, include or [], exclude or [],
                            include_containers)
        settings = DiskReportSettings(w, k, history, no_history, window, fill_days,
                                      tuple(email or ()), mail, _spool_dir())
        printer = Printer(len(hosts), show_output=False)
        result = disk_report(hosts, settings, options, lambda host: host_args(argv, host),
                             on_result=printer.host, on_tick=printer.tick)
        printer.recap_clear()
        if result.history_error:
            printer.notice(result.history_line())
        _emit(result.run, result.report, format, out, all, printer)
        if result.mail is not None:
            printer.notice(result.mail.line())
        opts.finish(result.run, code=result.exit_code)


def _spool_dir() -> str:
    """Where an unsent report goes: ``$FLEETOPS_SPOOL_DIR``, else ``reports``."""
    return os.environ.get("FLEETOPS_SPOOL_DIR", "reports")


def _save_unsent(text: str, html: str) -> Path:
    """:func:`fleetops.jobs.disk.mailing.save_unsent` into :func:`_spool_dir`."""
    from fleetops.jobs.disk.mailing import save_unsent

    return save_unsent(text, html, _spool_dir())


def _check_emails(addresses: list[str]) -> None:
    """Each ``--email`` is one plain address (``user@host``: no blanks, commas, angle
    brackets or control characters), checked before any host is contacted (exit 5)."""
    import re

    from ops.diskreport import _ADDRESS

    for address in addresses:
        if re.fullmatch(_ADDRESS, address) is None:
            from fleetops.sanitize import clean

            raise OptionError(f"--email: {clean(address)!r} is not one plain address "
                              "(user@host)")


def _mail_settings(path: str | None):
    from ops._mail import MailError, load_settings

    try:
        return load_settings(path)
    except MailError as exc:
        raise OptionError(f"mail settings: {exc}") from None


def _emit(run, rep, fmt: str, out: Path | None, show_all: bool = False,
          printer=None) -> None:
    """Hand ``rep`` (and, for JSON, ``run``'s host results) in ``fmt`` to the reporter:
    stdout, or the file ``out`` (written safely) and a notice saying where."""
    from fleetops.cli.output import Printer, render

    _register_formats()
    printer = printer or Printer(0, show_output=False, progress=False, recap=False)
    view = DiskView(rep, run, color=out is None and sys.stdout.isatty(), show_all=show_all)
    if out is None:
        printer.document(view, fmt)
        return
    _write_file(out, render(view, fmt), printer)


def _write_file(out: Path, text: str, printer=None) -> None:
    """``text`` into ``--output`` by :mod:`fleetops.safefile`'s rule, and a notice."""
    from fleetops import safefile
    from fleetops.cli.output import Printer

    try:
        safefile.write_text(out, text)
    except OSError as exc:
        raise OptionError(f"--output {out}: {exc.strerror or exc}") from None
    (printer or Printer(0, progress=False)).notice(f"report written to {out}")


def _fleet_step(opts: FleetOptions, work_for) -> None:
    """Run ``work_for(app)(session)`` on the selected hosts with the usual output and exits."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.core.runner import Fleet
    from fleetops.ship.zipapp import build_zipapp

    options = opts.run_options()
    hosts = opts.hosts()
    printer = None if opts.json else Printer(len(hosts))
    work = work_for(build_zipapp())
    with Fleet(options, common.target_for) as fleet:
        run = fleet.run(hosts, work, on_result=printer.host if printer else None,
                        on_tick=printer.tick if printer else None)
    opts.finish(run, printer)


SCHEDULE_HELP = {
    "check": "show what would change, change nothing",
    "on": "hosts (default: each host reports and mails itself) or control (one fleet "
          "report from this machine's crontab)",
    "user": "--on control: whose crontab on this machine (default: the current user)",
    "diff": "--on control: print the crontab diff",
}


@task(iterable=["email", "threshold"], letters={"on": ""}, help={
    **SCHEDULE_HELP,
    "when": "cron schedule: five fields or @daily-style (default @daily)",
    "email": "mail each host's report to this address (repeatable)",
    "mail-config": "SMTP settings copied to each host (0600), else FLEETOPS_SMTP_* env",
    **help_entries("diskreport", ("email_when",)),
    "warn": "space warning threshold in percent (default 80)",
    "crit": "space critical threshold in percent (default 90)",
    "threshold": "per-mount override MOUNT=WARN:CRIT (repeatable)",
    "history": "--on control: the history file (default: the user's data directory)",
})
@fleet_options(defaults={"command_timeout": "120"})
def schedule(c, when="@daily", email=None,
             mail_config=None, email_when="always", warn="80", crit="90", threshold=None,
             check=False, on="hosts", user=None,
             diff=False, history=None, *, opts: FleetOptions):
    """Schedule the disk report: on every host (zipapp, mail settings 0600, cron.d entry)
    or, with --on control, one fleet report from this machine's crontab."""
    from fleetops.cli import common
    from fleetops.jobs.cron import validate_schedule
    from fleetops.jobs.disk.schedule import Schedule, mail_config_text, schedule_host

    with common.cli_errors():
        when = validate_schedule(when)
        w, k = _threshold(warn, "--warn"), _threshold(crit, "--crit")
        if w > k:
            raise OptionError(f"--warn ({w:g}) must not be above --crit ({k:g})")
        if email_when not in spec_arg("diskreport", "email_when").choices:
            raise OptionError(f"--email-when must be always, warn or crit, not {email_when!r}")
        _check_overrides(threshold or [])
        report_args = program_args(w, k, w, k, threshold or [], False, [], [])
        if _on(on) == "control":
            return _schedule_control(opts.inventory, opts.pattern, opts.limit, when, report_args,
                                     email, mail_config, email_when, user, history, check, diff,
                                     opts.json)
        config = None
        _check_emails(email or [])
        if email:
            report_args += ["--email-when", email_when]
            config = _mail_config_bytes(mail_config, mail_config_text)
        plan = Schedule(when, report_args, list(email or []), config, check)
        _fleet_step(opts, lambda app: lambda session: schedule_host(session, app, plan))


def _mail_config_bytes(path, render) -> bytes:
    from ops._mail import MailError

    try:
        return render(path, dict(os.environ))
    except MailError as exc:
        raise OptionError(f"mail settings: {exc}") from None


@task(help=SCHEDULE_HELP)
@fleet_options(defaults={"command_timeout": "120"})
def unschedule(c, check=False, on="hosts",
               user=None, diff=False, *, opts: FleetOptions):
    """Remove the disk report's cron entry, zipapp and mail settings from every host
    (or, with --on control, the fleet report's entry from this machine's crontab)."""
    from fleetops.cli import common
    from fleetops.jobs.disk.schedule import unschedule_host

    with common.cli_errors():
        if _on(on) == "control":
            from fleetops.jobs.disk import schedule_control as dc

            return _control_step(lambda u: dc.remove(u, check), user, check, diff, opts.json)
        _fleet_step(opts, lambda app: lambda session: unschedule_host(session, app, check))


def _on(value: str) -> str:
    if value not in ("hosts", "control"):
        raise OptionError(f"--on must be hosts or control, not {value!r}")
    return value


def _schedule_control(*args) -> None:
    from fleetops.cli.diskcontrol import schedule_control

    schedule_control(*args)


def _control_step(*args) -> None:
    from fleetops.cli.diskcontrol import control_step

    control_step(*args)
