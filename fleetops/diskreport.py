"""Fleet disk report: aggregate per-host ``diskreport`` results and render them.

Pure functions (no SSH): the input maps host name -> outcome, where an outcome is a
:class:`HostOutcome`, a ``(status, reason, data)`` tuple, a mapping with those keys,
or a runner ``HostResult`` (``data`` attribute or ``extra["data"]``). ``data`` is the
remote program's ``data`` document. Every host appears in the report: hosts that
failed, were unreachable or skipped are listed with their reason.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

    from ops._mail import MailSettings

from fleetops.sanitize import clean, csv_cell
from ops._mounts import LEVELS, classify, human_size, tidy_number

TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data (a link in a checkout)
MOUNT_KEYS = ("mountpoint", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes",
              "use_pct", "inodes_total", "inodes_used", "inodes_pct", "level", "over", "error",
              "growth_bytes_per_day", "full_in_days")
# The control side adds "soon" (under threshold, full within --fill-warn-days) to the
# program's levels; ascending severity.
REPORT_LEVELS = ("ok", "unknown", "soon", "warn", "crit")
COLOURS = {"ok": "#2e7d32", "unknown": "#757575", "soon": "#6a1b9a", "warn": "#e09100",
           "crit": "#c62828"}
ANSI = {"ok": "\033[32m", "unknown": "\033[90m", "soon": "\033[35m", "warn": "\033[33m",
        "crit": "\033[31m"}
BOLD, RESET = "\033[1m", "\033[0m"
PROBLEM_STATUSES = ("failed", "unreachable", "skipped")
BAR_WIDTH = 10


@dataclass
class HostOutcome:
    name: str
    status: str
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


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
    if isinstance(value, tuple):
        status, reason, data = value
        return HostOutcome(name, status, reason, dict(data or {}))
    if isinstance(value, Mapping):
        return HostOutcome(name, value["status"], value.get("reason"), dict(value.get("data") or {}))
    data = getattr(value, "data", None)
    if data is None:
        data = (getattr(value, "extra", None) or {}).get("data")
    return HostOutcome(name, value.status, getattr(value, "reason", None), dict(data or {}))


def _row(host: str, mount: Mapping[str, Any], limits: tuple[float, float]) -> MountRow:
    values = {key: mount.get(key) for key in MOUNT_KEYS}
    values["growth_bytes_per_day"] = values["full_in_days"] = None
    values["over"] = list(values["over"] or [])
    if values["level"] not in LEVELS:
        if values["use_pct"] is None:
            values["level"] = "unknown"
        else:
            values["level"], values["over"] = classify(values, limits, limits)
    values["mountpoint"] = values["mountpoint"] or "?"
    values["device"], values["fstype"] = values["device"] or "", values["fstype"] or ""
    return MountRow(host=host, **values)


def build_report(results: Mapping[str, Any], warn: float = 80, crit: float = 90,
                 generated: str | None = None) -> FleetDiskReport:
    """One fleet report: every mount of every host, worst first; every host summarised."""
    rows: list[MountRow] = []
    hosts: dict[str, HostSummary] = {}
    for name, value in results.items():
        outcome = outcome_from(name, value)
        mounts = outcome.data.get("mounts")
        status = outcome.status
        reason = outcome.reason
        if status in ("ok", "changed") and not isinstance(mounts, list):
            status, reason = "failed", reason or "no disk data in the result"
        host_rows = [_row(name, m, (warn, crit)) for m in (mounts or []) if isinstance(m, Mapping)]
        rows.extend(host_rows)
        hosts[name] = HostSummary(
            name, "ok" if status == "changed" else status, reason,
            worst(r.level for r in host_rows), len(host_rows),
            [r.mountpoint for r in host_rows if r.level in ("warn", "crit")],
            outcome.data.get("source") or ("program" if isinstance(mounts, list) else None))
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
    from fleetops.disksummary import network_source

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
    from fleetops.disksummary import full_text, growth_text

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
    from fleetops import disksummary as ds
    from fleetops.diskchanges import describe

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
    from fleetops.sparkline import sparkline_svg

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
