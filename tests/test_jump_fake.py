"""ProxyJump through the transport seam, on the fake transport: seconds, no sshd.

One bastion transport per chain shared by every host behind it; a dead bastion makes
the hosts behind it unreachable naming it, and they are never tried directly; a host
the bastion cannot reach is unreachable alone. Against real sshds: tests/test_jump.py."""

from __future__ import annotations

from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.ssh import Target
from fleetops.core.testing import FakeHost, FakeNetwork, hosts


def echo(proc):
    proc.write(proc.transport.target.name.encode() + b"\n")


def run(net, names, jumps):
    """``jumps``: host name -> its hop names, first hop first."""

    def target_for(host):
        hops = tuple(Target(name=h, address=h, user="jump") for h in jumps.get(host.name, ()))
        return Target(name=host.name, address=host.name, jump=hops)

    def work(session):
        return exec_result(session.host.name, session.exec("hostname"))

    with Fleet(RunOptions(forks=4), target_for, connect=net.connect) as fleet:
        return fleet.run(hosts(*names), work)


def test_hosts_behind_a_bastion_share_one_connection_to_it():
    names = [f"h{i}" for i in range(6)]
    net = FakeNetwork({n: FakeHost(echo) for n in [*names, "b1", "direct"]})
    result = run(net, [*names, "direct"], {n: ["b1"] for n in names})
    assert result.summary["ok"] == 7
    assert [r.stdout for r in result.hosts.values()] == [f"{n}\n" for n in [*names, "direct"]]
    assert net.connects.count("b1") == 1
    assert sorted(net.channels) == sorted(("b1", n) for n in names)
    routes = dict(net.routes)
    assert all(routes[n] == "jump@b1:22" for n in names)
    assert routes["direct"] is None and routes["b1"] is None


def test_a_dead_bastion_makes_its_hosts_unreachable_naming_it_never_direct():
    net = FakeNetwork({"b1": FakeHost(unreachable="b1:22: connection refused"),
                       "h1": FakeHost(echo), "h2": FakeHost(echo), "h3": FakeHost(echo)})
    result = run(net, ["h1", "h2", "h3"], {"h1": ["b1"], "h2": ["b1"]})
    for name in ("h1", "h2"):
        assert result.hosts[name].status == "unreachable"
        assert result.hosts[name].reason == "bastion jump@b1:22: connection refused"
    assert result.hosts["h3"].status == "ok"
    assert net.connects.count("b1") == 1  # tried once for both
    assert "h1" not in net.connects and "h2" not in net.connects  # never a direct try


def test_a_chain_of_two_bastions():
    net = FakeNetwork({n: FakeHost(echo) for n in ("b1", "b2", "h1", "h2")})
    result = run(net, ["h1", "h2"], {"h1": ["b1", "b2"], "h2": ["b1", "b2"]})
    assert result.summary["ok"] == 2, result.hosts
    assert net.connects.count("b1") == 1 and net.connects.count("b2") == 1
    routes = dict(net.routes)
    assert routes["b2"] == "jump@b1:22" and routes["h1"] == routes["h2"] == "jump@b2:22"
    assert sorted(net.channels) == [("b1", "b2"), ("b2", "h1"), ("b2", "h2")]


def test_a_dead_first_hop_is_named_for_the_whole_chain():
    net = FakeNetwork({"b1": FakeHost(unreachable="b1:22: no route to host"),
                       "b2": FakeHost(echo), "h1": FakeHost(echo)})
    result = run(net, ["h1"], {"h1": ["b1", "b2"]})
    assert result.hosts["h1"].status == "unreachable"
    assert result.hosts["h1"].reason == "bastion jump@b1:22: no route to host"
    assert "b2" not in net.connects and "h1" not in net.connects


def test_a_host_the_bastion_cannot_reach_is_unreachable_alone():
    net = FakeNetwork({n: FakeHost(echo) for n in ("b1", "h1")})
    result = run(net, ["h1", "gone"], {"h1": ["b1"], "gone": ["b1"]})
    assert result.hosts["h1"].status == "ok"
    gone = result.hosts["gone"]
    assert gone.status == "unreachable"
    assert gone.reason == "gone:22: bastion jump@b1:22 could not connect to it (Connection refused)"
