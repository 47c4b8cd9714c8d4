"""Ansible's short flags, the same on every task (fleetops/cli/flags.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from invoke.parser import Parser, ParserContext

from fleetops.cli import flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import tasks  # noqa: E402


def every_task():
    def walk(collection, prefix=""):
        for name, task in collection.tasks.items():
            yield prefix + name, task
        for name, sub in collection.collections.items():
            yield from walk(sub, prefix + name + ".")
    return [(n, t) for n, t in walk(tasks.ns) if not n.startswith(("lab.", "bench."))]


TASKS = every_task()


def short_of(task) -> dict[str, str]:
    """long option -> its one-letter flag (or '' when it has none)."""
    found = {}
    for arg in task.get_arguments():
        letters = [n for n in arg.names if len(n) == 1]
        found[arg.names[0]] = letters[0] if letters else ""
    return found


@pytest.mark.parametrize(("name", "task"), TASKS, ids=[n for n, _ in TASKS])
def test_ansible_letters_mean_the_same_everywhere(name, task):
    shorts = short_of(task)
    meaning = {letter: option.replace("_", "-") for option, letter in flags.ANSIBLE_SHORT.items()}
    for option, letter in shorts.items():
        if letter in meaning:
            assert option == meaning[letter], (name, option, letter)
    for option in ("inventory", "limit", "forks", "timeout", "remote-user"):
        if option in shorts:
            assert shorts[option] == flags.ANSIBLE_SHORT[option.replace("-", "_")], (name, option)
    assert "remote-user" in shorts  # every task that reaches hosts
    assert shorts.get("format", "") == ""  # long-only: -f is forks
    assert shorts.get("user", "") == ""  # cron's crontab owner: -u is the login user
    if "become" in shorts:
        assert (shorts["become"], shorts["ask-become-pass"], shorts["ask-pass"]) == ("b", "K", "k")
    if name == "watcher.start":
        assert shorts["check"] == ""  # a check spec, not check mode
    elif "check" in shorts:
        assert shorts["check"] == "C"


def test_play_takes_ansible_playbook_flags():
    from fleetops.cli.play import play

    context = ParserContext(name="play", args=play.get_arguments())
    parsed = Parser(contexts=[context]).parse_argv(
        ["play", "-i", "inv.ini", "-l", "web", "-f", "3", "-e", "a=1", "-e", "@vars.yml",
         "-C", "-D", "-b", "-K", "-k", "-T", "7", "-u", "deploy", "-t", "web,db",
         "--skip-tags", "slow", "book.yml"])
    args = parsed[0].args
    assert (args.inventory.value, args.limit.value, args.forks.value) == ("inv.ini", "web", 3)
    assert args["extra-vars"].value == ["a=1", "@vars.yml"]
    assert (args.check.value, args.diff.value, args.become.value) == (True, True, True)
    assert (args["ask-become-pass"].value, args["ask-pass"].value) == (True, True)
    assert (args.timeout.value, args["remote-user"].value) == ("7", "deploy")
    assert (args.tags.value, args["skip-tags"].value) == (["web,db"], ["slow"])
    assert args.playbook.value == "book.yml"


def test_disk_report_format_is_long_only():
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "--help",
                           "disk-report.report"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "  --format=STRING" in proc.stdout and "-f INT, --forks=INT" in proc.stdout
    assert "-u STRING, --remote-user=STRING" in proc.stdout


def test_remote_user_is_the_default_login_user(tmp_path, monkeypatch):
    from fleetops.cli import common
    from fleetops.config.targets import target_for
    from fleetops.errors import OptionError

    inv = tmp_path / "inv.ini"
    inv.write_text("[all]\nplain ansible_host=127.0.0.9 ansible_port=2222\n"
                   "given ansible_host=127.0.0.9 ansible_user=alice\n")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config
    token = flags._REMOTE_USER.set("deploy")
    try:
        hosts = {h.name: h for h in common.targets(str(inv), "all")}
        assert target_for(hosts["plain"]).user == "deploy"
        assert target_for(hosts["given"]).user == "alice"  # ansible_user wins, as in Ansible
        flags._REMOTE_USER.set("bad user")
        with pytest.raises(OptionError, match="remote-user"):
            common.targets(str(inv), "all")
    finally:
        flags._REMOTE_USER.reset(token)
    hosts = {h.name: h for h in common.targets(str(inv), "all")}
    assert target_for(hosts["plain"]).user != "deploy"


def test_remote_user_reaches_the_task_and_is_reset():
    seen = []

    @flags.task
    def probe(c, inventory=None):
        seen.append(flags.remote_user())

    from invoke import Context

    probe(Context(), inventory="x", remote_user="bob")
    probe(Context(), inventory="x")
    assert seen == ["bob", None] and flags.remote_user() is None
