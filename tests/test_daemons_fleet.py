"""``invoke watcher.*`` / ``invoke dirsync.*``: argv building, output, and the lab fleet."""

from __future__ import annotations

import json
import time

import pytest
from invoke.exceptions import Exit

from fleetops.cli import daemons
from fleetops.results import HostResult, RunResult

ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


def test_remote_argv_shapes():
    assert daemons.lifecycle_argv("status", "demo") == ["status", "--name", "demo"]
    argv = daemons.lifecycle_argv("start", "d", "/run/x", ["--log-dir", "/l"],
                                  daemons.watcher_args(["clock", "disk:/:90"], 0.5, None))
    assert argv == ["start", "--name", "d", "--state-dir", "/run/x", "--log-dir", "/l", "--",
                    "--check-spec", "clock", "--check-spec", "disk:/:90", "--interval", "0.5"]
    args = daemons.dirsync_args("/a b", "/t", None, "0.3", 5, True)
    assert args == ["--source", "/a b", "--target", "/t", "--wait", "0.3", "--max-delete", "5",
                    "--require-mount"]
    from fleetops.errors import OptionError

    with pytest.raises(OptionError, match="--source"):
        daemons.dirsync_args(None, "/t", None, None, None, False)


def _run(**hosts: HostResult) -> RunResult:
    run = RunResult()
    for result in hosts.values():
        run.add(result)
    return run


def test_status_fields_are_copied_per_host_and_described():
    event = {"kind": "event", "msg": "disk over"}
    up = HostResult("a", "ok", 0, extra={"data": {"running": True, "pid": 7, "uptime_s": 3.5,
                                                  "last_event": event}})
    down = HostResult("b", "ok", 0, extra={"data": {"running": False, "pid": None}})
    lost = HostResult("c", "unreachable", None, reason="connection refused")
    run = _run(a=up, b=down, c=lost)
    daemons.add_status_fields(run)
    doc = run.to_json()["hosts"]
    assert doc["a"]["running"] is True and doc["a"]["pid"] == 7 and doc["a"]["uptime_s"] == 3.5
    assert doc["a"]["last_event"] == event
    assert doc["b"]["running"] is False and doc["c"]["running"] is None
    assert daemons.describe("status", up) == "a | OK | running pid=7 uptime=3.5s | last: disk over\n"
    assert daemons.describe("status", down) == "b | OK | not running\n"
    assert daemons.describe("status", lost) == "c | UNREACHABLE | connection refused\n"
    started = HostResult("a", "changed", 0, extra={"data": {"pid": 9}})
    assert daemons.describe("start", started) == "a | CHANGED | started pid=9\n"
    logs = HostResult("a", "ok", 0, extra={"data": {"stdout": ["x"], "stderr": ["y"]}})
    assert daemons.describe("logs", logs) == "a | OK\na | stdout: x\na | stderr: y\n"


def test_task_collections_have_the_fixed_spelling():
    assert sorted(daemons.watcher_ns.task_names) == ["logs", "start", "status", "stop"]
    assert sorted(daemons.dirsync_ns.task_names) == ["logs", "start", "status", "stop"]
    assert daemons.watcher_ns.name == "watcher" and daemons.dirsync_ns.name == "dirsync"


# -- against the lab ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fleet(request):
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("the lab fixture (tests/conftest.py) is not available")
    pytest.importorskip("fleetops.ship.run")
    return lab


def lifecycle(lab, capsys, program: str, action: str, argv: list[str],
              pattern: str = "all") -> tuple[int, dict]:
    """One fleet task run with --json: (exit code, the JSON document)."""
    from fleetops.cli.options import option_set

    opts = option_set().resolve({"inventory": str(lab.inventory_path), "pattern": pattern,
                                 "json": True, "forks": 16, "command_timeout": "30",
                                 "retry_file": None})
    code = 0
    try:
        daemons.fleet_lifecycle(program, action, argv, opts)
    except Exit as exc:
        code = exc.code
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.lab
def test_watcher_start_status_stop_across_the_fleet(fleet, capsys):
    name = ["--name", "pytest"]
    start = ["start", *name, "--", "--check-spec", "clock", "--check-spec", "disk:/srv:99",
             "--interval", "0.2"]
    try:
        code, doc = lifecycle(fleet, capsys, "watcher", "start", start)
        assert code == 0, doc
        hosts = doc["hosts"]
        assert len(hosts) == len(fleet.hosts) and doc["summary"]["changed"] == len(hosts)
        pids = {h: r["data"]["pid"] for h, r in hosts.items()}
        code, again = lifecycle(fleet, capsys, "watcher", "start", start)
        assert code == 0 and again["summary"]["ok"] == len(hosts)
        assert {h: r["data"]["pid"] for h, r in again["hosts"].items()} == pids
        time.sleep(0.5)
        code, status = lifecycle(fleet, capsys, "watcher", "status", ["status", *name])
        assert code == 0
        for host, entry in status["hosts"].items():  # alive after its SSH session ended
            assert entry["running"] is True and entry["pid"] == pids[host], entry
            assert entry["uptime_s"] > 0.3 and entry["last_event"]
        code, logs = lifecycle(fleet, capsys, "watcher", "logs", ["logs", *name, "--lines", "2"])
        assert code == 0
        assert all(len(e["data"]["stdout"]) == 2 for e in logs["hosts"].values())
    finally:
        code, stopped = lifecycle(fleet, capsys, "watcher", "stop", ["stop", *name])
    assert code == 0 and stopped["summary"]["changed"] == len(fleet.hosts)
    code, status = lifecycle(fleet, capsys, "watcher", "status", ["status", *name])
    assert all(e["running"] is False for e in status["hosts"].values())


@pytest.mark.lab
def test_dirsync_mirrors_a_mounted_source_on_lab_hosts(fleet, capsys):
    hosts = [h.name for h in fleet.hosts[:2]]
    pattern = ":".join(hosts)

    def in_host(host, *argv):
        return fleet.ns_run(host, list(argv), capture_output=True, text=True, check=False,
                            env=ENV, timeout=20)

    for host in hosts:
        in_host(host, "sh", "-c", "echo hello > /srv/data/fleetops-dirsync-test")
    name = ["--name", "pytest"]
    start = ["start", *name, "--", "--source", "/srv/data", "--target", "/srv/mirror-pytest",
             "--require-mount", "--poll", "0.2", "--wait", "0.3"]
    try:
        code, doc = lifecycle(fleet, capsys, "dirsync", "start", start, pattern)
        assert code == 0 and doc["summary"]["changed"] == 2, doc
        for host in hosts:
            deadline = time.monotonic() + 5
            while in_host(host, "cat", "/srv/mirror-pytest/fleetops-dirsync-test").stdout \
                    != "hello\n":
                assert time.monotonic() < deadline, f"{host}: no mirror"
                time.sleep(0.1)
        code, status = lifecycle(fleet, capsys, "dirsync", "status", ["status", *name], pattern)
        assert all(e["running"] and e["last_event"]["result"] == "ok"
                   for e in status["hosts"].values()), status
    finally:
        code, stopped = lifecycle(fleet, capsys, "dirsync", "stop", ["stop", *name], pattern)
        for host in hosts:
            in_host(host, "rm", "-rf", "/srv/mirror-pytest", "/srv/data/fleetops-dirsync-test")
    assert code == 0 and stopped["summary"]["changed"] == 2
