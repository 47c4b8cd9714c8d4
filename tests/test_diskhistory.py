"""Disk history (SQLite), forecast, SOON level and changes since the previous run (no SSH)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat

import pytest

from fleetops.jobs.disk.changes import describe
from fleetops.jobs.disk.forecast import DAY_S, forecast, theil_sen
from fleetops.jobs.disk.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    History,
    HistoryError,
    Sample,
    default_path,
)
from fleetops.jobs.disk.report import build_report, report_json_hosts
from fleetops.jobs.disk.trend import track

GIB = 1 << 30
T0 = 1_700_000_000.0


def mount(point: str, used_gib: float, size_gib: int = 100, inodes_used: int = 100) -> dict:
    used = int(used_gib * GIB)
    size = size_gib * GIB
    pct = -(-used * 100 // size)
    return {"mountpoint": point, "device": "/dev/x" + point.replace("/", "_"), "fstype": "ext4",
            "size_bytes": size, "used_bytes": used, "avail_bytes": size - used, "use_pct": pct,
            "inodes_total": 1000, "inodes_used": inodes_used,
            "inodes_pct": -(-inodes_used * 100 // 1000), "over": [], "error": None}


def results(**hosts) -> dict:
    return {name: (("ok", None, {"mounts": mounts}) if isinstance(mounts, list)
                   else ("unreachable", mounts, {})) for name, mounts in hosts.items()}


# -- history file ---------------------------------------------------------------------

def test_default_path_follows_xdg():
    assert default_path({"XDG_DATA_HOME": "/d", "HOME": "/h"}) == \
        default_path({"XDG_DATA_HOME": "/d"}).parent / "disk-history.sqlite"
    assert str(default_path({"XDG_DATA_HOME": "/d"})) == "/d/fleetops/disk-history.sqlite"
    assert str(default_path({"XDG_DATA_HOME": "rel", "HOME": "/h"})) == \
        "/h/.local/share/fleetops/disk-history.sqlite"
    assert str(default_path({"HOME": "/h"})) == "/h/.local/share/fleetops/disk-history.sqlite"


def test_round_trip_modes_and_wal(tmp_path):
    path = tmp_path / "new" / "h.sqlite"
    with History(path) as history:
        assert history.previous() is None
        hosts = {"web1": ("ok", None, "program"), "db1": ("unreachable", "refused", None)}
        history.append(T0, hosts, [("web1", mount("/", 10)), ("web1", mount("/srv", 50))])
        history.append(T0 + DAY_S, hosts, [("web1", mount("/", 11))])
        assert history.runs() == 2
        prev = history.previous()
        assert prev.ts == T0 + DAY_S and prev.hosts == {"web1": "ok", "db1": "unreachable"}
        assert list(prev.levels) == [("web1", "/")]
        series = history.series(T0)
        assert [s.used_bytes for s in series[("web1", "/")]] == [10 * GIB, 11 * GIB]
        assert [s.ts for s in series[("web1", "/srv")]] == [T0]
        assert list(history.series(T0 + 1)) == [("web1", "/")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_old_schema_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO runs VALUES (1, ?, 1)", (T0,))
    db.execute("INSERT INTO samples VALUES (1, 'web1', '/', '/dev/sda', 'ext4', 1, 2, 3, 4, 5,"
               " 'ok')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with History(path) as history:
        assert history.version == SCHEMA_VERSION
        assert history.runs() == 1
        assert history.previous().levels == {("web1", "/"): "ok"}
        history.append(T0 + 60, {"web1": ("ok", None, "program")}, [("web1", mount("/", 1))])
        assert history.previous().hosts == {"web1": "ok"}


def test_newer_schema_damaged_file_and_unwritable_dir_are_one_line_errors(tmp_path):
    newer = tmp_path / "newer.sqlite"
    sqlite3.connect(newer).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer than this fleetops"):
        History(newer)
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(HistoryError) as info:
        History(damaged)
    assert str(damaged) in str(info.value) and "\n" not in str(info.value)
    if os.geteuid() != 0:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(HistoryError):
            History(locked / "h.sqlite")
    link = tmp_path / "link.sqlite"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(HistoryError):
        History(link)
    assert not (tmp_path / "elsewhere").exists()


def _writer(path: str, worker: int, runs: int) -> None:
    with History(path) as history:
        for run in range(runs):
            mounts = [(f"h{worker}-{n}", mount(f"/m{k}", 1 + run)) for n in range(20)
                      for k in range(5)]
            history.append(T0 + worker * 1000 + run, {f"h{worker}": ("ok", None, "program")},
                           mounts)


def test_concurrent_runs_do_not_corrupt(tmp_path):
    path = str(tmp_path / "h.sqlite")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, worker, 15)) for worker in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 60
    assert db.execute("SELECT count(*) FROM samples").fetchone()[0] == 60 * 100


# -- forecast -------------------------------------------------------------------------

def series(used_gib: list[float], size_gib: int = 100, step_days: float = 1.0) -> list[Sample]:
    size = size_gib * GIB
    return [Sample(T0 + i * step_days * DAY_S, int(u * GIB), size - int(u * GIB), size, 100, 1000)
            for i, u in enumerate(used_gib)]


def test_theil_sen_ignores_an_outlier():
    points = [(x, 2.0 * x) for x in range(10)]
    points[4] = (4, 500.0)
    assert theil_sen(points) == pytest.approx(2.0)
    assert theil_sen([(1, 1)]) is None


def test_steady_growth():
    fc = forecast(series([50, 52, 54, 56, 58, 60, 62, 64]))
    assert fc.growth_bytes_per_day == pytest.approx(2 * GIB, rel=1e-6)
    assert fc.full_in_days == 18.0  # 36 GiB left at 2 GiB a day


def test_shrink_and_flat_are_not_filling():
    shrink = forecast(series([60, 59.5, 59, 58.5, 58, 57.5]))
    assert shrink.growth_bytes_per_day < 0 and shrink.full_in_days is None
    flat = forecast(series([40] * 8))
    assert flat.growth_bytes_per_day == 0 and flat.full_in_days is None
    assert forecast(series([40])).growth_bytes_per_day is None


def test_cleanup_jump_restarts_the_fit():
    # 2 GiB/day, a cleanup of 30 GiB, then 2 GiB/day again: the rate stays 2 GiB/day
    fc = forecast(series([60, 62, 64, 66, 36, 38, 40, 42]))
    assert fc.growth_bytes_per_day == pytest.approx(2 * GIB, rel=1e-6)
    assert fc.full_in_days == 29.0
    only_cleanup = forecast(series([60, 62, 30]))
    assert only_cleanup.full_in_days is None


def test_inodes_can_fill_first():
    samples = [Sample(T0 + i * DAY_S, 10 * GIB, 90 * GIB, 100 * GIB, 900 + 20 * i, 1000)
               for i in range(4)]
    fc = forecast(samples)
    assert fc.growth_bytes_per_day == 0
    assert fc.full_in_days == 2.0  # 40 inodes left at 20 a day


# -- report with history: SOON, changes, JSON ----------------------------------------

def test_track_forecasts_soon_and_changes(tmp_path):
    path = tmp_path / "h.sqlite"
    for day in range(5):  # /data grows 5 GiB a day from 50 %; /srv is flat at 95 %
        rep = build_report(results(web1=[mount("/", 20), mount("/data", 50 + 5 * day),
                                         mount("/srv", 95)], db1=[mount("/", 10)]))
        assert track(rep, path, 7, 7, ts=T0 + day * DAY_S) is None
    data = next(r for r in rep.rows if r.mountpoint == "/data")
    assert data.growth_bytes_per_day == 5 * GIB
    assert data.full_in_days == 6.0 and data.level == "soon"
    assert rep.history == {"path": str(path), "runs": 5}
    assert [(r.host, r.mountpoint, r.level) for r in rep.rows][:2] == [
        ("web1", "/srv", "crit"), ("web1", "/data", "soon")]
    assert rep.totals["mounts_soon"] == 1
    doc = report_json_hosts(rep)["web1"]["mounts"]
    assert {m["mountpoint"]: m["full_in_days"] for m in doc} == {
        "/srv": None, "/data": 6.0, "/": None}
    # day 5: /data crosses warn, / disappears, /tmp appears, db1 stops answering
    rep = build_report(results(web1=[mount("/data", 80), mount("/srv", 95), mount("/tmp", 1)],
                               db1="ssh: connection refused"))
    assert track(rep, path, 7, 7, ts=T0 + 5 * DAY_S) is None
    kinds = [(c["kind"], c["host"], c.get("mountpoint")) for c in rep.changes]
    assert kinds == [("host_down", "db1", None), ("crossed", "web1", "/data"),
                     ("appeared", "web1", "/tmp"), ("disappeared", "web1", "/")]
    assert rep.changes[1]["from"] == "soon" and rep.changes[1]["to"] == "warn"
    assert describe(rep.changes[0]) == \
        "db1 stopped answering (unreachable: ssh: connection refused)"
    # day 6: cleanup on /data, db1 back
    rep = build_report(results(web1=[mount("/data", 30), mount("/srv", 95), mount("/tmp", 1)],
                               db1=[mount("/", 10)]))
    assert track(rep, path, 7, 7, ts=T0 + 6 * DAY_S) is None
    assert [(c["kind"], c["host"]) for c in rep.changes] == [
        ("recovered", "web1"), ("host_back", "db1")]
    assert rep.changes[0]["to"] == "ok"


def test_first_run_has_no_changes_and_damaged_history_keeps_the_report(tmp_path):
    rep = build_report(results(web1=[mount("/", 20)]))
    assert track(rep, tmp_path / "h.sqlite", ts=T0) is None
    assert rep.changes == [] and rep.history["runs"] == 1
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\0garbage" * 1000)
    rep = build_report(results(web1=[mount("/", 20)]))
    error = track(rep, bad, ts=T0)
    assert error and str(bad) in error and rep.history is None
    assert rep.rows[0].level == "ok"


def test_names_that_are_not_utf8_and_huge_counters_round_trip(tmp_path):
    odd = "/x\udcff\n\x1b[2J"
    doc = mount(odd, 10)
    doc["inodes_total"] = 1 << 64  # a lying host: stored as NULL, not an error
    with History(tmp_path / "h.sqlite") as history:
        history.append(T0, {"h\udcfe": ("ok", None, "program")}, [("h\udcfe", doc)])
        history.append(T0 + DAY_S, {"h\udcfe": ("ok", None, "program")}, [("h\udcfe", doc)])
        assert history.previous().levels == {("h\udcfe", odd): None}
        assert history.previous().hosts == {"h\udcfe": "ok"}
        samples = history.series(T0)[("h\udcfe", odd)]
        assert [s.used_bytes for s in samples] == [10 * GIB] * 2
    rep = build_report(results(**{"h\udcfe": [mount(odd, 10)]}))
    assert track(rep, tmp_path / "h.sqlite", ts=T0 + 2 * DAY_S) is None
    assert rep.rows[0].growth_bytes_per_day == 0


def test_cells_of_the_wrong_type_in_a_damaged_history_cost_points_not_the_report(tmp_path):
    path = tmp_path / "h.sqlite"
    for day in range(3):
        assert track(build_report(results(web1=[mount("/", 10 + day)])), path,
                     ts=T0 + day * DAY_S) is None
    db = sqlite3.connect(path)
    db.execute("UPDATE samples SET used_bytes = 'abc' WHERE run_id = 1")
    db.execute("UPDATE runs SET ts = 'zz' WHERE id = 2")
    db.commit()
    db.close()
    rep = build_report(results(web1=[mount("/", 13)]))
    assert track(rep, path, ts=T0 + 3 * DAY_S) is None
    assert rep.history["runs"] == 4 and rep.rows[0].growth_bytes_per_day is not None


def test_a_history_path_that_is_a_device_or_fifo_is_refused_and_nothing_written(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(HistoryError, match="not a regular file"):
            History(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]
    assert not os.path.exists("/dev/null-journal")
