"""The HTML disk report at 1 000 hosts x 3 mounts with history, rendered by headless
Chromium (issue 14 point 4): summary on top, one inline-SVG sparkline per mount with
history, the forecast shown, no script, no page error, a real screenshot. No lab."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from fleetops.jobs.disk.forecast import DAY_S
from fleetops.jobs.disk.report import build_report, render_html
from fleetops.jobs.disk.summary import visible_groups
from fleetops.jobs.disk.trend import track
from tests.test_diskhistory import T0, mount, results

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_S = 60
HOSTS, NEW_HOSTS, RUNS = 1000, 10, 4

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} missing (apt-get install chromium)")


def fleet(run: int) -> dict:
    """990 hosts in every run, 10 hosts new in the last one (no sparkline: one sample);
    h0001 /var grows 10 GiB a day, h0050 / is crit, new host n0003 / is warn."""
    hosts = {f"h{i:04d}": [mount("/", 10 + i % 7), mount("/var", 20 + i % 13), mount("/srv", 30)]
             for i in range(HOSTS - NEW_HOSTS)}
    hosts["h0001"][1] = mount("/var", 40 + 10 * run)
    hosts["h0050"][0] = mount("/", 95)
    if run == RUNS - 1:
        hosts.update({f"n{i:04d}": [mount("/", 10), mount("/var", 20), mount("/srv", 30)]
                      for i in range(NEW_HOSTS)})
        hosts["n0003"][0] = mount("/", 85)
    return results(**hosts)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """Run headless Chromium in its own process group; on overrun kill that group by pid."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium {args[-1]} ran over {TIMEOUT_S} s")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def page_errors(stderr: str) -> list[str]:
    """Lines about the page (console messages, failed loads); Chromium's own noise about
    the missing D-Bus and its launcher script is not about the page."""
    return [line for line in stderr.splitlines()
            if re.search(r"CONSOLE|net::ERR_|file://|Uncaught|blocked", line)]


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """``(width, height, filtered scanlines)`` of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6)
    idat, pos = b"", 8
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + size]
        pos += 12 + size
    raw = zlib.decompress(idat)
    stride = 1 + width * (3 if colour == 2 else 4)
    assert len(raw) == height * stride
    return width, height, [raw[i:i + stride] for i in range(0, len(raw), stride)]


def test_html_report_at_1000_hosts_in_headless_chromium(tmp_path):
    history = tmp_path / "h.sqlite"
    for run in range(RUNS):
        report = build_report(fleet(run))
        assert track(report, history, ts=T0 + run * DAY_S) is None
    assert len(report.hosts) == HOSTS and len(report.rows) == 3 * HOSTS
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")

    # every rendered row (the top table, and all rows in the closed <details>) of a
    # mount with history has its sparkline
    groups, left_rows, _ = visible_groups(report)
    rendered = [r for _, rows in groups for r in rows] + (report.rows if left_rows else [])
    with_history = [r for r in rendered if len(report.trend.get((r.host, r.mountpoint), ())) > 1]
    assert 0 < len(with_history) < len(rendered)  # the new hosts have no sparkline

    dump = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "p1")
    assert dump.returncode == 0, dump.stderr[-2000:]
    assert page_errors(dump.stderr) == []
    dom = dump.stdout
    assert dom.rstrip().endswith("</html>") and "<script" not in dom.lower()
    # summary and forecast first, then the table
    order = [dom.index(s) for s in ("<h2>Summary</h2>", 'class="summary"', 'class="soonest"',
                                    "<h2>Mounts by host</h2>", "<details>")]
    assert order == sorted(order)
    assert "h0001 /var in 3 days (+10G/day, soon)" in dom
    top = dom[dom.index("<h2>Mounts by host</h2>"):dom.index("<details>")]
    assert top.count("<tr") == 1 + 3  # header, crit, warn, soon: the ok rows are folded
    assert f"{3 * HOSTS - 3} ok mount(s) not listed above" in dom
    assert len(re.findall(r"<svg\b", dom)) == len(with_history)
    assert len(re.findall(r"<polyline\b[^>]*points=\"(?:[\d.]+,[\d.]+ ){3}[\d.]+,[\d.]+\"", dom)) \
        == len(with_history)
    var = next(r for r in report.rows if (r.host, r.mountpoint) == ("h0001", "/var"))
    assert var.full_in_days is not None
    row = re.search(r"<td class=\"host\">h0001</td>.*?</tr>", top, re.S)
    assert row and f'<td class="num">{var.full_in_days:g}d</td>' in row.group(0)
    new = re.search(r"<td class=\"host\">n0003</td>.*?</tr>", top, re.S)
    assert new and '<td class="trend"></td>' in new.group(0)  # one sample: no sparkline

    shot = tmp_path / "report.png"
    run = chromium(f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri(),
                   profile=tmp_path / "p2")
    assert run.returncode == 0, run.stderr[-2000:]
    assert page_errors(run.stderr) == []
    data = shot.read_bytes()
    assert len(data) > 20_000
    width, height, rows = png_rows(data)
    assert (width, height) == (1280, 2000)
    # text, bars and sparklines above the fold: many different scanlines, not one colour
    assert len(set(rows[:700])) > 100
