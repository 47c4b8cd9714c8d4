"""How ProxyJump hops are named in reasons (parsing is tested against ssh -G in
tests/test_sshconfig.py). (The ssh_config path is tested end to end in
tests/test_jump.py::test_cli_*.)"""

from __future__ import annotations

from fleetops.core.jump import hop_label
from fleetops.core.ssh import Target


def test_hop_label():
    t = Target(name="bastion", address="10.0.0.1", port=22, user="ops")
    assert hop_label(t) == "bastion (ops@10.0.0.1:22)"

