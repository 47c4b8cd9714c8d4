"""Fleet scan: merging recorded per-vantage sweep/arpscan results, rendering, task wiring."""

from __future__ import annotations

import csv
import io
import json

import pytest
from invoke import Context
from invoke.exceptions import Exit

from fleetops.errors import OptionError
from fleetops.jobs import scan as netmap
from fleetops.results import HostResult, RunResult

# Per-vantage ``data`` as the ops programs emit it (shapes taken from lab runs).
SWEEP_WEB1 = {
    "backend": "dgram", "mode": "fast", "targets": 6, "elapsed_s": 0.262, "errors": [],
    "alive": [{"ip": "10.250.7.1", "rtt_ms": 0.081}, {"ip": "10.250.7.4", "rtt_ms": 0.03},
              {"ip": "10.250.7.5", "rtt_ms": 0.021}],
    "no_reply": ["10.250.7.2", "10.250.7.3", "10.250.7.6"],
}
SWEEP_WEB2 = {
    "backend": "raw", "mode": "fast", "targets": 5, "elapsed_s": 0.31, "errors": [],
    "alive": [{"ip": "10.250.7.4", "rtt_ms": 0.012}, {"ip": "10.250.7.6", "rtt_ms": 1.5},
              {"ip": "10.250.7.10", "rtt_ms": 0.4}],
    "no_reply": ["10.250.7.2", "10.250.7.3"],
}
ARP_WEB1 = {
    "method": "arp-raw", "targets": 7, "interfaces": ["eth1"], "elapsed_s": 0.2,
    "entries": [
        {"ip": "10.250.7.1", "mac": "5A:1F:44:AF:EB:F7", "iface": "eth1", "method": "arp-raw"},
        {"ip": "10.250.7.2", "mac": "5a:1f:44:af:eb:f7", "iface": "eth1", "method": "arp-raw"},
        {"ip": "10.250.7.4", "mac": "5a:1f:44:af:eb:f7", "iface": "eth1", "method": "arp-raw"},
    ],
    "no_reply": ["10.250.7.3", "10.250.7.5", "10.250.7.6"], "not_on_link": ["10.252.7.5"],
}
ARP_WEB2 = {
    "method": "neigh-cache", "targets": 2, "interfaces": ["eth0"], "elapsed_s": 0.3,
    "entries": [{"ip": "10.250.7.4", "mac": "02:00:00:00:00:99", "iface": "eth0",
                 "method": "neigh-cache"}],
    "no_reply": ["10.250.7.3"], "not_on_link": [],
}


def by_ip(network: dict) -> dict[str, dict]:
    return {a["ip"]: a for a in network["addresses"]}


def test_merge_classifies_every_address_across_vantages():
    network = netmap.merge({"web1": SWEEP_WEB1, "web2": SWEEP_WEB2, "db1": None},
                           {"web1": ARP_WEB1, "web2": ARP_WEB2, "db1": None})
    table = by_ip(network)
    assert list(table) == ["10.250.7.1", "10.250.7.2", "10.250.7.3", "10.250.7.4",
                           "10.250.7.5", "10.250.7.6", "10.250.7.10"]  # numeric order
    assert table["10.250.7.4"]["seen_by"] == [{"host": "web2", "rtt_ms": 0.012},
                                              {"host": "web1", "rtt_ms": 0.03}]
    assert table["10.250.7.6"]["state"] == "answering"  # web2 got a reply, web1 none
    assert table["10.250.7.6"]["no_reply_from"] == ["web1"]
    assert table["10.250.7.2"]["state"] == "arp-only"  # drops ping, answers ARP
    assert table["10.250.7.2"]["mac"] == "5a:1f:44:af:eb:f7"
    assert table["10.250.7.3"]["state"] == "no-reply"
    assert table["10.250.7.3"]["no_reply_from"] == ["web1", "web2"]
    assert table["10.250.7.1"]["mac"] == "5a:1f:44:af:eb:f7"  # MACs lower-cased
    conflict = table["10.250.7.4"]
    assert conflict["mac"] is None and [m["mac"] for m in conflict["macs"]] == [
        "02:00:00:00:00:99", "5a:1f:44:af:eb:f7"]
    assert network["summary"] == {"answering": 5, "arp-only": 1, "no-reply": 1,
                                  "addresses": 7, "with_mac": 3, "mac_conflicts": 1}
    assert network["vantages"]["db1"] == {"swept": False, "arp": False}
    assert network["vantages"]["web1"]["backend"] == "dgram"
    assert network["vantages"]["web1"]["not_on_link"] == 1


