"""The runner on the in-process fake transport (fleetops.core.testing): seconds, no sshd.

Bounded pool, one result per host whatever happens, whole-host deadline and Ctrl-C
keeping what finished, output caps, the retry file. The same behaviour against real
sshds is in test_adhoc.py (lab)."""

from __future__ import annotations

import time

import pytest

from fleetops.cli.common import write_retry
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.ssh import Unreachable
from fleetops.core.testing import FakeHost, FakeNetwork, hosts
from fleetops.core.transport import Transport
from fleetops.results import EXIT_INTERRUPTED
from fleetops.safefile import RETRY_HEADER


def echo(proc):
    proc.write(proc.transport.target.name.encode() + b"\n")


def shell(session):
    return exec_result(session.host.name, session.exec("hostname"))


def run(net, names, work=shell, **options):
    with Fleet(RunOptions(**options), net.target_for, connect=net.connect) as fleet:
        return fleet.run(hosts(*names), work)


def test_the_fake_is_a_transport():
    net = FakeNetwork({"a": FakeHost(echo)})
    conn = net.connect(net.target_for(hosts("a")[0]), lambda sock: None)
    assert isinstance(conn, Transport)
    conn.put(b"data", "x/y", 0o640)
    assert conn.get("x/y") == b"data" and net.hosts["a"].files["x/y"] == (b"data", 0o640)


def test_pool_is_bounded_by_forks():
    def slow(proc):
        proc.sleep(0.05)
        echo(proc)

    names = [f"h{i:02d}" for i in range(20)]
    net = FakeNetwork({n: FakeHost(slow) for n in names})
    result = run(net, names, forks=4)
    assert net.peak == 4
    assert result.summary["ok"] == 20
    assert [r.stdout for r in result.hosts.values()] == [f"{n}\n" for n in names]
    assert sorted(net.connects) == names  # one connection per host


def test_one_result_per_host_whatever_happens():
    def fails(proc):
        proc.write(b"oops\n", "stderr")
        return 2

    def hangs(proc):
        proc.sleep(float("inf"))

    def drops(proc):
        proc.write(b"partial")
        proc.drop_connection()

    def broken(proc):
        raise RuntimeError("bug in the fake program")

    net = FakeNetwork({
        "ok": FakeHost(echo), "fails": FakeHost(fails), "hangs": FakeHost(hangs),
        "drops": FakeHost(drops), "refused": FakeHost(unreachable="h:22: Connection refused"),
        "broken": FakeHost(broken), "raises": FakeHost(echo),
    })

    def work(session):
        if session.host.name == "raises":
            raise ValueError("worker bug")
        return exec_result(session.host.name, session.exec("cmd", timeout=0.3))

    names = ["ok", "fails", "hangs", "drops", "refused", "missing", "broken", "raises"]
    reported = []
    started = time.monotonic()
    with Fleet(RunOptions(forks=8), net.target_for, connect=net.connect) as fleet:
        result = fleet.run(hosts(*names), work,
                           on_result=lambda host, run_: reported.append(host.name))
    assert time.monotonic() - started < 3
    assert list(result.hosts) == names  # inventory order, one each
    assert sorted(reported) == sorted(names)  # each host reported once, as it finished
    assert result.summary == {"ok": 1, "changed": 0, "failed": 4, "unreachable": 3,
                              "skipped": 0}
    doc = result.to_json()
    assert set(doc) == {"hosts", "summary"} and list(doc["hosts"]) == names
    assert all(set(h) >= {"status", "rc", "stdout", "stderr", "duration", "reason"}
               for h in doc["hosts"].values())
    got = {n: (r.status, r.reason) for n, r in result.hosts.items()}
    assert got["ok"] == ("ok", None)
    assert got["fails"] == ("failed", "command exited with rc=2")
    assert result.hosts["fails"].stderr == "oops\n"
    assert got["hangs"][0] == "failed" and got["hangs"][1].startswith("command timed out after 0.")
    assert got["drops"] == ("unreachable", "connection lost while the command ran")
    assert got["refused"] == ("unreachable", "h:22: Connection refused")
    assert got["missing"] == ("unreachable", "missing:22: Name or service not known")
    assert got["broken"] == ("failed", "command exited with rc=1")
    assert got["raises"] == ("failed", "ValueError: worker bug")
    assert result.exit_code == 2


