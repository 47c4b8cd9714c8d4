"""Mount names that are not UTF-8 (or hold a newline) never crash the remote side: the
JSON document carries them exactly (surrogate escapes), the mail, its saved fallback
and the text table show them escaped, one row per mount."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ops import _mail, _mounts

REPO = Path(__file__).resolve().parents[1]
RAW = b"d\xff\xfeend"          # not UTF-8
NEWLINE = b"a\nOK forged row"  # written as \012 in /proc/mounts


MOUNT_AND_RUN = (
    "import os, subprocess, sys\n"
    "for path in sys.argv[1:3]:\n"
    "    os.mkdir(os.fsencode(path))\n"
    "    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'fleetops-test', path],"
    " check=True)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'ops', 'diskreport'] + sys.argv[3:])\n")


@pytest.fixture()
def mounts_file(tmp_path: Path):
    """Two real tmpfs mounts named RAW and NEWLINE, in a private mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1)")
    return tmp_path, (os.fsencode(tmp_path) + b"/" + RAW, os.fsencode(tmp_path) + b"/" + NEWLINE)


def diskreport(mounts, *args: str, env: dict | None = None) -> tuple[int, dict]:
    tmp_path, paths = mounts
    argv = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", MOUNT_AND_RUN,
            *paths, "--include", str(tmp_path) + "/*", *args]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, timeout=60, env=env)
    assert proc.stdout.count(b"\n") == 1, proc.stderr  # one document, nothing else
    assert b"Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_json_document_carries_the_exact_bytes(mounts_file):
    rc, doc = diskreport(mounts_file)
    assert rc == 0 and doc["ok"], doc
    assert {os.fsencode(m["mountpoint"]) for m in doc["data"]["mounts"]} == set(mounts_file[1])


def test_mail_fallback_saves_the_report_with_names_escaped(tmp_path: Path, mounts_file):
    spool = tmp_path / "spool"
    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT=str(closed_port()),
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SMTP_TIMEOUT="5")
    rc, doc = diskreport(mounts_file, "--email", "ops@example.com", "--spool-dir", str(spool),
                         env=env)
    assert rc == 1 and "report saved to" in doc["error"], doc
    saved = Path(doc["data"]["saved_report"]).read_text(encoding="utf-8")
    assert "d\\xff\\xfeend" in saved and "a\\nOK forged row" in saved
    rows = [line for line in saved.splitlines() if "fleetops-test" in line]
    assert len(rows) == 2 and not any(line.startswith("OK forged") for line in saved.splitlines())


def test_delivered_mail_shows_the_names_escaped(smtp_server, mounts_file):
    inbox, port = smtp_server
    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT=str(port),
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SMTP_TIMEOUT="10")
    rc, doc = diskreport(mounts_file, "--email", "ops@example.com", env=env)
    assert rc in (0, 3) and doc["ok"], doc
    message = inbox[-1]
    plain = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    body = plain.get_payload(decode=True).decode("utf-8")
    assert "d\\xff\\xfeend" in body and "a\\nOK forged row" in body
    assert "\n" not in str(message["Subject"])


def test_build_message_never_fails_on_surrogates():
    settings = _mail.MailSettings("127.0.0.1", security="none", sender="f@example.com")
    text = os.fsdecode(b"/srv/\xff") + " \ud800 lone"
    msg = _mail.build_message(settings, ["a@example.com"], "subj " + text + "\nBcc: x", text)
    head, _, body = msg.as_bytes().partition(b"\n\n")
    assert b"/srv/\\xff" in body and b"\\ud800" in body
    assert b"\nBcc:" not in head and "\n" not in str(msg["Subject"])


def test_shown_escapes_only_what_it_must():
    assert _mounts.shown("/srv/data set") == "/srv/data set"
    assert _mounts.shown("/srv/é") == "/srv/é"
    assert _mounts.shown(os.fsdecode(b"/x\xff")) == "/x\\xff"
    assert _mounts.shown("a\nb\x1b[2J\t") == "a\\nb\\x1b[2J\\t"
