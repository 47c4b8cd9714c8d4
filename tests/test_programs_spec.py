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
        assert spec, f"{name} has no argument spec"
        assert prog.args is not None, f"{name} still builds its own argparse parser"
        dests = [item.dest for item in spec]
        assert len(dests) == len(set(dests)), name
        for command in prog.commands:
            own = [item.dest for item in command.args]
            assert len(own) == len(set(own)), (name, command.name)
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
    with pytest.raises(ProgramError, match="over the limit|more than"):
        programs.frame_of_argv("diskreport", argv)


# -- sub-commands (cron install/remove/list, the daemons' start/stop/status/logs/run) -----

_SUB_WORDS = st.sampled_from(["a", "job-1", "x y", "", "0", "-1", "2.5", "nan", "abc", "/srv",
                              "20001", "user", "cron.d", "cron.bogus", "@daily", "!bad"])


def _sub_command_cases(program: str) -> st.SearchStrategy:
    prog = programs.load(program)
    names = [command.name for command in prog.commands] + ["bogus"]

    def flags(name: str) -> list[str]:
        found = prog.spec(name) if name != "bogus" else ()
        return [item.name for item in found if not item.positional] + ["--nope"]

    return st.sampled_from(names).flatmap(lambda name: st.tuples(
        st.just(name), st.lists(st.tuples(st.sampled_from(flags(name)), _SUB_WORDS),
                                max_size=4)))


def _given_dests(prog, command: str, argv: list[str]) -> set[str]:
    words = {word.split("=", 1)[0] for word in argv}
    return {item.dest for item in prog.spec(command) if item.name in words}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["cron", "watcher", "dirsync"]).flatmap(
    lambda program: st.tuples(st.just(program), _sub_command_cases(program))))
def test_sub_command_host_parser_and_document_agree(case):
    """Property: for any sub-command line the host's own parser accepts, a document that
    names the sub-command and carries only the values given reads back (defaults filled
    in on the host) to exactly the parser's values; a bad line is one line, exit 2."""
    program, (command, pairs) = case
    prog = programs.load(program)
    argv = [command] + [word for flag, value in pairs
                        for word in ([flag] if flag in ("--check", "--foreground")
                                     else [flag, value])]
    try:
        host = programs.parse_argv(program, argv)
    except ProgramError as exc:
        assert exc.rc == 2 and "\n" not in str(exc) and str(exc).startswith("bad arguments: ")
        return
    given_values = {dest: host[dest] for dest in _given_dests(prog, command, argv)}
    given_values[prog.command_dest] = command
    frame = _argspec.encode_document(given_values)
    read = prog.from_document(_argspec.ARGS_FLAG + "=" + frame.decode("ascii"))
    assert vars(read) == host


def test_sub_command_document_refuses_an_unknown_command_or_key():
    prog = programs.load("cron")
    for doc, reason in (({"action": "purge"}, "invalid choice: 'purge'"),
                        ({"action": "list", "job": "x"}, "unknown keys: job"),
                        ({"action": "install", "name": "a"}, "--job is required")):
        word = _argspec.ARGS_FLAG + "=" + _argspec.encode_document(doc).decode("ascii")
        with pytest.raises(ProgramError, match=reason) as info:
            prog.from_document(word)
        assert info.value.rc == 2


def test_sub_commands_come_from_the_spec_in_help_and_docs():
    """Each sub-command's --help lists exactly its spec's options; the docs table too."""
    text = DOCS.read_text()
    for program in ("cron", "watcher", "dirsync"):
        prog = programs.load(program)
        assert [c.name for c in prog.commands] == (
            ["install", "remove", "list"] if program == "cron"
            else ["start", "stop", "status", "logs", "run"])
        for command in prog.commands:
            assert f"### {program} {command.name}\n" in text
            sub = prog.parser()._subparsers._group_actions[0].choices[command.name]
            shown = {option for action in sub._actions for option in action.option_strings}
            declared = {item.name for item in command.args if not item.positional}
            assert shown - {"-h", "--help"} == declared, (program, command.name)


def test_cron_sub_command_values_round_trip_and_check():
    values = programs.parse_argv("cron", ["install", "--name", "nightly", "--job", "-x %y",
                                          "--target", "cron.d", "--check"])
    argv = programs.to_argv("cron", {k: v for k, v in values.items() if k != "action"},
                            command="install")
    assert argv[0] == "install" and "--job=-x %y" in argv
    assert programs.parse_argv("cron", argv) == values
    # --check before or after the sub-command (the sub-command's leaves it as it was)
    assert programs.parse_argv("cron", ["--check", "remove", "--name", "a"])["check"] is True
    assert programs.parse_argv("cron", ["list"])["check"] is False
    with pytest.raises(ValueError, match=r"^--target: must be one of user, cron.d"):
        programs.check_option("cron", "target", "cron.bogus", "install")
    with pytest.raises(KeyError):
        programs.arg("cron", "job", "list")


def test_lifecycle_options_are_checked_here_as_on_the_host():
    assert programs.check_option("watcher", "lines", "5", "logs") == 5
    with pytest.raises(ValueError, match=r"^--lines: must be 1\.\.10000, not '0'$"):
        programs.check_option("watcher", "lines", "0", "logs")
    with pytest.raises(ValueError, match=r"^--name: '!x' is not an instance name"):
        programs.check_option("dirsync", "name", "!x", "stop")
    with pytest.raises(ValueError, match=r"^--timeout: invalid _positive value: 'soon'$"):
        programs.check_option("watcher", "timeout", "soon", "start")
    from fleetops.cli.daemons import check_lifecycle
    from fleetops.errors import OptionError

    check_lifecycle("watcher", ["logs", "--name", "w", "--lines", "3"])
    with pytest.raises(OptionError, match=r"^watcher logs: bad arguments: argument --lines: "
                                          r"must be 1\.\.10000, not '0'$"):
        check_lifecycle("watcher", ["logs", "--name", "w", "--lines", "0"])


def test_playbook_cron_arguments_and_invoke_help_come_from_the_spec():
    from fleetops.cli import cron as cli_cron
    from fleetops.cli import daemons as cli_daemons

    args = ACTIONS["cron"].args
    assert args["target"].choices == programs.arg("cron", "target", "install").choices
    assert args["target"].default == "user" and args["name"].required
    assert cli_cron.INSTALL_HELP["schedule"] == programs.arg("cron", "schedule", "install").help
    assert cli_cron.LIST_HELP["user"] == programs.arg("cron", "user", "list").help
    assert cli_daemons.LOGS_HELP["lines"] == programs.arg("watcher", "lines", "logs").help
    with pytest.raises(ArgError, match="argument 'target' must be one of user, cron.d"):
        complete(ACTIONS["cron"], {"name": "n", "job": "true", "schedule": "@daily",
                                   "target": "cron.bogus"})