def test_host_deadline_keeps_finished_results():
    def hangs(proc):
        proc.write(b"started\n")
        proc.sleep(float("inf"))

    net = FakeNetwork({"a": FakeHost(echo), "b": FakeHost(echo), "hung": FakeHost(hangs),
                       "slow": FakeHost(echo, connect_s=30)})
    started = time.monotonic()
    result = run(net, ["a", "hung", "slow", "b"], host_deadline=0.5, forks=4)
    assert time.monotonic() - started < 2.5
    assert result.hosts["a"].status == result.hosts["b"].status == "ok"
    hung, slow = result.hosts["hung"], result.hosts["slow"]
    assert hung.status == "failed"  # it was connected: the command is what overran
    assert hung.reason.startswith("host deadline of 0.5s exceeded (")
    assert slow.status == "unreachable"
    assert slow.reason == ("host deadline of 0.5s exceeded (slow:22: connection closed "
                           "while connecting)")
    assert 0.5 <= hung.duration < 1.5 and 0.5 <= slow.duration < 1.5


def test_ctrl_c_keeps_finished_results_and_accounts_for_every_host():
    def hangs(proc):
        proc.sleep(float("inf"))

    names = ["q1", "q2", "h1", "h2", "h3", "h4", "h5"]
    net = FakeNetwork({n: FakeHost(echo if n.startswith("q") else hangs) for n in names})
    ticks = []

    def on_tick(run_):
        ticks.append(len(run_.hosts))
        if len(run_.hosts) >= 2 and net.running >= 2:
            raise KeyboardInterrupt  # what SIGINT does in the main thread

    started = time.monotonic()
    with Fleet(RunOptions(forks=2), net.target_for, connect=net.connect) as fleet:
        result = fleet.run(hosts(*names), shell, on_tick=on_tick)
    assert time.monotonic() - started < 3
    assert result.interrupted and result.exit_code == EXIT_INTERRUPTED
    assert list(result.hosts) == names
    assert [result.hosts[n].status for n in ("q1", "q2")] == ["ok", "ok"]
    statuses = {n: (r.status, r.reason) for n, r in result.hosts.items() if n.startswith("h")}
    assert statuses["h1"] == statuses["h2"] == ("failed", "interrupted while running")
    assert all(s == ("skipped", "interrupted before it started")
               for n, s in statuses.items() if n not in ("h1", "h2"))
    assert net.commands[-1][0] in ("h1", "h2") and len(net.commands) == 4


def test_output_over_max_output_is_drained_and_counted():
    def floods(proc):
        for _ in range(80):
            proc.write(b"x" * 65536)
        proc.write(b"e" * 5000, "stderr")

    net = FakeNetwork({"f": FakeHost(floods)})
    result = run(net, ["f"], max_output=1000).hosts["f"]
    assert result.status == "ok" and len(result.stdout) == 1000 and len(result.stderr) == 1000
    assert result.truncated == ("stdout", "stderr")
    assert result.discarded_bytes == {"stdout": 80 * 65536 - 1000, "stderr": 4000}


def test_retry_file_lists_failed_and_unreachable_hosts_in_order(tmp_path):
    net = FakeNetwork({"ok": FakeHost(echo), "bad": FakeHost(lambda p: 1),
                       "down": FakeHost(unreachable="refused")})
    result = run(net, ["bad", "ok", "gone", "down"])
    path = tmp_path / "retry"
    assert write_retry(result, str(path)) == str(path)
    assert path.read_text() == RETRY_HEADER + "bad\ngone\ndown\n"
    healed = run(FakeNetwork({n: FakeHost(echo) for n in ("bad", "gone", "down")}),
                 ["bad", "gone", "down"])
    assert write_retry(healed, str(path)) is None and not path.exists()


def test_connection_is_reused_and_reopened_when_lost():
    def maybe_drop(proc):
        if proc.command == "drop":
            proc.drop_connection()
        echo(proc)

    net = FakeNetwork({"a": FakeHost(maybe_drop)})

    def work(session):
        first = session.exec("one")
        with pytest.raises(Unreachable):
            session.exec("drop")
        session.fleet.drop(session.host.name)
        return exec_result(session.host.name, session.exec("two")) if first.rc == 0 else None

    result = run(net, ["a"], work)
    assert result.hosts["a"].status == "ok"
    assert net.connects == ["a", "a"]
    assert [c for _, c in net.commands] == ["one", "drop", "two"]


def test_each_host_is_resolved_once_per_fleet():
    net = FakeNetwork({"a": FakeHost(echo), "b": FakeHost(echo)})
    resolved = []

    def target_for(host):
        resolved.append(host.name)
        return net.target_for(host)

    inventory = hosts("a", "b")
    with Fleet(RunOptions(), target_for, connect=net.connect) as fleet:
        for _ in range(3):  # e.g. three tasks of a play
            assert fleet.run(inventory, shell).summary["ok"] == 2
    assert sorted(resolved) == ["a", "b"] and sorted(net.connects) == ["a", "b"]
