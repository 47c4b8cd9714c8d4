"""The fleet disk report in the Prometheus text exposition format (version 0.0.4).

Metric names are node_exporter's filesystem collector ones, so dashboards and alerts
written for node_exporter work unchanged; every sample has the labels ``host``,
``mountpoint``, ``device`` and ``fstype``. The forecast adds
``fleetops_filesystem_full_in_days`` (only for mounts that are growing) and
``fleetops_filesystem_growth_bytes_per_day``. The output suits node_exporter's textfile
collector (write it with ``--output DIR/fleetops_disk.prom``) or a scrape.
"""

from __future__ import annotations

from collections.abc import Callable

from fleetops.jobs.disk.model import FleetDiskReport, MountRow
from fleetops.sanitize import clean

Getter = Callable[[MountRow], float | int | None]


def _free_inodes(row: MountRow) -> int | None:
    if row.inodes_total is None or row.inodes_used is None:
        return None
    return row.inodes_total - row.inodes_used


def _free_bytes(row: MountRow) -> int | None:
    if row.size_bytes is None or row.used_bytes is None:
        return None
    return row.size_bytes - row.used_bytes


METRICS: tuple[tuple[str, str, Getter], ...] = (
    ("node_filesystem_size_bytes", "Filesystem size in bytes.", lambda r: r.size_bytes),
    ("node_filesystem_free_bytes", "Filesystem free space in bytes.", _free_bytes),
    ("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.",
     lambda r: r.avail_bytes),
    ("node_filesystem_files", "Filesystem total file nodes.", lambda r: r.inodes_total),
    ("node_filesystem_files_free", "Filesystem total free file nodes.", _free_inodes),
    ("fleetops_filesystem_growth_bytes_per_day",
     "Used space growth fitted over the history window, bytes per day.",
     lambda r: r.growth_bytes_per_day),
    ("fleetops_filesystem_full_in_days",
     "Days until space or inodes run out at the fitted growth (growing mounts only).",
     lambda r: r.full_in_days),
)


def escape_label(value: str) -> str:
    """Label value escaping of the text format (backslash, double quote), after the
    host's text is made safe to show (:func:`fleetops.sanitize.clean`: a control, format
    or non-UTF-8 character becomes visible text such as ``\\x1b``, a line feed ``\\n``),
    so no raw escape sequence reaches a terminal and one odd mount cannot make the
    whole exposition unparsable (a scrape or the textfile collector rejects it all)."""
    return clean(value).replace("\\", "\\\\").replace('"', '\\"')


def _labels(row: MountRow) -> str:
    pairs = (("host", row.host), ("mountpoint", row.mountpoint), ("device", row.device),
             ("fstype", row.fstype))
    return ",".join(f'{name}="{escape_label(value)}"' for name, value in pairs)


def _value(number: float | int) -> str:
    return str(number) if isinstance(number, int) else repr(float(number))


def render_prometheus(report: FleetDiskReport) -> str:
    """All metrics, each with its HELP and TYPE lines, one sample per mount with a value."""
    rows = sorted(report.rows, key=lambda r: (r.host, r.mountpoint))
    lines: list[str] = []
    for name, help_text, getter in METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for row in rows:
            value = getter(row)
            if value is not None:
                lines.append(f"{name}{{{_labels(row)}}} {_value(value)}")
    return "\n".join(lines) + "\n"
