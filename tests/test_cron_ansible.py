"""Cron as Ansible's cron module and Debian's cron see it.

* schedules compared by what cron runs, not their text (Vixie cron's day rule);
* every entry name Ansible's ``CronTab`` writes (its own code, ansible-core dev
  dependency) is found, updated and removed by fleetops, Ansible still finding the result;
* run-parts names for files, a trailing newline refused;
* cron's command-length limit, checked against the real ``crontab`` binary;
* fields are ASCII digits only, and no digit form raises.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from fleetops.errors import OptionError
from fleetops.jobs import cron as cronspec
from ops import _crontab as ct
from tests.test_cron_local import (  # noqa: F401  (fixtures)
    _crontab,
    cron,
    crontest_user,
    listed,
    root,
    target_args,
    user,
)

LOCK, FLOCK = "/run/lock", "/usr/bin/flock"


def job(name: str, command: str, schedule: str = "0 2 * * *", run_as: str | None = None) -> str:
    return ct.job_line(schedule, ct.wrap(command, name, LOCK, FLOCK, inline_env=True), run_as)


SAME = [("00 02 * * *", "0 2 * * *"), ("0000 002 * * *", "0 2 * * *"), ("@daily", "0 0 * * *"),
        ("@midnight", "@daily"), ("@yearly", "0 0 1 jan *"), ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * sun"), ("@hourly", "0 * * * *"),
        ("0 0 * * 7", "0 0 * * 0"), ("0 0 * * SUN", "0 0 * * 7"), ("0 0 * * 0-7", "0 0 * * *"),
        ("*/15 * * * *", "0,15,30,45 * * * *"), ("0-59 * * * *", "* * * * *"),
        ("0 0 * * mon-fri", "0 0 * * 1-5"), ("0 2 1-31 * *", "0 2 * * *"),
        ("0 2 * * 0-6", "0 2 * * *"), ("1-10/3 * * * *", "1,4,7,10 * * * *"),
        ("0 0 */2 * *", "0 0 1-31/2 * *"), ("0 0 1 * 0-7", "0 0 * * *")]
DIFFERENT = [("0 2 * * *", "0 3 * * *"), ("0 0 1 * 1", "0 0 1 * *"), ("0 0 1 * 1", "0 0 * * 1"),
             ("@reboot", "@daily"), ("0 0 * * 1", "0 0 1 * *"), ("*/2 * * * *", "*/3 * * * *"),
             ("0 0 * jan *", "0 0 * feb *")]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_schedules_with_the_same_values_are_the_same_job(a, b):
    assert ct.schedule_key(a) == ct.schedule_key(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_schedules_with_other_values_differ(a, b):
    assert ct.schedule_key(a) != ct.schedule_key(b)


def test_unmarked_job_is_recognised_by_its_schedule_values():
    text = "MAILTO=x\n00 02 * * * /usr/bin/backup\n"
    lines, action = ct.set_entry(ct.split_lines(text), "bk", job("bk", "/usr/bin/backup"),
                                 adopt=[ct.job_line("0 2 * * *", "/usr/bin/backup")])
    assert action == "updated"
    assert lines[1:] == ["# fleetops: bk", job("bk", "/usr/bin/backup")]
    # cron.d: the user field is part of the job; another user's twin is not ours
    text = "00 02 * * * www-data /usr/bin/backup\n0 2 * * * root   /usr/bin/backup\n"
    wrapped = job("bk", "/usr/bin/backup", run_as="root")
    lines, action = ct.set_entry(ct.split_lines(text), "bk", wrapped, with_user=True,
                                 adopt=[ct.job_line("@daily", "x", "root"),
                                        ct.job_line("0 2 * * *", "/usr/bin/backup", "root")])
    assert action == "updated"
    assert lines == ["00 02 * * * www-data /usr/bin/backup", "# fleetops: bk", wrapped]
    # same values, other command: a new entry
    lines, action = ct.set_entry(["00 02 * * * /usr/bin/other"], "bk",
                                 job("bk", "/usr/bin/backup"),
                                 adopt=[ct.job_line("0 2 * * *", "/usr/bin/backup")])
    assert action == "created" and lines[0] == "00 02 * * * /usr/bin/other"


# -- names ---------------------------------------------------------------------------------

NAMES = ["backup (nightly)", "a, b, c", "db/dump", "café crème", "日本語のジョブ", "x: y",
         "50% full", "two  spaces", "#hash", "Ansible: nested", "$(id)", "it's \"q\"",
         "a" * 300]


class _Module:
    """The bits of AnsibleModule that ``CronTab`` uses with a ``cron_file``."""

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return "/usr/bin/" + name

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


def _ansible(path: Path):
    from ansible.modules.cron import CronTab

    return CronTab(_Module(), user="root", cron_file=str(path))


@pytest.mark.parametrize("name", NAMES)
def test_every_name_ansible_writes_is_found_updated_and_removed(name, tmp_path):
    path = tmp_path / "tab"
    path.write_text("0 5 * * * /usr/bin/foreign\n")
    theirs = _ansible(path)
    theirs.add_job(name, theirs.get_cron_job("0", "3", "*", "*", "*", "/bin/true", None, False))
    path.write_text(theirs.render())
    assert ct.validate_name(name, "user") == name
    assert cronspec.validate_name(name) == name
    lines = ct.split_lines(path.read_text())
    assert [(e.name, e.style) for e in ct.entries(lines)] == [(name, "ansible")]
    mine = job(name, "/usr/bin/backup", run_as="root")
    updated, action = ct.set_entry(lines, name, mine, with_user=True)
    assert action == "updated"
    path.write_text(ct.render(updated))
    assert _ansible(path).find_job(name) == [name, mine]  # Ansible still sees it
    removed, action = ct.remove_entry(updated, name)
    assert action == "removed" and removed == ["0 5 * * * /usr/bin/foreign"]
    lock = ct.lock_path(name, LOCK, "root")
    assert len(Path(lock).name) < 255 and "/" not in Path(lock).name


@pytest.mark.parametrize("target", ct.FILE_TARGETS)
@pytest.mark.parametrize("name", ["backup (nightly)", "a,b", "db/dump", "café", "job.sh"])
def test_file_names_keep_run_parts_rules(name, target):
    with pytest.raises(ct.CronError, match="run-parts"):
        ct.validate_name(name, target)


@pytest.mark.parametrize("name", ["backup\n", "backup\r\n", "two\nlines", "tab\tname", "nul\0",
                                  " lead", "trail ", "nbsp\u00a0", "a\u2028b", "esc\x1b[31m",
                                  "x" * 501])
def test_names_cron_or_the_marker_cannot_keep_are_refused(name):
    for target in ("user", "cron.d"):
        with pytest.raises(ct.CronError) as info:
            ct.validate_name(name, target)
        assert "\n" not in str(info.value)
    with pytest.raises(OptionError):
        cronspec.install_argv(name, "@daily", "true")
    if name.endswith("\n"):
        assert "ends in a line break" in str(info.value) and "'>-'" in str(info.value)


# -- digits --------------------------------------------------------------------------------

DIGITS = sorted({chr(c) for c in range(0x110000)
                 if unicodedata.category(chr(c)) == "Nd" or chr(c).isdigit()
                 or chr(c).isnumeric()} - set("0123456789"))


def test_only_ascii_digits_and_no_digit_form_raises():
    assert len(DIGITS) > 500
    for digit in DIGITS:
        for spec in (f"{digit} * * * *", f"0 {digit} * * *", f"*/{digit} * * * *",
                     f"1-{digit} * * * *", f"0 0 * * {digit}", f"0 0 {digit}{digit} * *"):
            with pytest.raises(ct.CronError):
                ct.validate_schedule(spec)
            with pytest.raises(OptionError):
                cronspec.validate_schedule(spec)
    assert ct.validate_schedule("0000000 02 * * *") == "0000000 02 * * *"
    with pytest.raises(ct.CronError):
        ct.validate_schedule("0" * 5000 + " * * * *")  # no int() of 5000 digits


# -- line length ---------------------------------------------------------------------------

def _job_of_size(size: int, name: str = "bk") -> str:
    """A command whose wrapped, escaped job part is exactly ``size`` bytes."""
    base = len(ct.escape_command(ct.wrap("", name, LOCK, FLOCK, inline_env=True)).encode())
    return "x" * (size - base + 2)  # shlex.quote('') is "''", two bytes more than ''


def test_a_command_cron_would_find_too_long_is_refused():
    command = _job_of_size(ct.MAX_COMMAND_BYTES)
    line = job("bk", command)
    assert len(ct.split_job(line)[2].encode()) == ct.MAX_COMMAND_BYTES
    with pytest.raises(ct.CronError, match="job too long for cron.*998"):
        job("bk", command + "x")
    with pytest.raises(ct.CronError, match="1001 bytes"):
        job("bk", command[:-1] + "%%")  # escaping counts: % is written \%
    with pytest.raises(OptionError, match="--job: job too long for cron"):
        cronspec.install_argv("bk", "@daily", "z" * 990)
    assert cronspec.install_argv("bk", None, "z" * 990, "cron.daily")  # a script: no limit


def test_the_limit_is_debian_crontabs(user, tmp_path):  # noqa: F811
    probe = tmp_path / "probe"
    for size, accepted in ((ct.MAX_COMMAND_BYTES, True), (ct.MAX_COMMAND_BYTES + 1, False)):
        probe.write_text("0 2 * * * " + "y" * size + "\n")
        proc = _crontab(str(probe))
        assert (proc.returncode == 0) is accepted, proc.stderr
        if not accepted:
            assert "command too long" in proc.stderr
    probe.write_text("0 2 * * * " + "é" * (ct.MAX_COMMAND_BYTES // 2 + 1) + "\n")
    assert _crontab(str(probe)).returncode != 0  # bytes, not characters


def test_install_refuses_a_too_long_job_and_changes_nothing(root, user):  # noqa: F811
    args = target_args("user", root, user)
    ok = cron("install", *args, "--name", "bk", "--schedule", "@daily", "--job",
              "y" * 600)
    assert ok["ok"] and ok["data"]["action"] == "created"
    before = listed()
    doc = cron("install", *args, "--name", "bk", "--schedule", "@daily", "--job",
               "z" * 1200, rc=2)
    assert "job too long for cron" in doc["error"] and listed() == before
    doc = cron("install", "--target", "cron.d", "--root", str(root), "--name", "bk",
               "--schedule", "@daily", "--job", "z" * 1200, rc=2)
    assert "job too long for cron" in doc["error"]
    assert not (root / "etc/cron.d/bk").exists()


@pytest.mark.parametrize("name", ["backup (nightly)", "café, crème/brûlée", "日本語"])
def test_real_crontab_installs_and_removes_ansible_style_names(name, root, user):  # noqa: F811
    args = target_args("user", root, user)
    doc = cron("install", *args, "--name", name, "--schedule", "00 02 * * *", "--job",
               "/usr/bin/backup")
    assert doc["data"]["action"] == "created"
    assert f"# fleetops: {name}\n" in listed()
    assert cron("install", *args, "--name", name, "--schedule", "00 02 * * *", "--job",
                "/usr/bin/backup")["data"]["action"] == "none"
    rows = cron("list", "--root", str(root), "--user", user)["data"]["entries"]
    assert [r["name"] for r in rows] == [name]
    assert cron("remove", *args, "--name", name)["data"]["action"] == "removed"
    assert name not in listed()


def test_real_crontab_unmarked_twin_with_zero_padded_schedule_is_adopted(root, user, tmp_path):  # noqa: F811
    seed = tmp_path / "seed"
    seed.write_text("00 02 * * * /usr/bin/backup\n")
    assert _crontab(str(seed)).returncode == 0
    args = target_args("user", root, user)
    doc = cron("install", *args, "--name", "bk", "--schedule", "0 2 * * *", "--job",
               "/usr/bin/backup")
    assert doc["data"]["action"] == "updated"
    text = listed()
    assert text.count("/usr/bin/backup") == 1 and "# fleetops: bk" in text
