"""Pure crontab parsing/editing (ops/_crontab.py) and the control-side checks.

Regression cases for the known cron-module bugs: an unterminated last line, an
unmarked twin of the job, a renamed job, a cron.d file holding other entries,
Ansible's own markers (and its disabled, commented-out jobs).
"""

from __future__ import annotations

import shlex

import pytest

from fleetops.errors import EXIT_BAD_OPTIONS, OptionError
from fleetops.jobs import cron as cronspec
from ops import _crontab as ct

LOCK = "/run/lock"
FLOCK = "/usr/bin/flock"


def job(name: str, command: str, schedule: str = "0 2 * * *", user: str | None = None) -> str:
    return ct.job_line(schedule, ct.wrap(command, name, LOCK, FLOCK, inline_env=True), user)


def install(text: str, name: str, command: str, schedule: str = "0 2 * * *"):
    lines, action = ct.set_entry(ct.split_lines(text), name, job(name, command, schedule),
                                 adopt=[ct.job_line(schedule, command)])
    return ct.render(lines), action


# -- schedules ------------------------------------------------------------------------------

VALID = [
    ("* * * * *", "* * * * *"),
    ("  0   2 * *   mon-fri ", "0 2 * * mon-fri"),
    ("*/15 0-23/2 1,15,31 * *", "*/15 0-23/2 1,15,31 * *"),
    ("0 0 * jan-mar,Dec sun", "0 0 * jan-mar,Dec sun"),
    ("0 0 * * 7", "0 0 * * 7"),
    ("0 0 * * 0-7", "0 0 * * 0-7"),
    ("59 23 31 12 6", "59 23 31 12 6"),
    ("0 0 * * MON,wed,Fri", "0 0 * * MON,wed,Fri"),
    ("0 12 1-31/7 * *", "0 12 1-31/7 * *"),
    ("*/60 * * * *", "*/60 * * * *"),
] + [(s, s) for s in ct.SPECIALS]

INVALID = [
    ("", "empty schedule"),
    ("* * * *", "4 fields"),
    ("* * * * * *", "6 fields"),
    ("60 * * * *", "bad value '60' in minute"),
    ("0 24 * * *", "bad value '24' in hour"),
    ("0 0 0 * *", "bad value '0' in day-of-month"),
    ("0 0 32 * *", "day-of-month"),
    ("0 0 * 13 *", "bad value '13' in month"),
    ("0 0 * 0 *", "month"),
    ("0 0 * * 8", "bad value '8' in day-of-week"),
    ("0 0 * * sunday", "bad value 'sunday'"),
    ("mon * * * *", "bad value 'mon' in minute"),
    ("*/0 * * * *", "bad step '0'"),
    ("*/61 * * * *", "bad step '61'"),
    ("5/10 * * * *", "needs a range or *"),
    ("1,,2 * * * *", "empty list item"),
    ("1, * * * *", "empty list item"),
    ("- * * * *", "bad value ''"),
    ("10-1 * * * *", "goes backwards"),
    ("0 0 * * sat-sun", "goes backwards"),
    ("*/5/2 * * * *", "bad step"),
    ("1-2-3 * * * *", "bad value '2-3'"),
    ("0x1 * * * *", "bad value '0x1'"),
    ("@DAILY", "unknown special"),
    ("@every 5m", "unknown special"),
    ("@daily\n* * * * *", "unknown special"),
    ("0 1 * * *\n* * * * *", "10 fields"),
]


@pytest.mark.parametrize(("spec", "normal"), VALID)
def test_valid_schedules_are_normalised(spec, normal):
    assert ct.validate_schedule(spec) == normal
    assert cronspec.validate_schedule(spec) == normal


@pytest.mark.parametrize(("spec", "reason"), INVALID)
def test_invalid_schedules_give_one_line(spec, reason):
    with pytest.raises(ct.CronError) as host_side:
        ct.validate_schedule(spec)
    assert reason in str(host_side.value)
    with pytest.raises(OptionError) as control_side:
        cronspec.validate_schedule(spec)
    message = str(control_side.value)
    assert message.startswith("--schedule: ") and "\n" not in message
    assert control_side.value.exit_code == EXIT_BAD_OPTIONS == 5


# -- names, commands, argv ------------------------------------------------------------------

@pytest.mark.parametrize("target", ct.FILE_TARGETS)
@pytest.mark.parametrize("name", ["nightly_disk_report.py", "a.b", "daily backup", "x/y", "",
                                  "-", "é"])
