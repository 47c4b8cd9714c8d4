"""``invoke disk-report``: the fleet disk report (the main job)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fleetops.cli.authopts import AUTH_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS, FleetopsError, OptionError

FORMATS = ("table", "json", "csv", "html", "prometheus")
EXIT_CRIT = 8
EXIT_MAIL_FAILED = 6


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


def _write(out: Path | None, text: str) -> None:
    from fleetops import safefile

    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        safefile.write_text(out, text)
    except OSError as exc:
        raise OptionError(f"--output {out}: {exc.strerror or exc}") from None
    print(f"report written to {out}", file=sys.stderr)


@task(
    default=True,
    iterable=["email", "threshold", "include", "exclude"],
    help={
        "inventory": "inventory file (Ansible INI or YAML)",
        "pattern": "host pattern (default all)",
        "limit": "further limit the hosts (same syntax, or @retry-file)",
        "warn": "space warning threshold in percent (default 80)",
        "crit": "space critical threshold in percent (default 90)",
        "inode-warn": "inode warning threshold (default: the space one)",
        "inode-crit": "inode critical threshold (default: the space one)",
        "threshold": "per-mount override MOUNT=WARN:CRIT (repeatable)",
        "local": "skip network filesystems",
        "include": "only mountpoints matching this glob (repeatable)",
        "exclude": "skip mountpoints matching this glob (repeatable)",
        "format": "table (default), json, csv, html or prometheus",
        "history": "disk history file (default $XDG_DATA_HOME/fleetops/disk-history.sqlite)",
        "no-history": "neither read nor append the history (no forecast, no changes)",
        "growth-window": "days of history the growth is fitted on (default 7)",
        "fill-warn-days": "SOON: under threshold but full within this many days (default 7)",
        "include-containers": "keep per-pod/per-container mounts (kubelet, containerd, CRI-O)",
        "all": "list every mount in the table (default: the ones that matter at large sizes)",
        "output": "write the report to this file instead of stdout",
        "email": "mail the report to this address (repeatable), once, from here",
        "mail-config": "SMTP settings file (mode 0600; see README), else FLEETOPS_SMTP_* env",
        "forks": f"parallel hosts (default {DEFAULT_FORKS})",
        "timeout": "connect timeout in seconds (default 10)",
        "command-timeout": "timeout of the remote program (default 60; 0 = none)",
        "accept-new": "record unknown host keys (changed keys are always refused)",
        "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
        "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
        **AUTH_HELP,
    },
)
def report(c, inventory=None, pattern="all", limit=None, warn="80", crit="90", inode_warn=None,
           inode_crit=None, threshold=None, local=False, include=None, exclude=None, format="table", output=None, email=None,
           mail_config=None, forks=DEFAULT_FORKS, timeout="10", command_timeout="60",
           accept_new=False, retry_file="fleetops.retry", become=False, become_user="root",
           ask_become_pass=False, ask_pass=False, max_output=None,
           history=None, no_history=False,
           growth_window="7", fill_warn_days="7", all=False, include_containers=False):
    """Fleet disk report: df -P figures of every host, worst mounts first.

    Exit codes: 0 all fine, 2/3 some host failed/unreachable, 8 every host answered but
    some mount is over the critical threshold, 6 the mail could not be sent (the report is
    saved under ./reports), 4 bad inventory, 5 bad option."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.jobs.disk import report as dr
    from fleetops.jobs.disk.fallback import fleet_disk_report

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
        settings = _mail_settings(mail_config) if email else None
        options = common.runner_options(forks, timeout, command_timeout, None, accept_new,
                                        become, become_user, ask_become_pass, ask_pass,
                                        max_output=max_output)
        hosts = common.targets(inventory, pattern, limit)
        argv = program_args(w, k, iw, ik, threshold or [], local, include or [], exclude or [],
                            include_containers)
        printer = Printer(len(hosts), show_output=False)
        run = fleet_disk_report(hosts, lambda host: host_args(argv, host), options,
                                on_result=printer.host, on_tick=printer.tick)
        printer.recap_clear()
        rep = dr.build_report(run.hosts, w, k)
        if not no_history:
            _track(rep, history, window, fill_days)
        for name, extra in dr.report_json_hosts(rep).items():
            run.hosts[name].extra.pop("data", None)
            run.hosts[name].extra.update(extra)
        _emit(run, rep, format, out, all)
        code = run.exit_code or (EXIT_CRIT if rep.worst_level == "crit" else 0)
        if settings is not None and not _mail(rep, email, settings):
            code = code or EXIT_MAIL_FAILED
        common.finish(run, False, None, retry_file, code=code)


