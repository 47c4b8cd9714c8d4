"""One declaration per ops program's arguments (ops/_argspec.py): the host parser, the
control-side checks, the JSON document, playbook actions and docs/programs.md agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetops.errors import InputError
from fleetops.playbook.actions import ACTIONS
from fleetops.playbook.argspec import ArgError, coerce, complete, program_arg
from fleetops.playbook.load import load_playbook
from fleetops.ship import programs
from ops import _argspec
from ops._contract import ProgramError
from ops._dispatch import PROGRAMS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "programs.md"


def test_docs_programs_md_is_current():
    assert DOCS.read_text() == programs.render_docs(), (
        "docs/programs.md is stale: regenerate it with "
        "python -c 'from fleetops.ship.programs import render_docs; print(render_docs(), end=\"\")'"
        " > docs/programs.md")


def test_every_program_declares_its_arguments_once():
    for name in PROGRAMS:
        prog = programs.load(name)
        spec = programs.spec(name)
        if name != "cron":  # sub-commands: argparse builder, documented by --help
            assert spec, f"{name} has no argument spec"
        dests = [item.dest for item in spec]
        assert len(dests) == len(set(dests)), name
        for item in spec:
            assert item.help or item.name in ("--backend", "--mode"), (name, item.name)
        assert prog.parse_on_control <= (prog.args is not None)


def _document_values(program: str, argv: list[str]) -> dict:
    """What the host gets: argv checked here, framed, then read back as the host does."""
    frame = programs.frame_of_argv(program, argv)
    assert frame is not None
    return _argspec.from_document(programs.load(program).spec(), _argspec.split_frame(frame))


_WORDS = st.one_of(st.sampled_from(["80", "90.5", "0", "-1", "1e3", "abc", "", "nan", "inf",
                                    "1e999", "/", "/srv/*", "always", "crit", "never"]),
                   st.text(alphabet="0123456789.-e/x", max_size=6))
_DISK_FLAGS = st.sampled_from(["--warn", "--crit", "--inode-warn", "--threshold", "--include",
                               "--local", "--stat-timeout", "--email-when", "--mounts-file",
                               "--skip-fstype"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_DISK_FLAGS, _WORDS), max_size=5))
def test_host_parser_and_document_give_the_same_values(pairs):
    """Property: for any command line, the control machine's check and the host's parser
    agree: both refuse it with the same one-line reason, or the document the host reads
    carries exactly the values its own parser would produce."""
    argv = [word for flag, value in pairs
            for word in ([flag] if flag == "--local" else [flag, value])]
    prog = programs.load("diskreport")
    try:
        host = vars(prog.parse(argv))
    except ProgramError as exc:
        with pytest.raises(ProgramError) as control:
            programs.frame_of_argv("diskreport", argv)
        assert str(control.value) == str(exc) and control.value.rc == 2
        assert "\n" not in str(exc)
        return
    assert _document_values("diskreport", argv) == host


@pytest.mark.parametrize(("program", "argv"), [
    ("files", ["--dest", "/etc/motd", "--size", "5", "--sha256", "ab" * 32, "--mode", "0640",
               "--backup"]),
    ("sweep", ["10.0.0.0/30", "--targets", "10.1.0.1", "--timeout", "0.2", "--backend", "tcp"]),
    ("arpscan", ["auto", "--method", "cache", "--retries", "3"]),
])
def test_to_argv_round_trips(program, argv):
    """Typed values back to a command line (playbook actions, invoke tasks) parse to the
    same values on the host."""
    values = programs.parse_argv(program, argv)
    again = programs.parse_argv(program, programs.to_argv(program, values))
    assert again == values


def test_check_option_words_the_error_like_the_host():
    assert programs.check_option("diskreport", "warn", "85") == 85
    with pytest.raises(ValueError, match=r"^--warn: invalid percent value: 'lots'$"):
        programs.check_option("diskreport", "warn", "lots")
    with pytest.raises(ValueError, match="--stat-timeout: invalid seconds value"):
        programs.check_option("diskreport", "stat_timeout", "0")
    with pytest.raises(ValueError, match="must be one of always, warn, crit"):
        programs.check_option("diskreport", "email_when", "never")


def test_help_entries_come_from_the_spec():
    entries = programs.help_entries("diskreport", ["email_when", "spool_dir"])
    assert entries == {"email-when": "mail only at or above this level (default always)",
                       "spool-dir": "where a report that could not be mailed is saved"}
    assert programs.help_entries("sweep", ["cap"])["cap"].endswith("(default 65536)")


def test_playbook_action_arguments_come_from_the_spec():
    spec = ACTIONS["disk_report"]
    assert spec.args["warn"].kind == "number" and spec.args["thresholds"].kind == "list"
    assert ACTIONS["sweep"].args["backend"].choices == programs.arg("sweep", "backend").choices
    with pytest.raises(ArgError, match=r"^argument 'wait': --stat-timeout: invalid seconds value"):
        coerce("wait", program_arg("diskreport", "stat_timeout"), 0)  # the host's converter
    got = complete(ACTIONS["disk_report"], {"warn": 70, "thresholds": ["/=60:99"]})
    from fleetops.playbook.actions import DISK_KEYS, _program_argv

    assert _program_argv("diskreport", DISK_KEYS, got) == ["--warn=70", "--threshold=/=60:99"]


@pytest.mark.parametrize(("task", "reason"), [
    ("sweep: {targets: [10.0.0.0/30], backend: carrier-pigeon}",
     "sweep: argument 'backend' must be one of auto, dgram, raw, ping, tcp"),
    ("disk_report: {warn: lots}", "disk_report: argument 'warn' must be a number"),
    ("watcher: {name: w, interval: soon}", "argument 'interval' must be a number"),
])
def test_a_playbook_rejects_a_bad_program_argument_with_file_and_line(tmp_path, task, reason):
    book = tmp_path / "site.yml"
    book.write_text(f"- hosts: all\n  tasks:\n    - name: ok\n      disk_report: {{warn: 70}}\n"
                    f"    - name: bad\n      {task}\n")
    with pytest.raises(InputError) as info:
        load_playbook(str(book))
    message = str(info.value)
    assert message.startswith(f"{book}:6: task 'bad': ") and reason in message, message
    assert "\n" not in message


def test_a_secret_argument_never_reaches_argv():
    secret = _argspec.Arg("--password", secret=True, help="x")
    import argparse

    parser = argparse.ArgumentParser()
    _argspec.add_to_parser(parser, (secret,))
    assert "--password" not in parser.format_help()
    values = _argspec.from_document((secret,), json.dumps({"password": "pw"}).encode())
    assert values == {"password": "pw"}


def test_the_document_is_bounded_on_the_control_machine():
    argv = ["--include", "x" * (_argspec.DOC_LIMIT + 10)]
    with pytest.raises(ProgramError, match="over the limit"):
        programs.frame_of_argv("diskreport", argv)