def test_file_targets_take_run_parts_names_only(name, target):
    if name == "-":
        assert ct.validate_name(name, target) == "-"
        return
    with pytest.raises(ct.CronError) as err:
        ct.validate_name(name, target)
    assert "\n" not in str(err.value)
    if "." in name:
        assert "silently skip" in str(err.value)


def test_crontab_entry_names_may_be_ansible_style():
    assert ct.validate_name("daily backup", "user") == "daily backup"
    assert ct.validate_name("db.dump@02:00", "user") == "db.dump@02:00"
    assert ct.validate_name("two  spaces (x), y/z é", "user") == "two  spaces (x), y/z é"
    for bad in ("a\nb", " lead", "trail ", "x" * 501, "tab\there", "end\n"):
        with pytest.raises(ct.CronError):
            ct.validate_name(bad, "user")
    with pytest.raises(ct.CronError, match="unknown target"):
        ct.validate_name("x", "cron.yearly")


def test_lock_names_stay_file_safe_and_distinct():
    assert ct.lock_path("backup", "/run/lock/") == "/run/lock/fleetops-backup.lock"
    assert ct.lock_path("backup", "/run/lock", "www-data") == "/run/lock/fleetops-backup@www-data.lock"
    assert ct.lock_path("a", "/l", "b-c") != ct.lock_path("a-b", "/l", "c")
    a, b = ct.lock_token("daily backup"), ct.lock_token("daily_backup")
    assert a != b and ct.is_file_name(a)


def test_commands_must_be_one_line():
    for bad in ("", "   ", "echo a\necho b", "echo\r", "a\0b"):
        with pytest.raises(ct.CronError):
            ct.validate_command(bad)


def test_control_side_argv_checks_everything_first():
    argv = cronspec.install_argv("bk", "0  2 * * *", "-x run", "cron.d", "www-data", True)
    assert argv == ["install", "--name=bk", "--target=cron.d", "--schedule=0 2 * * *",
                    "--job=-x run", "--user=www-data", "--check"]
    assert "--schedule" not in " ".join(cronspec.install_argv("bk", None, "true", "cron.daily"))
    assert cronspec.remove_argv("bk") == ["remove", "--name=bk", "--target=user"]
    assert cronspec.list_argv("root") == ["list", "--user=root"]
    for call in (lambda: cronspec.install_argv("bk", None, "true", "user"),
                 lambda: cronspec.install_argv("bk.py", "@daily", "true", "cron.d"),
                 lambda: cronspec.install_argv("bk", "@daily", "true", "cron.yearly"),
                 lambda: cronspec.install_argv("bk", "@daily", "", "user"),
                 lambda: cronspec.remove_argv("bk", "user", "bad user")):
        with pytest.raises(OptionError):
            call()


# -- % and backslash escaping ---------------------------------------------------------------

def test_percent_and_backslash_are_escaped_for_cron():
    assert ct.escape_command("date +%F") == "date +\\%F"
    assert ct.escape_command("printf 'a\\\\b'") == "printf 'a\\\\\\\\b'"
    assert ct.unescape_command("date +\\%F") == "date +%F"
    assert ct.unescape_command("echo a%stdin") == "echo a"  # cron: the rest is stdin


@pytest.mark.parametrize("command", [
    "date +%Y-%m-%d > /tmp/x", "printf '%s\\n' 'a\\\\b' \"$HOME\"", "echo 100%", "a\\%b",
    "echo 'it''s' \"q\" `id` $(( 1 % 2 ))", "trailing\\",
])
def test_wrapped_job_line_round_trips(command):
    line = job("rt", command)
    schedule, user, escaped = ct.split_job(line)
    assert (schedule, user) == ("0 2 * * *", None)
    assert "%" not in escaped.replace("\\%", "")  # no bare % left for cron to eat
    assert ct.unwrap(ct.unescape_command(escaped)) == command
    inner = shlex.split(ct.unescape_command(escaped))
    assert inner[:3] == ["/usr/bin/env", "SHELL=/bin/sh", f"PATH={ct.SAFE_PATH}"]
    assert inner[3:6] == [FLOCK, "-n", "/run/lock/fleetops-rt.lock"]
    assert inner[-3:] == ["/bin/sh", "-c", command]


def test_run_parts_script_is_not_percent_escaped():
    text = ct.render(ct.script("rp", ct.wrap("date +%F", "rp", LOCK, FLOCK)))
    assert text.startswith("#!/bin/sh\n# fleetops: rp\n") and text.endswith("\n")
    assert "date +%F" in text and "\\%" not in text
    assert ct.is_own_script(text, "rp") and not ct.is_own_script(text, "other")


