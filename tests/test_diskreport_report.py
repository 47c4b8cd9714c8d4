"""Control-side fleet disk report: aggregation, ordering, renderers (no SSH)."""

from __future__ import annotations

import csv
import io
import re
import types
from html.parser import HTMLParser

from fleetops.jobs.disk.report import (
    CSV_FIELDS,
    MOUNT_KEYS,
    HostOutcome,
    build_report,
    render_csv,
    render_html,
    render_table,
    render_text,
    report_json_hosts,
)
from fleetops.results import HostResult

GIB = 1 << 30


def mount(point: str, pct: int | None, inodes: int | None = 1, level: str | None = None,
          error: str | None = None, **extra) -> dict:
    size = 100 * GIB
    doc = {"mountpoint": point, "device": f"/dev/{point.strip('/') or 'root'}", "fstype": "ext4",
           "size_bytes": None if pct is None else size,
           "used_bytes": None if pct is None else pct * GIB,
           "avail_bytes": None if pct is None else (100 - pct) * GIB,
           "use_pct": pct, "inodes_total": 1000, "inodes_used": inodes and inodes * 10,
           "inodes_pct": inodes, "over": [], "error": error}
    if level is not None:
        doc["level"] = level
    doc.update(extra)
    return doc


def fleet() -> dict:
    return {
        "web1": ("ok", None, {"mounts": [
            mount("/", 40, level="ok"), mount("/srv", 91, level="crit", over=["space_crit"]),
            mount("/home", 85, inodes=50, level="warn", over=["space_warn"])]}),
        "web2": HostOutcome("web2", "changed", None, {"mounts": [
            mount("/", 85, level="warn", over=["space_warn"]),
            mount("/var", 85, inodes=95, level="crit", over=["space_warn", "inodes_crit"]),
            mount("/nfs", None, inodes=None, level="unknown",
                  error="statvfs timed out after 5s")]}),
        "db1": HostResult("db1", "unreachable", None, reason="ssh: connection refused"),
        "db2": {"status": "failed", "reason": "python3 not found on db2", "data": {}},
        "db3": types.SimpleNamespace(status="ok", reason=None,
                                     extra={"data": {"mounts": [mount("/", 99)]}}),
        "lb1": HostResult("lb1", "ok", 0, extra={"data": {"hostname": "lb1"}}),
        "old": ("skipped", "excluded by --limit", {}),
    }


def test_rows_are_sorted_worst_first():
    report = build_report(fleet(), warn=80, crit=90)
    order = [(r.host, r.mountpoint, r.level) for r in report.rows]
    assert order == [
        ("db3", "/", "crit"),        # no level in its data: computed from warn/crit (99 %)
        ("web1", "/srv", "crit"),    # crit 91 %
        ("web2", "/var", "crit"),    # crit 85 % (inodes 95 %)
        ("web1", "/home", "warn"),   # warn 85 %, inodes 50 % ...
        ("web2", "/", "warn"),       # ... before warn 85 %, inodes 1 %
        ("web2", "/nfs", "unknown"),
        ("web1", "/", "ok"),
    ]


def test_every_host_is_accounted_for():
    report = build_report(fleet())
    assert list(report.hosts) == ["web1", "web2", "db1", "db2", "db3", "lb1", "old"]
    problems = {h.name: (h.status, h.reason) for h in report.problems}
    assert problems == {
        "db1": ("unreachable", "ssh: connection refused"),
        "db2": ("failed", "python3 not found on db2"),
        "lb1": ("failed", "no disk data in the result"),
        "old": ("skipped", "excluded by --limit"),
    }
    assert report.hosts["web2"].status == "ok"
    assert report.hosts["web2"].over == ["/", "/var"]
    assert report.worst_level == "crit"
    totals = report.totals
    assert (totals["hosts"], totals["hosts_ok"], totals["hosts_failed"],
            totals["hosts_unreachable"], totals["hosts_skipped"], totals["hosts_over"]) == (
        7, 3, 2, 1, 1, 3)
    assert (totals["mounts"], totals["mounts_crit"], totals["mounts_warn"],
            totals["mounts_unknown"], totals["mounts_ok"]) == (7, 3, 2, 1, 1)
    assert totals["size_bytes"] == 6 * 100 * GIB
    assert totals["used_bytes"] == (40 + 91 + 85 + 85 + 85 + 99) * GIB