def _track(rep, path: str | None, window: float, fill_days: float) -> None:
    """History, forecast and changes; a history error is one line on stderr, not fatal."""
    from fleetops.jobs.disk.history import default_path
    from fleetops.jobs.disk.trend import track

    error = track(rep, path or default_path(), window, fill_days)
    if error:
        print(f"fleetops: {error} (report produced without history)", file=sys.stderr)


def _mail(rep, to: list[str], settings) -> bool:
    """Send the report once; on failure keep it on disk (0600) and say where."""
    from fleetops.jobs.disk import report as dr
    from fleetops.sanitize import clean
    from ops._mail import MailError

    try:
        message_id = dr.send_report_email(rep, to, settings)
    except MailError as exc:
        try:
            saved = _save_unsent(dr.render_text(rep), dr.render_html(rep))
        except (OSError, FleetopsError) as err:
            print(f"fleetops: mail to {', '.join(to)} failed: {clean(str(exc))}; report not saved: {err}",
                  file=sys.stderr)
            return False
        print(f"fleetops: mail to {', '.join(to)} failed: {clean(str(exc))}; report saved in "
              f"{saved}",
              file=sys.stderr)
        return False
    print(f"report mailed to {', '.join(to)} ({message_id})", file=sys.stderr)
    return True


def _save_unsent(text: str, html: str) -> Path:
    """Spool the unsent report under ``reports/`` (a private 0700 directory), files 0600
    created ``O_EXCL|O_NOFOLLOW`` (never through a planted symlink), text lossless."""
    from fleetops import safefile

    spool = Path(safefile.spool_dir(os.environ.get("FLEETOPS_SPOOL_DIR", "reports")))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        base = f"disk-report-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            safefile.create_new(spool / f"{base}.txt", safefile.encode_text(text))
        except FileExistsError:
            continue
        safefile.create_new(spool / f"{base}.html", safefile.encode_text(html))
        return spool / f"{base}.txt"
    raise OSError(f"{spool}: no free report name")


def _mail_settings(path: str | None):
    from ops._mail import MailError, load_settings

    try:
        return load_settings(path)
    except MailError as exc:
        raise OptionError(f"mail settings: {exc}") from None


def _emit(run, rep, fmt: str, out: Path | None, show_all: bool = False) -> None:
    from fleetops.jobs.disk import report as dr

    if fmt == "json":
        from fleetops.jobs.disk.summary import summary

        text = run.dumps(report={"warn": rep.warn, "crit": rep.crit, "totals": rep.totals,
                                 "worst_level": rep.worst_level, "summary": summary(rep)},
                         history=rep.history, changes=rep.changes)
    elif fmt == "prometheus":
        from fleetops.jobs.disk.prometheus import render_prometheus

        text = render_prometheus(rep)
    elif fmt == "csv":
        text = dr.render_csv(rep)
    elif fmt == "html":
        text = dr.render_html(rep, show_all)
    else:
        text = dr.render_table(rep, color=out is None and sys.stdout.isatty(), show_all=show_all)
    _write(out, text)


