"""Every ``--format`` of the fleet disk report, rendered from one typed result.

:func:`render` takes a :class:`fleetops.jobs.disk.run.DiskReportRun` (or just its
:class:`~fleetops.jobs.disk.model.FleetDiskReport` for the formats that need no host
results) and returns the text the CLI writes: ``table`` (a terminal table, ANSI colour
only when asked), ``json`` (README "Results and exit codes": the run's outer shape,
each host's entry plus ``mounts``, ``worst_level``, ``over``, ``source``; top-level
``report``, ``history``, ``changes``), ``csv``, ``html`` (self-contained) and
``prometheus`` (text exposition format 0.0.4).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from fleetops.jobs.disk.model import FleetDiskReport, report_json_hosts
from fleetops.results import RunResult

if TYPE_CHECKING:
    from fleetops.jobs.disk.run import DiskReportRun

FORMATS = ("table", "json", "csv", "html", "prometheus")


def json_run(run: RunResult, report: FleetDiskReport) -> RunResult:
    """A copy of ``run`` whose host entries carry the report's per-host disk fields
    (after the host's own extra keys, before status/rc/...) instead of the program's
    ``data`` (the report's ``mounts`` replace it); ``run`` is not modified."""
    per_host = report_json_hosts(report)
    hosts = {name: dataclasses.replace(result, data=None,
                                       extra={**result.extra, **per_host.get(name, {})})
             for name, result in run.hosts.items()}
    return RunResult(hosts, run.interrupted, run.elapsed)


def render_json(run: RunResult, report: FleetDiskReport) -> str:
    from fleetops.jobs.disk.summary import summary

    return json_run(run, report).dumps(
        report={"warn": report.warn, "crit": report.crit, "totals": report.totals,
                "worst_level": report.worst_level, "summary": summary(report)},
        history=report.history, changes=report.changes)


def render(result: DiskReportRun | FleetDiskReport, fmt: str, color: bool = False,
           show_all: bool = False, run: RunResult | None = None) -> str:
    """The report in ``fmt`` (one of :data:`FORMATS`; ValueError otherwise). ``run``
    overrides the host results the JSON document is built from."""
    from fleetops.jobs.disk import report as dr

    report = result if isinstance(result, FleetDiskReport) else result.report
    if fmt == "json":
        if run is None:
            run = RunResult() if isinstance(result, FleetDiskReport) else result.run
        return render_json(run, report)
    if fmt == "prometheus":
        from fleetops.jobs.disk.prometheus import render_prometheus

        return render_prometheus(report)
    if fmt == "csv":
        return dr.render_csv(report)
    if fmt == "html":
        return dr.render_html(report, show_all)
    if fmt == "table":
        return dr.render_table(report, color=color, show_all=show_all)
    raise ValueError(f"unknown disk report format {fmt!r}")
