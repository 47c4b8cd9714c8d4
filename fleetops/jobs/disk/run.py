"""The fleet disk report as one library call: :func:`disk_report`.

It runs the ``diskreport`` program on every host (with the ``df -P`` fallback for hosts
without python3, :mod:`fleetops.jobs.disk.fallback`), takes each host's typed data as
``classify`` (or the fallback) built it once (:class:`fleetops.ship.data.DiskreportData`),
aggregates the fleet report (:mod:`fleetops.jobs.disk.model`), adds history, forecast and changes
(:mod:`fleetops.jobs.disk.trend`), mails it with its spool fallback
(:mod:`fleetops.jobs.disk.mailing`) and decides the exit status. It never prints and
never raises for a host's failure (each host ends ok/failed/unreachable/skipped with a
reason); progress goes to the ``on_result``/``on_tick`` callbacks, what the operator
must read is in the returned :class:`DiskReportRun`. Renderers for every ``--format``
take that object (:mod:`fleetops.jobs.disk.output`).

Exit status (README "Results and exit codes"): the run's own (2 some host failed, 3 some
unreachable, 99 interrupted), else 8 when a mount is over the critical threshold, else 0;
a failed mail turns 0 into 6.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetops.jobs.disk.mailing import DEFAULT_SPOOL, MailOutcome, mail_report
from fleetops.jobs.disk.model import FleetDiskReport, build_report, disk_data
from fleetops.results import HostResult, RunResult
from fleetops.ship.data import DiskreportData

if TYPE_CHECKING:
    from fleetops.core.runner import RunOptions
    from fleetops.core.transport import ConnectFactory
    from ops._mail import MailSettings

EXIT_CRIT = 8
EXIT_MAIL_FAILED = 6
ArgsFor = Callable[[Any], Sequence[str]]


@dataclass(frozen=True, slots=True)
class DiskReportSettings:
    """What the report is judged and kept with. ``warn``/``crit``: space thresholds in
    percent for mounts the program did not classify (the program applies its own
    arguments); ``history``: the SQLite file (None: ``$XDG_DATA_HOME/fleetops/
    disk-history.sqlite``), ``no_history`` neither reads nor appends it;
    ``growth_window`` and ``fill_warn_days`` in days; ``email``: addresses mailed once
    with ``mail`` (None: ``FLEETOPS_SMTP_*``); ``spool_dir``: where an unsent report goes."""

    warn: float = 80.0
    crit: float = 90.0
    history: str | Path | None = None
    no_history: bool = False
    growth_window: float = 7.0
    fill_warn_days: float = 7.0
    email: tuple[str, ...] = ()
    mail: MailSettings | None = None
    spool_dir: str | Path = DEFAULT_SPOOL


@dataclass(slots=True)
class HostDiskResult:
    """One host: ``result`` is its run outcome (status, rc, output, duration, reason,
    the transport's notes such as ``uploaded_bytes``; ``data`` None: the program's data
    moved to ``disk``) and ``disk`` the program's typed data, the very object
    ``ship.run.classify`` built (None when the host sent no disk data)."""

    result: HostResult
    disk: DiskreportData | None

    @property
    def name(self) -> str:
        return self.result.name

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def reason(self) -> str | None:
        return self.result.reason


@dataclass(slots=True)
class DiskReportRun:
    """Everything one fleet disk report produced, in inventory order."""

    hosts: dict[str, HostDiskResult]
    report: FleetDiskReport
    exit_code: int
    history_error: str | None = None
    mail: MailOutcome | None = None
    interrupted: bool = False
    elapsed: float = 0.0

    @property
    def run(self) -> RunResult:
        """The host results as a :class:`~fleetops.results.RunResult` (retry file, recap)."""
        return RunResult({name: h.result for name, h in self.hosts.items()},
                         self.interrupted, self.elapsed)

    def history_line(self) -> str | None:
        """The operator's line when the history could not be used (the report is whole)."""
        if self.history_error is None:
            return None
        return f"fleetops: {self.history_error} (report produced without history)"


def typed_hosts(run: RunResult) -> dict[str, HostDiskResult]:
    """Each runner result split into its outcome and its typed disk data (``data`` is
    taken as built, not converted again; the runner's objects are not modified)."""
    return {name: HostDiskResult(dataclasses.replace(result, data=None),
                                 disk_data(result.data))
            for name, result in run.hosts.items()}


def track_history(report: FleetDiskReport, settings: DiskReportSettings,
                  ts: float | None = None) -> str | None:
    """Forecast, ``soon`` levels, changes and one appended run; the one-line error or None
    (the report is still complete without them)."""
    from fleetops.jobs.disk.history import default_path
    from fleetops.jobs.disk.trend import track

    if settings.no_history:
        return None
    return track(report, settings.history or default_path(), settings.growth_window,
                 settings.fill_warn_days, ts)


def exit_status(run_code: int, report: FleetDiskReport, mail: MailOutcome | None) -> int:
    """README's exit codes: the run's, else 8 for a critical mount, else 6 if unmailed."""
    code = run_code or (EXIT_CRIT if report.worst_level == "crit" else 0)
    if mail is not None and not mail.sent:
        code = code or EXIT_MAIL_FAILED
    return code


def disk_report(hosts: Iterable[Any], settings: DiskReportSettings, options: RunOptions,
                args_for: ArgsFor, *,
                on_result: Callable[[HostResult, RunResult], None] | None = None,
                on_tick: Callable[[RunResult], None] | None = None,
                connect: ConnectFactory | None = None,
                target_for: Callable[[Any], Any] | None = None,
                ts: float | None = None) -> DiskReportRun:
    """Run, aggregate, track, mail: one fleet disk report.

    ``args_for(host)`` gives the program's argv for a host (thresholds, globs and the
    host's own ``fleetops_disk_*`` vars). ``connect``/``target_for`` replace SSH and the
    inventory's connection settings (tests pass ``fleetops.core.testing``'s fake);
    ``ts`` is the history's clock (default now). See the module docstring for the rest."""
    from fleetops.jobs.disk.fallback import fleet_disk_report

    run = fleet_disk_report(hosts, args_for, options, on_result=on_result, on_tick=on_tick,
                            connect=connect, target_for=target_for)
    typed = typed_hosts(run)
    report = build_report(typed, settings.warn, settings.crit)
    history_error = track_history(report, settings, ts)
    mail = mail_report(report, settings.email, settings.mail, settings.spool_dir) \
        if settings.email else None
    return DiskReportRun(typed, report, exit_status(run.exit_code, report, mail),
                         history_error, mail, run.interrupted, run.elapsed)
