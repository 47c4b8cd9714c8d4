"""ProxyJump values (ssh(1) -J syntax) and their resolution into ``Target.jump``."""

from __future__ import annotations

import subprocess

import pytest

from fleetops.inventory import Host
from fleetops.jump import hop_label, parse_proxy_jump
from fleetops.ssh import Target
from fleetops.targets import target_for


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


def test_ssh_config_proxyjump_becomes_hops_resolved_like_hosts(tmp_path, monkeypatch):
    """~/.ssh/config ProxyJump: every hop gets its own settings from the config, the
    first hop's own ProxyJump comes first (what ssh -J does); compared with ssh -G."""
    config = tmp_path / ".ssh" / "config"
    config.parent.mkdir()
    config.write_text(
        "Host target.example\n  ProxyJump ops@inner.example:2201\n"
        "Host inner.example\n  ProxyJump outer.example\n  User nobody\n"
        "Host outer.example\n  ProxyJump none\n  Port 2022\n  User edge\n"
        "Host *\n  IdentityFile ~/.ssh/id_lab\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    target = target_for(Host(name="t", address="target.example"))
    assert [(h.user, h.address, h.port) for h in target.jump] == [
        ("edge", "outer.example", 2022), ("ops", "inner.example", 2201)]
    assert all(h.key_files == (str(tmp_path / ".ssh" / "id_lab"),) for h in target.jump)
    assert all(h.jump == () for h in target.jump)
    assert hop_label(target.jump[1]) == "ops@inner.example:2201"
    # OpenSSH reads the same values for the target and the first hop
    for name, want in (("target.example", "ops@inner.example:2201"),
                       ("outer.example", "none")):
        out = subprocess.run(["ssh", "-G", "-F", str(config), name], capture_output=True,
                             text=True, check=True).stdout
        got = [line.split(None, 1)[1] for line in out.splitlines()
               if line.startswith("proxyjump ")]
        assert got == ([want] if want != "none" else []), (name, got)


def test_hop_label():
    t = Target(name="bastion", address="10.0.0.1", port=22, user="ops")
    assert hop_label(t) == "bastion (ops@10.0.0.1:22)"


def test_proxyjump_loop_is_an_input_error(tmp_path, monkeypatch):
    from fleetops.errors import InputError

    config = tmp_path / ".ssh" / "config"
    config.parent.mkdir()
    config.write_text("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputError, match="ProxyJump chain longer than 8 hops"):
        target_for(Host(name="t", address="a"))
