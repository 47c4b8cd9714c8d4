"""Arguments checked on the control machine and sent parsed: same results, lean host start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.ship.run import program_input
from fleetops.ship.zipapp import build_zipapp
from ops._contract import PARSED_ARGS_FLAG, ProgramError

ARGV = ["--warn", "70", "--crit", "95", "--include", "/", "--exclude", "/srv",
        "--threshold", "/=60:99"]


def run_zipapp(app: Path, argv: list[str], stdin: bytes | None, probe: bool = False):
    code = ("import sys; sys.path[0] = sys.argv.pop(1); from ops.__main__ import main; "
            "rc = main(); ")
    if probe:  # which heavy modules did the run import?
        code += ("sys.stderr.write(repr(sorted(m for m in ('argparse', 'json', 're', 'enum', "
                 "'smtplib', 'signal') if m in sys.modules))); ")
    code += "sys.exit(rc)"
    return subprocess.run(["/usr/bin/python3", "-S", "-E", "-c", code, str(app), "diskreport",
                           *argv], input=stdin, capture_output=True, timeout=60, check=False)


def comparable(stdout: bytes) -> dict:
    doc = json.loads(stdout)
    doc["data"].pop("generated")
    for mount in doc["data"]["mounts"]:  # "/" is live: others write to it between the runs
        for key in ("used_bytes", "avail_bytes", "use_pct", "inodes_used", "inodes_pct"):
            mount.pop(key, None)
    return doc


def test_parsed_arguments_give_the_same_document_as_argv(tmp_path):
    app = build_zipapp(tmp_path).path
    argv, stdin = program_input("diskreport", ARGV, None)
    assert argv[0] == PARSED_ARGS_FLAG and len(argv) == 2 and stdin is None
    parsed = run_zipapp(app, argv, stdin, probe=True)
    plain = run_zipapp(app, ARGV, None)
    assert parsed.returncode == plain.returncode == 0, parsed.stderr
    assert comparable(parsed.stdout) == comparable(plain.stdout)
    assert comparable(parsed.stdout)["data"]["thresholds"]["space"] == {"warn": 70, "crit": 95}
    assert parsed.stderr.decode() == "[]", "the host imported heavy modules on the fast path"


def test_parsed_arguments_on_stdin_still_work(tmp_path, monkeypatch):
    import fleetops.ship.run as ship

    monkeypatch.setattr(ship, "ARGV_FRAME_LIMIT", 10)  # too long for argv: framed on stdin
    argv, stdin = ship.program_input("diskreport", ARGV, None)
    assert argv == [PARSED_ARGS_FLAG] and stdin
    app = build_zipapp(tmp_path).path
    plain = run_zipapp(app, ARGV, None)
    parsed = run_zipapp(app, argv, stdin)
    assert comparable(parsed.stdout) == comparable(plain.stdout)
    bad = run_zipapp(app, [PARSED_ARGS_FLAG, "!!notbase64!!"], None)
    assert bad.returncode == 2 and b"parsed arguments" in bad.stdout


def test_bad_arguments_are_caught_on_the_control_machine():
    with pytest.raises(ProgramError, match="--crit"):
        program_input("diskreport", ["--crit", "lots"], None)


def test_programs_that_parse_on_the_host_keep_argv():
    argv, stdin = program_input("cron", ["list"], b"x")
    assert argv == ["list"] and stdin == b"x"


def test_the_flag_is_refused_by_programs_that_do_not_opt_in(tmp_path):
    app = build_zipapp(tmp_path).path
    code = ("import sys; sys.path[0] = sys.argv.pop(1); from ops.__main__ import main; "
            "sys.exit(main())")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(app), "cron", PARSED_ARGS_FLAG],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "bad arguments" in json.loads(out.stdout)["error"]
