"""Retries of connections dropped before the SSH banner, honest reasons, ProxyCommand
stderr: against a real OpenSSH sshd started here (``sshd -D -e``) with
``MaxStartups 1:100:1``. One unauthenticated connection held open makes sshd drop every
new one ("Exceeded MaxStartups"), exactly as a busy server does; releasing it lets a
retry through. sshd's own log counts the drops."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from fleetops.core.connect import connect
from fleetops.core.hostkeys import KnownHosts
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.ssh import Keys, Target, Unreachable

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("/usr/sbin/sshd") or not shutil.which("ssh"),
    reason="needs root, /usr/sbin/sshd and ssh")


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, tmp, max_startups: str = "1:100:1"):
        self.host_key = _keygen(tmp / "host_key")
        self.client_key = _keygen(tmp / "id_ed25519")
        self.port = _free_port()
        self.log = tmp / "sshd.log"
        cfg = tmp / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}", f"HostKey {self.host_key}",
            f"PidFile {tmp / 'sshd.pid'}", f"AuthorizedKeysFile {self.client_key}.pub",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "UseDNS no", "StrictModes no",
            f"MaxStartups {max_startups}", "LogLevel VERBOSE", ""]))
        kind, blob = (tmp / "host_key.pub").read_text().split()[:2]
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("wb"))
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        self.wait_quiet()

    def target(self, **kw) -> Target:
        return Target(name="own", address="127.0.0.1", port=self.port, user="root",
                      key_files=(str(self.client_key),), known_hosts=str(self.known_hosts),
                      **kw)

    def drops(self) -> int:
        return self.log.read_text(errors="replace").count("past MaxStartups")

    def hold(self) -> socket.socket:
        """An unauthenticated connection that fills MaxStartups (its banner read: counted);
        tried until earlier connections' children are gone and one gets a banner."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            if s.recv(64).startswith(b"SSH-"):
                return s
            s.close()
            time.sleep(0.05)
        raise AssertionError("sshd keeps dropping connections")

    def wait_quiet(self) -> None:
        self.hold().close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path)
    yield server
    server.stop()


def _connect(server, target=None, timeout=10.0, attempts=None):
    known = KnownHosts([str(server.known_hosts)])
    return connect(target or server.target(), known, Keys(), timeout, attempts=attempts)


def test_dropped_connection_is_retried_and_succeeds(sshd):
    holder = sshd.hold()
    before = sshd.drops()

    def release_after_first_drop():
        deadline = time.monotonic() + 5
        while sshd.drops() == before and time.monotonic() < deadline:
            time.sleep(0.01)
        holder.close()

    releaser = threading.Thread(target=release_after_first_drop)
    releaser.start()
    try:
        conn = _connect(sshd, attempts=3)
    finally:
        releaser.join()
        holder.close()
    try:
        assert conn.exec("echo ok").stdout == b"ok\n"
    finally:
        conn.close()
    assert sshd.drops() - before >= 1


def test_always_dropped_reports_attempts_honestly_and_fast(sshd):
    holder = sshd.hold()
    before = sshd.drops()
    started = time.monotonic()
    try:
        with pytest.raises(Unreachable) as err:
            _connect(sshd, timeout=10.0, attempts=3)
    finally:
        holder.close()
    elapsed = time.monotonic() - started
    reason = str(err.value)
    assert reason == (f"127.0.0.1:{sshd.port}: connection closed by the server before the "
                      "SSH banner (3 attempts; sshd MaxStartups or a busy bastion?)")
    assert elapsed < 6.0  # two short backoffs (< 1 s), well short of the 10 s budget even on a loaded machine
    time.sleep(0.2)
    assert sshd.drops() - before == 3


def test_attempts_from_target_override_the_run_options(sshd):
    holder = sshd.hold()
    before = sshd.drops()
    try:
        with Fleet(RunOptions(connection_attempts=5, connect_timeout=10),
                   lambda h: sshd.target(connection_attempts=2)) as fleet:
            result = fleet.run([SimpleNamespace(name="own")],
                               lambda s: exec_result("own", s.exec("true")))
    finally:
        holder.close()
    h = result.hosts["own"]
    assert h.status == "unreachable" and "(2 attempts;" in h.reason, h.reason
    time.sleep(0.2)
    assert sshd.drops() - before == 2


