"""Inventory behaviour that follows ansible-core: !unsafe, Jinja connection vars, implicit
localhost, group priority, numeric YAML keys, host order - and the CLI's messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.config.targets import target_for
from fleetops.errors import InputError
from fleetops.inventory.load import load_inventory

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).parent / "invoke")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_unsafe_values_load_as_text(tmp_path):
    path = write(tmp_path, "hosts.yml", "all:\n  hosts:\n    h:\n      a: !unsafe '{{ x }}'\n"
                 "      b: !unsafe ['{%', 1]\n")
    v = load_inventory(path).host("h").vars
    assert (v["a"], v["b"]) == ("{{ x }}", ["{%", 1])


def test_jinja_connection_var_is_refused_only_when_used(tmp_path):
    path = write(tmp_path, "hosts", "[app]\napp1 ansible_port=\"{{ lookup('env','SSH_PORT') }}\"\n"
                 "app2\n[app:vars]\ngreeting=\"{{ 'hi' }}\"\n")
    inv = load_inventory(path)
    assert [h.name for h in inv.select("app")] == ["app1", "app2"]
    app1 = inv.host("app1")
    assert app1.port is None and app1.vars["ansible_port"] == "{{ lookup('env','SSH_PORT') }}"
    assert app1.unresolved[0][0] == "ansible_port"
    with pytest.raises(InputError) as info:
        target_for(app1)
    assert str(info.value).startswith("host 'app1': ansible_port holds a Jinja template")
    assert "fleetops does not evaluate templates" in str(info.value)
    assert target_for(inv.host("app2")).address == "app2"  # the other host works
    assert inv.host("app2").vars["greeting"] == "{{ 'hi' }}"  # plain vars keep their text


def test_implicit_localhost(tmp_path):
    write(tmp_path, "host_vars/localhost.yml", "from_file: 1\n")
    inv = load_inventory(write(tmp_path, "hosts", "[s]\ns1\n[all:vars]\neveryone=1\n"))
    local = inv.select("localhost")
    assert [h.name for h in local] == ["localhost"]
    assert local[0].vars["ansible_connection"] == "local"
    assert (local[0].vars["everyone"], local[0].vars["from_file"]) == (1, 1)
    assert local[0].groups == frozenset() and "localhost" not in inv
    assert [h.name for h in inv.select("all")] == ["s1"]  # never part of all
    assert target_for(local[0]).connection == "local"
    declared = load_inventory(write(tmp_path, "h2", "[d]\nlocalhost ansible_connection=local\n"))
    assert declared.select("127.0.0.1") == [declared.host("localhost")]


def test_group_priority_is_not_a_variable(tmp_path):
    inv = load_inventory(write(tmp_path, "hosts", "[a]\nh\n[b]\nh\n[a:vars]\nwho=a\n"
                               "ansible_group_priority=10\n[b:vars]\nwho=b\n"))
    host = inv.host("h")
    assert host.vars == {"who": "a"}  # priority 10 beats b's default 1
    assert inv.groups["a"].priority == 10 and "ansible_group_priority" not in inv.groups["a"].vars


@pytest.mark.parametrize("key", ["1.10", "22", "0x1f", "true"])
def test_numeric_yaml_host_keys_are_refused(tmp_path, key):
    path = write(tmp_path, "hosts.yml", f"all:\n  hosts:\n    {key}:\n")
    with pytest.raises(InputError, match=r"hosts.yml:3: host name .* must be a string"):
        load_inventory(path)
    quoted = write(tmp_path, "q.yml", f"all:\n  hosts:\n    '{key}':\n")
    assert [h.name for h in load_inventory(quoted)] == [key]


def test_group_order_is_the_execution_order(tmp_path):
    inv = load_inventory(write(tmp_path, "hosts", "[m]\nmongo1\nmongo4\n[r]\nmongo4\nmongo1\n"
                               "[p:children]\nr\nm\n"))
    assert inv.groups["r"].hosts == ("mongo4", "mongo1")
    assert [h.name for h in inv.select("r[0]")] == ["mongo4"]
    assert [h.name for h in inv.select("m,r")] == ["mongo1", "mongo4"]
    assert [h.name for h in inv.select("mongo*[0]")] == ["mongo1"]  # group m first


def _invoke(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, "-r", str(ROOT), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_cli_warns_and_reports_an_empty_selection(tmp_path):
    write(tmp_path, "inv.ini", "[web]\nw1 ansible_host=127.0.0.1 ansible_port=1\n")
    proc = _invoke(tmp_path, "run", "-i", "inv.ini", "--pattern", "nosuch", "true")
    assert proc.returncode == 4, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == ("fleetops: warning: 'nosuch' matches no host or group in pattern "
                        "'nosuch', ignoring it")
    assert lines[1] == "fleetops: inv.ini: pattern 'nosuch' selects no host"
    proc = _invoke(tmp_path, "run", "-i", "inv.ini", "--limit", "db", "true")
    assert proc.returncode == 4
    assert proc.stderr.splitlines()[-1] == (
        "fleetops: inv.ini: pattern 'all' with --limit 'db' selects no host")
