"""A host's program result is checked on arrival (issue 11, point 2): crafted results
of every program make that host ``failed`` with the field named, and every consumer
(disk report, cron/daemon/scan printers, network map, playbook summary, JSON output)
goes on with the other hosts. No SSH here: ``classify`` gets the bytes a host sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetops.cli import cron as cli_cron
from fleetops.cli import daemons as cli_daemons
from fleetops.cli.scan import host_data, vantage_lines
from fleetops.jobs import scan as netmap
from fleetops.jobs.disk import report as dr
from fleetops.playbook.run import network_inventory
from fleetops.results import RunResult
from fleetops.ship.run import classify, parse_document
from fleetops.ship.schemas import SchemaError, check_result

REPO = Path(__file__).resolve().parents[1]


def doc(data, ok=True, changed=False, error=None, **extra) -> bytes:
    return json.dumps({"ok": ok, "changed": changed, "data": data, "error": error,
                       **extra}).encode()


MOUNT = {"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "size_bytes": 100,
         "used_bytes": 40, "avail_bytes": 60, "use_pct": 40, "inodes_total": 10,
         "inodes_used": 1, "inodes_pct": 10, "level": "ok", "over": [], "error": None}
GOOD = {
    "diskreport": {"mounts": [MOUNT, dict(MOUNT, mountpoint="/srv")], "worst_level": "ok",
                   "over": [], "hostname": "h", "skipped": [{"mountpoint": "/p", "reason": "x"}]},
    "cron": {"user": "root", "action": "installed", "path": "/etc/cron.d/x", "diff": "+x\n",
             "backup": "/tmp/b", "target": "cron.d", "name": "x",
             "entries": [{"target": "user", "name": "x", "schedule": "@daily",
                          "command": "true", "foreign": False, "managed_by": "fleetops",
                          "user": "root", "ignored": "why", "disabled": False}]},
    "watcher": {"name": "default", "running": True, "pid": 42, "uptime_s": 1.5,
                "last_event": {"msg": "started", "result": "ok"}, "already_running": True,
                "warning": "w", "stopped_in_s": 0.1, "stdout": ["a"], "stderr": ["b"],
                "logs": {"stdout": "/l/o", "stderr": "/l/e"}, "args": ["--x"], "mode": "daemon"},
    "sweep": {"backend": "dgram", "mode": "fast", "targets": 2,
              "alive": [{"ip": "10.0.0.1", "rtt_ms": 0.2}], "no_reply": ["10.0.0.2"],
              "elapsed_s": 0.1},
    "arpscan": {"method": "neigh-cache", "entries": [{"ip": "10.0.0.1",
                                                      "mac": "02:00:00:00:00:01"}],
                "no_reply": [], "not_on_link": []},
    "files": {"path": "/etc/x", "existed": True, "content_changed": False, "mode": "0644"},
}

BAD = [  # (program, data or raw bytes, the field the reason must name)
    ("diskreport", {"mounts": [MOUNT, MOUNT, dict(MOUNT, size_bytes="abc")]},
     'result.data.mounts[2].size_bytes: expected an integer, got "abc"'),
    ("diskreport", "s", 'result.data: expected an object, got "s"'),
    ("diskreport", {"mounts": "all"}, "result.data.mounts: expected a list"),
    ("diskreport", {"mounts": [dict(MOUNT, use_pct=101)]}, "result.data.mounts[0].use_pct"),
    ("diskreport", {"mounts": [dict(MOUNT, use_pct=True)]}, "result.data.mounts[0].use_pct"),
    ("diskreport", {"mounts": [{"device": "x"}]},
     "result.data.mounts[0].mountpoint: required field missing"),
    ("diskreport", {"mounts": [dict(MOUNT, level="fine")]}, "result.data.mounts[0].level"),
    ("diskreport", {}, "result.data.mounts: required field missing"),
    ("cron", {"entries": [{"command": 7}]}, "result.data.entries[0].command"),
    ("cron", {"diff": ["a"]}, "result.data.diff: expected a string"),
    ("watcher", {"running": "yes"}, "result.data.running: expected a boolean"),
    ("watcher", {"last_event": "boom"}, "result.data.last_event: expected an object"),
    ("watcher", {"pid": -1}, "result.data.pid"),
    ("dirsync", {"stdout": [1, 2]}, "result.data.stdout[0]: expected a string"),
    ("sweep", {"alive": [{"rtt_ms": 1}], "no_reply": []},
     "result.data.alive[0].ip: required field missing"),
    ("sweep", {"alive": [{"ip": "not-an-ip"}], "no_reply": []}, "result.data.alive[0].ip"),
    ("sweep", {"alive": [{"ip": "10.0.0.1", "rtt_ms": "fast"}], "no_reply": []},
     "result.data.alive[0].rtt_ms"),
    ("arpscan", {"entries": [{"ip": "10.0.0.1", "mac": 5}]}, "result.data.entries[0].mac"),
    ("files", {"existed": "no"}, "result.data.existed"),
]


@pytest.mark.parametrize("program", sorted(GOOD))
def test_good_results_pass(program):
    result = classify("h", 0, doc(GOOD[program]), b"", program)
    assert result.status == "ok", result.reason
    assert result.data == GOOD[program]


@pytest.mark.parametrize(("program", "data", "field"), BAD)
def test_bad_results_fail_naming_the_field(program, data, field):
    result = classify("h", 0, doc(data), b"", program)
    assert result.status == "failed"
    assert field in result.reason
    assert result.data == {}  # nothing unchecked reaches a consumer


@pytest.mark.parametrize("raw", [
    doc({}, ok="false"), doc({}, ok=1), doc({}, changed="yes"), doc({}, error=["x"]),
    b'{"ok": true, "changed": false, "data": {}}',
])
def test_contract_needs_real_booleans_and_keys(raw):
    result = classify("h", 0, raw, b"", "cron")
    assert result.status == "failed"
    assert "result" in result.reason or "not a fleetops result" in result.reason


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
def test_non_finite_numbers_are_refused(number):
    raw = b'{"ok": true, "changed": false, "error": null, "data": {"mounts": [' \
          b'{"mountpoint": "/", "use_pct": ' + number + b'}]}}'
    with pytest.raises(ValueError):
        parse_document(raw)
    assert classify("h", 0, raw, b"", "diskreport").status == "failed"


def test_deep_nesting_and_huge_numbers_fail_cleanly():
    deep = b'{"ok": true, "changed": false, "error": null, "data": {"x": ' + b"[" * 5000 \
        + b"]" * 5000 + b"}}"
    assert classify("h", 0, deep, b"", "cron").status == "failed"
    nested = {"x": 1}
    for _ in range(40):
        nested = {"x": nested}
    result = classify("h", 0, doc({"extra": nested}), b"", "cron")
    assert result.status == "failed" and "nested deeper" in result.reason
    big = b'{"ok": true, "changed": false, "error": null, "data": {"pid": ' + b"9" * 5000 + b"}}"
    result = classify("h", 0, big, b"", "watcher")
    assert result.status == "failed" and "5000 digits" in result.reason
    assert "set_int_max_str_digits" not in result.reason


def test_a_failed_result_with_bad_data_keeps_its_error():
    result = classify("h", 1, doc({"mounts": 3}, ok=False, error="mail failed"), b"",
                      "diskreport")
    assert result.status == "failed" and result.reason.startswith("mail failed")
    assert "result.data.mounts" in result.reason and result.data == {}


def test_schema_error_message_shape():
    with pytest.raises(SchemaError) as info:
        check_result({"ok": True, "changed": False, "error": None,
                      "data": {"mounts": [{"mountpoint": "/", "size_bytes": -5}]}}, "diskreport")
    assert str(info.value) == "result.data.mounts[0].size_bytes: expected at least 0, got -5"
    with pytest.raises(SchemaError) as info:  # the bound broken is named (was "at least 0")
        check_result({"ok": True, "changed": False, "error": None,
                      "data": {"mounts": [{"mountpoint": "/", "size_bytes": 10**21,
                                           "use_pct": 150}]}}, "diskreport")
    assert str(info.value) == ("result.data.mounts[0].size_bytes: expected at most 2^63-1, "
                               "got 1000000000000000000000")
    with pytest.raises(SchemaError) as info:
        check_result({"ok": True, "changed": False, "error": None,
                      "data": {"mounts": [{"mountpoint": "/", "use_pct": 150}]}}, "diskreport")
    assert str(info.value) == "result.data.mounts[0].use_pct: expected at most 100, got 150"


def test_truncated_program_output_is_a_clear_failure():
    result = classify("h", 0, b'{"ok": true, "chan', b"", "diskreport", {"stdout": 123})
    assert result.status == "failed"
    assert "over --max-output" in result.reason and result.truncated == ("stdout",)


def test_cut_stderr_is_noted_and_the_result_still_judged():
    result = classify("h", 0, doc(GOOD["cron"]), b"warning\n" * 10, "cron", {"stderr": 99})
    assert result.status == "ok" and result.truncated == ("stderr",)
    assert result.discarded_bytes == {"stderr": 99} and "stderr cut" in result.reason


def _run(program: str, datas: dict) -> RunResult:
    run = RunResult()
    for name, data in datas.items():
        run.add(classify(name, 0, doc(data), b"", program))
    return run


def test_consumers_go_on_with_the_other_hosts():
    bad = {p: d for p, d, _ in reversed(BAD)}
    # disk report: every renderer and the JSON output
    run = _run("diskreport", {"good": GOOD["diskreport"], "bad": bad["diskreport"]})
    rep = dr.build_report(run.hosts, 80, 90)
    assert rep.hosts["bad"].status == "failed" and rep.hosts["good"].mounts == 2
    for render in (dr.render_table, dr.render_text, dr.render_html, dr.render_csv):
        assert render(rep)
    json.loads(run.dumps())
    # cron, daemons
    for kind in ("list", "install"):
        run = _run("cron", {"good": GOOD["cron"], "bad": bad["cron"]})
        for result in run.hosts.values():
            assert cli_cron.describe(kind, result, True)
    for action in ("start", "stop", "status", "logs"):
        run = _run("watcher", {"good": GOOD["watcher"], "bad": bad["watcher"]})
        cli_daemons.add_status_fields(run)
        for result in run.hosts.values():
            assert cli_daemons.describe(action, result)
    # scan: network map and table
    sweeps = _run("sweep", {"good": GOOD["sweep"], "bad": bad["sweep"]})
    arps = _run("arpscan", {"good": GOOD["arpscan"], "bad": bad["arpscan"]})
    network = netmap.merge({n: host_data(r) for n, r in sweeps.hosts.items()},
                           {n: host_data(r) for n, r in arps.hosts.items()})
    assert network["summary"]["answering"] == 1
    assert netmap.render(network, "table") and netmap.render(network, "json")
    assert "bad | FAILED" in vantage_lines(sweeps)
    # playbook network summary
    states = {n: SimpleNamespace(tasks=[SimpleNamespace(action="sweep", status=r.status,
                                                        data=r.data)])
              for n, r in sweeps.hosts.items()}
    assert [(e["ip"], e["state"]) for e in network_inventory(states)["addresses"]] == \
        [("10.0.0.1", "answering"), ("10.0.0.2", "no-reply")]


def test_json_output_is_strict():
    run = RunResult()
    run.add(classify("h", 0, doc(GOOD["watcher"]), b"", "watcher"))
    run.hosts["h"].extra["odd"] = float("inf")  # cannot come from a host; still never printed
    text = run.dumps()
    assert "Infinity" not in text and json.loads(text)["hosts"]["h"]["odd"] is None


def _local(*argv: str) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)
    return proc.stdout


@pytest.mark.parametrize(("program", "argv"), [
    ("diskreport", ["diskreport"]),
    ("sweep", ["sweep", "--targets", "127.0.0.1"]),
    ("cron", ["cron", "list"]),
    ("watcher", ["watcher", "status", "--name", "schema-test", "--state-dir", "/nonexistent-x"]),
    ("dirsync", ["dirsync", "status", "--name", "schema-test", "--state-dir", "/nonexistent-x"]),
])
def test_real_program_output_fits_its_schema(program, argv):
    """The schemas accept what the programs really print on this machine."""
    raw = _local(*argv)
    result = classify("local", 0, raw, b"", program)
    assert result.status == "ok", result.reason


class _FakeChannel:
    """Just enough of paramiko.Channel for Connection._drain (a fake, in addition to
    the lab tests that flood a real sshd)."""

    def __init__(self, out_chunks: int, err_chunks: int, size: int = 65536) -> None:
        self.out, self.err, self.size = out_chunks, err_chunks, size

    def recv_ready(self) -> bool:
        return self.out > 0

    def recv_stderr_ready(self) -> bool:
        return self.err > 0

    def recv(self, n: int) -> bytes:
        self.out -= 1
        return b"o" * self.size

    def recv_stderr(self, n: int) -> bytes:
        self.err -= 1
        return b"e" * self.size


def test_drain_keeps_at_most_the_cap_and_counts_the_rest():
    from fleetops.core.ssh import DRAIN_CHUNKS, Connection

    chan = _FakeChannel(out_chunks=DRAIN_CHUNKS + 10, err_chunks=3)
    out, err, cut = bytearray(), bytearray(), {}
    assert Connection._drain(chan, out, err, 100_000, cut) is True  # budget spent: more to read
    assert Connection._drain(chan, out, err, 100_000, cut) is False
    assert len(out) == len(err) == 100_000
    assert cut == {"stdout": (DRAIN_CHUNKS + 10) * 65536 - 100_000,
                   "stderr": 3 * 65536 - 100_000}
    assert chan.out == chan.err == 0  # everything was read: the remote never blocks


# -- property: whatever a host sends, a result that passes is safe for every consumer ----


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=10)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _consume(program: str, run: RunResult) -> None:
    if program == "diskreport":
        rep = dr.build_report(run.hosts, 80, 90)
        for render in (dr.render_table, dr.render_html, dr.render_csv):
            render(rep)
    elif program == "cron":
        for result in run.hosts.values():
            cli_cron.describe("list", result, True)
            cli_cron.describe("install", result, True)
    elif program == "watcher":
        cli_daemons.add_status_fields(run)
        for action in ("start", "stop", "status", "logs"):
            for result in run.hosts.values():
                cli_daemons.describe(action, result)
    elif program in ("sweep", "arpscan"):
        datas = {n: host_data(r) for n, r in run.hosts.items()}
        network = netmap.merge(datas if program == "sweep" else {},
                               datas if program == "arpscan" else None)
        netmap.render(network, "table")
        netmap.render(network, "csv")
        netmap.render(network, "json")
        states = {n: SimpleNamespace(tasks=[SimpleNamespace(action=program, status=r.status,
                                                            data=r.data)])
                  for n, r in run.hosts.items()}
        network_inventory(states)
    run.dumps()


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(set(GOOD) - {"files"})), st.data())
def test_any_mutated_result_is_rejected_or_safe_to_consume(program, data):
    good = GOOD[program]
    path = data.draw(st.sampled_from(list(_paths(good))))
    mutated = _replace(good, path, data.draw(JSON))
    run = _run(program, {"h1": good, "h2": mutated})
    assert run.hosts["h1"].status == "ok"
    _consume(program, run)
