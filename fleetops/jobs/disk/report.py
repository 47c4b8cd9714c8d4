"""Fleet disk report: render the report of :mod:`fleetops.jobs.disk.model` (table, text,
HTML, CSV) and mail it.

Pure functions (no SSH). The model's names (``build_report``, ``FleetDiskReport``...)
are re-exported here for existing callers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from ops._mail import MailSettings

from fleetops.jobs.disk.model import (  # noqa: F401  (the report's model, re-exported)
    MOUNT_KEYS,
    PROBLEM_STATUSES,
    REPORT_LEVELS,
    FleetDiskReport,
    HostOutcome,
    HostSummary,
    MountRow,
    build_report,
    outcome_from,
    refresh,
    report_json_hosts,
    worst,
)
from fleetops.sanitize import clean, csv_cell
from ops._mounts import human_size

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"  # package data (a link in a checkout)
COLOURS = {"ok": "#2e7d32", "unknown": "#757575", "soon": "#6a1b9a", "warn": "#e09100",
           "crit": "#c62828"}
ANSI = {"ok": "\033[32m", "unknown": "\033[90m", "soon": "\033[35m", "warn": "\033[33m",
        "crit": "\033[31m"}
BOLD, RESET = "\033[1m", "\033[0m"
BAR_WIDTH = 10


def _pct(value: int | None) -> str:
    return "-" if value is None else f"{value}%"


def bar(pct: int | None, width: int = BAR_WIDTH) -> str:
    if pct is None:
        return "[" + "?" * width + "]"
    filled = min(width, max(0, round(pct * width / 100)))
    return "[" + "#" * filled + "." * (width - filled) + "]"


TABLE_HEADER = ("LEVEL", "HOST", "MOUNT", "FSTYPE", "SIZE", "USED", "AVAIL", "USE%", "",
                "INODE%", "GROWTH/D", "FULL IN", "NOTE")


def _cells(row: MountRow) -> tuple[str, ...]:
    from fleetops.jobs.disk.summary import full_text, growth_text

    return (row.level.upper(), row.host, row.mountpoint, row.fstype, human_size(row.size_bytes),
            human_size(row.used_bytes), human_size(row.avail_bytes), _pct(row.use_pct),
            bar(row.use_pct), _pct(row.inodes_pct), growth_text(row), full_text(row),
            row.error or "")


def _table_lines(report: FleetDiskReport, color: bool, rows: list[MountRow]) -> list[str]:
    table = [TABLE_HEADER] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(TABLE_HEADER))]
    right = {4, 5, 6, 7, 9, 10, 11}
    lines = []
    for index, cells in enumerate(table):
        padded = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                  for i, c in enumerate(cells)]
        if color and index:
            row = rows[index - 1]
            tint = ANSI[row.level]
            padded[0] = f"{tint}{padded[0]}{RESET}"
            padded[8] = f"{tint}{padded[8]}{RESET}"
            if report.hosts[row.host].over:
                padded[1] = f"{BOLD}{padded[1]}{RESET}"
        lines.append("  ".join(padded).rstrip())
    return lines


def _over_lines(report: FleetDiskReport) -> list[str]:
    by_host: dict[str, list[str]] = {}
    for row in report.rows:
        if row.level in ("warn", "crit"):
            by_host.setdefault(row.host, []).append(
                f"{row.mountpoint} {_pct(row.use_pct)} space, {_pct(row.inodes_pct)} inodes "
                f"({row.level})")
    return [f"{host}: " + "; ".join(items) for host, items in by_host.items()]


def _env() -> jinja2.Environment:
    import jinja2  # only the text/HTML renderers need it: JSON and CSV runs stay lighter

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["human"] = human_size
    env.filters["pct"] = _pct
    return env


def printable(report: FleetDiskReport) -> FleetDiskReport:
    """A copy of ``report`` for human eyes: every host-supplied text (host names,
    mountpoints, devices, fstypes, errors, reasons) escaped with
    :func:`fleetops.sanitize.clean`, so a row stays one row and no control or bidi
    character reaches a terminal, a mail or an HTML page (which also autoescapes)."""
    rows = [dataclasses.replace(
        row, host=clean(row.host), mountpoint=clean(row.mountpoint), device=clean(row.device),
        fstype=clean(row.fstype), error=None if row.error is None else clean(row.error),
        over=[clean(o) for o in row.over]) for row in report.rows]
    hosts = {clean(name): dataclasses.replace(
        h, name=clean(h.name), reason=None if h.reason is None else clean(h.reason),
        over=[clean(o) for o in h.over]) for name, h in report.hosts.items()}
    return dataclasses.replace(report, rows=rows, hosts=hosts, generated=clean(report.generated))


def _context(report: FleetDiskReport, color: bool = False,
             show_all: bool = False) -> dict[str, Any]:
    from fleetops.jobs.disk import summary as ds
    from fleetops.jobs.disk.changes import describe

    report = printable(report)
    groups, left_rows, left_hosts = ds.visible_groups(report, show_all)
    rows = [row for _, host_rows in groups for row in host_rows]
    return {"report": report, "totals": report.totals, "table": _table_lines(report, color, rows),
            "over_lines": _over_lines(report), "problems": report.problems,
            "colours": COLOURS, "worst_level": report.worst_level,
            "human": human_size, "subject": subject(report),
            "level_line": ds.level_line(report), "soonest": ds.soonest_lines(report),
            "changes": [clean(describe(c)) for c in report.changes], "shared": ds.shared_lines(report),
            "groups": groups, "left_rows": left_rows, "left_hosts": left_hosts,
            "all_groups": ds.host_groups(report) if left_rows else [],
            "growth": ds.growth_text, "full": ds.full_text, "sparkline": _sparkline(report)}


def _sparkline(report: FleetDiskReport):
    from fleetops.jobs.disk.sparkline import sparkline_svg

    def render(row: MountRow) -> str:
        return sparkline_svg(report.trend.get((row.host, row.mountpoint), ()),
                             COLOURS.get(row.level, COLOURS["unknown"]))

    return render


def _render_text_template(report: FleetDiskReport, color: bool, email: bool,
                          show_all: bool = False) -> str:
    env = _env()
    env.autoescape = False
    return env.get_template("disk-report.txt.j2").render(
        email=email, **_context(report, color, show_all))


def render_table(report: FleetDiskReport, color: bool = False, show_all: bool = False) -> str:
    """The terminal report: summary and changes, the table grouped by host (worst host
    first; at large sizes only the rows that matter unless ``show_all``), hosts over,
    problems, shared filesystems, totals."""
    return _render_text_template(report, color, email=False, show_all=show_all)


def render_text(report: FleetDiskReport) -> str:
    """The plain-text mail body (no colour)."""
    return _render_text_template(report, False, email=True)


def render_html(report: FleetDiskReport, show_all: bool = False) -> str:
    """Self-contained HTML (inline CSS and SVG sparklines, no script, no external asset);
    also the mail's HTML part. At large sizes the ``ok`` rows are in a closed <details>."""
    return _env().get_template("disk-report.html.j2").render(**_context(report, False, show_all))


