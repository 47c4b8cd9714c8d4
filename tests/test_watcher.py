"""The watcher program and the shared lifecycle actions, with real daemon processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ops(*argv: str, timeout: float = 20) -> tuple[int, dict]:
    """Run ``python3 -m ops ARGV``: exactly one JSON document on stdout, always."""
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def wait_for(predicate, timeout: float = 5.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s")


def records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a slow init to reap it is not alive)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def kill_by_pidfile(state: Path) -> None:
    from ops import _daemon

    running, pid = _daemon.probe(str(state / "pid"), wait_pid=0.2)
    if running and pid:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def watcher(tmp_path):
    """``watcher(action, *args)`` runs a lifecycle action on one instance (killed after)."""
    state = tmp_path / "state"

    def cli(action: str, *args: str) -> tuple[int, dict]:
        return ops("watcher", action, "--name", "t", "--state-dir", str(state), *args)

    cli.state = state
    yield cli
    kill_by_pidfile(state)


def test_start_is_idempotent_and_status_reports_the_daemon(watcher):
    rc, doc = watcher("start", "--", "--interval", "0.1")
    assert rc == 0 and doc["ok"] and doc["changed"], doc
    pid = doc["data"]["pid"]
    assert doc["data"]["running"] is True
    rc, again = watcher("start", "--", "--interval", "0.1")
    assert rc == 0 and again["ok"] and not again["changed"]
    assert again["data"]["pid"] == pid and again["data"]["already_running"]
    assert "warning" not in again["data"]
    _, other = watcher("start", "--", "--interval", "0.5")
    assert "other arguments" in other["data"]["warning"]
    time.sleep(0.3)
    rc, status = watcher("status")
    data = status["data"]
    assert rc == 0 and not status["changed"]
    assert data["running"] is True and data["pid"] == pid and data["mode"] == "daemon"
    assert 0.2 < data["uptime_s"] < 10
    assert data["last_event"]["kind"] in ("lifecycle", "event")
    for name in ("out.log", "err.log", "pid", "state.json"):
        assert stat.S_IMODE((watcher.state / name).stat().st_mode) == 0o640, name


def test_stop_is_fast_and_idempotent(watcher):
    _, doc = watcher("start", "--", "--interval", "5")
    pid = doc["data"]["pid"]
    started = time.monotonic()
    rc, stopped = watcher("stop")
    assert rc == 0 and stopped["changed"] and stopped["data"]["pid"] == pid
    assert stopped["data"]["stopped_in_s"] < 1.0
    assert time.monotonic() - started < 2.0
    assert not alive(pid)
    rc, again = watcher("stop")
    assert rc == 0 and not again["changed"] and again["data"]["running"] is False
    _, status = watcher("status")
    assert status["data"]["running"] is False and status["data"]["pid"] is None
    assert status["data"]["last_event"]["msg"] == "stopped"
    assert status["data"]["last_event"]["reason"] == "SIGTERM"


def test_kill9_leaves_a_stale_pid_that_does_not_block_a_restart(watcher):
    _, doc = watcher("start")
    pid = doc["data"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not watcher("status")[1]["data"]["running"])
    _, status = watcher("status")
    assert status["data"]["stale_pid"] == pid
    rc, again = watcher("start")
    assert rc == 0 and again["changed"] and again["data"]["pid"] != pid


def test_bad_check_specs_fail_before_or_at_startup(watcher):
    rc, doc = watcher("start", "--", "--check-spec", "disk:/:lots")
    assert rc == 2 and "bad check spec 'disk:/:lots'" in doc["error"]
    rc, doc = watcher("start", "--", "--check-spec", "nosuch")
    assert rc == 2 and "clock, disk:PATH:PCT" in doc["error"]
    rc, doc = watcher("start", "--", "--check-spec", "disk:/no/such/dir:90")
    assert rc == 1 and not doc["ok"]
    assert doc["error"] == "start-up failed: check disk:/no/such/dir:90: No such file or directory"
    assert watcher("status")[1]["data"]["running"] is False
    rc, doc = ops("watcher", "start", "--name", "../x")
    assert rc == 2 and "not an instance name" in doc["error"]


def test_unwritable_log_dir_is_reported_by_the_launcher(watcher, tmp_path):
    (tmp_path / "file").write_text("")
    rc, doc = watcher("start", "--log-dir", str(tmp_path / "file" / "logs"))
    assert rc == 1 and "Not a directory" in doc["error"]


def test_results_events_routing_and_sighup_reopen(watcher, tmp_path):
    watched = tmp_path / "watched"
    _, doc = watcher("start", "--", "--interval", "0.1", "--check-spec", f"file:{watched}")
    pid = doc["data"]["pid"]
    out, err = watcher.state / "out.log", watcher.state / "err.log"
    wait_for(lambda: any(r.get("state") == "missing" for r in records(err)))
    watched.write_text("one")
    wait_for(lambda: any(r.get("kind") == "event" and r["from"] == "missing"
                         for r in records(err)))
    wait_for(lambda: any(r.get("level") == "ok" for r in records(out)))
    watched.write_text("two")
    changed = wait_for(lambda: [r for r in records(err) if r.get("kind") == "event"
                                and r["from"].startswith("sha256:")])
    assert changed[0]["msg"].endswith("content changed")
    _, status = watcher("status")
    assert status["data"]["last_event"]["kind"] == "event"
    # logrotate: move the files away, SIGHUP, new 0640 files receive the new lines
    out.rename(tmp_path / "out.log.1")
    err.rename(tmp_path / "err.log.1")
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: len(records(out)) >= 3)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert any("logs reopened" in r.get("msg", "") for r in records(err))
    _, logs = watcher("logs", "--lines", "3")
    assert len(logs["data"]["stdout"]) == 3
    assert all(json.loads(line)["kind"] == "result" for line in logs["data"]["stdout"])


def test_duration_bounds_the_daemon(watcher):
    watcher("start", "--", "--interval", "0.1", "--duration", "0.3")
    wait_for(lambda: not watcher("status")[1]["data"]["running"], timeout=5)
    _, status = watcher("status")
    event = status["data"]["last_event"]
    assert event["msg"] == "stopped" and event["reason"] == "finished"
    assert event["summary"]["rounds"] == 3


def test_foreground_run_for_a_supervisor(tmp_path):
    state = tmp_path / "fg"
    argv = [sys.executable, "-m", "ops", "watcher", "run", "--foreground", "--state-dir",
            str(state), "--", "--interval", "0.1"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        status = wait_for(lambda: ops("watcher", "status", "--state-dir", str(state))[1]
                          if (state / "pid").exists() and (state / "pid").read_text() else None)
        assert status["data"]["running"] and status["data"]["pid"] == proc.pid
        assert status["data"]["mode"] == "foreground"
        rc, again = ops("watcher", "run", "--foreground", "--state-dir", str(state))
        assert rc == 1 and "already running" in again["error"]
        proc.send_signal(signal.SIGHUP)  # no log files to reopen: logged, not fatal
        time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - started < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    lines = out.strip().splitlines()
    final = json.loads(lines[-1])
    assert final["ok"] and final["data"]["stopped_by"] == "SIGTERM"
    assert all(json.loads(line)["kind"] == "result" for line in lines[:-1])
    assert "nothing to reopen" in err


def test_plain_run_is_one_round_in_the_document(tmp_path):
    pidfile = tmp_path / "self.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    rc, doc = ops("watcher", "run", "--", "--check-spec", "disk:/:0",
                  "--check-spec", f"proc:{pidfile}", "--check-spec", "proc:no-such-process-x")
    assert rc == 0 and doc["ok"] and not doc["changed"]
    results = doc["data"]["results"]
    assert doc["data"]["rounds"] == 1
    assert results["disk:/:0"]["state"] == "over"
    assert results[f"proc:{pidfile}"]["state"] == "up"
    assert results["proc:no-such-process-x"]["state"] == "down"
    assert sorted(doc["data"]["alerts"]) == ["disk:/:0", "proc:no-such-process-x"]


def test_checks_unit(monkeypatch, tmp_path):
    from ops import watcher as w

    monkeypatch.setattr(w.time, "time", lambda: 1207272455.18)
    assert w.Clock("clock").evaluate()[:3] == ("mod5", "alert", "Mod 5 at 1207272455.18")
    monkeypatch.setattr(w.time, "time", lambda: 1207272453.18)
    assert w.Clock("clock").evaluate()[:3] == ("no_mod5", "ok", "No mod 5 at 1207272453.18")
    for bad in ("disk:/", "disk:/:101", "file:", "proc:", "clock:x", "load:1"):
        with pytest.raises(ValueError):
            w.parse_spec(bad)
    assert w.parse_spec("disk:/a:b:50").path == "/a:b"
    check = w.File("file:x", str(tmp_path / "f"))
    assert check.evaluate()[0] == "missing"
    (tmp_path / "f").write_text("a")
    first = check.evaluate()
    assert first[1] == "ok"
    (tmp_path / "f").write_text("b")
    second = check.evaluate()
    assert second[1] == "alert" and second[0] != first[0]
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "dead.pid").write_text(str(dead.pid))
    assert w.Proc("p", str(tmp_path / "dead.pid")).evaluate()[0] == "down"


def test_systemd_unit_template_runs_in_the_foreground():
    import jinja2

    from fleetops.shellquote import install

    env = install(jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "templates")),
                                     undefined=jinja2.StrictUndefined))
    unit = env.get_template("fleetops-watcher.service.j2").render(
        name="demo", zipapp="/opt/fleetops.pyz", checks=["clock", "file:/etc/a b%$"])
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert " watcher run --foreground --name \"demo\" " in exec_start
    assert '--check-spec "file:/etc/a b%%$$"' in exec_start
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit and "UMask=0027" in unit
