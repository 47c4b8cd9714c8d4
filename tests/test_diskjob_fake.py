"""``fleetops.jobs.disk.run.disk_report`` on the fake transport (no sshd, seconds).

The recorded fleet (tests/diskfake.py) has answering hosts, an unreachable one, a hostile
document, a failed program, a host without python3 (df fallback) and a dropped
connection. The function must never print or raise for a host's failure, return typed
per-host data, and own the exit status of README "Results and exit codes" (0, 2, 3, 6,
8); mail failures spool the report (real SMTP server: aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import os
import socket
import stat

import pytest
from diskfake import NAMES, document, fleet_docs, fleet_network, mount
from test_mail import smtp_server

from fleetops.core.runner import RunOptions
from fleetops.core.testing import hosts
from fleetops.jobs.disk.model import build_report, disk_data
from fleetops.jobs.disk.output import FORMATS, render
from fleetops.jobs.disk.run import DiskReportSettings, disk_report, typed_hosts
from fleetops.results import HostResult, ProgramData, RunResult
from fleetops.ship.data import DiskreportData, Mount
from ops._mail import MailSettings

ARGV = ["--warn", "80", "--crit", "90"]
T0 = 1_780_000_000.0


def report(names=NAMES, docs=None, settings=None, ts=T0, seen=None):
    net = fleet_network(docs)
    settings = settings or DiskReportSettings(no_history=True)
    return disk_report(hosts(*names), settings, RunOptions(forks=4, command_timeout=10),
                       lambda host: ARGV, connect=net.connect, target_for=net.target_for,
                       on_result=None if seen is None else lambda r, _run: seen.append(r), ts=ts)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: connection refused


def mail_to(port: int) -> MailSettings:
    return MailSettings("127.0.0.1", port, security="none", sender="f@example.com", timeout=5)


def test_every_host_ends_with_a_status_and_the_run_goes_on(capsys):
    seen: list = []
    result = report(seen=seen)
    status = {name: (h.status, h.reason) for name, h in result.hosts.items()}
    assert list(status) == list(NAMES)  # inventory order, every host
    assert status["db1"] == ("unreachable", "db1:22: Connection refused")
    assert status["db2"][0] == "failed"  # the hostile document, field named
    assert status["db2"][1] == ('bad result: result.data.mounts[0].size_bytes: expected an '
                                'integer, got "abc"')
    assert status["db3"] == ("failed", "cannot read /proc/self/mounts: permission denied")
    assert status["gone"][0] == "unreachable"
    assert {status[n][0] for n in ("web1", "web2", "old1", "evil", "lb1")} == {"ok"}
    assert result.exit_code == 2  # failed hosts win over the critical mounts
    assert sorted(r.name for r in seen) == sorted(NAMES)  # progress: one event per host
    assert capsys.readouterr() == ("", "")  # never prints


def test_host_data_is_typed_and_converted_once():
    result = report()
    web1 = result.hosts["web1"]
    assert type(web1.disk) is DiskreportData and all(type(m) is Mount for m in web1.disk.mounts)
    assert [m.mountpoint for m in web1.disk.mounts] == ["/", "/srv", "/home"]
    assert web1.disk.mounts[1].level == "crit" and web1.disk.over == ["/srv", "/home"]
    assert web1.result.data is None and web1.result.uploaded_bytes > 0  # data moved to disk
    assert "data" not in web1.result.to_json()
    assert result.hosts["db2"].disk is None and result.hosts["db1"].disk is None
    old1 = result.hosts["old1"].disk  # no python3: the df fallback builds the same class
    assert type(old1) is DiskreportData and all(type(m) is Mount for m in old1.mounts)
    assert old1.source == "df" and [m.mountpoint for m in old1.mounts] == ["/", "/srv/data"]
    assert result.report.hosts["old1"].source == "df"
    with pytest.raises(AttributeError):
        web1.disk.mounts[0].level = "ok"  # frozen: nobody edits it downstream


def test_the_job_takes_the_programs_object_as_built():
    doc = document([mount("/", 50), mount("/srv", 95, "crit", ["space_crit"])])["data"]
    data = DiskreportData.from_json(doc)
    runner = HostResult("h", "ok", 0, data=data, uploaded_bytes=7)
    typed = typed_hosts(RunResult({"h": runner}))["h"]
    assert typed.disk is data  # not converted a second time
    assert runner.data is data  # the runner's result is not modified
    assert typed.result.data is None and typed.result.uploaded_bytes == 7
    # every accepted input shape gives the same report
    shapes = [{"h": typed}, {"h": runner}, {"h": ("ok", None, doc)},
              {"h": {"status": "ok", "data": doc}},
              {"h": HostResult("h", "ok", 0, data=ProgramData.from_json(doc))}]
    rows = [[r.as_json() for r in build_report(s, generated="t").rows] for s in shapes]
    assert all(r == rows[0] for r in rows) and rows[0][0]["level"] == "crit"


def test_every_format_renders_from_the_typed_result():
    result = report()
    for fmt in FORMATS:
        text = render(result, fmt)
        assert "web1" in text and "/srv" in text, fmt
    assert "\u202e" not in render(result, "table")  # hostile text stays escaped
    with pytest.raises(ValueError):
        render(result, "yaml")


def test_exit_codes_of_the_readme():
    ok_only = {"lb1": fleet_docs()["lb1"]}
    assert report(["lb1"], ok_only).exit_code == 0
    assert report(["web1"]).exit_code == 8  # every host answered, a mount over --crit
    assert report(["lb1", "db1"]).exit_code == 3  # unreachable, none failed
    assert report(["lb1", "db3"]).exit_code == 2


def test_unclassified_mounts_are_judged_with_the_settings():
    docs = {"h": document([{**mount("/", 85), "level": None}])}
    assert report(["h"], docs, DiskReportSettings(80, 90, no_history=True)).exit_code == 0
    strict = report(["h"], docs, DiskReportSettings(70, 84, no_history=True))
    assert strict.report.rows[0].level == "crit" and strict.exit_code == 8


def test_mail_failure_spools_the_report_and_exits_6(tmp_path, capsys):
    spool = tmp_path / "reports"
    settings = DiskReportSettings(no_history=True, email=("ops@example.com",),
                                  mail=mail_to(closed_port()), spool_dir=spool)
    result = report(["lb1"], settings=settings)
    assert result.exit_code == 6 and not result.mail.sent
    assert result.mail.saved is not None and result.mail.saved.parent == spool
    assert "lb1" in result.mail.saved.read_text()
    assert result.mail.saved.with_suffix(".html").exists()
    assert stat.S_IMODE(os.stat(result.mail.saved).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(spool).st_mode) == 0o700
    assert result.mail.line().startswith("fleetops: mail to ops@example.com failed: ")
    assert result.mail.line().endswith(f"; report saved in {result.mail.saved}")
    assert capsys.readouterr() == ("", "")


def test_mail_failure_with_no_spool_still_exits_6(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a directory")
    settings = DiskReportSettings(no_history=True, email=("ops@example.com",),
                                  mail=mail_to(closed_port()), spool_dir=blocker)
    result = report(["lb1"], settings=settings)
    assert result.exit_code == 6 and result.mail.saved is None and result.mail.save_error
    assert "; report not saved: " in result.mail.line()


def test_crit_wins_over_a_failed_mail(tmp_path):
    settings = DiskReportSettings(no_history=True, email=("ops@example.com",),
                                  mail=mail_to(closed_port()), spool_dir=tmp_path / "r")
    assert report(["web1"], settings=settings).exit_code == 8


def test_mail_sent_once_to_every_address(tmp_path):
    with smtp_server() as (inbox, port):
        settings = DiskReportSettings(no_history=True, email=("a@example.com", "b@example.com"),
                                      mail=mail_to(port), spool_dir=tmp_path / "r")
        result = report(["lb1", "web1"], settings=settings)
    assert result.mail.sent and result.exit_code == 8
    assert len(inbox.messages) == 1 and inbox.messages[0][1] == ["a@example.com", "b@example.com"]
    assert result.mail.line() == f"report mailed to a@example.com, b@example.com " \
                                 f"({result.mail.message_id})"
    assert not (tmp_path / "r").exists()


def test_history_forecast_and_changes(tmp_path):
    store = tmp_path / "h.sqlite"
    settings = DiskReportSettings(history=store)
    first = report(["lb1"], settings=settings, ts=T0)
    assert first.history_error is None and first.report.history["runs"] == 1
    docs = {"lb1": document([mount("/", 12), mount("/boot", 30, fstype="vfat"),
                             mount("/shared", 95, "crit", ["space_crit"],
                                   device="nas:/export/", fstype="nfs4")])}
    second = report(["lb1"], docs, settings, ts=T0 + 86400)
    assert second.report.history["runs"] == 2 and second.report.changes
    row = next(r for r in second.report.rows if r.mountpoint == "/shared")
    assert row.growth_bytes_per_day == 35 * (1 << 30)


def test_history_error_is_reported_not_raised(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    result = report(["lb1", "web1"], settings=DiskReportSettings(history=tmp_path / "fifo"))
    assert result.history_error and result.report.history is None
    assert result.history_line().endswith("(report produced without history)")
    assert result.exit_code == 8 and len(result.report.rows) == 6  # the report is whole
    assert all(r.full_in_days is None for r in result.report.rows)


def test_disk_data_is_lenient_with_hand_made_documents():
    assert disk_data(None) is None and disk_data({"hostname": "x"}) is None
    assert disk_data({"mounts": "all"}) is None and disk_data(ProgramData.from_json({})) is None
    disk = disk_data({"mounts": [{"mountpoint": "/"}, "junk"], "skipped": "junk"})
    assert type(disk) is DiskreportData and len(disk.mounts) == 1
    assert type(disk.mounts[0]) is Mount and disk.mounts[0].mountpoint == "/"
    assert disk.mounts[0].over is None and disk.mounts[0].get("growth_bytes_per_day") is None
    built = disk_data(DiskreportData(mounts=[{"mountpoint": "/a"}, Mount(mountpoint="/b")]))
    assert [type(m) for m in built.mounts] == [Mount, Mount]
    report = build_report({"h": ("ok", None, {"mounts": [{"mountpoint": "/", "use_pct": 95}]})})
    assert report.rows[0].level == "crit" and report.rows[0].over == ["space_crit"]
