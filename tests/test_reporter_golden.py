"""Output bytes of the fleet tasks, pinned (golden files in tests/data/golden/).

Text and ``--json`` of scan, cron, watcher/dirsync, the playbook printer and the
ad-hoc printer, driven by recorded per-host results (no host, no sshd): the reporter
refactoring must not change one byte. A missing golden file is written when
``FLEETOPS_GOLDEN_UPDATE=1``; otherwise it fails."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke import Context
from invoke.exceptions import Exit

from fleetops.results import HostResult, RunResult

GOLDEN = Path(__file__).parent / "data" / "golden"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if not path.exists() and os.environ.get("FLEETOPS_GOLDEN_UPDATE") == "1":
        path.write_bytes(text.encode())
    assert path.read_bytes().decode() == text, name  # bytes: "\r" of the progress line kept


SWEEP = {
    "web1": {"backend": "dgram", "mode": "fast", "targets": 4, "elapsed_s": 0.2, "errors": [],
             "alive": [{"ip": "10.250.7.1", "rtt_ms": 0.081}, {"ip": "10.250.7.4", "rtt_ms": 0.03}],
             "no_reply": ["10.250.7.2", "10.250.7.3"]},
    "web2": {"backend": "raw", "mode": "fast", "targets": 3, "elapsed_s": 0.31, "errors": [],
             "alive": [{"ip": "10.250.7.4", "rtt_ms": 0.012}, {"ip": "10.250.7.10", "rtt_ms": None}],
             "no_reply": ["10.250.7.2"]},
    "db1": None,
}
ARP = {
    "web1": {"method": "arp-raw", "targets": 4, "interfaces": ["eth1"], "elapsed_s": 0.2,
             "entries": [{"ip": "10.250.7.1", "mac": "5A:1F:44:AF:EB:F7", "iface": "eth1",
                          "method": "arp-raw"},
                         {"ip": "10.250.7.2", "mac": "5a:1f:44:af:eb:f7", "iface": "eth1",
                          "method": "arp-raw"}],
             "no_reply": ["10.250.7.3"], "not_on_link": ["10.252.7.5"]},
    "web2": None,
    "db1": None,
}
CRON_DATA = {"target": "user", "name": "backup", "path": "/var/spool/cron/crontabs/ops",
             "action": "installed", "diff": "--- before\n+++ after\n+30 2 * * * backup\n",
             "backup": "/var/backups/crontab.1"}
LIST_DATA = {"entries": [
    {"managed_by": "fleetops", "target": "user", "name": "backup", "schedule": "30 2 * * *",
     "user": None, "command": "backup.sh"},
    {"managed_by": None, "target": "cron.d", "name": None, "schedule": "@daily",
     "user": "root", "command": "true", "ignored": "bad line"}]}
STATUS_DATA = {"running": True, "pid": 4242, "uptime_s": 12.5,
               "last_event": {"msg": "disk ok", "result": "ok"}}


def recorded(program: str, name: str) -> HostResult:
    """One host's result of ``program`` (db1 is always unreachable)."""
    if name == "db1":
        return HostResult(name, "unreachable", reason="db1:22: Connection refused")
    if program in ("sweep", "arpscan"):
        data = (SWEEP if program == "sweep" else ARP)[name]
        if data is None:
            return HostResult(name, "failed", 1, reason="arpscan: needs root")
    elif program == "cron":
        data = CRON_DATA if name == "web1" else LIST_DATA
    else:
        data = STATUS_DATA if name == "web1" else {"running": False}
    status = "changed" if program == "cron" and name == "web1" else "ok"
    return HostResult(name, status, 0, json.dumps({"ok": True, "data": data}),
                      extra={"data": data})


