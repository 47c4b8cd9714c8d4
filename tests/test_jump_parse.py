"""ProxyJump values (ssh(1) -J syntax) as the stop-gap resolver in fleetops.jump parses
them, and how hops are named in reasons. (The ssh_config path is tested end to end in
tests/test_jump.py::test_cli_*.)"""

from __future__ import annotations

import pytest

from fleetops.jump import hop_label, parse_proxy_jump
from fleetops.ssh import Target


@pytest.mark.parametrize("spec, hops", [
    ("none", []),
    ("", []),
    ("bastion", [(None, "bastion", None)]),
    ("ops@bastion:2200", [("ops", "bastion", 2200)]),
    ("ssh://ops@bastion:2200", [("ops", "bastion", 2200)]),
    ("a@10.0.0.1,b:23,c", [("a", "10.0.0.1", None), (None, "b", 23), (None, "c", None)]),
    ("u@[::1]:2222", [("u", "::1", 2222)]),
    ("fe80::1", [(None, "fe80::1", None)]),
])
def test_parse(spec, hops):
    assert parse_proxy_jump(spec) == hops


@pytest.mark.parametrize("spec", ["@host", "host:0", "host:99999", "host:x", "a b", "h,,g"])
def test_parse_refuses(spec):
    with pytest.raises(ValueError):
        parse_proxy_jump(spec)


def test_hop_label():
    t = Target(name="bastion", address="10.0.0.1", port=22, user="ops")
    assert hop_label(t) == "bastion (ops@10.0.0.1:22)"

