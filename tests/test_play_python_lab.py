"""The ``python`` playbook action on the lab: a user's function (plain or fleet_task)
with templated arguments, its value registered, exceptions failing the host, check mode
skipping it, and a bad reference refused at load time (exit 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]

MODULE = '''
from fleetops import fleet_task


@fleet_task
def deploy(c, version, restart=False):
    c.run(f"echo {version} > /tmp/pb-python-version", hide=True)
    c.changed = True
    return {"version": version, "restart": restart, "host": c.name}


def boom(c):
    if c.name == "lab02":
        raise RuntimeError("release server down")
    return c.run("cat /tmp/pb-python-version", hide=True).stdout.strip()
'''

PLAYBOOK = '''
- hosts: lab01:lab02
  vars:
    release: "3.1"
  tasks:
    - name: deploy
      python:
        task: mytasks:deploy
        args: {version: "{{ release }}", restart: true}
      register: out
    - name: show
      run: "echo {{ out.data.value.version }}-{{ out.data.value.host }}"
    - name: free form
      python: mytasks:boom
'''


def play(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "play", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_python_action_runs_registers_and_fails_per_host(lab, lab_inventory, tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "mytasks.py").write_text(MODULE)
    book = tmp_path / "site.yml"
    book.write_text(PLAYBOOK)
    proc = play("-i", str(lab_inventory), str(book), "--json", "--retry-file", "",
                cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    hosts = json.loads(proc.stdout)["hosts"]
    for name in ("lab01", "lab02"):
        deploy, show, boom = hosts[name]["tasks"]
        assert deploy["status"] == "changed"
        assert deploy["data"]["value"] == {"version": "3.1", "restart": True, "host": name}
        assert show["stdout"] == f"3.1-{name}\n"
    assert hosts["lab01"]["tasks"][2]["status"] == "ok"
    assert hosts["lab01"]["tasks"][2]["data"]["value"] == "3.1"
    assert hosts["lab02"]["tasks"][2]["status"] == "failed"
    assert hosts["lab02"]["tasks"][2]["reason"] == "RuntimeError: release server down"
    checked = play("-i", str(lab_inventory), str(book), "--check", "--json", "--retry-file",
                   "", cwd=tmp_path)
    tasks = json.loads(checked.stdout)["hosts"]["lab01"]["tasks"]
    assert tasks[0]["status"] == "skipped"


def test_bad_reference_is_refused_at_load(lab_inventory, tmp_path):
    book = tmp_path / "bad.yml"
    book.write_text("- hosts: lab\n  tasks:\n    - python: \"not a ref\"\n")
    proc = play("-i", str(lab_inventory), str(book), cwd=tmp_path)
    assert proc.returncode == 4
    assert "bad.yml:3: " in proc.stderr and "MODULE:FUNCTION" in proc.stderr
