"""Bad input is one line and the documented exit code (issue 11, points 4, 7 and 8).

Most cases run the real ``invoke`` program on this repository's ``tasks.py`` (no host is
contacted: every case is refused before, or its hosts refuse the connection on 127.0.0.1).
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetops.errors import DEFAULT_COMMAND_TIMEOUT, InputError, OptionError

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).with_name("invoke"))


def invoke(tmp_path: Path, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, "-r", str(ROOT), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    first = proc.stderr.splitlines()[0]
    assert first.startswith("fleetops: ")
    for word in words:
        assert word in first, first
    return first


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    path = tmp_path / "inv.ini"
    path.write_text("h1\n")
    return path


# -- point 8: inventories ----------------------------------------------------------------------
def test_endless_and_special_inventory_files_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for name in ("/dev/zero", "fifo"):
        started = time.monotonic()
        one_line(invoke(tmp_path, "run", "-i", name, "true", timeout=20), 4,
                 "not a regular file")
        assert time.monotonic() - started < 15


def test_oversized_inventory_is_refused(tmp_path):
    from fleetops.inventory.load import load_inventory
    from fleetops.inventory.source import MAX_FILE_BYTES

    big = tmp_path / "big.ini"
    with open(big, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match="larger than 16 MiB"):
        load_inventory(big)


def test_nested_ranges_count_the_whole_product(tmp_path):
    (tmp_path / "bomb.ini").write_text("[web]\nok[1:3]\nh[0:99999][0:99999]\n")
    started = time.monotonic()
    one_line(invoke(tmp_path, "run", "-i", "bomb.ini", "true"), 4,
             "bomb.ini:3:", "more than 100000 hosts")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("text", "words"), [
    ("a\\ b\n", ("inv.ini:1:", "host name 'a b'", "whitespace")),
    ('h ansible_host="x y"\n', ("inv.ini:1:", "ansible_host 'x y'", "not a host name")),
    ("h ansible_host=-oProxyCommand=id\n", ("inv.ini:1:", "not a host name")),
    # Ansible reads a :vars value as a Python literal: '\x01' is a control character
    ("[g:vars]\nansible_user='a\\x01b'\n[g]\nh\n", ("inv.ini:2:", "control characters")),
    ("[g:vars]\nansible_user=a\\x01b\n[g]\nh\n", ()),
])
def test_host_names_and_addresses_are_validated(tmp_path, text, words):
    (tmp_path / "inv.ini").write_text(text)
    proc = invoke(tmp_path, "run", "-i", "inv.ini", "true")
    if words:
        one_line(proc, 4, *words)
    else:  # a literal backslash-x is printable text, accepted
        assert proc.returncode in (0, 3), proc.stderr


def test_yaml_inventory_names_control_characters_and_aliases(tmp_path):
    from fleetops.inventory.load import load_inventory

    cases = {
        "ctl.yml": ("all:\n  hosts:\n    h1:\n      x: \"a\x07\"\n", "ctl.yml:4:", "U+0007"),
        "nl.yml": ('all:\n  hosts:\n    "x\\ny":\n', "nl.yml:3:", "host name 'x\\ny'"),
        "self.yml": ("all:\n  hosts:\n    h1:\n  vars:\n    x: &a [*a]\n", "self.yml:5:",
                     "self-referencing alias"),
        "esc.yml": ('all:\n  hosts:\n    "\\e[2J":\n', "esc.yml:3:", "\\x1b[2J"),
    }
    for name, (text, where, what) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError) as caught:
            load_inventory(tmp_path / name)
        message = str(caught.value)
        assert message.isprintable() and where in message and what in message, message


def test_yaml_alias_bomb_is_refused_fast_and_small(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    inventory = "all:\n  hosts:\n    h1:\n  vars:\n" + "".join(f"    {x}\n" for x in lines)
    playbook = "- hosts: all\n  vars:\n" + "".join(f"    {x}\n" for x in lines) + "  tasks: []\n"
    (tmp_path / "bomb.yml").write_text(inventory)
    (tmp_path / "play.yml").write_text(playbook)
    (tmp_path / "inv.ini").write_text("h1\n")
    started = time.monotonic()
    one_line(invoke(tmp_path, "run", "-i", "bomb.yml", "true"), 4, "bomb.yml:", "alias bomb")
    one_line(invoke(tmp_path, "play", "-i", "inv.ini", "play.yml"), 4, "play.yml:", "alias bomb")
    assert time.monotonic() - started < 20


def test_empty_inventory_and_empty_selection_exit_4(tmp_path):
    (tmp_path / "empty.ini").write_text("# nothing\n[web]\n")
    one_line(invoke(tmp_path, "run", "-i", "empty.ini", "true"), 4, "has no hosts")
    (tmp_path / "inv.ini").write_text("[web]\n[db]\nh1\n")
    one_line(invoke(tmp_path, "run", "-i", "inv.ini", "-p", "web", "true"), 4,
             "pattern 'web' selects no host")
    (tmp_path / "empty.retry").write_text("")
    one_line(invoke(tmp_path, "run", "-i", "inv.ini", "--limit", "@empty.retry", "true"), 4,
             "selects no host")
    (tmp_path / "play.yml").write_text("- hosts: web\n  tasks: [{run: 'true'}]\n")
    one_line(invoke(tmp_path, "play", "-i", "inv.ini", "play.yml"), 4,
             "play.yml:1:", "no play selects any host")


# -- point 8: playbooks ------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "words"), [
    ("- hosts: all\n  tasks:\n  - run: \"a\x01b\"\n", ("play.yml:3:", "U+0001")),
    ("- &a [*a]\n", ("play.yml:1:", "self-referencing alias")),
    ("- hosts: all\n  vars: {x: " + "[" * 300 + "]" * 300 + "}\n", ("play.yml:", "levels deep")),
    ("- hosts: all\n  tasks:\n  - run: x\n    timeout: .inf\n", ("play.yml:4:", "finite")),
    ("- hosts: all\n  tasks:\n  - cron: {name: n, schedule: '\u0663 * * * *', job: x}\n",
     ("play.yml:3:", "not allowed")),
])
def test_bad_playbooks_are_one_line(tmp_path, inv, text, words):
    (tmp_path / "play.yml").write_text(text)
    one_line(invoke(tmp_path, "play", "-i", str(inv), "play.yml"), 4, *words)


# -- point 7: the template sandbox ------------------------------------------------------------
SSTI = '{{ cycler.__init__.__globals__.os.popen("touch PWNED").read() }}'


def test_ssti_in_a_playbook_is_refused_before_anything_runs(tmp_path, inv):
    (tmp_path / "play.yml").write_text(f"- hosts: all\n  tasks:\n  - run: 'echo {SSTI}'\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "evil.j2").write_text(f"line one\n{SSTI}\n")
    (tmp_path / "file.yml").write_text(
        "- hosts: all\n  tasks:\n  - template: {src: evil.j2, dest: /tmp/x}\n")
    one_line(invoke(tmp_path, "play", "--check", "-i", str(inv), "play.yml"), 4,
             "play.yml:3:", "__globals__", "sandboxed")
    one_line(invoke(tmp_path, "play", "--check", "-i", str(inv), "file.yml"), 4,
             "evil.j2:2:", "sandboxed")
    assert not (tmp_path / "PWNED").exists()


def test_sandbox_stops_what_the_load_time_check_cannot_see(tmp_path):
    from fleetops.playbook.templating import Renderer, RenderError

    renderer = Renderer([tmp_path])
    with pytest.raises(RenderError, match="SecurityError"):
        renderer.value("{{ cycler|attr('__init__') }}", {})
    with pytest.raises(RenderError, match="SecurityError"):
        renderer.value("{{ x|attr(name) }}", {"x": 1, "name": "__class__"})
    assert renderer.value("{{ 'a b'|quote }}", {}) == "'a b'"  # ordinary use still works


def test_csv_cells_are_neutralised_and_numbers_stay_numbers():
    from fleetops.jobs.disk.report import build_report, csv_cell, render_csv

    for text in ("=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)"):
        assert csv_cell(text) == "'" + text
    for text in ("\tx", "\rx"):  # control characters are escaped first: inert text
        assert csv_cell(text) in ("'" + text, repr(text)[1:-1])
        assert not csv_cell(text).startswith(("\t", "\r", "=", "+", "-", "@"))
    assert csv_cell(-5) == -5 and csv_cell(2.5) == 2.5 and csv_cell("/srv") == "/srv"
    doc = {"mountpoint": "=HYPERLINK(\"http://evil\")", "device": "@SUM(1)", "fstype": "+x",
           "size_bytes": 100, "used_bytes": 10, "avail_bytes": 90, "use_pct": 10,
           "inodes_total": 10, "inodes_used": 1, "inodes_pct": 10, "over": [], "error": None,
           "level": "ok"}
    report = build_report({"web1": ("ok", None, {"mounts": [doc]}),
                           "db1": ("failed", "-oops =1+1", {})})
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert rows[0]["mountpoint"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[0]["device"] == "'@SUM(1)" and rows[0]["fstype"] == "'+x"
    assert rows[0]["size_bytes"] == "100" and rows[0]["use_pct"] == "10"
    assert rows[1]["host_reason"] == "'-oops =1+1"


# -- point 8: options --------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "value"), [
    ("--timeout", "nan"), ("--command-timeout", "inf"), ("--deadline", "-1"),
    ("--forks", "x"), ("--command-timeout", "1e999"), ("--timeout", "0"),
])
def test_numeric_options_must_be_finite_and_positive(tmp_path, inv, flag, value):
    one_line(invoke(tmp_path, "run", "-i", str(inv), flag, value, "true"), 5, flag)


def test_unknown_option_exits_5_with_the_tasks_usage(tmp_path, inv):
    for args in (("run", "-i", str(inv), "--bogus", "x"), ("disk-report", "--warn"),
                 ("run",), ("cron.install", "--nope")):
        proc = invoke(tmp_path, *args)
        assert proc.returncode == 5, (args, proc.stderr)
        assert proc.stderr.startswith("fleetops: ")
        assert "Usage: " in proc.stderr and "Options:" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_every_tasks_help_lists_its_options_correctly(tmp_path):
    import importlib.util

    from invoke.parser import ParserContext

    spec = importlib.util.spec_from_file_location("fleetops_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # installs fleetops.cli.program's changes
    names = list(module.ns.task_names)
    assert "disk-report.report" in names and "cron.install" in names and len(names) > 15
    for name in names:
        task = module.ns[name]
        context = ParserContext(name=name, args=task.get_arguments())
        for flags, _ in context.help_tuples():
            for flag in flags.split(", "):
                assert flag.startswith(("--", "-")) and not flag.startswith(("--=", "-- ")), (
                    name, flags)
                assert flag.lstrip("-")[:1].isalnum(), (name, flags)
    text = invoke(tmp_path, "--help", "disk-report").stdout
    assert "--=" not in text and "--mail-config=STRING" in text
    assert "-x STRING, --exclude=STRING" in text  # repeatable options take a value (-e: extra vars)


def test_closed_stdout_ends_quietly(tmp_path):
    (tmp_path / "inv.ini").write_text(
        "h[1:20] ansible_host=127.0.0.1 ansible_port=9 ansible_user=nobody\n")
    read, write = os.pipe()
    proc = subprocess.Popen([INVOKE, "-r", str(ROOT), "run", "-i", "inv.ini", "true"],
                            cwd=tmp_path, stdout=write, stderr=subprocess.PIPE, text=True)
    os.close(write)
    os.close(read)  # like `| head -0`: the first line written finds no reader
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err


# -- point 4: every task is bounded in time by default -----------------------------------------
def test_default_and_explicit_time_bounds():
    from fleetops.cli.common import runner_options

    options = runner_options()
    assert options.command_timeout == DEFAULT_COMMAND_TIMEOUT == 300
    assert options.deadline_for_host() == 10 + 300 + 5
    assert runner_options(command_timeout="20").deadline_for_host() == 35
    unbounded = runner_options(command_timeout="0", deadline="0")
    assert unbounded.command_timeout is None and unbounded.deadline_for_host() == math.inf
    assert runner_options(deadline="7").deadline_for_host() == 7
    with pytest.raises(OptionError):
        runner_options(command_timeout="-3")


class _Stop(Exception):
    pass


TASKS = [
    ("adhoc", "run", {"command": "true"}),
    ("cron", "install", {"name": "n", "schedule": "* * * * *", "job": "x"}),
    ("cron", "remove", {"name": "n"}), ("cron", "list_", {}),
    ("daemons", "watcher_start", {}), ("daemons", "watcher_stop", {}),
    ("daemons", "watcher_status", {}), ("daemons", "watcher_logs", {}),
    ("daemons", "dirsync_start", {"source": "/a", "target": "/b"}),
    ("daemons", "dirsync_stop", {}), ("daemons", "dirsync_status", {}),
    ("daemons", "dirsync_logs", {}),
    ("scan", "scan", {}), ("diskreport", "report", {}), ("diskreport", "schedule", {}),
    ("diskreport", "unschedule", {}), ("play", "play", {"playbook": "x.yml"}),
]


@pytest.mark.parametrize(("module", "name", "args"), TASKS)
def test_every_fleet_task_gets_a_finite_command_timeout_and_deadline(monkeypatch, module, name,
                                                                     args):
    import importlib

    from fleetops.cli import common
    from fleetops.playbook import load as playbook

    seen = []
    original = common.runner_options

    def record(*a, **kw):
        seen.append(original(*a, **kw))
        return seen[-1]

    def stop(*a, **kw):
        raise _Stop

    monkeypatch.setattr(common, "runner_options", record)
    monkeypatch.setattr(common, "targets", stop)
    monkeypatch.setattr(playbook, "load_playbook", stop)
    from invoke import Context

    task = getattr(importlib.import_module(f"fleetops.cli.{module}"), name)
    with pytest.raises(_Stop):
        task(Context(), inventory="x.ini", **args)
    assert seen, "the task never built its runner options"
    for options in seen:
        assert 0 < options.command_timeout <= DEFAULT_COMMAND_TIMEOUT
        assert math.isfinite(options.deadline_for_host())


def test_a_play_task_timeout_sets_its_own_deadline():
    from fleetops.cli.common import runner_options
    from fleetops.playbook.load import Task
    from fleetops.playbook.run import Engine

    engine = Engine.__new__(Engine)
    engine.options = runner_options()
    long = Task("t", "run", {}, 1, timeout=900)
    assert engine._task_options(long).deadline_for_host() == 10 + 900 + 5
    assert engine._task_options(Task("t", "run", {}, 1)) is engine.options


def test_deep_json_vars_file_is_one_line(tmp_path):
    from fleetops.inventory.load import load_inventory

    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.json").write_text(
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "inv.ini").write_text("h1\n")
    with pytest.raises(InputError, match="all.json: JSON nested too deeply"):
        load_inventory(tmp_path / "inv.ini")