def _fleet_step(inventory, pattern, limit, forks, timeout, accept_new, as_json, retry_file,
                work_for, auth=(), max_output=None) -> None:
    """Run ``work_for(app)(session)`` on the selected hosts with the usual output and exits."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.core.runner import Fleet
    from fleetops.ship.zipapp import build_zipapp

    options = common.runner_options(forks, timeout, "120", None, accept_new, *auth,
                                    max_output=max_output)
    hosts = common.targets(inventory, pattern, limit)
    printer = None if as_json else Printer(len(hosts))
    work = work_for(build_zipapp())
    with Fleet(options, common.target_for) as fleet:
        run = fleet.run(hosts, work, on_result=printer.host if printer else None,
                        on_tick=printer.tick if printer else None)
    common.finish(run, as_json, printer, retry_file)


SCHEDULE_HELP = {
    "inventory": "inventory file (Ansible INI or YAML)",
    "pattern": "host pattern (default all)",
    "limit": "further limit the hosts (same syntax, or @retry-file)",
    "check": "show what would change, change nothing",
    "json": "print one JSON document instead of text",
    "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
    "forks": f"parallel hosts (default {DEFAULT_FORKS})",
    "timeout": "connect/handshake/auth timeout in seconds (default 10)",
    "accept-new": "record unknown host keys (changed keys are always refused)",
    "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
    **AUTH_HELP,
    "on": "hosts (default: each host reports and mails itself) or control (one fleet "
          "report from this machine's crontab)",
    "user": "--on control: whose crontab on this machine (default: the current user)",
    "diff": "--on control: print the crontab diff",
}


@task(iterable=["email", "threshold"], help={
    **SCHEDULE_HELP,
    "when": "cron schedule: five fields or @daily-style (default @daily)",
    "email": "mail each host's report to this address (repeatable)",
    "mail-config": "SMTP settings copied to each host (0600), else FLEETOPS_SMTP_* env",
    "email-when": "mail only at or above this level: always (default), warn, crit",
    "warn": "space warning threshold in percent (default 80)",
    "crit": "space critical threshold in percent (default 90)",
    "threshold": "per-mount override MOUNT=WARN:CRIT (repeatable)",
    "history": "--on control: the history file (default: the user's data directory)",
})
def schedule(c, inventory=None, pattern="all", limit=None, when="@daily", email=None,
             mail_config=None, email_when="always", warn="80", crit="90", threshold=None,
             check=False, json=False, forks=DEFAULT_FORKS, timeout="10", accept_new=False,
             retry_file="fleetops.retry", become=False, become_user="root",
             ask_become_pass=False, ask_pass=False, max_output=None, on="hosts", user=None,
             diff=False, history=None):
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
        if email_when not in ("always", "warn", "crit"):
            raise OptionError(f"--email-when must be always, warn or crit, not {email_when!r}")
        _check_overrides(threshold or [])
        report_args = program_args(w, k, w, k, threshold or [], False, [], [])
        if _on(on) == "control":
            return _schedule_control(inventory, pattern, limit, when, report_args, email,
                                     mail_config, email_when, user, history, check, diff, json)
        config = None
        if email:
            report_args += ["--email-when", email_when]
            config = _mail_config_bytes(mail_config, mail_config_text)
        plan = Schedule(when, report_args, list(email or []), config, check)
        _fleet_step(inventory, pattern, limit, forks, timeout, accept_new, json, retry_file,
                    lambda app: lambda session: schedule_host(session, app, plan),
                    (become, become_user, ask_become_pass, ask_pass), max_output)


def _mail_config_bytes(path, render) -> bytes:
    from ops._mail import MailError

    try:
        return render(path, dict(os.environ))
    except MailError as exc:
        raise OptionError(f"mail settings: {exc}") from None


@task(help=SCHEDULE_HELP)
def unschedule(c, inventory=None, pattern="all", limit=None, check=False, json=False,
               forks=DEFAULT_FORKS, timeout="10", accept_new=False,
               retry_file="fleetops.retry", become=False, become_user="root",
               ask_become_pass=False, ask_pass=False, max_output=None, on="hosts",
               user=None, diff=False):
    """Remove the disk report's cron entry, zipapp and mail settings from every host
    (or, with --on control, the fleet report's entry from this machine's crontab)."""
    from fleetops.cli import common
    from fleetops.jobs.disk.schedule import unschedule_host

    with common.cli_errors():
        if _on(on) == "control":
            from fleetops.jobs.disk import schedule_control as dc

            return _control_step(lambda u: dc.remove(u, check), user, check, diff, json)
        _fleet_step(inventory, pattern, limit, forks, timeout, accept_new, json, retry_file,
                    lambda app: lambda session: unschedule_host(session, app, check),
                    (become, become_user, ask_become_pass, ask_pass), max_output)


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
