"""What a reader needs first, at any fleet size (pure: no I/O).

- :func:`summary`: mounts per level, hosts over threshold, the soonest to fill, changes;
- :func:`host_groups`: the detailed rows grouped by host, worst host first;
- :func:`visible_groups`: at large sizes only the rows that matter (not ``ok``), with
  how many were left out;
- :func:`shared_filesystems`: network filesystems mounted on several hosts (same
  ``server:/export`` or ``//server/share``), counted once in the report's totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetops.jobs.disk.model import (
    REPORT_LEVELS,
    FleetDiskReport,
    MountRow,
    network_source,
    worst,
)
from ops._mounts import human_size

TABLE_LIMIT = 60  # rows: above this the text table keeps the rows that matter
SOONEST = 5


@dataclass
class SharedFs:
    """One network filesystem and every (host, mountpoint) that mounts it."""

    source: str
    fstype: str
    row: MountRow
    mounts: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "fstype": self.fstype, "size_bytes": self.row.size_bytes,
                "used_bytes": self.row.used_bytes, "avail_bytes": self.row.avail_bytes,
                "use_pct": self.row.use_pct, "level": self.row.level,
                "hosts": [host for host, _ in self.mounts],
                "mountpoints": sorted({point for _, point in self.mounts})}


def shared_filesystems(report: FleetDiskReport) -> list[SharedFs]:
    """Network filesystems mounted on two or more hosts, most hosts first."""
    by_source: dict[str, SharedFs] = {}
    for row in report.rows:
        source = network_source(row)
        if source is None or row.size_bytes is None:
            continue
        item = by_source.setdefault(source, SharedFs(source, row.fstype, row))
        item.mounts.append((row.host, row.mountpoint))
    shared = [s for s in by_source.values() if len({h for h, _ in s.mounts}) > 1]
    return sorted(shared, key=lambda s: (-len(s.mounts), s.source))


def soonest(report: FleetDiskReport, count: int = SOONEST) -> list[MountRow]:
    """The mounts with the smallest ``full_in_days``."""
    filling = [r for r in report.rows if r.full_in_days is not None]
    return sorted(filling, key=lambda r: (r.full_in_days, r.host, r.mountpoint))[:count]


def summary(report: FleetDiskReport) -> dict[str, Any]:
    """JSON-ready summary: ``levels`` (mounts per level), ``hosts_over``, ``soonest``."""
    return {
        "levels": {level: report.totals.get(f"mounts_{level}", 0)
                   for level in reversed(REPORT_LEVELS)},
        "hosts_over": [h.name for h in report.over_hosts],
        "soonest": [{"host": r.host, "mountpoint": r.mountpoint, "full_in_days": r.full_in_days,
                     "growth_bytes_per_day": r.growth_bytes_per_day} for r in soonest(report)],
        "shared": [s.as_json() for s in shared_filesystems(report)],
    }


def host_groups(report: FleetDiskReport) -> list[tuple[str, list[MountRow]]]:
    """Rows grouped by host; hosts ordered by their worst row (report.rows is worst first)."""
    groups: dict[str, list[MountRow]] = {}
    for row in report.rows:
        groups.setdefault(row.host, []).append(row)
    return list(groups.items())


def visible_groups(report: FleetDiskReport, show_all: bool = False,
                   limit: int = TABLE_LIMIT) -> tuple[list[tuple[str, list[MountRow]]], int, int]:
    """``(groups, rows_left_out, hosts_left_out)``: every row when ``show_all`` or at most
    ``limit`` rows; otherwise only rows above ``ok``."""
    groups = host_groups(report)
    if show_all or len(report.rows) <= limit:
        return groups, 0, 0
    kept = [(host, [r for r in rows if r.level != "ok"]) for host, rows in groups]
    kept = [(host, rows) for host, rows in kept if rows]
    shown_rows = sum(len(rows) for _, rows in kept)
    return kept, len(report.rows) - shown_rows, len(groups) - len(kept)


def level_line(report: FleetDiskReport) -> str:
    """``2 crit, 3 warn, 1 soon, 0 unknown, 40 ok mount(s) on 16 host(s)``."""
    counts = ", ".join(f"{report.totals.get(f'mounts_{lv}', 0)} {lv}"
                       for lv in reversed(REPORT_LEVELS))
    return f"{counts} mount(s) on {report.totals['hosts']} host(s); worst " + \
        worst(h.worst_level for h in report.hosts.values()).upper()


def growth_text(row: MountRow) -> str:
    """``+2.0G`` per day, ``0``, ``-512M``; ``-`` without a forecast."""
    value = row.growth_bytes_per_day
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return ("+" if value > 0 else "-") + human_size(abs(value))


def full_text(row: MountRow) -> str:
    return "-" if row.full_in_days is None else f"{row.full_in_days:g}d"


def soonest_lines(report: FleetDiskReport) -> list[str]:
    return [f"{r.host} {r.mountpoint} in {r.full_in_days:g} days ({growth_text(r)}/day, "
            f"{r.level})" for r in soonest(report)]


def shared_lines(report: FleetDiskReport, show: int = 8) -> list[str]:
    lines = []
    for fs in shared_filesystems(report):
        hosts = sorted({h for h, _ in fs.mounts})
        names = ", ".join(hosts[:show]) + (f", +{len(hosts) - show}" if len(hosts) > show else "")
        pct = "-" if fs.row.use_pct is None else f"{fs.row.use_pct}%"
        lines.append(f"{fs.source} ({fs.fstype}) {pct} of {human_size(fs.row.size_bytes)}, "
                     f"on {len(hosts)} host(s): {names}")
    return lines
