"""The zipapp is reproducible, self-contained and runs on the system python."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from fleetops.ship.zipapp import BUNDLE, OPS_DIR, build_zipapp

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture()
def ops_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "src" / "ops"
    shutil.copytree(OPS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_two_builds_are_byte_identical(ops_copy: Path, tmp_path: Path):
    first = build_zipapp(tmp_path / "a", source=ops_copy)
    # A fresh copy with new mtimes and no cache hit must still give the same bytes.
    again = tmp_path / "again" / "ops"
    shutil.copytree(ops_copy, again)
    for path in again.glob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o600)
    second = build_zipapp(tmp_path / "b", source=again)
    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.path.name == second.path.name == f"fleetops-{first.sha256[:16]}.pyz"
    assert first.size == len(first.data) == first.path.stat().st_size


def test_entries_are_normalised(ops_copy: Path, tmp_path: Path):
    (ops_copy / "__pycache__").mkdir()
    (ops_copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (ops_copy / "notes.txt").write_text("not python")
    app = build_zipapp(tmp_path, source=ops_copy)
    with zipfile.ZipFile(app.path) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    names = [i.filename for i in infos]
    expected = [BUNDLE, "__main__.py"]
    expected += [f"ops/{source.name}" for source in sorted(ops_copy.glob("*.py"))]
    assert names == expected
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        # the bundle is read in place by the loader; everything else is deflated
        stored = zipfile.ZIP_STORED if info.filename == BUNDLE else zipfile.ZIP_DEFLATED
        assert info.compress_type == stored
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644


def test_changed_source_changes_hash(ops_copy: Path, tmp_path: Path):
    before = build_zipapp(tmp_path / "a", source=ops_copy)
    target = ops_copy / "_mounts.py"
    target.write_text(target.read_text() + "\n# changed\n")
    after = build_zipapp(tmp_path / "b", source=ops_copy)
    assert after.sha256 != before.sha256
    assert after.path.name != before.path.name


def test_cached_per_process(ops_copy: Path, tmp_path: Path):
    first = build_zipapp(tmp_path / "a", source=ops_copy)
    second = build_zipapp(tmp_path / "a", source=ops_copy)
    assert first.data is second.data


def test_default_build_writes_a_private_file():
    app = build_zipapp()
    assert app.path.is_file() and app.path.read_bytes() == app.data
    assert stat.S_IMODE(app.path.parent.stat().st_mode) == 0o700


@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="no /usr/bin/python3")
def test_runs_standalone_on_system_python(ops_copy: Path, tmp_path: Path):
    app = build_zipapp(tmp_path / "out", source=ops_copy)
    run = tmp_path / "elsewhere"
    run.mkdir()
    helped = subprocess.run([SYSTEM_PYTHON, "-I", str(app.path), "diskreport", "--help"],
                            cwd=run, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "--stat-timeout" in helped.stdout and "exit codes" in helped.stdout
    done = subprocess.run([SYSTEM_PYTHON, "-I", str(app.path), "diskreport", "--include", "/"],
                          cwd=run, capture_output=True, text=True, timeout=60)
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["program"] == "diskreport", done.stderr
    assert [m["mountpoint"] for m in doc["data"]["mounts"]] == ["/"]
    unknown = subprocess.run([SYSTEM_PYTHON, "-I", str(app.path), "nosuch"], cwd=run,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["ok"] is False


FINDER_PROBE = """
import sys
{before}
path = sys.argv[1]
sys.path.insert(0, path)
used = fleetops_bundle(open(path, "rb").read(), path)
import ops._contract as c
print(used, type(c.__spec__.loader).__name__, c.__spec__.loader.__name__ if used else "-",
      c.__file__, c.emit.__code__.co_filename)
"""


def test_bundled_bytecode_is_used_and_other_versions_fall_back(tmp_path: Path):
    import importlib.util
    import marshal
    import sys

    from fleetops.ship.zipapp import FINDER

    app = build_zipapp(tmp_path)
    with zipfile.ZipFile(app.path) as archive:
        bundle = archive.read(BUNDLE)
    assert bundle[:4] == importlib.util.MAGIC_NUMBER
    assert sorted(marshal.loads(bundle[4:])) == ["ops"] + sorted(
        f"ops.{p.stem}" for p in OPS_DIR.glob("*.py") if p.stem != "__init__")
    same = FINDER + FINDER_PROBE.format(before="")
    out = subprocess.run([sys.executable, "-S", "-c", same, str(app.path)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "type", "FleetopsBundle", f"{app.path}/ops/_contract.py",
                   "ops/_contract.py"]
    # a python with another bytecode magic compiles the sources through zipimport
    other = FINDER + FINDER_PROBE.format(
        before="sys.modules['_frozen_importlib_external'].MAGIC_NUMBER = b'\\0\\0\\r\\n'")
    out = subprocess.run([sys.executable, "-S", "-c", other, str(app.path)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["False", "zipimporter", "-"]
    assert out[3] == f"{app.path}/ops/_contract.py"


@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="no /usr/bin/python3")
def test_python_app_pyz_imports_from_the_bundle(tmp_path: Path):
    app = build_zipapp(tmp_path)
    proc = subprocess.run([SYSTEM_PYTHON, "-I", "-v", str(app.path), "nosuch"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and json.loads(proc.stdout)["ok"] is False
    imports = [line for line in proc.stderr.splitlines() if line.startswith("import 'ops.")]
    assert imports and all("FleetopsBundle" in line for line in imports), imports
