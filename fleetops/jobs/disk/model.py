"""The fleet disk report's data model: per-host outcomes in, one typed report out.

Pure (no SSH, no rendering): :func:`build_report` takes host name -> outcome, where an
outcome is a :class:`HostOutcome`, an object with ``status``, ``reason`` and a typed
``disk`` (e.g. ``jobs.disk.run.HostDiskResult``), a ``(status, reason, data)`` tuple, a
mapping with those keys, or a runner ``HostResult`` (its ``data``). The host's disk data
has one declaration, the program's own: :class:`fleetops.ship.data.DiskreportData` (its
``mounts`` are :class:`fleetops.ship.data.Mount`), which ``ship.run.classify`` and the df
fallback build once per host; :func:`disk_data` only accepts it as is, or types a
hand-made document. Every host appears in the report: hosts that failed, were
unreachable or skipped are listed with their reason.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetops.results import ProgramData
from fleetops.ship.data import DiskreportData
from fleetops.ship.data import Mount as DataMount
from ops._mounts import LEVELS, Mount, classify, is_network, tidy_number

MOUNT_KEYS = ("mountpoint", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes",
              "use_pct", "inodes_total", "inodes_used", "inodes_pct", "level", "over", "error",
              "growth_bytes_per_day", "full_in_days")
# The control side adds "soon" (under threshold, full within --fill-warn-days) to the
# program's levels; ascending severity.
REPORT_LEVELS = ("ok", "unknown", "soon", "warn", "crit")
PROBLEM_STATUSES = ("failed", "unreachable", "skipped")


def disk_data(data: Mapping[str, Any] | None) -> DiskreportData | None:
    """The host's :class:`DiskreportData`, or None when it sent no ``mounts`` list.

    The program's checked data (``HostResult.data``) is returned as it is, not copied. A
    hand-made document (a dict, or untyped :class:`~fleetops.results.ProgramData`; tests
    and ``cli/bench.py`` feed those) is typed here, leniently: a mount that is not an
    object is dropped, a missing field is None."""
    if isinstance(data, DiskreportData):
        typed = data
    elif isinstance(data, ProgramData):
        typed = data.cast(DiskreportData)
    elif isinstance(data, Mapping):
        typed = DiskreportData.from_json(data)
    else:
        return None
    mounts = typed.mounts
    if not isinstance(mounts, tuple | list):
        return None
    if all(type(m) is DataMount for m in mounts):
        return typed
    kept = tuple(m if isinstance(m, DataMount) else DataMount.from_json(m)
                 for m in mounts if isinstance(m, Mapping))
    return dataclasses.replace(typed, mounts=kept)


@dataclass
class HostOutcome:
    """One host's outcome; ``disk`` is the typed form of ``data`` (made from it if not given)."""

    name: str
    status: str
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    disk: DiskreportData | None = None

    def __post_init__(self) -> None:
        if self.disk is None:
            self.disk = disk_data(self.data)


@dataclass
class MountRow:
    host: str
    mountpoint: str
    device: str = ""
    fstype: str = ""
    size_bytes: int | None = None
    used_bytes: int | None = None
    avail_bytes: int | None = None
    use_pct: int | None = None
    inodes_total: int | None = None
    inodes_used: int | None = None
    inodes_pct: int | None = None
    level: str = "unknown"
    over: list[str] = field(default_factory=list)
    error: str | None = None
    growth_bytes_per_day: int | None = None
    full_in_days: float | None = None

    def sort_key(self) -> tuple:
        full = self.full_in_days if self.full_in_days is not None else float("inf")
        return (-REPORT_LEVELS.index(self.level), full if self.level == "soon" else 0,
                -_num(self.use_pct), -_num(self.inodes_pct), self.host, self.mountpoint)

    def as_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in MOUNT_KEYS}


@dataclass
class HostSummary:
    name: str
    status: str
    reason: str | None
    worst_level: str = "ok"
    mounts: int = 0
    over: list[str] = field(default_factory=list)
    source: str | None = None


@dataclass
class FleetDiskReport:
    generated: str
    warn: float
    crit: float
    rows: list[MountRow]
    hosts: dict[str, HostSummary]
    totals: dict[str, int]
    changes: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, Any] | None = None
    # (host, mountpoint) -> [(unix time, use %)], oldest first: the HTML sparklines
    trend: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def worst_level(self) -> str:
        return worst(h.worst_level for h in self.hosts.values())

    @property
    def problems(self) -> list[HostSummary]:
        return [h for h in self.hosts.values() if h.status in PROBLEM_STATUSES]

    @property
    def over_hosts(self) -> list[HostSummary]:
        return [h for h in self.hosts.values() if h.over]


def worst(levels: Iterable[str]) -> str:
    """The most severe of ``levels`` in :data:`REPORT_LEVELS` order (``ok`` when empty)."""
    return max(levels, key=REPORT_LEVELS.index, default="ok")


def _num(value: Any) -> float:
    return -1 if value is None else value


