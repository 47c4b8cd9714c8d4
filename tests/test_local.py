"""``ansible_connection=local``: hosts run on the control machine, without SSH, with the
same results, timeouts, shipped programs and sudo as SSH hosts."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleetops.core.local import LocalConnection
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.ssh import Target
from fleetops.ship.run import fleet_program


def local(name: str = "here", **fields) -> Target:
    # an address nothing listens on: a run that tried SSH would be unreachable
    return Target(name=name, address="127.0.0.1", port=1, connection="local", **fields)


def run(targets, command, stdin=None, **options):
    by_name = {t.name: t for t in targets}
    hosts = [SimpleNamespace(name=t.name, vars={}) for t in targets]
    with Fleet(RunOptions(**options), lambda host: by_name[host.name]) as fleet:
        return fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command, stdin)))


def test_command_runs_here_with_stdin_stdout_stderr_and_rc():
    result = run([local()], 'cat; echo "err $0" >&2; exit 3', stdin=b"payload\n")
    host = result.hosts["here"]
    assert (host.status, host.rc, host.stdout, host.stderr) == (
        "failed", 3, "payload\n", "err /bin/sh\n")
    ok = run([local()], "hostname").hosts["here"]
    assert (ok.status, ok.stdout) == ("ok", os.uname().nodename + "\n")


def test_no_shell_injection_through_the_argv(tmp_path):
    marker = tmp_path / "m"
    conn = LocalConnection(local())
    result = conn.exec(f"printf %s 'a;b' > {marker}")
    assert result.rc == 0 and marker.read_text() == "a;b"


def test_timeout_kills_the_command():
    started = time.monotonic()
    host = run([local()], "echo $$; exec sleep 30", command_timeout=0.5).hosts["here"]
    assert host.status == "failed" and "timed out" in host.reason
    assert time.monotonic() - started < 5


def test_host_deadline_kills_the_command():
    started = time.monotonic()
    host = run([local()], "sleep 30", host_deadline=1.0).hosts["here"]
    assert host.status == "failed" and "deadline" in host.reason
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"), reason="needs root and sudo")
def test_become_locally_never_feeds_the_password_to_the_command():
    secret = "local-secret-Qq1"
    host = run([local()], "id -un; cat", stdin=b"in\n", become=True,
               become_password=secret).hosts["here"]
    assert (host.status, host.stdout) == ("ok", "root\nin\n"), host.reason
    assert secret not in host.stdout + host.stderr


@pytest.fixture
def private_home(monkeypatch):
    """A HOME the zipapp cache accepts: every directory above it owned by root or us and
    not writable by others (a HOME under the sticky /tmp is refused, as sshd would)."""
    home = Path(tempfile.mkdtemp(prefix=".fleetops-test-home-", dir=os.path.expanduser("~")))
    monkeypatch.setenv("HOME", str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_zipapp_cache_under_a_world_writable_dir_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # under /tmp (mode 1777)
    hosts = [SimpleNamespace(name="here", vars={})]
    with Fleet(RunOptions(command_timeout=60), lambda host: local()) as fleet:
        host = fleet_program(hosts, "diskreport", [], fleet).hosts["here"]
    assert host.status == "failed" and "refusing it for the zipapp cache" in host.reason


def test_shipped_program_runs_locally(private_home):
    tmp_path = private_home
    hosts = [SimpleNamespace(name="here", vars={})]
    with Fleet(RunOptions(command_timeout=60), lambda host: local()) as fleet:
        first = fleet_program(hosts, "diskreport", ["--warn", "80", "--crit", "90"], fleet)
        second = fleet_program(hosts, "diskreport", ["--warn", "80", "--crit", "90"], fleet)
    for result in (first, second):
        host = result.hosts["here"]
        assert host.status in ("ok", "changed"), host.reason
        assert any(m["mountpoint"] == "/" for m in host.data["mounts"])
    assert first.hosts["here"].uploaded_bytes > 0
    assert second.hosts["here"].uploaded_bytes == 0
    assert list((tmp_path / ".cache" / "fleetops").glob("fleetops-*.pyz"))


def test_a_large_argument_document_goes_first_on_stdin(private_home):
    """Over ARGV_FRAME_LIMIT the document is sent first on stdin: the local transport
    sends a dialog's ``first`` bytes too (the loader would wait for them forever)."""
    hosts = [SimpleNamespace(name="here", vars={})]
    excludes = [arg for i in range(300) for arg in ("--exclude", f"/no/such/mount/{i:04d}")]
    with Fleet(RunOptions(command_timeout=20), lambda host: local()) as fleet:
        host = fleet_program(hosts, "diskreport", excludes, fleet).hosts["here"]
    assert host.status in ("ok", "changed"), host.reason
    assert any(m["mountpoint"] == "/" for m in host.data["mounts"])


def test_missing_sudo_is_a_clear_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sudo here
    host = run([local()], "id -un", become=True, become_password="x").hosts["here"]
    assert host.status == "failed"
    assert host.reason.startswith("sudo to root failed on here: ") and "sudo" in host.reason
    assert "not found" in host.reason


def test_unsupported_become_method_is_refused():
    host = run([local(become=True, become_method="su")], "id -un").hosts["here"]
    assert (host.status, host.reason) == (
        "failed", "become method 'su' is not supported (only sudo)")


def test_inventory_connection_local_end_to_end(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("here ansible_connection=local ansible_host=192.0.2.1\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(repo), "run", "-i",
                           str(inventory), "--json", "--retry-file", str(tmp_path / "r"),
                           "hostname"], capture_output=True, text=True, timeout=60,
                          cwd=repo, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["here"]
    assert (host["status"], host["stdout"]) == ("ok", os.uname().nodename + "\n")