def test_json_hosts_have_exactly_the_mount_keys():
    doc = report_json_hosts(build_report(fleet()))
    assert set(doc) == {"web1", "web2", "db1", "db2", "db3", "lb1", "old"}
    assert doc["db1"] == {"mounts": [], "worst_level": "ok", "over": [], "source": None}
    assert doc["web1"]["source"] == "program"
    for host in doc.values():
        for item in host["mounts"]:
            assert tuple(item) == MOUNT_KEYS
    assert [m["mountpoint"] for m in doc["web2"]["mounts"]] == ["/var", "/", "/nfs"]
    assert doc["web2"]["mounts"][2]["error"] == "statvfs timed out after 5s"


def test_table_is_aligned_and_lists_problems():
    report = build_report(fleet())
    text = render_table(report, color=False)
    assert "\033[" not in text
    lines = text.splitlines()
    assert lines[0].startswith("Summary: 3 crit, 2 warn, 0 soon, 1 unknown, 1 ok mount(s)")
    top = next(i for i, line in enumerate(lines) if line.startswith("LEVEL"))
    table = lines[top:top + 1 + len(report.rows)]
    # grouped by host, the host with the worst row first, each host's rows worst first
    assert [line.split()[1] for line in table[1:]] == ["db3"] + ["web1"] * 3 + ["web2"] * 3
    bars = {line.index("[") for line in table[1:]}
    assert len(bars) == 1  # the usage bar starts in the same column on every row
    assert table[0].split()[:3] == ["LEVEL", "HOST", "MOUNT"]
    assert re.search(r"CRIT\s+web1\s+/srv\s+ext4\s+100G\s+91G\s+9\.0G\s+91%\s+\[#########\.\]",
                     text)
    assert "statvfs timed out after 5s" in text
    for host, reason in [("db1", "ssh: connection refused"), ("db2", "python3 not found"),
                         ("lb1", "no disk data"), ("old", "excluded by --limit")]:
        assert re.search(rf"^  {host}  \w+: {re.escape(reason)}", text, re.M)
    assert "web2: /var 85% space, 95% inodes (crit); / 85% space, 1% inodes (warn)" in text
    assert text.rstrip().splitlines()[-1].startswith("Totals: 7 host(s) (3 ok, 2 failed, "
                                                     "1 unreachable, 1 skipped)")


def test_table_colour_only_when_asked():
    coloured = render_table(build_report(fleet()), color=True)
    assert "\033[31mCRIT" in coloured and "\033[33mWARN" in coloured
    assert "\033[1mweb1" in coloured  # a host over threshold is bold


def test_text_for_mail_has_a_header():
    text = render_text(build_report(fleet(), generated="2024-05-01 10:00:00 UTC"))
    assert text.startswith("Disk report for 7 host(s), generated 2024-05-01 10:00:00 UTC.\n"
                           "Worst level: CRIT.")
    assert "\033[" not in text


class TagChecker(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input", "col"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.attrs.extend(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_html_is_self_contained_escaped_and_well_formed():
    outcomes = fleet()
    outcomes["<script>alert(1)</script>"] = ("unreachable", "bad <b>reason</b> & more", {})
    outcomes["web1"][2]["mounts"].append(mount("/data/<img src=x>", 10, level="ok"))
    page = render_html(build_report(outcomes))
    assert "http://" not in page and "https://" not in page
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "bad &lt;b&gt;reason&lt;/b&gt; &amp; more" in page
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert not [name for name, _ in checker.attrs if name in ("src", "href")]
    assert page.count('class="level"') == 8
    assert 'width: 91%; background: #c62828' in page  # crit bar red
    assert 'width: 85%; background: #e09100' in page  # warn bar amber
    assert 'width: 40%; background: #2e7d32' in page  # ok bar green
    for host in ("db1", "db2", "lb1", "old"):
        assert f'<td class="host">{host}</td>' in page


def test_csv_round_trips():
    report = build_report(fleet())
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert tuple(rows[0]) == CSV_FIELDS
    mounts = [r for r in rows if r["mountpoint"]]
    assert [(r["host"], r["mountpoint"]) for r in mounts] == [
        (r.host, r.mountpoint) for r in report.rows]
    for parsed, row in zip(mounts, report.rows, strict=True):
        assert parsed["use_pct"] == ("" if row.use_pct is None else str(row.use_pct))
        assert parsed["size_bytes"] == ("" if row.size_bytes is None else str(row.size_bytes))
        assert parsed["over"].split(";") == (row.over or [""])
        assert parsed["level"] == row.level
    problems = {r["host"]: (r["host_status"], r["host_reason"]) for r in rows
                if not r["mountpoint"]}
    assert problems == {"db1": ("unreachable", "ssh: connection refused"),
                        "db2": ("failed", "python3 not found on db2"),
                        "lb1": ("failed", "no disk data in the result"),
                        "old": ("skipped", "excluded by --limit")}
