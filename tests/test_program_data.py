"""Typed per-program results (issue 12, point 6): each program's ``data`` becomes its
:class:`~fleetops.results.ProgramData` class once, in ``classify``, and the host's JSON
entry stays byte-identical to what the free ``extra`` dict gave; diffs are masked and
capped. Documents: the recorded ones of tests/test_hostile_results.py and documents the
real programs print on this machine (``python -m ops ...``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.results import HostResult, ProgramData, build_data, data_class, truncation
from fleetops.ship import diffs
from fleetops.ship.data import (
    ArpscanData,
    CronData,
    CronEntry,
    DirsyncData,
    DiskreportData,
    FilesData,
    LifecycleData,
    SweepData,
    SyncItem,
)
from fleetops.ship.run import classify
from ops import cron as ops_cron

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_hostile_results import GOOD  # noqa: E402

CLASSES = {"files": FilesData, "cron": CronData, "watcher": LifecycleData,
           "dirsync": DirsyncData, "sweep": SweepData, "arpscan": ArpscanData,
           "diskreport": DiskreportData}


def document(data, ok=True, changed=False, error=None) -> bytes:
    return json.dumps({"ok": ok, "changed": changed, "data": data, "error": error},
                      sort_keys=True).encode()


def old_entry(data, status="ok", stdout="", reason=None, **after) -> str:
    """The host entry as the free ``extra`` dict wrote it: data first, then the keys
    added after classify (uploaded_bytes, ...), then the fixed fields."""
    doc = {} if data is None else {"data": data}
    doc.update(after)
    doc.update(status=status, rc=0, stdout=stdout, stderr="", duration=0.0, reason=reason)
    return json.dumps(doc, indent=2)


def ops(*argv: str, stdin: bytes = b"") -> bytes:
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], input=stdin, cwd=REPO,
                          capture_output=True, timeout=60, check=False)
    assert proc.stdout, proc.stderr
    return proc.stdout


def roundtrip(program: str, stdout: bytes) -> HostResult:
    """classify ``stdout`` and check the entry is byte-identical to the extra-dict one."""
    result = classify("h", 0, stdout, b"", program)
    assert type(result.data) is CLASSES[program]
    result.uploaded_bytes = 1234
    data = json.loads(stdout)["data"]
    expected = old_entry(data, result.status, stdout.decode(), result.reason, uploaded_bytes=1234)
    assert json.dumps(result.to_json(), indent=2) == expected
    assert result.data.to_json() == data and list(result.data.to_json()) == list(data)
    return result


@pytest.mark.parametrize("program", sorted(GOOD))
def test_recorded_documents_round_trip_byte_identical(program):
    roundtrip(program, document(GOOD[program]))


def _real_documents(tmp: Path) -> dict[str, list[bytes]]:
    content = b"a=1\nsecret=x\n"
    files_args = [f"--dest={tmp / 'f.conf'}", f"--size={len(content)}",
                  f"--sha256={hashlib.sha256(content).hexdigest()}", "--diff"]
    (tmp / "f.conf").write_text("a=0\n")
    src, dst = tmp / "src", tmp / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "new").write_text("n")
    (src / "sub" / "x").write_text("x")
    (dst / "gone").write_text("g")
    state = ["--name=pytest-data", f"--state-dir={tmp / 'state'}"]
    return {
        "files": [ops("files", *files_args, stdin=content),
                  ops("files", *files_args, "--check", stdin=content)],
        "dirsync": [ops("dirsync", "run", *state, "--", f"--source={src}", f"--target={dst}",
                            "--max-delete-share=100"),
                    ops("dirsync", "status", *state)],
        "watcher": [ops("watcher", "status", *state), ops("watcher", "logs", *state)],
        "sweep": [ops("sweep", "--targets=127.0.0.1,127.0.0.2", "--backend=tcp",
                      "--ports=9", "--timeout=0.2", "--lenient")],
        "arpscan": [ops("arpscan", "--targets=127.0.0.1", "--method=cache", "--lenient")],
        "diskreport": [ops("diskreport")],
    }


def test_real_program_documents_round_trip_byte_identical(tmp_path):
    seen = {}
    for program, outputs in _real_documents(tmp_path).items():
        for stdout in outputs:
            result = roundtrip(program, stdout)
            seen.setdefault(program, []).append(result)
    files = seen["files"][0].data
    assert files.content_changed is True and files.diff_text().startswith("--- before/")
    sync = seen["dirsync"][0].data
    assert sync.result == "ok" and all(isinstance(i, SyncItem) for i in sync.items)
    assert sync.diff_text() == (f"--- before: {tmp_path}/dst\n+++ after: {tmp_path}/dst\n"
                                "-gone\n+new\n+sub/\n+sub/x\n")
    assert seen["dirsync"][1].data.diff_text() is None  # status: no sync, no diff
    assert isinstance(seen["sweep"][0].data, SweepData)
    disk = seen["diskreport"][0].data
    assert disk.mounts and all(m.mountpoint.startswith("/") for m in disk.mounts)


def test_failures_keep_their_shapes():
    bad = classify("h", 0, document({"entries": [{"command": 7}]}), b"", "cron")
    assert bad.status == "failed" and bad.data == {} and bad.to_json()["data"] == {}
    error = classify("h", 1, document({}, ok=False, error="boom"), b"", "cron")
    assert error.reason == "boom" and error.to_json()["data"] == {}
    garbage = classify("h", 1, b"not json", b"", "cron")
    assert garbage.data is None and "data" not in garbage.to_json()
    cut = truncation(classify("h", 0, document(GOOD["files"]), b"", "files"),
                     {"stdout": 0, "stderr": 9})
    cut.uploaded_bytes = 0
    assert list(cut.to_json())[:4] == ["data", "truncated", "discarded_bytes", "uploaded_bytes"]
    assert cut.to_json()["truncated"] == ["stderr"]


def test_program_data_is_typed_frozen_and_keeps_unknown_keys_in_place():
    doc = {"action": "installed", "zz_new": {"a": [1]}, "entries": [
        {"name": "x", "command": "true", "later": 1}], "path": "/etc/cron.d/x"}
    data = CronData.from_json(doc)
    assert data.action == "installed" and data.entries[0] == {"name": "x", "command": "true",
                                                             "later": 1}
    assert isinstance(data.entries[0], CronEntry) and data.entries[0].command == "true"
    assert json.dumps(data.to_json()) == json.dumps(doc)
    assert data["entries"] == doc["entries"] and data.get("missing") is None
    assert "diff" not in data and data.diff_text() is None and len(data) == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.action = "removed"  # type: ignore[misc]
    assert data["entries"] is not data["entries"]  # a reader gets copies, never the record
    assert list(data.evolve(user="root")) == [*doc, "user"]
    assert list(data.without("zz_new", "path")) == ["action", "entries"]
    assert data != {**doc, "path": "/other"} and data == dict(doc)
    built = FilesData(path="/x", existed=False)  # built in code: every field, in order
    assert list(built.to_json()) == [f.name for f in dataclasses.fields(FilesData)
                                     if not f.name.startswith("_")]
    assert data_class("nosuch") is ProgramData and build_data("nosuch", {"k": 1}) == {"k": 1}
    assert build_data("cron", doc).cast(ProgramData).to_json() == doc


def test_extra_data_is_a_compatibility_path():
    old = HostResult("h", "ok", 0, extra={"data": {"removed": ["/a"]}, "steps": 1})
    assert old.data == {"removed": ["/a"]} and old.extra == {"steps": 1}
    assert list(old.to_json())[:2] == ["data", "steps"]


SECRET = "s3cret-db-password"


def test_mask_secrets_masks_values_and_removed_lines():
    diff = ("--- before/etc/app.conf\n+++ after/etc/app.conf\n@@ -1,2 +1,2 @@\n"
            " user=app\n-password=old-one-nobody-knows\n+password=" + SECRET + "\n")
    shown = diffs.shown(diff, {SECRET, "unrelated-value"})
    assert SECRET not in shown and "old-one-nobody-knows" not in shown
    assert shown.endswith(" user=app\n-********\n+password=********\n")
    assert shown.startswith("--- before/etc/app.conf\n+++ after/etc/app.conf\n")
    assert diffs.shown(diff, {"other"}) == diff  # no secret in it: unchanged
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2E\n-----END KEY-----\n"
    multi = diffs.shown("+++ after/k\n+-----BEGIN KEY-----\n+AAAAB3NzaC1yc2E\n", {key})
    assert "AAAAB3NzaC1yc2E" not in multi and "BEGIN KEY" not in multi
    assert diffs.shown("+pin=12\n", {"12"}) == diffs.HIDDEN  # too short to mask in place


def test_caps_give_one_line():
    huge = "".join(f"+line {i}\n" for i in range(40000))
    capped = diffs.shown(huge)
    assert capped.count("\n") == 1 and "40000 lines" in capped and "cap" in capped
    assert ops_cron._diff("a\0b\n", "c\n", "x") == \
        "binary or large content differs: 4 -> 2 characters\n"
    assert ops_cron._diff("x" * (ops_cron.DIFF_MAX_CHARS + 1), "", "x").count("\n") == 1
    assert ops_cron._diff("same\n", "same\n", "x") == ""
    assert ops_cron._diff("a\n", "b\n", "crontab.u").startswith("--- a/crontab.u\n+++ b/")
    items = [{"i": ">f+++++++++", "path": f"f{i}"} for i in range(5)]
    listing = diffs.sync_diff("/t", items, total=12, limit=3)
    assert listing.splitlines()[-1] == "... 9 more changes not shown"
    assert listing.count("\n") == 6 and diffs.sync_diff("/t", []) == ""


def test_typed_keys_given_in_extra_become_fields():
    old = HostResult("h", "ok", extra={"truncated": ["stdout"], "discarded_bytes": {"stdout": 3},
                                       "uploaded_bytes": 9, "summary": "s", "other": 1})
    assert old.truncated == ("stdout",) and old.uploaded_bytes == 9 and old.extra == {"other": 1}
    assert list(old.to_json())[:5] == ["truncated", "discarded_bytes", "uploaded_bytes",
                                       "summary", "other"]
