"""The reporter interface (fleetops.core.events), the --format registry, one network map.

On the in-process fake transport and recorded program data: seconds, no sshd."""

from __future__ import annotations

import io
import ipaddress
import json
import threading
from types import SimpleNamespace

import pytest
from invoke import Context
from invoke.exceptions import Exit

from fleetops.cli import output
from fleetops.core.events import SILENT, Reporter
from fleetops.core.retry import write_retry
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.testing import FakeHost, FakeNetwork, hosts
from fleetops.errors import OptionError
from fleetops.jobs import scan as netmap
from fleetops.playbook.run import HostState, TaskRecord, network_inventory
from fleetops.results import HostResult, RunResult
from tests.test_reporter_golden import ARP, SWEEP, fleet  # noqa: F401  (fixture)


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.threads: set[str] = set()

    def run_started(self, total):
        self.events.append(("run_started", total))

    def host_started(self, name):
        self.threads.add(threading.current_thread().name)
        self.events.append(("host_started", name))

    def host_finished(self, result, run):
        self.events.append(("host_finished", result.name, result.status, len(run.hosts)))

    def tick(self, run):
        self.events.append(("tick",))


def shell(session):
    return exec_result(session.host.name, session.exec("hostname"))


def test_the_runner_emits_every_host_event_once_in_order():
    net = FakeNetwork({"a": FakeHost(lambda p: p.write(b"a\n")),
                       "b": FakeHost(unreachable="b:22: Connection refused"),
                       "c": FakeHost(lambda p: 3)})
    recorder = Recorder()
    with Fleet(RunOptions(forks=2), net.target_for, connect=net.connect) as runner:
        run = runner.run(hosts("a", "b", "c"), shell, events=recorder)
    events = [e for e in recorder.events if e[0] != "tick"]
    assert events[0] == ("run_started", 3)
    finished = [e for e in events if e[0] == "host_finished"]
    assert sorted(e[1:3] for e in finished) == [("a", "ok"), ("b", "unreachable"), ("c", "failed")]
    assert [e[3] for e in finished] == [1, 2, 3]  # the run so far holds the host
    for name in "abc":  # started (in its worker) before finished
        assert events.index(("host_started", name)) < next(
            i for i, e in enumerate(events) if e[:2] == ("host_finished", name))
    assert all(t.startswith("fleetops") for t in recorder.threads)
    assert ("tick",) in recorder.events and run.summary["ok"] == 1


def test_the_printer_through_events_prints_what_the_callbacks_printed():
    net = FakeNetwork({n: FakeHost(lambda p: p.write(b"hi\n")) for n in ("a", "b")})
    texts = []
    for via_events in (True, False):
        out = io.StringIO()
        printer = output.Printer(2, out=out, err=io.StringIO())
        with Fleet(RunOptions(forks=1), net.target_for, connect=net.connect) as runner:
            if via_events:
                run = runner.run(hosts("a", "b"), shell, events=printer)
            else:
                run = runner.run(hosts("a", "b"), shell, on_result=printer.host,
                                on_tick=printer.tick)
        run.elapsed = 0.0
        printer.run_finished(run, None)
        texts.append(sorted(out.getvalue().splitlines()))
    assert texts[0] == texts[1]
    assert "a | OK | rc=0" in texts[0] and "2 hosts in 0.00s: ok=2 changed=0 failed=0 " \
        "unreachable=0 skipped=0" in texts[0]


def test_the_base_reporter_ignores_everything():
    run = RunResult()
    for call in (lambda: SILENT.run_started(1), lambda: SILENT.host_started("a"),
                 lambda: SILENT.host_finished(HostResult("a", "ok"), run),
                 lambda: SILENT.tick(run), lambda: SILENT.play_started(None, []),
                 lambda: SILENT.task_started(None), lambda: SILENT.task_host("a", None),
                 lambda: SILENT.play_stopped("x"), lambda: SILENT.document(object(), "x"),
                 lambda: SILENT.run_finished(run, None, extra=1)):
        assert call() is None


class Report:
    def __init__(self, value: int) -> None:
        self.value = value


class BigReport(Report):
    pass


def test_format_registry_renders_by_type_and_refuses_an_unknown_format():
    output.renders(Report, "text")(lambda r: f"value {r.value}\n")
    output.renders(Report, "json")(lambda r: json.dumps({"value": r.value}) + "\n")
    assert output.formats(BigReport) == ("text", "json")
    assert output.render(BigReport(3), "text") == "value 3\n"  # a subclass finds its base's
    with pytest.raises(OptionError) as info:
        output.render(Report(1), "xml")
    assert str(info.value) == "--format must be one of text, json, not 'xml'"
    with pytest.raises(TypeError):
        output.render(object(), "text")
    out = io.StringIO()
    output.Printer(1, out=out, err=io.StringIO()).document(Report(7), "json")
    assert out.getvalue() == '{"value": 7}\n'


