"""Tie a fleet disk report to its history: forecast, ``soon`` level, changes, append.

Order for one run (so that stored levels are the reported ones):
1. read the previous run and the samples of the growth window;
2. add this run's samples in memory, forecast every mount, mark ``soon`` mounts;
3. append this run (one transaction), compute the changes since the previous run.

Any :class:`~fleetops.jobs.disk.history.HistoryError` leaves the report as it was, except for
the forecast fields (``None``) and ``report.history`` which then holds the error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from fleetops.jobs.disk.changes import changes_since
from fleetops.jobs.disk.forecast import DAY_S, NO_FORECAST, forecast
from fleetops.jobs.disk.history import History, HistoryError, Sample
from fleetops.jobs.disk.model import FleetDiskReport, MountRow, refresh

SPARK_POINTS = 60


def _sample(ts: float, row: MountRow) -> Sample:
    return Sample(ts, row.used_bytes, row.avail_bytes, row.size_bytes, row.inodes_used,
                  row.inodes_total)


def _pct(sample: Sample) -> float | None:
    if sample.used_bytes is None or sample.avail_bytes is None:
        return None
    total = sample.used_bytes + sample.avail_bytes
    return 100.0 * sample.used_bytes / total if total > 0 else 0.0


def apply_forecasts(report: FleetDiskReport, series: dict[tuple[str, str], list[Sample]],
                    ts: float, fill_warn_days: float) -> None:
    """Forecast each row from ``series`` plus its current figures; ``ok`` -> ``soon`` when
    full within ``fill_warn_days``; record the use % trend for sparklines."""
    for row in report.rows:
        key = (row.host, row.mountpoint)
        samples = [s for s in series.get(key, ()) if s.ts < ts] + [_sample(ts, row)]
        result = forecast(samples) if row.used_bytes is not None else NO_FORECAST
        row.growth_bytes_per_day, row.full_in_days = result.growth_bytes_per_day, \
            result.full_in_days
        if row.level == "ok" and row.full_in_days is not None \
                and row.full_in_days <= fill_warn_days:
            row.level = "soon"
        points = [(s.ts, p) for s in samples[-SPARK_POINTS:] if (p := _pct(s)) is not None]
        if len(points) >= 2:
            report.trend[key] = points
    refresh(report)


def _mounts(report: FleetDiskReport) -> Iterator[tuple[str, dict]]:
    for row in report.rows:
        if row.used_bytes is not None or row.error is None:
            yield row.host, row.as_json()


def track(report: FleetDiskReport, path: str | Path, window_days: float = 7.0,
          fill_warn_days: float = 7.0, ts: float | None = None) -> str | None:
    """Forecast, append and diff ``report`` against the history at ``path``.

    Sets ``report.history`` to ``{"path": str, "runs": N}`` and returns None, or returns
    the one-line error (the report then has no forecast and no changes)."""
    ts = time.time() if ts is None else ts
    try:
        with History(path) as history:
            previous = history.previous()
            series = history.series(ts - window_days * DAY_S)
            apply_forecasts(report, series, ts, fill_warn_days)
            hosts = {name: (h.status, h.reason, h.source) for name, h in report.hosts.items()}
            history.append(ts, hosts, _mounts(report))
            report.changes = changes_since(previous, report)
            report.history = {"path": str(path), "runs": history.runs()}
    except HistoryError as exc:
        return str(exc)
    return None
