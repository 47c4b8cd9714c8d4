"""The disk report goes through the one reporter: its --format renderers are registered
for DiskView, the document goes to stdout and operator lines (notices) to stderr."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fleetops.cli.diskreport import DiskView, _emit, _register_formats
from fleetops.cli.output import Printer, formats, render
from fleetops.jobs.disk.model import build_report
from fleetops.jobs.disk.output import FORMATS
from fleetops.results import RunResult

REPO = Path(__file__).resolve().parents[1]
DATA = {"mounts": [{"mountpoint": "/", "device": "/dev/vda1", "fstype": "ext4",
                    "size_bytes": 100, "used_bytes": 95, "avail_bytes": 5, "use_pct": 95,
                    "inodes_total": 10, "inodes_used": 1, "inodes_pct": 10, "level": "crit",
                    "over": ["space"]}]}


def _report():
    return build_report({"web1": ("ok", None, DATA)}, generated="2026-11-30 00:00:00 UTC")


def test_every_format_is_a_renderer_of_the_reporter():
    _register_formats()
    assert formats(DiskView) == FORMATS
    view = DiskView(_report(), RunResult())
    for fmt in FORMATS:
        assert render(view, fmt).endswith("\n")
    assert "web1" in render(view, "csv") and "<html" in render(view, "html").lower()


def test_document_to_stdout_and_notice_to_stderr(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    printer = Printer(1, out=out, err=err, show_output=False, progress=False)
    _emit(RunResult(), _report(), "csv", None, printer=printer)
    assert out.getvalue().startswith("host,") and err.getvalue() == ""
    target = tmp_path / "r.csv"
    _emit(RunResult(), _report(), "csv", target, printer=printer)
    assert target.read_text().startswith("host,")
    assert err.getvalue() == f"report written to {target}\n"


def test_prometheus_labels_show_host_text_safely_and_parse():
    """A hostile mount name reaches the exposition as visible text: no raw control or
    bidi character, and the document still parses (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    from fleetops.jobs.disk.prometheus import render_prometheus
    from fleetops.sanitize import _UNSAFE

    bad = dict(DATA["mounts"][0], mountpoint="/x\x1b]0;PWN\x07\u202e\"\\\n",
               device="\udcff=HYPERLINK()")
    text = render_prometheus(build_report({"web1": ("ok", None, {"mounts": [bad]})}))
    assert not _UNSAFE.search(text.replace("\n", ""))
    labels = [s.labels for f in text_string_to_metric_families(text) for s in f.samples
              if "mountpoint" in s.labels]
    assert labels and labels[0]["mountpoint"] == "/x\\x1b]0;PWN\\x07\\u202e\"\\\\n"


@pytest.mark.parametrize("address", ["x@evil\nBcc: y@evil", "a@b.c, x@evil.com", "a@b\n",
                                     "<a@b>", "a b@c", "@b", "a@"])
def test_a_bad_email_is_exit_5_before_any_host(address, tmp_path):
    import subprocess
    import sys

    inventory = tmp_path / "inv.ini"
    inventory.write_text("web1 ansible_host=127.0.0.1 ansible_port=9\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "disk-report",
                           "-i", str(inventory), "--email", address, "--timeout", "1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--email" in proc.stderr
    assert "web1" not in proc.stdout + proc.stderr
