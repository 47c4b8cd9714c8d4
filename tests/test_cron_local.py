"""``ops/cron`` for real on this machine: ``python3 -m ops cron ...`` as root.

Files go under ``--root tmp_path``; crontabs belong to a throwaway user
(``fleetops-ct<pid>``) and go through the real ``crontab`` binary, so the spool
is whatever Debian's crontab uses. The user's crontab is removed afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ops import _crontab as ct

REPO = Path(__file__).resolve().parents[1]
USER = f"fleetops-ct{os.getpid()}"  # per session: parallel runs never share a crontab
SPOOL = Path("/var/spool/cron/crontabs")
FILE_TARGETS = ("cron.d", "cron.daily", "cron.hourly", "cron.weekly", "cron.monthly")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crontab") or not SPOOL.is_dir(),
    reason="needs root and Debian's cron (crontab, /var/spool/cron/crontabs)")


def _crontab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["crontab", "-u", USER, *args], capture_output=True, text=True,
                          check=False, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def crontest_user():
    created = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        USER], check=True)
        created = True
    yield USER
    _crontab("-r")
    if created:
        subprocess.run(["userdel", USER], check=False)


@pytest.fixture
def user(crontest_user):
    _crontab("-r")
    yield crontest_user
    _crontab("-r")


@pytest.fixture
def root(tmp_path):
    for sub in ("etc/" + t for t in FILE_TARGETS):
        (tmp_path / sub).mkdir(parents=True, mode=0o755)
    (tmp_path / "run/lock").mkdir(parents=True)
    return tmp_path


def cron(*args: str, rc: int | None = 0) -> dict:
    proc = subprocess.run(["python3", "-m", "ops", "cron", *args], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=60)
    doc = json.loads(proc.stdout)  # exactly one JSON document, nothing else
    if rc is not None:
        assert proc.returncode == rc, (proc.stdout, proc.stderr)
    return doc


def listed() -> str:
    proc = _crontab("-l")
    return proc.stdout if proc.returncode == 0 else ""


def target_args(target: str, root: Path, user: str) -> list[str]:
    args = ["--target", target, "--root", str(root)]
    return args + (["--user", user] if target == "user" else [])


def snapshot(root: Path) -> dict:
    found = {str(p): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
             for p in root.rglob("*") if p.is_file()}
    spool = SPOOL / USER
    if spool.exists():
        found["spool"] = (spool.read_bytes(), spool.stat().st_mtime_ns)
    return found


def content(target: str, root: Path, name: str) -> str:
    if target == "user":
        return listed()
    path = root / "etc" / target / name
    return path.read_text() if path.exists() else ""


def check_file(target: str, root: Path, name: str) -> None:
    if target == "user":
        return
    path = root / "etc" / target / name
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == (0o644 if target == "cron.d" else 0o755)
    assert (info.st_uid, info.st_gid) == (0, 0) and not info.st_mode & 0o022
    assert path.read_bytes().endswith(b"\n")


@pytest.mark.parametrize("target", ("user",) + FILE_TARGETS)
def test_install_install_change_remove(target, root, user):
    args = target_args(target, root, user)
    install = ["install", *args, "--name", "bk", "--schedule", "30 2 * * mon-fri",
               "--job", "date +%F >> /tmp/fleetops-bk.log"]
    steps = [
        (install, True, "created"),
        (install, False, "none"),
        (install[:-1] + ["date +%F >> /tmp/other.log"], True, "updated"),
        (["remove", *args, "--name", "bk"], True, "removed"),
        (["remove", *args, "--name", "bk"], False, "none"),
    ]
    backups = root / "var/backups/fleetops/cron"
    for index, (argv, changed, action) in enumerate(steps):
        doc = cron(*argv)
        assert doc["ok"] and doc["changed"] is changed, (index, doc)
        data = doc["data"]
        assert data["action"] == action and data["target"] == target and data["name"] == "bk"
        assert bool(data["diff"]) is changed
        if action in ("created", "updated"):
            check_file(target, root, "bk")
            text = content(target, root, "bk")
            assert text.count("fleetops: bk") == 1 and text.endswith("\n")
            lock = f"fleetops-bk@{user}.lock" if target == "user" else "fleetops-bk.lock"
            lock_dir = f"{root}/var/lib/fleetops/lock" + (f"/{user}" if target == "user" else "")
            assert f"flock -n {lock_dir}/{lock} " in text
            if target in ("user", "cron.d"):
                assert "date +\\%F" in text and "30 2 * * mon-fri" in text
            else:
                assert "date +%F" in text
        if action == "updated":
            backup = Path(data["backup"])
            assert stat.S_IMODE(backup.stat().st_mode) == 0o600
            assert stat.S_IMODE(backups.stat().st_mode) == 0o700
            assert "/tmp/fleetops-bk.log" in backup.read_text()
            assert backup.name.startswith(("user@" + user if target == "user" else target) + "-bk-")
    assert content(target, root, "bk") == ""
    assert not (root / "etc" / target / "bk").exists()
    assert _crontab("-l").returncode != 0  # no crontab before, none left behind
    assert not [p for p in root.rglob(".fleetops-*")]  # no temp files left


@pytest.mark.parametrize("target", ("user",) + FILE_TARGETS)
def test_check_changes_nothing(target, root, user):
    args = target_args(target, root, user)
    doc = cron("install", *args, "--name", "ck", "--schedule", "@daily", "--job", "true", "--check")
    assert doc["changed"] and doc["data"]["action"] == "created" and "+" in doc["data"]["diff"]
    assert snapshot(root) == {} and content(target, root, "ck") == ""
    cron("install", *args, "--name", "ck", "--schedule", "@daily", "--job", "true")
    before = snapshot(root)
    for argv in (["install", *args, "--name", "ck", "--schedule", "@hourly", "--job", "true x"],
                 ["remove", *args, "--name", "ck"]):
        doc = cron(*argv, "--check")
        assert doc["changed"] and doc["data"]["backup"] is None
        assert doc["data"]["diff"].startswith("--- a/")
        assert snapshot(root) == before
    assert not (root / "var" / "backups").exists()


def test_run_parts_lists_the_script_and_dotted_names_are_refused(root):
    daily = root / "etc/cron.daily"
    cron("install", "--target", "cron.daily", "--root", str(root), "--name", "disk-report",
         "--job", "df -P / | mail -s 'disk 100%' root")
    proc = subprocess.run(["run-parts", "--test", str(daily)], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.split() == [str(daily / "disk-report")]
    doc = cron("install", "--target", "cron.daily", "--root", str(root), "--name",
               "nightly_disk_report.py", "--job", "true", rc=2)
    assert not doc["ok"] and "silently skip" in doc["error"] and "\n" not in doc["error"]
    assert sorted(p.name for p in daily.iterdir()) == ["disk-report"]
    script = (daily / "disk-report").read_text()
    assert script.startswith("#!/bin/sh\n") and "'disk 100%'" in script


def test_foreign_files_are_never_replaced_or_deleted(root):
    foreign = root / "etc/cron.daily/logrotate"
    foreign.write_text("#!/bin/sh\n/usr/sbin/logrotate /etc/logrotate.conf\n")
    foreign.chmod(0o755)
    args = ["--target", "cron.daily", "--root", str(root), "--name", "logrotate"]
    doc = cron("install", *args, "--job", "true", rc=1)
    assert "not managed by fleetops" in doc["error"]
    doc = cron("remove", *args, rc=1)
    assert "not managed by fleetops" in doc["error"]
    plain = root / "etc/cron.d/sysstat"
    plain.write_text("5-55/10 * * * * root command -v debian-sa1 > /dev/null && debian-sa1 1 1\n")
    doc = cron("install", "--target", "cron.d", "--root", str(root), "--name", "sysstat",
               "--schedule", "@daily", "--job", "true", rc=1)
    assert "holds no entry named 'sysstat'" in doc["error"]
    assert cron("remove", "--target", "cron.d", "--root", str(root), "--name", "sysstat")[
        "data"]["action"] == "none"
    assert foreign.read_text().startswith("#!/bin/sh\n/usr/sbin/logrotate")
    assert plain.read_text().startswith("5-55/10")


def test_cron_d_file_holding_other_entries(root):
    shared = root / "etc/cron.d/shared"
    text = ("MAILTO=dba\n#Ansible: vacuum\n0 4 * * * postgres vacuumdb -a\n"
            "#Ansible: shared\n0 1 * * * root /usr/bin/old-backup")  # no final newline
    shared.write_text(text)
    shared.chmod(0o664)
    args = ["--target", "cron.d", "--root", str(root), "--name", "shared"]
    doc = cron("install", *args, "--schedule", "0 2 * * *", "--job", "/usr/bin/backup")
    assert doc["data"]["action"] == "updated" and "mode 0664 -> 0644" in doc["data"]["diff"]
    new = shared.read_text()
    assert new.startswith("MAILTO=dba\n#Ansible: vacuum\n0 4 * * * postgres vacuumdb -a\n"
                          "#Ansible: shared\n0 2 * * * root /usr/bin/env ")
    assert new.endswith(" /bin/sh -c /usr/bin/backup\n") and new.count("\n") == 5
    check_file("cron.d", root, "shared")
    assert cron("install", *args, "--schedule", "0 2 * * *", "--job", "/usr/bin/backup")[
        "changed"] is False
    doc = cron("remove", *args)
    assert doc["data"]["action"] == "removed"
    assert shared.read_text() == "MAILTO=dba\n#Ansible: vacuum\n0 4 * * * postgres vacuumdb -a\n"


def test_user_crontab_keeps_foreign_lines_and_variables(root, user, tmp_path):
    mine = tmp_path / "mine"
    original = "MAILTO=ops@example.org\nSHELL=/bin/bash\n0 5 * * * /usr/bin/foreign %stdin\n"
    mine.write_text(original)
    assert _crontab(str(mine)).returncode == 0
    args = target_args("user", root, user)
    doc = cron("install", *args, "--name", "daily backup", "--schedule", "@daily", "--job",
               "/usr/bin/backup --to /srv")
    assert doc["data"]["action"] == "created" and Path(doc["data"]["backup"]).read_text() == original
    text = listed()
    assert text.startswith(original) and text.count("\n") == 5
    assert "@daily /usr/bin/env SHELL=/bin/sh PATH=" in text  # the user's SHELL stays theirs
    assert "fleetops-daily_backup-" in text  # lock name made file-safe
    cron("remove", *args, "--name", "daily backup")
    assert listed() == original


def test_list_flags_managed_ansible_and_foreign_entries(root, user, tmp_path):
    seed = tmp_path / "seed"
    seed.write_text("#Ansible: rotate\n0 3 * * * /usr/sbin/logrotate x\n0 6 * * * /usr/bin/mine\n")
    assert _crontab(str(seed)).returncode == 0
    args = target_args("user", root, user)
    cron("install", *args, "--name", "bk", "--schedule", "@daily", "--job", "date +%F")
    cron("install", "--target", "cron.d", "--root", str(root), "--name", "dump", "--schedule",
         "15 1 * * *", "--job", "pg_dumpall", "--user", "root")
    dotted = root / "etc/cron.daily/nightly_disk_report.py"
    dotted.write_text("#!/bin/sh\ndf -h\n")
    dotted.chmod(0o755)
    loose = root / "etc/cron.d/loose"
    loose.write_text("#Ansible: loose\n0 1 * * * root /usr/bin/loose\n")
    loose.chmod(0o664)
    rows = cron("list", "--root", str(root), "--user", user)["data"]["entries"]
    summary = {(r["target"], r["name"], r["managed_by"], r["foreign"], r["command"]) for r in rows}
    assert summary == {
        ("user", "rotate", "ansible", False, "/usr/sbin/logrotate x"),
        ("user", None, None, True, "/usr/bin/mine"),
        ("user", "bk", "fleetops", False, "date +%F"),
        ("cron.d", "dump", "fleetops", False, "pg_dumpall"),
        ("cron.d", "loose", "ansible", False, "/usr/bin/loose"),
        ("cron.daily", "nightly_disk_report.py", None, True, None),
    }
    ignored = {r["name"]: r["ignored"] for r in rows if r["ignored"]}
    assert sorted(ignored) == ["loose", "nightly_disk_report.py"]
    assert "writable by group" in ignored["loose"] and "dots" in ignored["nightly_disk_report.py"]


def test_bad_values_are_refused_on_the_host_too(root, user):
    base = ["install", "--root", str(root), "--name", "x", "--job", "true"]
    for extra, reason in ((["--schedule", "* * * 13 *"], "month"),
                          (["--schedule", "@every"], "unknown special"),
                          (["--schedule", "@daily", "--user", "no-such-user-xyz"], "no such user"),
                          (["--schedule", "@daily", "--target", "cron.yearly"], "invalid choice")):
        doc = cron(*base, *extra, rc=2)
        assert reason in doc["error"] and "\n" not in doc["error"]
    assert snapshot(root) == {}


# Debian's crontab agrees with the validator, except where the validator is stricter on purpose
# (cron accepts these but they are mistakes: backwards ranges, double steps/ranges, `*-N`).
STRICTER = ["10-1 * * * *", "0 0 * * sat-sun", "*/5/2 * * * *", "1-2-3 * * * *", "*-5 * * * *",
            "*/100 * * * *"]


AGREED = ["* * * * *", "0 2 * * mon-fri", "*/15 0-23/2 1,15,31 * *", "0 0 * jan-mar,Dec sun",
          "0 0 * * 0-7", "59 23 31 12 6", "*/60 * * * *", *ct.SPECIALS, "5/10 * * * *",
          "60 * * * *", "0 0 * * 8", "@DAILY", "0 0 * * mo", "1, * * * *", "0 0 * 0 *",
          "0x1 * * * *", "*/0 * * * *", "* * * *", "00 02 * * *", "0000 002 01 01 00",
          "\u0663 * * * *", "\xb2 * * * *", "\uff11 * * * *", "*/\u0665 * * * *",
          "0 0 * * \u0661-5", "0 0 * \uff2a\uff21\uff2e *"]


@pytest.mark.parametrize("spec", AGREED + STRICTER)
def test_validator_agrees_with_debian_crontab(spec, user, tmp_path):
    path = tmp_path / "probe"
    path.write_text(f"{spec} true\n")
    accepted_by_cron = _crontab(str(path)).returncode == 0
    try:
        ct.validate_schedule(spec)
        accepted = True
    except ct.CronError:
        accepted = False
    if spec in STRICTER:
        assert accepted_by_cron and not accepted
    else:
        assert accepted == accepted_by_cron
