"""Summary, grouped rows, --all, shared filesystems, sparklines, prometheus (no SSH)."""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from prometheus_client.parser import text_string_to_metric_families

from fleetops.jobs.disk.forecast import DAY_S
from fleetops.jobs.disk.prometheus import render_prometheus
from fleetops.jobs.disk.report import (
    build_report,
    render_csv,
    render_html,
    render_table,
    render_text,
    subject,
)
from fleetops.jobs.disk.sparkline import sparkline_points, sparkline_svg
from fleetops.jobs.disk.summary import network_source, shared_filesystems, summary, visible_groups
from fleetops.jobs.disk.trend import track
from tests.test_diskhistory import GIB, T0, mount, results


def nfs(point: str, used_gib: float, device: str = "filer:/export/home") -> dict:
    doc = mount(point, used_gib, size_gib=1000)
    doc.update(device=device, fstype="nfs4")
    return doc


def big_fleet(hosts: int = 400, **changed: list) -> dict:
    fleet = {f"h{i:04d}": [mount("/", 10), mount("/var", 20), nfs("/home", 400)]
             for i in range(hosts)}
    fleet["h0007"][1] = mount("/var", 85)
    fleet["h0050"][0] = mount("/", 95)
    fleet.update(changed)
    return results(**fleet)


def test_shared_nfs_counted_once():
    rep = build_report(big_fleet(100))
    assert network_source(rep.rows[0]) is None
    shared = shared_filesystems(rep)
    assert len(shared) == 1 and shared[0].source == "filer:/export/home"
    assert len(shared[0].mounts) == 100
    # 100 hosts x (100 GiB + 100 GiB local) + the 1000 GiB export once
    assert rep.totals["size_bytes"] == (100 * 200 + 1000) * GIB
    assert rep.totals["filesystems"] == 201 and rep.totals["mounts"] == 300
    doc = summary(rep)
    assert doc["shared"][0]["hosts"][:2] == ["h0000", "h0001"] and len(doc["shared"][0]["hosts"]) == 100
    text = render_table(rep)
    assert "filer:/export/home (nfs4) 40% of 1000G, on 100 host(s): h0000, h0001" in text
    assert "201 filesystem(s): " in text
    # the same export written differently is still one; another export is not
    assert network_source(rep.rows[0].__class__("x", "/h", "FILER:/export/home/", "nfs")) == \
        "filer:/export/home"


def test_large_fleet_table_keeps_rows_that_matter():
    rep = build_report(big_fleet(400))
    groups, left_rows, left_hosts = visible_groups(rep)
    assert [(h, [r.mountpoint for r in rows]) for h, rows in groups] == [
        ("h0050", ["/"]), ("h0007", ["/var"])]
    assert (left_rows, left_hosts) == (1198, 398)
    text = render_table(rep)
    assert "... 1198 ok mount(s) not shown (398 host(s) all ok); --all lists every mount." in text
    assert len(text.splitlines()) < 40
    full = render_table(rep, show_all=True)
    assert len([line for line in full.splitlines() if re.match(r"(OK|WARN|CRIT) ", line)]) == 1200
    assert "not shown" not in full


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.svgs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "br", "polyline", "circle", "rect"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in ("polyline", "circle", "rect"):
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_has_sparklines_forecast_changes_and_stays_small(tmp_path):
    path = tmp_path / "h.sqlite"
    for day in range(5):
        fleet = big_fleet(300, h0001=[mount("/", 10), mount("/var", 40 + 10 * day)])
        rep = build_report(fleet)
        assert track(rep, path, ts=T0 + day * DAY_S) is None
    html = render_html(rep)
    parser = Collector()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags and "<script" not in html
    svgs = re.findall(r"<svg .*?</svg>", html)
    assert svgs, "one sparkline per mount with history"
    for svg in svgs[:50]:
        root = ET.fromstring(svg)  # well-formed XML, SVG namespace
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        points = root.find("{http://www.w3.org/2000/svg}polyline").get("points").split()
        assert len(points) == 5
    assert "Changes since the previous run (1)" in html
    assert "h0001 /var: crossed soon -&gt; warn" in html
    assert "<details>" in html  # the ok rows of 300 hosts are folded away
    assert len(html) < 3_000_000
    text = render_text(rep)
    assert text.index("Changes since the previous run") < text.index("LEVEL")
    assert subject(rep) == "[fleetops] disk report: CRIT (3 host(s) over threshold)"
    rows = list(csv.DictReader(io.StringIO(render_csv(rep))))
    var = next(r for r in rows if r["host"] == "h0001" and r["mountpoint"] == "/var")
    assert var["growth_bytes_per_day"] == str(10 * GIB) and var["full_in_days"] == "2.0"
    assert "Soonest to fill:\n  h0001 /var in 2 days (+10G/day, warn)" in text


def test_subject_counts_mounts_filling_soon(tmp_path):
    for day in range(3):
        rep = build_report(big_fleet(60, h0001=[mount("/", 10), mount("/var", 40 + 10 * day)]))
        track(rep, tmp_path / "h.sqlite", ts=T0 + day * DAY_S)
    assert subject(rep) == ("[fleetops] disk report: CRIT (2 host(s) over threshold, "
                            "1 mount(s) filling soon)")


def test_sparkline_geometry():
    coords = sparkline_points([(0, 0.0), (50, 50.0), (100, 100.0)], width=102, height=102)
    assert coords == [(1, 101), (51, 51), (101, 1)]
    assert sparkline_svg([(0, 10.0)], "#000") == ""
    svg = sparkline_svg([(0, 10.0), (1, 20.0)], "#c62828")
    assert ET.fromstring(svg).get("width") == "80"


def test_prometheus_output_parses_with_prometheus_client(tmp_path):
    path = tmp_path / "h.sqlite"
    for day in range(3):
        fleet = results(web1=[mount("/", 10 + day), mount('/odd "path"\\x', 5)],
                        db1="ssh: connection refused")
        rep = build_report(fleet)
        track(rep, path, ts=T0 + day * DAY_S)
    text = render_prometheus(rep)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"node_filesystem_size_bytes", "node_filesystem_avail_bytes", "node_filesystem_files",
            "node_filesystem_files_free", "fleetops_filesystem_full_in_days"} <= set(families)
    size = {s.labels["mountpoint"]: s for s in families["node_filesystem_size_bytes"].samples}
    assert set(size) == {"/", '/odd "path"\\x'}
    assert size["/"].labels == {"host": "web1", "mountpoint": "/", "device": "/dev/x_",
                                "fstype": "ext4"}
    assert size["/"].value == 100 * GIB
    free = {s.labels["mountpoint"]: s.value for s in families["node_filesystem_files_free"].samples}
    assert free["/"] == 900
    full = families["fleetops_filesystem_full_in_days"].samples
    assert [(s.labels["mountpoint"], s.value) for s in full] == [("/", 88.0)]
    assert all(f.type == "gauge" for f in families.values())
    assert all(not math.isnan(s.value) for f in families.values() for s in f.samples)


def test_prometheus_output_is_utf8_with_names_that_are_not():
    rep = build_report(results(**{"h\udcfe": [mount("/mnt/\udcff\"x", 5)]}))
    text = render_prometheus(rep)
    text.encode("utf-8")
    family = {f.name: f for f in text_string_to_metric_families(text)}["node_filesystem_size_bytes"]
    assert family.samples[0].labels["mountpoint"] == '/mnt/\\xff"x'
    assert family.samples[0].labels["host"] == "h\\xfe"
