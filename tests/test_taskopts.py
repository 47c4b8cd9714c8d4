"""The options every fleet task takes are declared once (fleetops/cli/options.py) and are
the same on every task: flags, help, type and default; a bad value is exit 5, one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.cli import options as shared

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tasks  # noqa: E402

# (task, option) -> its own default: the only differences the tasks may have
OWN_DEFAULTS = {
    ("disk-report.report", "command_timeout"): "60",
    ("disk-report.schedule", "command_timeout"): "120",
    ("disk-report.unschedule", "command_timeout"): "120",
    ("play", "retry_file"): None,
}
# options a task does not take, and why
NOT_TAKEN = {
    ("disk-report.report", "json"),  # --format json
    ("play", "pattern"),  # each play's hosts
}


def every_task():
    def walk(collection, prefix=""):
        for name, task in collection.tasks.items():
            yield prefix + name, task
        for name, sub in collection.collections.items():
            yield from walk(sub, prefix + name + ".")
    return sorted(walk(tasks.ns))


FLEET_TASKS = [(n, t) for n, t in every_task() if not n.startswith(("lab.", "bench."))]


def test_every_task_that_reaches_hosts_declares_the_shared_options():
    names = [n for n, t in FLEET_TASKS]
    assert len(names) == 17 and "run" in names and "cron.install" in names
    for name, task in FLEET_TASKS:
        assert task.gives_opts, name
        assert "opts" not in [a.name for a in task.get_arguments()]
    for name, task in every_task():  # lab.* and bench.* take no fleet options
        if name.startswith(("lab.", "bench.")):
            assert not getattr(task, "gives_opts", False), name


@pytest.mark.parametrize(("name", "task"), FLEET_TASKS, ids=[n for n, _ in FLEET_TASKS])
def test_shared_options_are_identical_on_every_task(name, task):
    args = {a.name: a for a in task.get_arguments()}
    for option in shared.OPTIONS:
        if (name, option.name) in NOT_TAKEN:
            assert option.name not in args
            continue
        arg = args[option.name]
        default = OWN_DEFAULTS.get((name, option.name), option.default)
        assert arg.default == default, (name, option.name)
        assert arg.kind is option.kind, (name, option.name)
        assert arg.names[0] == option.long
        letters = [n for n in arg.names[1:]]
        if option.short:
            assert letters == [option.short], (name, option.name)
        else:  # its usual letter, unless the task's own option has it; never another one
            assert letters in ([], [option.letter] if option.letter else []), (name, option)
        if (name, option.name) in OWN_DEFAULTS:
            continue
        assert arg.help == option.help_for(), (name, option.name)
    own_help = {(name, o) for (n, o) in OWN_DEFAULTS if n == name}
    for _task, option_name in own_help:
        assert args[option_name].help.startswith(
            shared.BY_NAME[option_name].help.partition("{")[0])


def test_own_defaults_show_in_the_help():
    helps = {n: {a.name: a.help for a in t.get_arguments()} for n, t in FLEET_TASKS}
    assert "(default 60; 0 = none)" in helps["disk-report.report"]["command_timeout"]
    assert "(default 300; 0 = none)" in helps["run"]["command_timeout"]
    assert "(default <playbook stem>.retry)" in helps["play"]["retry_file"]
    assert "(default fleetops.retry)" in helps["scan"]["retry_file"]


def test_fleet_task_gets_the_same_shared_options():
    import fleetops

    def deploy(c, version):
        pass

    made = fleetops.fleet_task(deploy)
    args = {a.name: a for a in made.get_arguments()}
    for option in shared.OPTIONS:
        assert args[option.name].help == option.help_for()
        assert args[option.name].default == option.default


def test_each_shared_help_is_written_once_in_the_source():
    sources = {p: p.read_text() for p in [*(REPO / "fleetops" / "cli").glob("*.py"),
                                          REPO / "tasks.py"]}
    for option in shared.OPTIONS:
        phrase = option.help[:24]
        where = [str(p.relative_to(REPO)) for p, text in sources.items() if phrase in text]
        assert where == ["fleetops/cli/options.py"], (option.name, where)
    for path, text in sources.items():  # the old copies: help dicts of shared options
        if path.name.startswith("bench"):  # bench.flood's own --max-output, passed to run
            continue
        for key in ('"accept-new":', '"retry-file":', '"max-output":', '"command-timeout":',
                    '"ask-become-pass":'):
            assert key not in text, (path, key)


def test_a_task_cannot_take_a_help_entry_for_a_shared_option():
    from fleetops.cli.flags import task
    from fleetops.cli.options import fleet_options

    @task(help={"forks": "a second help"})
    @fleet_options()
    def probe(c, *, opts):
        pass

    with pytest.raises(ValueError, match="forks"):
        probe.get_arguments()


def test_unknown_group_or_option_is_a_programming_error():
    with pytest.raises(ValueError, match="nosuch"):
        shared.fleet_options("nosuch")
    with pytest.raises(ValueError, match="fork"):
        shared.fleet_options(exclude=["fork"])


def test_resolved_options_reach_the_body_checked():
    from invoke import Context

    from fleetops.cli.flags import task
    from fleetops.cli.options import fleet_options

    seen = []

    @task
    @fleet_options("targets", "runner")
    def probe(c, word="x", *, opts):
        seen.append((word, opts.inventory, opts.forks, opts.json, opts.remote_user))

    probe(Context(), word="w", inventory="inv.ini", forks=3)
    assert seen == [("w", "inv.ini", 3, False, None)]  # not taken: the declared default
    assert [a.name for a in probe.get_arguments()][0] == "word"
    assert "become" not in {a.name for a in probe.get_arguments()}


def invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=60, check=False)


# one bad value per group, on tasks of different shapes; nothing is contacted
BAD = [
    ("targets", ["run", "-i", "/nonexistent/inv.ini", "true"], "inv.ini", 4),
    ("connection", ["cron.list", "-i", "x.ini", "-T", "nan"], "--timeout must be a finite", 5),
    ("connection", ["scan", "-i", "x.ini", "-u", "a b"], "-u/--remote-user: invalid", 5),
    ("connection", ["watcher.status", "-i", "x.ini", "--connection-attempts", "0"],
     "--connection-attempts must be > 0", 5),
    ("runner", ["disk-report", "-i", "x.ini", "--command-timeout", "-1"],
     "--command-timeout must be a finite number of seconds", 5),
    ("runner", ["dirsync.stop", "-i", "x.ini", "--max-output", "3Q"], "--max-output must be", 5),
    ("runner", ["play", "-i", "x.ini", "--deadline", "inf", "book.yml"], "--deadline must be", 5),
    ("runner", ["cron.install", "-i", "x.ini", "-f", "0"], "--forks must be > 0", 5),
]


@pytest.mark.parametrize(("group", "argv", "message", "code"), BAD,
                         ids=[f"{g}-{a[0]}" for g, a, _, _ in BAD])
def test_a_bad_shared_value_is_one_line_and_its_exit_code(group, argv, message, code):
    proc = invoke(*argv)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_a_word_for_forks_is_exit_5_with_the_usage():
    proc = invoke("dirsync.start", "-i", "x.ini", "--forks", "many")
    assert proc.returncode == 5
    assert "--forks must be an integer" in proc.stderr and "--max-output" in proc.stderr


def test_help_lists_every_shared_option_with_its_help():
    proc = invoke("--help", "cron.remove")
    assert proc.returncode == 0
    text = "".join(proc.stdout.split())  # invoke wraps the help, also after a '-'
    for option in shared.OPTIONS:
        assert f"--{option.long}" in text
        assert "".join(option.help_for().split()) in text, option.name
