"""Arguments checked on the control machine and sent as a JSON document on stdin: same
results, lean host start (no argparse, json or re on the host)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.ship.run import program_input
from fleetops.ship.zipapp import build_zipapp
from ops._argspec import ARGS_FLAG, DOC_LIMIT
from ops._contract import ProgramError

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


def test_parsed_arguments_give_the_same_document_as_argv(tmp_path, monkeypatch):
    import fleetops.ship.run as ship

    small, _ = program_input("diskreport", ARGV, None)
    assert small[0].startswith(ARGS_FLAG + "=") and len(small) == 1  # in argv: no wait
    app = build_zipapp(tmp_path).path
    in_argv = run_zipapp(app, small, None, probe=True)
    assert in_argv.returncode == 0 and in_argv.stderr.decode() == "[]", in_argv.stderr
    monkeypatch.setattr(ship, "ARGV_FRAME_LIMIT", 10)  # too long for argv: first on stdin
    argv, stdin = ship.program_input("diskreport", ARGV, None)
    assert argv == [ARGS_FLAG] and stdin and stdin[:8].isdigit()
    assert json.loads(stdin[8:])["threshold"] == ["/=60:99"]
    parsed = run_zipapp(app, argv, stdin, probe=True)
    plain = run_zipapp(app, ARGV, None)
    assert parsed.returncode == plain.returncode == 0, parsed.stderr
    assert comparable(parsed.stdout) == comparable(plain.stdout)
    assert comparable(parsed.stdout)["data"]["thresholds"]["space"] == {"warn": 70, "crit": 95}
    assert parsed.stderr.decode() == "[]", "the host imported heavy modules on the fast path"


def test_the_loader_hands_the_document_over_in_argv(tmp_path):
    """What the bootstrap's loader does after reading the frame: FLAG=FRAME."""
    app = build_zipapp(tmp_path).path
    from fleetops.ship.programs import frame_of_argv

    frame = frame_of_argv("diskreport", ARGV)
    plain = run_zipapp(app, ARGV, None)
    parsed = run_zipapp(app, [f"{ARGS_FLAG}={frame.decode()}"], None)
    assert comparable(parsed.stdout) == comparable(plain.stdout)


def framed(body: bytes) -> bytes:
    return b"%08d" % len(body) + body


HOSTILE = [
    (b"", "cut short"),
    (b"00000010{}", "cut short: 2 of 10"),
    (b"12x45678{}", "cut short or unframed"),
    (b"%08d" % (DOC_LIMIT + 1), "over the limit"),
    (framed(b"[1]"), "not a JSON object"),
    (framed(b"{} x"), "extra data"),
    (framed(b"{]}"), "not valid JSON"),
    (framed(b'{"warn":NaN}'), "NaN is not JSON"),
    (framed(b'{"warn":1e999}'), "out of range"),
    (framed(b"[" * 50000), "not valid JSON"),
    (framed(b'{"nope":true}'), "unknown keys: nope"),
    (framed(b'{"warn":"80"}'), "argument --warn: expected number"),
    (framed(b'{"include":"/"}'), "expected a list"),
    (framed(b'{"email_when":"never"}'), "invalid choice"),
    (framed(b'{"local":"yes"}'), "expected bool"),
    (framed(b'{"warn":true}'), "expected number"),
    (framed(b'{"w\xff":1}'), "not ASCII"),
]


@pytest.mark.parametrize(("frame", "reason"), HOSTILE)
def test_a_hostile_document_fails_cleanly(tmp_path_factory, frame, reason):
    app = build_zipapp(tmp_path_factory.mktemp("app")).path
    out = run_zipapp(app, [ARGS_FLAG], frame)
    doc = json.loads(out.stdout)
    assert out.returncode == 2 and not doc["ok"], out.stderr
    assert doc["error"].startswith("bad arguments: ") and reason in doc["error"], doc["error"]
    assert "Traceback" not in out.stderr.decode()


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
    out = subprocess.run([sys.executable, "-S", "-c", code, str(app), "cron", ARGS_FLAG],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "bad arguments" in json.loads(out.stdout)["error"]


def test_content_derived_arguments_never_travel_in_argv():
    """ops/files' --size/--sha256 describe content that may be secret (a mail settings
    file): its document goes first on stdin, never in the host's argv (``ps``)."""
    from fleetops.ship.run import ARGS_FLAG, split_input

    digest = "ab" * 32
    argv, frame, rest = split_input("files", ["--dest", "/etc/x.conf", "--size", "70",
                                              "--sha256", digest], b"content")
    assert argv == [ARGS_FLAG] and digest.encode() in frame and rest == b"content"
    argv, frame, _ = split_input("diskreport", ["--warn", "70"], None)
    assert frame == b"" and argv[0].startswith(ARGS_FLAG + "=")


def test_oversized_arguments_are_refused_before_parsing():
    """200 000 --exclude values (over the 1 MiB document limit) are one line at once,
    not minutes of argparse's quadratic appends."""
    import time

    from fleetops.ship.programs import parse_argv
    from ops._contract import ProgramError

    argv = ["--exclude", "/mnt/x"] * 200_000
    started = time.monotonic()
    with pytest.raises(ProgramError, match="more than 1048576 allowed"):
        parse_argv("diskreport", argv)
    assert time.monotonic() - started < 5
