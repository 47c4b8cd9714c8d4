"""Why a small argument document travels in argv, not on stdin (``fleetops.ship.run.split_input``):
OpenSSH's sshd opens a session channel with a window of 0 bytes and grants it only when it
has started the command (serverloop.c ``server_request_session``, then ``channel_set_fds``),
with its reply to the exec request. No stdin byte may be sent before that (RFC 4254 5.2),
so data on stdin costs a round trip however the exec request is sent. If a future sshd
grants a window at open, this fails: then stdin could be pipelined with the exec request."""

from __future__ import annotations

import pytest

from fleetops.core.runner import Fleet, RunOptions
from fleetops.core.ssh import Connection
from fleetops.results import HostResult


@pytest.mark.lab
def test_sshd_grants_no_stdin_window_before_the_exec_reply(lab):
    from fleetops.cli.common import target_for
    from fleetops.inventory.load import load_inventory

    seen: dict[str, int] = {}

    def work(session) -> HostResult:
        conn = session.connection
        assert isinstance(conn, Connection)
        chan = conn.transport.open_session(timeout=10)
        try:
            seen["open"] = chan.out_window_size
            chan.exec_command("cat >/dev/null")  # returns once sshd replied
            chan.sendall(b"x" * 1000)  # the window is granted now
            seen["exec"] = chan.out_window_size
        finally:
            chan.close()
        return HostResult(session.host.name, "ok")

    hosts = load_inventory(lab.inventory_path).select("lab12")
    with Fleet(RunOptions(command_timeout=30), target_for) as fleet:
        result = fleet.run(hosts, work).hosts["lab12"]
    assert result.status == "ok", result.reason
    assert seen["open"] == 0 and seen["exec"] > 0, seen