CSV_FIELDS = ("host", "host_status", "host_reason", *MOUNT_KEYS)


def render_csv(report: FleetDiskReport) -> str:
    """One row per mount, then one row per failed/unreachable/skipped host (no mount).

    Text cells are escaped like the table (one line, no control characters, non-UTF-8
    bytes as ``\\xNN``) and a cell starting with ``= + - @`` gets a leading ``'``
    (spreadsheet formula injection)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()

    def write(row: dict[str, Any]) -> None:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})

    for row in report.rows:
        host = report.hosts[row.host]
        values = row.as_json()
        values["over"] = ";".join(row.over)
        values = {"host": row.host, "host_status": host.status,
                  "host_reason": host.reason or "", **values}
        write(values)
    for host in report.problems:
        if not host.mounts:
            write({"host": host.name, "host_status": host.status,
                   "host_reason": host.reason or ""})
    return out.getvalue()


def subject(report: FleetDiskReport) -> str:
    totals = report.totals
    text = f"[fleetops] disk report: {report.worst_level.upper()}"
    details = []
    if totals["hosts_over"]:
        details.append(f"{totals['hosts_over']} host(s) over threshold")
    if totals.get("mounts_soon"):
        details.append(f"{totals['mounts_soon']} mount(s) filling soon")
    problems = len(report.problems)
    if problems:
        details.append(f"{problems} host(s) without data")
    return text + (f" ({', '.join(details)})" if details else "")


def send_report_email(report: FleetDiskReport, to: Iterable[str],
                      settings: MailSettings | None = None) -> str:
    """Mail the report (text + HTML); returns the Message-ID, raises ``MailError``."""
    from ops._mail import load_settings, send_mail

    settings = settings or load_settings()
    return send_mail(settings, list(to), subject(report), render_text(report),
                     render_html(report))