def outcome_from(name: str, value: Any) -> HostOutcome:
    """Normalise one host's result (see the module docstring for accepted shapes)."""
    if isinstance(value, HostOutcome):
        return value
    if hasattr(value, "disk"):
        return HostOutcome(name, value.status, getattr(value, "reason", None), disk=value.disk)
    if isinstance(value, tuple):
        status, reason, data = value
        return HostOutcome(name, status, reason, dict(data or {}))
    if isinstance(value, Mapping):
        return HostOutcome(name, value["status"], value.get("reason"), dict(value.get("data") or {}))
    data = getattr(value, "data", None)
    if data is None:
        data = (getattr(value, "extra", None) or {}).get("data")
    return HostOutcome(name, value.status, getattr(value, "reason", None), data or {})


def _row(host: str, mount: DataMount, limits: tuple[float, float]) -> MountRow:
    level, over = mount.level, list(mount.over or ())
    if level not in LEVELS:
        if mount.use_pct is None:
            level = "unknown"
        else:
            level, over = classify(mount, limits, limits)
    return MountRow(host=host, mountpoint=mount.mountpoint or "?", device=mount.device or "",
                    fstype=mount.fstype or "", size_bytes=mount.size_bytes,
                    used_bytes=mount.used_bytes, avail_bytes=mount.avail_bytes,
                    use_pct=mount.use_pct, inodes_total=mount.inodes_total,
                    inodes_used=mount.inodes_used, inodes_pct=mount.inodes_pct, level=level,
                    over=over, error=mount.error)


def build_report(results: Mapping[str, Any], warn: float = 80, crit: float = 90,
                 generated: str | None = None) -> FleetDiskReport:
    """One fleet report: every mount of every host, worst first; every host summarised."""
    rows: list[MountRow] = []
    hosts: dict[str, HostSummary] = {}
    for name, value in results.items():
        outcome = outcome_from(name, value)
        disk = outcome.disk
        status = outcome.status
        reason = outcome.reason
        if status in ("ok", "changed") and disk is None:
            status, reason = "failed", reason or "no disk data in the result"
        host_rows = [_row(name, m, (warn, crit)) for m in (disk.mounts if disk else ())]
        rows.extend(host_rows)
        hosts[name] = HostSummary(
            name, "ok" if status == "changed" else status, reason,
            worst(r.level for r in host_rows), len(host_rows),
            [r.mountpoint for r in host_rows if r.level in ("warn", "crit")],
            (disk.source or "program") if disk else None)
    rows.sort(key=MountRow.sort_key)
    generated = generated or time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return FleetDiskReport(generated, tidy_number(warn), tidy_number(crit), rows, hosts,
                           _totals(rows, hosts))


def refresh(report: FleetDiskReport) -> None:
    """Re-sort rows and recompute worst levels and totals after levels changed (forecast)."""
    report.rows.sort(key=MountRow.sort_key)
    by_host: dict[str, list[str]] = {}
    for row in report.rows:
        by_host.setdefault(row.host, []).append(row.level)
    for name, host in report.hosts.items():
        host.worst_level = worst(by_host.get(name, ()))
    report.totals = _totals(report.rows, report.hosts)


def _totals(rows: list[MountRow], hosts: dict[str, HostSummary]) -> dict[str, int]:
    totals = {"hosts": len(hosts), "mounts": len(rows)}
    for status in ("ok", *PROBLEM_STATUSES):
        totals[f"hosts_{status}"] = sum(h.status == status for h in hosts.values())
    totals["hosts_over"] = sum(bool(h.over) for h in hosts.values())
    for level in REPORT_LEVELS:
        totals[f"mounts_{level}"] = sum(r.level == level for r in rows)
    seen: set[str] = set()  # a network filesystem mounted on many hosts counts once
    counted = [r for r in rows if (src := network_source(r)) is None
               or not (src in seen or seen.add(src))]
    totals["filesystems"] = len(counted)
    for key in ("size_bytes", "used_bytes", "avail_bytes"):
        totals[key] = sum(getattr(r, key) or 0 for r in counted)
    return totals


def report_json_hosts(report: FleetDiskReport) -> dict[str, dict[str, Any]]:
    """Per host: ``mounts`` (the program's mount keys plus the forecast), ``worst_level``,
    ``over``, ``source`` (``"program"``, ``"df"``, or None without data)."""
    doc = {name: {"mounts": [], "worst_level": h.worst_level, "over": list(h.over),
                  "source": h.source}
           for name, h in report.hosts.items()}
    for row in report.rows:
        doc[row.host]["mounts"].append(row.as_json())
    return doc


def network_source(row: MountRow) -> str | None:
    """``server:/export`` (trailing slashes dropped) or ``//server/share`` of a network
    mount, lower-cased server; None for local filesystems."""
    if not row.device or not is_network(Mount(row.device, row.mountpoint, row.fstype, "")):
        return None
    device = row.device
    if device.startswith("//"):
        server, _, share = device[2:].partition("/")
        return f"//{server.lower()}/{share.rstrip('/')}"
    server, _, export = device.partition(":")
    return f"{server.lower()}:{export.rstrip('/') or '/'}"