# -- editing a crontab ----------------------------------------------------------------------

def test_last_line_without_newline_is_kept_intact():
    text = "MAILTO=ops\n0 1 * * * /usr/bin/foreign"
    new, action = install(text, "bk", "/usr/bin/backup")
    assert action == "created"
    assert new.startswith("MAILTO=ops\n0 1 * * * /usr/bin/foreign\n# fleetops: bk\n0 2 * * * ")
    assert new.endswith("\n") and new.count("\n") == 4
    assert install(new, "bk", "/usr/bin/backup") == (new, "none")


def test_unmarked_identical_job_is_adopted_not_duplicated():
    text = "# nightly\n0  2 * *  * /usr/bin/backup\n30 3 * * * /usr/bin/other\n"
    new, action = install(text, "bk", "/usr/bin/backup")
    assert action == "updated"
    lines = new.splitlines()
    assert lines[:2] == ["# nightly", "# fleetops: bk"]
    assert lines[2] == job("bk", "/usr/bin/backup") and lines[3] == "30 3 * * * /usr/bin/other"
    assert sum("/usr/bin/backup" in line for line in lines) == 1


def test_unmarked_job_with_another_schedule_is_left_alone():
    text = "0 4 * * * /usr/bin/backup\n"
    new, action = install(text, "bk", "/usr/bin/backup")
    assert action == "created" and new.startswith(text)


def test_renamed_job_does_not_touch_the_old_entry():
    first, _ = install("", "old-name", "/usr/bin/backup")
    both, action = install(first, "new-name", "/usr/bin/backup")
    assert action == "created" and both.startswith(first)  # another owner's entry: kept
    only_new, action = ct.remove_entry(ct.split_lines(both), "old-name")
    assert action == "removed"
    assert [e.name for e in ct.entries(only_new)] == ["new-name"]
    assert ct.render(only_new) == install("", "new-name", "/usr/bin/backup")[0]


def test_schedule_or_command_change_replaces_in_place():
    start = "A=1\n" + install("", "bk", "/usr/bin/backup")[0] + "5 5 * * * /usr/bin/tail\n"
    moved, action = install(start, "bk", "/usr/bin/backup", "@hourly")
    assert action == "updated"
    assert moved.splitlines()[2].startswith("@hourly ")
    assert moved.splitlines()[0] == "A=1" and moved.endswith("5 5 * * * /usr/bin/tail\n")
    changed, action = install(moved, "bk", "/usr/bin/backup --full", "@hourly")
    assert action == "updated" and "--full" in changed and len(changed.splitlines()) == 4


def test_ansible_entries_are_found_updated_and_removed_keeping_their_marker():
    text = ("#Ansible: bk\n0 1 * * * /usr/bin/backup\n"
            "#Ansible: disabled one\n#0 3 * * * /usr/bin/old\n"
            "0 9 * * * /usr/bin/foreign\n")
    new, action = install(text, "bk", "/usr/bin/backup")
    assert action == "updated"
    lines = new.splitlines()
    assert lines[0] == "#Ansible: bk" and lines[1] == job("bk", "/usr/bin/backup")
    assert "# fleetops: bk" not in new and lines[2:] == text.splitlines()[2:]
    enabled, action = install(new, "disabled one", "/usr/bin/old", "0 3 * * *")
    assert action == "updated" and "#0 3 * * *" not in enabled
    assert enabled.splitlines()[2] == "#Ansible: disabled one"
    gone, action = ct.remove_entry(ct.split_lines(new), "bk")
    assert action == "removed" and ct.render(gone) == "".join(text.splitlines(True)[2:])


def test_twins_under_one_name_collapse_to_one_entry():
    text = ("# fleetops: bk\n0 1 * * * /usr/bin/backup\n0 9 * * * /usr/bin/foreign\n"
            "#Ansible: bk\n0 1 * * * /usr/bin/backup\n")
    new, action = install(text, "bk", "/usr/bin/backup")
    assert action == "updated"
    assert [e.name for e in ct.entries(ct.split_lines(new))] == ["bk"]
    assert "0 9 * * * /usr/bin/foreign\n" in new and new.count("/usr/bin/backup") == 1


def test_dangling_marker_gets_its_job_back():
    new, action = install("0 9 * * * /usr/bin/foreign\n# fleetops: bk\n", "bk", "/usr/bin/backup")
    assert action == "updated"
    assert new.splitlines()[1:] == ["# fleetops: bk", job("bk", "/usr/bin/backup")]


