"""``invoke disk-report`` output, byte for byte, on a recorded fleet (tests/diskfake.py).

The golden files under ``tests/data/diskjob/`` were written by the CLI before the report
became a library function (``fleetops.jobs.disk.run``); every format (table, json, csv,
html, prometheus; ``--all``; a second run with history, forecast and changes) must stay
identical, and so must the exit code. Only the per-run noise is normalised: each host's
``duration`` and ``uploaded_bytes`` (the zipapp's size), the history file's path.
Regenerate (only when the output is meant to change) with
``FLEETOPS_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_diskjob_golden.py``.
"""

from __future__ import annotations

import os
import re
import time
import types
from pathlib import Path

import pytest
from diskfake import NAMES, fleet_network
from invoke import Context
from invoke.exceptions import Exit

from fleetops.core.runner import Fleet
from fleetops.core.testing import FakeNetwork, hosts

GOLDEN = Path(__file__).parent / "data" / "diskjob"
T0 = 1_780_000_000.0
DAY = 86400.0


@pytest.fixture
def fake_fleet(monkeypatch):
    """The CLI's inventory and SSH replaced by the recorded fleet; fixed clocks."""
    from fleetops.cli import common
    from fleetops.jobs.disk import history, model, trend
    from fleetops.ship import run as ship_run

    net = fleet_network()
    monkeypatch.setattr(common, "targets", lambda inventory, pattern="all", limit=None:
                        hosts(*(limit.split(",") if limit else NAMES)))
    monkeypatch.setattr(Fleet, "_ssh_or_local",
                        lambda self, target, on_socket: net.connect(target, on_socket))
    monkeypatch.setattr(ship_run, "target_for", FakeNetwork.target_for)
    monkeypatch.setattr(model, "time", types.SimpleNamespace(
        strftime=lambda fmt: "2026-11-30 18:00:00 UTC"))
    clock = types.SimpleNamespace(now=T0)
    fake_time = types.SimpleNamespace(time=lambda: clock.now, monotonic=time.monotonic,
                                      sleep=time.sleep)
    monkeypatch.setattr(trend, "time", fake_time)
    monkeypatch.setattr(history, "time", fake_time)
    return clock


def run_cli(capsys, **options) -> tuple[str, int]:
    """``invoke disk-report`` in process: (stdout, exit code)."""
    out, code, _ = run_cli_err(capsys, **options)
    return out, code


def run_cli_err(capsys, **options) -> tuple[str, int, str]:
    """``invoke disk-report`` in process: (stdout, exit code, stderr)."""
    from fleetops.cli.diskreport import report

    options.setdefault("inventory", "recorded.ini")
    code = 0
    try:
        report(Context(), retry_file=None, forks=4, **options)
    except Exit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return captured.out, code, captured.err


def normalise(text: str, history: Path | None = None) -> str:
    text = re.sub(r'"duration": [0-9.e-]+', '"duration": 0', text)
    text = re.sub(r'"uploaded_bytes": [0-9]+', '"uploaded_bytes": 0', text)
    if history is not None:
        text = text.replace(str(history), "HISTORY")
    return text


def check(name: str, text: str, code: int) -> None:
    doc = f"exit {code}\n{text}"
    path = GOLDEN / name
    if os.environ.get("FLEETOPS_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(doc.encode("utf-8", "surrogateescape"))
    assert doc == path.read_bytes().decode("utf-8", "surrogateescape"), name


@pytest.mark.parametrize("fmt,show_all", [("table", False), ("table", True), ("json", False),
                                          ("csv", False), ("html", False), ("html", True),
                                          ("prometheus", False)])
def test_every_format_is_unchanged(fake_fleet, capsys, fmt, show_all):
    out, code = run_cli(capsys, format=fmt, all=show_all, no_history=True)
    assert code == 2  # db2/db3/old1... failed: the host exit code wins over 8
    check(f"{fmt}{'-all' if show_all else ''}.txt", normalise(out), code)


def test_second_run_with_history_is_unchanged(fake_fleet, capsys, tmp_path):
    store = tmp_path / "history.sqlite"
    for step in range(3):
        fake_fleet.now = T0 + step * DAY
        for fmt in ("table", "json", "html"):
            fake_fleet.now += 1  # one run per format, a second apart
            out, code = run_cli(capsys, format=fmt, history=str(store))
            if step == 2:
                check(f"history-{fmt}.txt", normalise(out, store), code)


def test_thresholds_change_levels_and_exit(fake_fleet, capsys):
    """Every host answering and one mount over --crit: exit 8 (README)."""
    out, code = run_cli(capsys, format="csv", no_history=True, crit="95", warn="95",
                        limit="web1,lb1")
    check("csv-crit.txt", normalise(out), code)


def test_cli_says_what_the_library_reports(fake_fleet, capsys, tmp_path, monkeypatch):
    """The operator's lines on stderr (history error, unsent mail) and exit 6."""
    from test_diskjob_fake import closed_port

    monkeypatch.setenv("FLEETOPS_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("FLEETOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("FLEETOPS_SMTP_PORT", str(closed_port()))
    monkeypatch.setenv("FLEETOPS_SMTP_SECURITY", "none")
    os.mkfifo(tmp_path / "fifo")
    out, code, err = run_cli_err(capsys, format="csv", limit="lb1",
                                 history=str(tmp_path / "fifo"), email=["ops@example.com"])
    assert code == 6 and out.startswith("host,host_status")
    saved = sorted((tmp_path / "spool").glob("*.txt"))
    assert len(saved) == 1
    lines = [line for line in err.splitlines() if line.startswith("fleetops:")]
    assert lines[0].endswith("(report produced without history)")
    assert lines[1].startswith("fleetops: mail to ops@example.com failed: ")
    assert lines[1].endswith(f"; report saved in {saved[0]}")