def test_run_option_attempts_and_a_real_timeout_says_so(sshd):
    """The budget really runs out (every attempt dropped, 1 s budget): the reason says
    how many tries fit, and claims no timeout unless the time is gone."""
    holder = sshd.hold()
    try:
        with pytest.raises(Unreachable) as err:
            _connect(sshd, timeout=1.0, attempts=50)
    finally:
        holder.close()
    reason = str(err.value)
    assert "before the SSH banner" in reason and "attempts;" in reason
    assert "timed out" not in reason and "within" not in reason


def test_silent_server_is_a_real_timeout(tmp_path):
    """A listener that never sends a banner: only now is 'within Ns' true."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        target = Target(name="mute", address="127.0.0.1", port=port, user="root")
        started = time.monotonic()
        with pytest.raises(Unreachable) as err:
            connect(target, KnownHosts([str(tmp_path / "kh")]), Keys(), 1.0, attempts=3)
        assert time.monotonic() - started >= 0.9
    assert str(err.value) == f"127.0.0.1:{port}: no SSH banner within 1s (1 attempt)"


def test_reset_before_banner_is_retried_then_named(tmp_path):
    """A front that accepts and resets (RST) every connection, counting them."""
    accepted = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]

    def front():
        listener.settimeout(5)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            time.sleep(0.02)  # let the client send its version line first
            conn.close()

    thread = threading.Thread(target=front, daemon=True)
    thread.start()
    target = Target(name="rst", address="127.0.0.1", port=port, user="root")
    try:
        with pytest.raises(Unreachable) as err:
            connect(target, KnownHosts([str(tmp_path / "kh")]), Keys(), 10.0, attempts=3)
    finally:
        listener.close()
    reason = str(err.value)
    assert "by the server before the SSH banner (3 attempts;" in reason, reason
    assert "connection reset" in reason or "connection closed" in reason
    assert len(accepted) == 3


def test_connection_refused_is_not_retried(tmp_path):
    target = Target(name="closed", address="127.0.0.1", port=_free_port(), user="root")
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        connect(target, KnownHosts([str(tmp_path / "kh")]), Keys(), 10.0, attempts=3)
    assert time.monotonic() - started < 0.5
    assert str(err.value).endswith("Connection refused")


# -- ProxyCommand --------------------------------------------------------------------------

def _ssh_w(sshd, key) -> str:
    return (f"ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
            f"-o UserKnownHostsFile={sshd.known_hosts} -i {key} -p {sshd.port} "
            f"-W 127.0.0.1:{sshd.port} root@127.0.0.1")


def test_proxycommand_works(sshd):
    conn = _connect(sshd, sshd.target(proxy_command=_ssh_w(sshd, sshd.client_key)))
    try:
        assert conn.exec("echo via-proxy").stdout == b"via-proxy\n"
    finally:
        conn.close()


def test_failing_proxycommand_stderr_is_in_the_reason(sshd, tmp_path):
    """A real ``ssh -W`` refused by the jump server: its own words reach the reason."""
    stranger = _keygen(tmp_path / "stranger")
    started = time.monotonic()
    with pytest.raises(Unreachable) as err:
        _connect(sshd, sshd.target(proxy_command=_ssh_w(sshd, stranger)))
    reason = str(err.value)
    assert time.monotonic() - started < 9  # under the 10 s connect timeout, with 3 ssh -W starts on a loaded machine
    assert "ProxyCommand closed the connection before the SSH banner" in reason, reason
    assert "exit status 255" in reason
    assert "Permission denied (publickey)" in reason
    assert "within" not in reason


def test_proxycommand_stderr_is_bounded_kept_as_data_and_never_blocks(tmp_path):
    script = tmp_path / "proxy.sh"
    script.write_text("#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x >&2\n"
                      "printf 'last words \\033[2J\\n' >&2\nexit 3\n")
    script.chmod(0o755)
    target = Target(name="p", address="127.0.0.1", port=22, user="root",
                    proxy_command=str(script))
    with pytest.raises(Unreachable) as err:
        connect(target, KnownHosts([str(tmp_path / "kh")]), Keys(), 10.0)
    reason = str(err.value)
    assert "exit status 3" in reason
    assert reason.endswith("last words \x1b[2J)")  # the sanitizer renders it, not us
    assert len(reason) < 4096 + 200


def test_proxycommand_that_cannot_start(tmp_path):
    target = Target(name="p", address="127.0.0.1", port=22, user="root",
                    proxy_command=str(tmp_path / "no-such-proxy"))
    with pytest.raises(Unreachable) as err:
        connect(target, KnownHosts([str(tmp_path / "kh")]), Keys(), 10.0)
    # run as ssh runs it ($SHELL -c "exec CMD"): the shell's own words name the command
    assert "exit status 127" in str(err.value) and "no-such-proxy" in str(err.value)