def test_merge_of_nothing_is_an_empty_map():
    network = netmap.merge({})
    assert network["addresses"] == [] and network["summary"]["addresses"] == 0


def test_table_lists_addresses_with_evidence_and_a_summary():
    text = netmap.render(netmap.merge({"web1": SWEEP_WEB1, "web2": SWEEP_WEB2},
                                      {"web1": ARP_WEB1}), "table")
    lines = text.splitlines()
    assert lines[0].split() == ["ADDRESS", "STATE", "MAC", "SEEN", "BY"]
    assert any(line.startswith("10.250.7.2 ") and "arp-only" in line for line in lines)
    assert not any(line.startswith("10.250.7.3 ") for line in lines)  # no evidence at all
    row = next(line for line in lines if line.startswith("10.250.7.4 "))
    assert "web2(0.01ms) web1(0.03ms)" in row
    assert lines[-1] == "7 addresses: 5 answering, 1 ARP only, 1 no reply"


def test_csv_has_one_row_per_address():
    text = netmap.render(netmap.merge({"web1": SWEEP_WEB1, "web2": SWEEP_WEB2},
                                      {"web1": ARP_WEB1, "web2": ARP_WEB2}), "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["ip"] for r in rows][:2] == ["10.250.7.1", "10.250.7.2"] and len(rows) == 7
    four = next(r for r in rows if r["ip"] == "10.250.7.4")
    assert four["seen_by"] == "web2 web1" and four["best_rtt_ms"] == "0.012"
    assert four["mac"] == "02:00:00:00:00:99! 5a:1f:44:af:eb:f7!"
    assert json.loads(netmap.render(netmap.merge({"web1": SWEEP_WEB1}), "json"))["summary"]


# ---------------------------------------------------------------- the invoke task


def result(name: str, data: dict | None, reason: str = "") -> HostResult:
    if data is None:
        return HostResult(name, "unreachable", reason=reason or "connection refused")
    return HostResult(name, "ok", 0, json.dumps({"ok": True, "data": data}),
                      extra={"data": data})


@pytest.fixture
def fake_fleet(monkeypatch, tmp_path):
    """An inventory of three hosts and a fleet_program that replays recorded results."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1\nweb2 scan_targets=10.250.7.0/29\n[db]\ndb1\n")
    calls: list[tuple[str, dict[str, list[str]]]] = []
    recorded = {"sweep": {"web1": SWEEP_WEB1, "web2": SWEEP_WEB2, "db1": None},
                "arpscan": {"web1": ARP_WEB1, "web2": ARP_WEB2, "db1": None}}

    def fleet_program(hosts, program, args_for, options, on_result=None, timeout=None):
        calls.append((program, {h.name: list(args_for(h)) for h in hosts}))
        run = RunResult()
        for host in hosts:
            run.add(result(host.name, recorded[program][host.name]))
        return run

    import fleetops.ship.run

    monkeypatch.setattr(fleetops.ship.run, "fleet_program", fleet_program)
    monkeypatch.chdir(tmp_path)
    return inventory, calls


def test_scan_task_json_has_hosts_summary_and_network(fake_fleet, capsys):
    from fleetops.cli.scan import scan

    inventory, calls = fake_fleet
    with pytest.raises(Exit) as info:
        scan(Context(), inventory=str(inventory), arp=True, json=True)
    assert info.value.code == 3  # db1 unreachable
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"hosts", "summary", "network"}
    assert doc["summary"]["unreachable"] == 1 and doc["summary"]["ok"] == 2
    assert doc["hosts"]["web1"]["arp"] == ARP_WEB1
    assert doc["network"]["summary"]["mac_conflicts"] == 1
    assert [c[0] for c in calls] == ["sweep", "arpscan"]
    sweep_args = calls[0][1]
    assert sweep_args["web1"] == ["--targets", "auto", "--backend", "auto"]
    assert sweep_args["web2"] == ["--targets", "10.250.7.0/29", "--backend", "auto"]
    assert calls[1][1]["web1"] == ["--targets", "auto"]


def test_scan_task_table_and_csv(fake_fleet, capsys):
    from fleetops.cli.scan import scan

    inventory, calls = fake_fleet
    with pytest.raises(Exit):
        scan(Context(), inventory=str(inventory), pattern="web:db", targets="10.250.7.0/28")
    out = capsys.readouterr().out
    assert "web1 | swept 6 addresses (dgram/fast): 3 answered in 0.262s" in out
    assert "db1 | UNREACHABLE | connection refused" in out
    assert "ADDRESS" in out and "RECAP" in out
    assert calls[0][1]["web2"] == ["--targets", "10.250.7.0/28", "--backend", "auto"]
    with pytest.raises(Exit):
        scan(Context(), inventory=str(inventory), format="csv")
    assert capsys.readouterr().out.startswith("ip,state,mac,seen_by,best_rtt_ms,no_reply_from\n")


@pytest.mark.parametrize("kwargs, message", [
    ({"targets": "10.0.0.5/24"}, "--targets: 10.0.0.5/24 has host bits set"),
    ({"targets": "10.0.0.0/8"}, "exceed the cap of 65536"),
    ({"format": "xml"}, "--format must be one of table, json, csv"),
    ({"backend": "icmp"}, "is not a sweep backend"),
])
def test_scan_task_rejects_bad_options_before_connecting(fake_fleet, capsys, kwargs, message):
    from fleetops.cli.scan import scan

    inventory, calls = fake_fleet
    with pytest.raises(Exit) as info:
        scan(Context(), inventory=str(inventory), **kwargs)
    assert info.value.code == OptionError.exit_code
    assert message in str(info.value.message) and "\n" not in str(info.value.message)
    assert calls == []


@pytest.mark.parametrize("interrupted_phase", ["sweep", "arpscan"])
def test_ctrl_c_in_either_phase_ends_the_scan_as_interrupted(fake_fleet, capsys, monkeypatch,
                                                            interrupted_phase):
    import fleetops.ship.run
    from fleetops.cli.scan import scan
    from fleetops.errors import EXIT_INTERRUPTED

    inventory, calls = fake_fleet
    replay = fleetops.ship.run.fleet_program

    def fleet_program(hosts, program, args_for, options, on_result=None, timeout=None):
        run = replay(hosts, program, args_for, options, on_result, timeout)
        run.elapsed = 1.5 if program == "sweep" else 0.5
        run.interrupted = program == interrupted_phase
        return run

    monkeypatch.setattr(fleetops.ship.run, "fleet_program", fleet_program)
    with pytest.raises(Exit) as info:
        scan(Context(), inventory=str(inventory), pattern="web", arp=True,
             targets="10.250.7.0/29")
    assert info.value.code == EXIT_INTERRUPTED
    out = capsys.readouterr().out
    if interrupted_phase == "sweep":  # no second fleet run after Ctrl-C
        assert [c[0] for c in calls] == ["sweep"]
        assert "2 hosts in 1.50s" in out
    else:
        assert [c[0] for c in calls] == ["sweep", "arpscan"]
        assert "2 hosts in 2.00s" in out
