"""What changed since the previous fleet run (pure: no I/O).

Each change is a dict with ``kind`` and ``host``, plus ``mountpoint``, ``from``, ``to``
where they apply. Kinds, in the order they are listed:

- ``host_down``: the host answered last run and not now (``from``/``to`` are statuses);
- ``crossed``: a mount's level went up (``ok`` -> ``warn``, ``warn`` -> ``crit``, -> ``soon``);
- ``recovered``: a mount's level went down;
- ``appeared`` / ``disappeared``: a mount new on, or gone from, a host that answered both times;
- ``host_back``: the host did not answer last run and does now.
"""

from __future__ import annotations

from typing import Any

from fleetops.jobs.disk.history import PreviousRun
from fleetops.jobs.disk.model import REPORT_LEVELS, FleetDiskReport

KINDS = ("host_down", "crossed", "recovered", "appeared", "disappeared", "host_back")
ANSWERED = ("ok", "changed")


def _rank(level: str | None) -> int:
    return REPORT_LEVELS.index(level) if level in REPORT_LEVELS else 0


def _mount_changes(before: dict[str, str], now: dict[str, str], host: str) -> list[dict]:
    out: list[dict[str, Any]] = []
    for point, level in now.items():
        old = before.get(point)
        if old is None:
            out.append({"kind": "appeared", "host": host, "mountpoint": point, "to": level})
        elif old != level and "unknown" not in (old, level):
            kind = "crossed" if _rank(level) > _rank(old) else "recovered"
            out.append({"kind": kind, "host": host, "mountpoint": point, "from": old, "to": level})
        elif old != level:
            kind = "crossed" if level == "unknown" else "recovered"
            out.append({"kind": kind, "host": host, "mountpoint": point, "from": old, "to": level})
    for point, old in before.items():
        if point not in now:
            out.append({"kind": "disappeared", "host": host, "mountpoint": point, "from": old})
    return out


def changes_since(previous: PreviousRun | None, report: FleetDiskReport) -> list[dict[str, Any]]:
    """Changes from ``previous`` (None: first run, nothing to compare) to ``report``."""
    if previous is None:
        return []
    before_levels: dict[str, dict[str, str]] = {}
    for (host, point), level in previous.levels.items():
        before_levels.setdefault(host, {})[point] = level
    now_levels: dict[str, dict[str, str]] = {}
    for row in report.rows:
        now_levels.setdefault(row.host, {})[row.mountpoint] = row.level
    out: list[dict[str, Any]] = []
    for name, host in report.hosts.items():
        old_status = previous.hosts.get(name)
        was_up, is_up = old_status in ANSWERED, host.status in ANSWERED
        if was_up and not is_up:
            out.append({"kind": "host_down", "host": name, "from": old_status,
                        "to": host.status, "reason": host.reason})
        elif old_status is not None and not was_up and is_up:
            out.append({"kind": "host_back", "host": name, "from": old_status, "to": host.status})
        elif was_up and is_up:
            out.extend(_mount_changes(before_levels.get(name, {}), now_levels.get(name, {}),
                                      name))
    out.sort(key=lambda c: (KINDS.index(c["kind"]), c["host"], c.get("mountpoint", "")))
    return out


def describe(change: dict[str, Any]) -> str:
    """One line for the text/HTML/mail reports."""
    kind, host, point = change["kind"], change["host"], change.get("mountpoint", "")
    if kind == "host_down":
        return f"{host} stopped answering ({change['to']}: {change.get('reason') or '?'})"
    if kind == "host_back":
        return f"{host} answers again"
    if kind == "appeared":
        return f"{host} {point}: new mount ({change['to']})"
    if kind == "disappeared":
        return f"{host} {point}: mount gone (was {change['from']})"
    return f"{host} {point}: {kind} {change['from']} -> {change['to']}"
