"""fleetops from a built wheel, in a fresh virtualenv outside the checkout: a user
project's own tasks.py imports ``fleet_task`` and the built-in collection, and runs a
user task and ``disk-report`` (text, JSON and the HTML template) on the lab.

The wheel is built from this checkout (``pip wheel --no-deps``) and installed with
``--no-deps``; the dependencies (paramiko, invoke, fabric, jinja2, pyyaml) come from
this checkout's virtualenv through a path line, so the test needs no package index.
That path line adds a directory only: the checkout's editable-install hook is not run,
and the test checks that ``fleetops`` and ``ops`` are imported from the new venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]

USER_TASKS = '''
from fleetops import fleet_task
from fleetops.cli.collection import builtin


@fleet_task(help={"word": "a word to echo"})
def hello(c, word="hi"):
    """Echo WORD on every host (a user task)."""
    return c.run(f"echo {word} from $(uname -n)", hide=True).stdout.strip()


ns = builtin()
ns.add_task(hello)
'''


def _run(argv: list, cwd: Path, env: dict | None = None, timeout: float = 180):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with only the built wheel installed (dependencies by path)."""
    root = tmp_path_factory.mktemp("wheelvenv")
    wheels = root / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                  str(REPO)], cwd=root, timeout=300)
    if built.returncode:
        pytest.skip(f"cannot build the wheel here: {built.stderr.strip()[-300:]}")
    wheel = next(wheels.glob("fleetops-*.whl"))
    env_dir = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(env_dir)], cwd=root)
    assert made.returncode == 0, made.stderr
    python = env_dir / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                    "['purelib'])"], cwd=root).stdout.strip()
    Path(purelib, "checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                      str(wheel)], cwd=root)
    assert installed.returncode == 0, installed.stderr
    return python, Path(purelib)


def test_wheel_has_the_api_ops_and_templates(venv, tmp_path):
    python, purelib = venv
    probe = _run([str(python), "-c", "import fleetops, ops, fleetops.jobs.disk.report as d; "
                  "print(fleetops.__file__); print(ops.__file__); print(d.TEMPLATES); "
                  "print(sorted(fleetops.__all__))"], cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[0].startswith(str(purelib)) and lines[1].startswith(str(purelib))
    assert Path(lines[2], "disk-report.html.j2").is_file() and lines[2].startswith(str(purelib))
    assert "fleet_task" in lines[3] and "Fleet" in lines[3]
    assert str(REPO) not in probe.stdout


def test_user_project_runs_its_task_and_disk_report(venv, lab, tmp_path):
    python, purelib = venv
    project = tmp_path / "project"
    project.mkdir()
    (project / "tasks.py").write_text(USER_TASKS)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    inventory = str(lab.inventory_path)
    listing = _run([str(python), "-m", "invoke", "--list"], cwd=project, env=env)
    assert listing.returncode == 0, listing.stderr
    assert "  hello " in listing.stdout and "  disk-report.report " in listing.stdout
    hello = _run([str(python), "-m", "invoke", "hello", "-i", inventory, "-p", "lab0*",
                  "--json", "--word", "wheel", "--retry-file", ""], cwd=project, env=env)
    assert hello.returncode == 0, hello.stderr
    doc = json.loads(hello.stdout)
    assert {n: h["value"] for n, h in doc["hosts"].items()} == {
        f"lab0{i}": f"wheel from lab0{i}" for i in range(1, 10)}
    report = _run([str(python), "-m", "invoke", "disk-report", "-i", inventory, "-p", "lab0*",
                   "--format", "json", "--retry-file", ""], cwd=project, env=env)
    assert report.returncode in (0, 8), report.stderr
    hosts = json.loads(report.stdout)["hosts"]
    assert len(hosts) == 9 and all(h["mounts"] for h in hosts.values())
    html = project / "report.html"
    page = _run([str(python), "-m", "invoke", "disk-report", "-i", inventory, "-p", "lab01",
                 "--format", "html", "--output", str(html), "--retry-file", ""],
                cwd=project, env=env)
    assert page.returncode in (0, 8), page.stderr
    assert "<html" in html.read_text().lower() and "lab01" in html.read_text()
    built = list((tmp_path / "cache" / "fleetops" / "control").glob("*.pyz"))
    assert built, "the zipapp was built from the installed ops package"
