"""The Transport interface's put/get on a real sshd (SFTP) and on the local connection,
checked with OpenSSH's own view of the file (``ssh HOST stat``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetops.core.local import LocalConnection
from fleetops.core.runner import Fleet, RunOptions
from fleetops.core.ssh import Target
from fleetops.core.transport import Transport
from fleetops.results import HostResult


@pytest.mark.lab
def test_put_and_get_over_sftp(lab, lab_ssh):
    from fleetops.cli.common import target_for
    from fleetops.inventory.load import load_inventory

    hosts = load_inventory(lab.inventory_path).select("lab09")
    payload = bytes(range(256)) * 1000  # binary, 256 KB: several SFTP blocks

    def work(session):
        conn = session.connection
        assert isinstance(conn, Transport)
        conn.put(payload, "fleetops-put-test.bin", 0o640)
        back = conn.get("fleetops-put-test.bin")
        with pytest.raises(OSError):
            conn.get("fleetops-put-test.bin", limit=1000)
        with pytest.raises(OSError):
            conn.get("no-such-file-here")
        return HostResult(session.host.name, "ok", stdout=str(back == payload))

    with Fleet(RunOptions(command_timeout=30), target_for) as fleet:
        result = fleet.run(hosts, work)
    assert result.hosts["lab09"].status == "ok", result.hosts["lab09"].reason
    assert result.hosts["lab09"].stdout == "True"
    seen = lab_ssh("lab09", "stat -c '%a %s' fleetops-put-test.bin; ls -a | grep -c fleetops-"
                   "; rm -f fleetops-put-test.bin")
    assert seen.stdout.split() == ["640", str(len(payload)), "1"], seen  # no temp file left


def test_local_put_and_get(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("fleetops.core.local._home", lambda: str(tmp_path))
    conn = LocalConnection(Target(name="localhost", address="localhost", connection="local"))
    assert isinstance(conn, Transport)
    conn.put(b"one\n", "sub-file", 0o600)
    conn.put(b"two\n", "sub-file", 0o644)  # replaced, new mode
    path = Path(tmp_path, "sub-file")
    assert path.read_bytes() == b"two\n" and path.stat().st_mode & 0o777 == 0o644
    assert conn.get("sub-file") == b"two\n"
    os.symlink("/etc/passwd", tmp_path / "link")
    with pytest.raises(OSError):
        conn.get("link")  # never through a symlink
    with pytest.raises(OSError):
        conn.get("sub-file", limit=2)
    assert sorted(os.listdir(tmp_path)) == ["link", "sub-file"]
