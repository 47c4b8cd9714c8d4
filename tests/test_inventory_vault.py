"""Ansible Vault in inventories: !vault values and encrypted files, 1.1 and 1.2 formats."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.errors import InputError
from fleetops.inventory import vault
from fleetops.inventory.load import load_inventory

CORPUS = Path(__file__).parent / "data" / "inventories" / "syn-vault"
PASSWORD_FILE = CORPUS / "vault-pass.txt"
ANSIBLE_VAULT = shutil.which("ansible-vault") or str(
    Path(sys.executable).parent / "ansible-vault")


@pytest.fixture(autouse=True)
def no_vault_configured(monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("FLEETOPS_VAULT_PASSWORD_FILE", raising=False)
    vault.configure(None)
    yield
    vault.configure(None)


def test_vault_values_and_encrypted_vars_file_are_decrypted():
    vault.configure(str(PASSWORD_FILE))
    inv = load_inventory(CORPUS / "hosts.yml")
    v1 = inv.host("v1").vars
    assert v1["db_password"] == "s3cret-db-password"  # 1.1
    assert v1["api_token"] == "token-1.2"  # 1.2 with vault-id 'prod'
    assert v1["vaulted_group_var"] == "from-encrypted-file"  # group_vars/all.yml, encrypted
    assert v1["number"] == 7
    assert isinstance(v1["db_password"], vault.Secret)
    assert repr(v1["db_password"]) == "'<vault>'"
    assert "s3cret" not in repr(v1) and "s3cret" not in repr(inv.host("v1"))


def test_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(PASSWORD_FILE))
    assert load_inventory(CORPUS / "hosts.yml").host("v1").vars["api_token"] == "token-1.2"


def test_no_password_names_file_and_line():
    with pytest.raises(InputError) as info:
        load_inventory(CORPUS / "hosts.yml")
    assert str(info.value).startswith(f"{CORPUS / 'hosts.yml'}:5: vault-encrypted value but no "
                                      "vault password given (--vault-password-file")


def test_wrong_password(tmp_path):
    wrong = tmp_path / "pw"
    wrong.write_text("not it\n")
    vault.configure(str(wrong))
    with pytest.raises(InputError, match=r"hosts.yml:5: vault decryption failed: wrong"):
        load_inventory(CORPUS / "hosts.yml")


def test_password_file_rules(tmp_path):
    script = tmp_path / "pw.sh"
    script.write_text("#!/bin/sh\necho pw\n")
    script.chmod(0o755)
    with pytest.raises(InputError, match="does not run vault password scripts"):
        vault.configure(str(script))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InputError, match="vault password file is empty"):
        vault.configure(str(empty))
    with pytest.raises(InputError, match="cannot read vault password file"):
        vault.configure(str(tmp_path / "missing"))


def test_decrypted_value_never_in_error_messages(tmp_path):
    vault.configure(str(PASSWORD_FILE))
    text = (CORPUS / "hosts.yml").read_text().replace("db_password:", "ansible_port:")
    (tmp_path / "hosts.yml").write_text(text)
    with pytest.raises(InputError) as info:
        load_inventory(tmp_path / "hosts.yml")
    message = str(info.value)
    assert "ansible_port must be a port number" in message
    assert "s3cret" not in message and "'<vault>'" in message


def test_damaged_vault_data(tmp_path):
    vault.configure(str(PASSWORD_FILE))
    lines = (CORPUS / "hosts.yml").read_text().splitlines()
    lines[6] = lines[6][:-4] + "zzzz"  # not hex any more
    (tmp_path / "hosts.yml").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r":5: damaged vault data"):
        load_inventory(tmp_path / "hosts.yml")


@pytest.mark.skipif(not os.path.exists(ANSIBLE_VAULT), reason="ansible-core not installed")
@pytest.mark.parametrize("vault_id", [None, "staging"])
def test_fresh_ansible_vault_output_decrypts(tmp_path, vault_id):
    """ansible-vault itself encrypts a new value (random salt); fleetops must decrypt it."""
    secret = "pässwörd with spaces & symbols \"'\n2nd line"
    ident = f"{vault_id}@{PASSWORD_FILE}" if vault_id else str(PASSWORD_FILE)
    flag = "--vault-id" if vault_id else "--vault-password-file"
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "home")}
    plain = tmp_path / "plain.yml"
    plain.write_text("secret_var: |-\n  " + secret.replace("\n", "\n  ") + "\n")
    subprocess.run([ANSIBLE_VAULT, "encrypt", flag, ident, str(plain)], check=True, env=env,
                   capture_output=True, timeout=120)
    assert plain.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;staging" if vault_id
                                        else "$ANSIBLE_VAULT;1.1;AES256")
    (tmp_path / "host_vars").mkdir()
    shutil.move(plain, tmp_path / "host_vars" / "h.yml")
    (tmp_path / "hosts.ini").write_text("h\n")
    vault.configure(str(PASSWORD_FILE))
    assert load_inventory(tmp_path / "hosts.ini").host("h").vars["secret_var"] == secret


def _invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if "VAULT" not in k}
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(repo), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, start_new_session=True)


def test_vault_options_on_every_task(tmp_path):
    """``--vault-password-file`` and ``--ask-vault-pass`` on the command line (Ansible's
    spellings): the vaulted inventory loads; without them it is one line and exit 4;
    asking without a terminal is one line and exit 5. The value itself is never printed."""
    inv = tmp_path / "inv"
    shutil.copytree(CORPUS, inv)
    (inv / "host_vars").mkdir()
    (inv / "host_vars" / "v1.yml").write_text("ansible_connection: local\n")
    hosts = str(inv / "hosts.yml")
    run = ("run", "-i", hosts, "-p", "v1", "--retry-file", str(tmp_path / "r"), "echo done")

    ok = _invoke(*run[:-1], "--vault-password-file", str(PASSWORD_FILE), run[-1], cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "done" in ok.stdout and "s3cret" not in ok.stdout + ok.stderr

    missing = _invoke(*run, cwd=tmp_path)
    assert missing.returncode == 4, missing.stderr
    assert "vault password" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1

    asked = _invoke(*run[:-1], "--ask-vault-pass", run[-1], cwd=tmp_path)
    assert asked.returncode == 5, asked.stderr
    assert "--ask-vault-pass needs a terminal" in asked.stderr

    help_text = _invoke("--help", "disk-report", cwd=tmp_path).stdout
    assert "--vault-password-file" in help_text and "--ask-vault-pass" in help_text


def test_password_file_whitespace_is_stripped_as_ansible_does(tmp_path):
    padded = tmp_path / "pw"
    padded.write_bytes(b"  " + PASSWORD_FILE.read_bytes().strip() + b" \t\r\n")
    vault.configure(str(padded))
    assert load_inventory(CORPUS / "hosts.yml").host("v1").vars["api_token"] == "token-1.2"