@pytest.fixture
def fleet(monkeypatch, tmp_path):
    """Three hosts and a ``fleet_program`` that replays :func:`recorded` in order."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1\nweb2\n[db]\ndb1\n")

    def fleet_program(hosts, program, args_for, options, on_result=None, timeout=None,
                      on_tick=None, events=None):
        run = RunResult()
        if events is not None:  # as the runner does
            on_result, on_tick = events.host_finished, events.tick
            events.run_started(len(hosts))
        for host in hosts:
            run.add(recorded(program, host.name))
            if on_result is not None:
                on_result(run.hosts[host.name], run)
            if on_tick is not None:
                on_tick(run)
        return run

    import fleetops.ship.run

    monkeypatch.setattr(fleetops.ship.run, "fleet_program", fleet_program)
    monkeypatch.chdir(tmp_path)
    return str(inventory)


def run_task(capsys, func, *args, **kwargs) -> tuple[int, str, str]:
    code = 0
    try:
        func(Context(), *args, **kwargs)
    except Exit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_scan_text_bytes(fleet, capsys, fmt):
    from fleetops.cli.scan import scan

    code, out, err = run_task(capsys, scan, inventory=fleet, arp=True, format=fmt)
    assert err == ""
    golden(f"scan-{fmt}.txt", f"exit={code}\n{out}")


def test_scan_json_bytes(fleet, capsys):
    from fleetops.cli.scan import scan

    code, out, err = run_task(capsys, scan, inventory=fleet, arp=True, json=True)
    assert err == "" and code == 2  # web2's arpscan failed
    assert list(json.loads(out)) == ["hosts", "summary", "network"]
    golden("scan.json", out)


@pytest.mark.parametrize("kind, as_json", [("install", False), ("install", True),
                                           ("list", False), ("check", False)])
def test_cron_bytes(fleet, capsys, kind, as_json):
    from fleetops.cli import cron

    if kind == "list":
        code, out, err = run_task(capsys, cron.list_, inventory=fleet, json=as_json)
    else:
        code, out, err = run_task(capsys, cron.install, inventory=fleet, name="backup",
                                  schedule="30 2 * * *", job="backup.sh",
                                  check=kind == "check", json=as_json)
    assert err == ""
    golden(f"cron-{kind}{'.json' if as_json else '.txt'}", f"exit={code}\n{out}")


@pytest.mark.parametrize("action, as_json", [("status", False), ("status", True),
                                             ("start", False), ("stop", False),
                                             ("logs", False)])
def test_watcher_bytes(fleet, capsys, action, as_json):
    from fleetops.cli import daemons

    func = getattr(daemons, f"watcher_{action}")
    code, out, err = run_task(capsys, func, inventory=fleet, json=as_json)
    assert err == ""
    golden(f"watcher-{action}{'.json' if as_json else '.txt'}", f"exit={code}\n{out}")


def test_json_outer_shape_of_every_task(fleet, capsys):
    """The outer keys, in order: hosts, summary, then the task's own fields."""
    from fleetops.cli import cron, daemons
    from fleetops.cli.scan import scan

    outs = [run_task(capsys, scan, inventory=fleet, json=True)[1],
            run_task(capsys, cron.list_, inventory=fleet, json=True)[1],
            run_task(capsys, daemons.dirsync_status, inventory=fleet, json=True)[1]]
    docs = [json.loads(out) for out in outs]
    assert [list(doc) for doc in docs] == [["hosts", "summary", "network"],
                                           ["hosts", "summary", "program", "action"],
                                           ["hosts", "summary", "program", "action"]]
    assert {"running", "pid", "uptime_s", "last_event"} <= set(docs[2]["hosts"]["web1"])
    assert all(out.startswith("{\n") and out.endswith("\n}\n") for out in outs)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_adhoc_printer_bytes_on_a_terminal_and_not(monkeypatch):
    """Per-host lines, recap; the progress line (stderr) only on a terminal."""
    import fleetops.cli.output as output

    clock = iter(x * 0.25 for x in range(100))
    monkeypatch.setattr(output.time, "monotonic", lambda: next(clock))
    results = [HostResult("web1", "ok", 0, "hello\n"),
               HostResult("db1", "failed", 2, "", "boom\n", reason="command exited with rc=2"),
               HostResult("web2", "ok", 0, "x" * 10, extra={"truncated": ["stdout"]},
                          reason="output cut")]
    texts = []
    for out, err in ((io.StringIO(), io.StringIO()), (Tty(), Tty())):
        printer = output.Printer(len(results), out=out, err=err)
        run = RunResult()
        for result in results:
            run.add(result)
            printer.host(result, run)
            printer.tick(run)
        run.elapsed = 1.5
        printer.recap(run, "fleetops.retry")
        texts.append(out.getvalue() + "---stderr---\n" + err.getvalue())
    assert texts[0].endswith("---stderr---\n")  # not a terminal: no progress line
    golden("adhoc-pipe.txt", texts[0])
    golden("adhoc-tty.txt", texts[1])