def test_remove_touches_only_the_named_entry():
    base = "MAILTO=x\n# keep me\n0 9 * * * /usr/bin/foreign\n"
    text, _ = install(base, "bk", "/usr/bin/backup")
    text, _ = install(text, "other", "/usr/bin/other")
    lines, action = ct.remove_entry(ct.split_lines(text), "bk")
    assert action == "removed"
    assert ct.render(lines) == install(base, "other", "/usr/bin/other")[0]
    assert ct.remove_entry(lines, "bk") == (lines, "none")


def test_cron_d_file_holding_other_entries():
    own = ct.own_cron_d("shared", "0 2 * * *", "root", ct.wrap("x", "shared", LOCK, FLOCK), "root")
    assert own[0] == ct.HEADER and own[1:4] == ["SHELL=/bin/sh", f"PATH={ct.SAFE_PATH}",
                                                "MAILTO=root"]
    rest, _ = ct.remove_entry(own, "shared")
    assert ct.only_own_header(rest)
    # Debian's cron skips a whole file holding a bare "MAILTO=" (found by the lab daemon test)
    assert ct.own_cron_d("s", "@daily", "root", "true", "")[3] == 'MAILTO=""'
    foreign = ["MAILTO=dba", "#Ansible: vacuum", "0 4 * * * postgres vacuumdb -a",
               "# fleetops: shared", "0 2 * * * root old"]
    rest, action = ct.remove_entry(foreign, "shared")
    assert action == "removed" and not ct.only_own_header(rest) and rest == foreign[:3]
    updated, action = ct.set_entry(foreign, "shared", job("shared", "x", user="root"))
    assert action == "updated" and updated[:4] == foreign[:4]
    schedule, user, command = ct.split_job(updated[4], with_user=True)
    assert (schedule, user, ct.unwrap(ct.unescape_command(command))) == ("0 2 * * *", "root", "x")


def test_classify_and_spool_header():
    kinds = [ct.classify(x) for x in ("", "  ", "# hi", "# fleetops: a", "#Ansible: b",
                                      "PATH=/bin", "@daily x", "*/5 * * * * x", "5 * * * * x")]
    assert kinds == ["blank", "blank", "comment", "marker", "marker", "env", "job", "job", "job"]
    header = ["# DO NOT EDIT THIS FILE - edit the master and reinstall.",
              "# (/tmp/crontab.x installed on Fri Nov 27 04:06:56 2026)",
              "# (Cron version -- $Id: crontab.c,v 2.13 1994/01/17 03:20:37 vixie Exp $)"]
    assert ct.strip_spool_header(header + ["X=1"]) == ["X=1"]
    assert ct.strip_spool_header(["# mine", "X=1"]) == ["# mine", "X=1"]


def test_diff_is_unified():
    text = ct.diff("a\n", "a\nb\n", "etc/cron.d/x")
    assert text.startswith("--- a/etc/cron.d/x\n+++ b/etc/cron.d/x\n") and "+b\n" in text
    assert ct.diff("same\n", "same\n", "x") == ""


# -- task output and early option errors ----------------------------------------------------

def test_describe_shows_action_backup_and_diff():
    from fleetops.cli.cron import describe
    from fleetops.results import HostResult

    data = {"action": "updated", "path": "/etc/cron.d/bk", "backup": "/var/b/x", "diff": "-a\n+b"}
    text = describe("install", HostResult("h1", "changed", 0, extra={"data": data}), True)
    assert text.splitlines() == ["h1 | CHANGED | updated /etc/cron.d/bk", "h1 | backup: /var/b/x",
                                 "h1 | -a", "h1 | +b"]
    rows = [{"target": "cron.daily", "name": "x.py", "managed_by": None, "user": "root",
             "ignored": "run-parts skips names with dots or other characters"}]
    listed = describe("list", HostResult("h1", "ok", 0, extra={"data": {"entries": rows}}), False)
    assert "[foreign] cron.daily x.py" in listed and "IGNORED" in listed


def test_bad_schedule_exits_5_before_the_inventory_is_read(tmp_path):
    from invoke import Context
    from invoke.exceptions import Exit

    from fleetops.cli import cron as cron_cli

    missing = str(tmp_path / "no-such-inventory.ini")
    with pytest.raises(Exit) as err:
        cron_cli.install(Context(), inventory=missing, name="bk", schedule="61 * * * *", job="x")
    assert err.value.code == 5 and "minute" in str(err.value.message)
    with pytest.raises(Exit) as err:
        cron_cli.install(Context(), inventory=missing, name="bk", schedule="* * * * *", job="x")
    assert err.value.code == 4  # a good schedule gets as far as the (missing) inventory
