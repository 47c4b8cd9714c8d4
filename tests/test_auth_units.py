"""Units of fleetops.core.auth and fleetops.core.become that need no server: key files made by
ssh-keygen, the agent-certificate fix, passphrase prompting, sudo command lines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import paramiko
import pytest
from authlab import Agent, keygen, pub_blob, run_on_tty, sign

from fleetops.core import auth
from fleetops.core.auth import Keys
from fleetops.core.become import PROMPT, Become, become_command
from fleetops.core.keyfiles import AgentIdentity, KeyUnavailable, agent_socket, openssh_public
from fleetops.core.ssh import Target

REPO = Path(__file__).resolve().parents[1]


def test_public_part_of_an_encrypted_openssh_key_without_the_passphrase(tmp_path):
    key = keygen(tmp_path / "k", passphrase="secret")
    assert openssh_public(key.read_text()) == pub_blob(tmp_path / "k.pub")
    (tmp_path / "k.pub").rename(tmp_path / "elsewhere")
    assert Keys(ask=False).public(str(key)) == pub_blob(tmp_path / "elsewhere")


def test_passphrase_is_asked_once_per_key_across_threads(tmp_path, monkeypatch):
    key = keygen(tmp_path / "k", passphrase="right")
    other = keygen(tmp_path / "o", passphrase="right")
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "right"

    monkeypatch.delenv(auth.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(auth, "have_tty", lambda: True)
    monkeypatch.setattr(auth.getpass, "getpass", fake_getpass)
    keys = Keys()
    loaded = []
    threads = [threading.Thread(target=lambda p=p: loaded.append(keys.load(str(p))))
               for p in [key, other] * 8]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(loaded) == 16
    assert sorted(asked) == sorted(f"Enter passphrase for key '{p}': " for p in (key, other))


def test_wrong_passphrase_is_remembered_not_asked_again(tmp_path, monkeypatch):
    key = keygen(tmp_path / "k", passphrase="right")
    calls = []
    monkeypatch.delenv(auth.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(auth, "have_tty", lambda: True)
    monkeypatch.setattr(auth.getpass, "getpass", lambda prompt: calls.append(1) or "wrong")
    keys = Keys()
    for _ in range(3):
        with pytest.raises(KeyUnavailable, match="wrong passphrase"):
            keys.load(str(key))
    assert calls == [1]


def test_agent_certificate_has_a_public_blob(tmp_path):
    """Paramiko's AgentKey raises AttributeError('public_blob') for an agent-held
    certificate, which failed every host using that agent."""
    ca = keygen(tmp_path / "ca")
    keygen(tmp_path / "u")
    cert = sign(ca, tmp_path / "u.pub", "someone")
    agent = Agent(tmp_path)
    try:
        agent.add(tmp_path / "u")
        conn = auth.Agent(agent.sock)
        try:
            certs = [k for k in conn.get_keys() if k.name.endswith(auth.CERT_SUFFIX)]
            plain = [k for k in conn.get_keys() if not k.name.endswith(auth.CERT_SUFFIX)]
            assert len(certs) == 1 and len(plain) == 1
            assert certs[0].public_blob.key_blob == pub_blob(cert)
            assert certs[0].inner_key.asbytes() == plain[0].blob
            assert plain[0].public_blob is None
            raw = paramiko.agent.AgentKey(conn, certs[0].blob)
            with pytest.raises(AttributeError):
                raw.public_blob  # noqa: B018  (the upstream crash this class fixes)
        finally:
            conn.close()
    finally:
        agent.stop()
    assert isinstance(certs[0], AgentIdentity)


@pytest.mark.parametrize(("value", "env", "expected"), [
    (None, {"SSH_AUTH_SOCK": "/s"}, "/s"),
    (None, {}, None),
    ("none", {"SSH_AUTH_SOCK": "/s"}, None),
    ("SSH_AUTH_SOCK", {"SSH_AUTH_SOCK": "/s"}, "/s"),
    ("$MY_AGENT", {"MY_AGENT": "/m"}, "/m"),
    ("/path/sock", {}, "/path/sock"),
])
def test_identity_agent_values(monkeypatch, value, env, expected):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert agent_socket(Target("h", "a", identity_agent=value)) == expected


def test_default_identities_only_without_identity_files(tmp_path):
    keys = Keys(home=str(tmp_path))
    defaults = [p for p, _ in keys.identity_files(Target("h", "a"))]
    assert [Path(p).name for p in defaults] == list(auth.DEFAULT_IDENTITIES)
    given = keys.identity_files(Target("h", "a", key_files=("/k",)))
    assert given == [("/k", True)]


def test_sudo_command_line_never_carries_the_password():
    secret = "pw'; rm -rf / #"
    line = become_command("echo 'a b'", Become("deploy user", secret))
    assert secret not in line
    assert line.startswith(f"sudo -H -S -p '{PROMPT.decode()}' -u 'deploy user' -- /bin/sh -c ")
    assert "sudo -H -n -u root -- " in become_command("true", Become("root", None))
    # the wrapped command is one argument for the shell: run it to be sure of the quoting
    inner = become_command("printf '%s|' \"$0\" 'a b'", Become("root", None))
    shell = inner.split(" -- ", 1)[1]
    out = subprocess.run(["/bin/sh", "-c", shell], capture_output=True, text=True, check=True)
    assert out.stdout.endswith("/bin/sh|a b|")


@pytest.mark.parametrize(("flag", "env"), [("--ask-become-pass", "FLEETOPS_BECOME_PASSWORD"),
                                           ("--ask-pass", "FLEETOPS_PASSWORD")])
def test_asking_without_a_terminal_is_one_line_and_exit_5(tmp_path, flag, env):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("h ansible_host=127.0.0.1\n")
    clean = {k: v for k, v in os.environ.items() if k != env}
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), flag, "true"], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=clean, stdin=subprocess.DEVNULL,
                          start_new_session=True, check=False)
    assert proc.returncode == 5
    assert proc.stderr.strip() == f"fleetops: {flag} needs a terminal to ask on (or set {env})"


def test_passphrase_is_asked_once_on_a_real_terminal(tmp_path):
    key = keygen(tmp_path / "k", passphrase="tty-pass")
    script = ("import threading\nfrom fleetops.core.auth import Keys\nkeys, out = Keys(), []\n"
              f"ts = [threading.Thread(target=lambda: out.append(keys.load({str(key)!r})))"
              " for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n"
              "print('LOADED', len(out))\n")
    env = {k: v for k, v in os.environ.items() if k != auth.PASSPHRASE_ENV}
    prompt = f"Enter passphrase for key '{key}': ".encode()
    shown, rc, seen = run_on_tty([sys.executable, "-c", script], {prompt: b"tty-pass\n"}, env)
    assert rc == 0, shown
    assert seen[prompt] == 1 and b"LOADED 8" in shown
    assert b"tty-pass" not in shown  # not echoed