def test_play_printer_bytes():
    from fleetops.cli.output import PlayPrinter
    from fleetops.playbook.run import HostState, PlaybookRun, TaskRecord, network_inventory

    sweep = {"alive": [{"ip": "10.0.0.2", "rtt_ms": 0.5}, {"ip": "10.0.0.1", "rtt_ms": 0.25}],
             "no_reply": ["10.0.0.3"], "backend": "dgram", "mode": "fast", "targets": 3,
             "elapsed_s": 0.1}
    arp = {"entries": [{"ip": "10.0.0.1", "mac": "aa:bb:cc:dd:ee:ff"},
                       {"ip": "10.0.0.9", "mac": "aa:bb:cc:dd:ee:00"}], "method": "arp-raw"}
    records = {
        "web1": [TaskRecord("p", "scan", "sweep", "ok", data=sweep, summary="2 alive"),
                 TaskRecord("p", "arp", "arpscan", "ok", data=arp),
                 TaskRecord("p", "conf", "copy", "changed", summary="/etc/x",
                            diff="--- a\n+++ b\n-old\n+new\n")],
        "db1": [TaskRecord("p", "scan", "sweep", "unreachable", reason="refused")],
        "web2": [TaskRecord("p", "scan", "sweep", "ok", data={**sweep, "alive": [
            {"ip": "10.0.0.1", "rtt_ms": 0.125}]}),
                 TaskRecord("p", "arp", "arpscan", "skipped", reason="when: false")],
    }
    texts = []
    for check, diff in ((False, True), (True, False)):
        out = io.StringIO()
        printer = PlayPrinter(diff, check, out)
        printer.play_started(SimpleNamespace(name="scan it"), ["web1", "db1", "web2"])
        for index, name in enumerate(("scan", "arp", "conf")):
            printer.task_started(SimpleNamespace(name=name, handler=index == 2))
            for host, tasks in records.items():
                if index < len(tasks):
                    printer.task_host(host, tasks[index])
        printer.play_stopped("max_fail_percentage 10% exceeded")
        printer.play_started(SimpleNamespace(name="nothing"), [])
        states = {name: HostState(name, tasks=tasks) for name, tasks in records.items()}
        printer.network(network_inventory(states))
        run = PlaybookRun(states, []).result(diff)
        run.elapsed = 2.25
        printer.recap(run, "site.retry")
        texts.append(out.getvalue())
    golden("play-diff.txt", texts[0])
    golden("play-check.txt", texts[1])


PLAYBOOK = """\
- name: first
  hosts: web
  tasks:
    - name: hello
      run:
        command: echo hello
    - name: fail on web2
      run:
        command: "false"
"""


def test_play_task_bytes_on_the_fake_transport(monkeypatch, tmp_path, capsys):
    """``invoke play`` end to end on fake hosts: text and the JSON document's shape."""
    import fleetops.playbook.run as playrun
    from fleetops.cli.play import play
    from fleetops.core.runner import Fleet
    from fleetops.core.testing import FakeHost, FakeNetwork

    def program(proc):
        if proc.transport.target.name == "web2":
            proc.sleep(0.3)  # web1's line first, in a round of the runner of its own
            if proc.command == "false":
                return 1
        proc.write(b"hello\n")
        return 0

    net = FakeNetwork({"web1": FakeHost(program), "web2": FakeHost(program)})
    monkeypatch.setattr(playrun, "Fleet", lambda options, target_for: Fleet(
        options, net.target_for, connect=net.connect))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts.ini").write_text("[web]\nweb1\nweb2\n[db]\ndb1\n")
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    code, out, err = run_task(capsys, play, "site.yml", inventory="hosts.ini", forks=1)
    assert err == "" and (tmp_path / "site.retry").read_text().endswith("\nweb2\n")
    out = re.sub(r"hosts in \d+\.\d\ds", "hosts in T.TTs", out)
    golden("play-fake.txt", f"exit={code}\n{out}")
    code, out, err = run_task(capsys, play, "site.yml", inventory="hosts.ini", json=True)
    doc = json.loads(out)
    assert (code, err) == (2, "")
    assert list(doc) == ["hosts", "summary", "playbook", "check", "plays"]
    assert list(doc["hosts"]["web1"]) == ["tasks", "status", "rc", "stdout", "stderr",
                                          "duration", "reason"]
    assert doc["plays"] == [{"name": "first", "hosts": ["web1", "web2"], "stopped": None}]
    assert [t["status"] for t in doc["hosts"]["web2"]["tasks"]] == ["ok", "failed"]