def test_finish_writes_the_retry_file_then_reports_then_exits(tmp_path):
    seen = []

    class Last(Reporter):
        def run_finished(self, run, retry_file=None, **fields):
            seen.append((retry_file, (tmp_path / "r").exists(), fields))

    run = RunResult()
    run.add(HostResult("a", "failed"))
    with pytest.raises(Exit) as info:
        output.finish(run, Last(), str(tmp_path / "r"), program="x")
    assert info.value.code == 2 and seen == [(str(tmp_path / "r"), True, {"program": "x"})]
    output.finish(run, None, None, code=0)  # code 0: returns; no reporter: silent


def test_an_unwritable_retry_file_is_one_warning(tmp_path):
    run = RunResult()
    run.add(HostResult("a", "unreachable"))
    warnings: list[str] = []
    target = tmp_path / "missing" / "x.retry"
    assert write_retry(run, str(target), warnings.append) is None
    assert len(warnings) == 1 and warnings[0].startswith(f"fleetops: retry file {target} ")


# -------------------------------------------------------------- one network-map schema


def check_schema(network: dict) -> None:
    """The shape documented in fleetops.jobs.scan, checked field by field."""
    assert list(network) == ["addresses", "vantages", "summary"]
    assert list(network["summary"]) == ["answering", "arp-only", "no-reply", "addresses",
                                        "with_mac", "mac_conflicts"]
    ips = [ipaddress.ip_address(a["ip"]) for a in network["addresses"]]
    assert ips == sorted(ips)
    for entry in network["addresses"]:
        assert list(entry) == ["ip", "seen_by", "no_reply_from", "macs", "mac", "state"]
        assert entry["state"] in netmap.STATES
        assert all(set(s) == {"host", "rtt_ms"} for s in entry["seen_by"])
        assert len({s["host"] for s in entry["seen_by"]}) == len(entry["seen_by"])
        assert all(set(m) == {"mac", "hosts"} and m["mac"] == m["mac"].lower()
                   for m in entry["macs"])
    for view in network["vantages"].values():
        assert isinstance(view["swept"], bool)
    summary = network["summary"]
    assert summary["addresses"] == len(network["addresses"]) == sum(
        summary[s] for s in netmap.STATES)


def test_scan_and_playbook_build_the_same_map_from_the_same_data(fleet, capsys):  # noqa: F811
    from fleetops.cli.scan import scan

    with pytest.raises(Exit):
        scan(Context(), inventory=fleet, arp=True, json=True)
    from_scan = json.loads(capsys.readouterr().out)["network"]

    def record(action: str, name: str, data: dict | None) -> TaskRecord:
        if name == "db1":
            return TaskRecord("p", action, action, "unreachable", reason="refused")
        if data is None:
            return TaskRecord("p", action, action, "failed", reason="needs root")
        return TaskRecord("p", action, action, "ok", data=data)

    states = {name: HostState(name, tasks=[record("sweep", name, SWEEP[name]),
                                           record("arpscan", name, ARP[name])])
              for name in ("web1", "web2", "db1")}
    from_play = network_inventory(states)
    check_schema(from_scan)
    check_schema(from_play)
    assert from_play == from_scan
    assert from_scan["summary"]["arp-only"] == 1 and from_scan["vantages"]["db1"] == {
        "swept": False, "arp": False}


def test_a_playbook_that_sweeps_twice_counts_each_host_once():
    first = {"alive": [{"ip": "10.0.0.1", "rtt_ms": 0.5}], "no_reply": ["10.0.0.2"]}
    second = {"alive": [{"ip": "10.0.0.1", "rtt_ms": 0.25}], "no_reply": ["10.0.0.2"]}
    states = {"h": HostState("h", tasks=[
        TaskRecord("p", "a", "sweep", "ok", data=first),
        TaskRecord("p", "b", "sweep", "ok", data=second),
        TaskRecord("p", "c", "arpscan", "skipped", reason="when: false")])}
    network = network_inventory(states)
    check_schema(network)
    one, two = network["addresses"]
    assert one["seen_by"] == [{"host": "h", "rtt_ms": 0.25}] and two["no_reply_from"] == ["h"]
    assert "arp" not in network["vantages"]["h"]  # a skipped arpscan task does not count
    assert network_inventory({"h": HostState("h", tasks=[
        TaskRecord("p", "a", "run", "ok")])}) is None


def test_select_hosts_is_a_library_function(tmp_path):
    from fleetops.inventory.load import load_inventory
    from fleetops.playbook.load import load_playbook
    from fleetops.playbook.select import select_hosts

    (tmp_path / "hosts.ini").write_text("[web]\nw1\nw2\n[db]\nd1\n")
    (tmp_path / "site.yml").write_text(
        "- hosts: web\n  tasks:\n    - run:\n        command: 'true'\n"
        "- hosts: \"{{ target }}\"\n  tasks:\n    - run:\n        command: 'true'\n")
    book = load_playbook(str(tmp_path / "site.yml"))
    inventory = load_inventory(str(tmp_path / "hosts.ini"))
    chosen = select_hosts(book, inventory, "w1:d1", {"target": "db"},
                          adjust=lambda hs: [SimpleNamespace(name=h.name + "!") for h in hs])
    assert [[h.name for h in hs] for _, hs in chosen] == [["w1!"], ["d1!"]]
    from fleetops.errors import InputError

    with pytest.raises(InputError) as info:
        select_hosts(book, inventory, "nothere", {"target": "db"})
    assert "nothere" in str(info.value)
