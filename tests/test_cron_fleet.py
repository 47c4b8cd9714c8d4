"""``invoke cron.*`` and ``ops/cron`` across the lab fleet, and a real cron daemon.

Each lab host has private /etc/cron.d, /etc/cron.* and /var/spool/cron/crontabs.
The daemon test starts ``cron -f`` inside one lab host at the start of this module
(so its ~60 s wait overlaps the other tests) with ``* * * * *`` jobs in a cron.d
file and in root's crontab, and checks they ran with ``%`` and ``\\`` intact.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

pytestmark = pytest.mark.lab

TICK_HOST = "lab16"
TICK_FILES = {"cron.d": "/tmp/fleetops-tick-crond", "user": "/tmp/fleetops-tick-user"}
# printf '%s\n' ... 'a\\b': the % must survive cron's %-to-newline rule, the \\ its \-unescaping.
TICK_JOB = "printf '%s\\n' \"$(date +%Y)\" 'a\\\\b' > {path} 2>&1"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


@pytest.fixture(scope="module")
def cron_lab(request):
    try:
        return request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("the lab fixture (tests/conftest.py) is not available")


def ship(lab, pattern: str, argv: list[str]):
    from fleetops.cli import common
    from fleetops.ship.run import fleet_program

    hosts = common.targets(str(lab.inventory_path), pattern, None)
    return fleet_program(hosts, "cron", argv, common.runner_options(forks=16))


def in_host(lab, host: str, *argv: str) -> subprocess.CompletedProcess:
    return lab.ns_run(host, list(argv), capture_output=True, text=True, check=False, env=ENV,
                      timeout=20)


@pytest.fixture(scope="module", autouse=True)
def ticking(cron_lab):
    """Jobs every minute on TICK_HOST and a real ``cron -f`` running them (module-long)."""
    lab = cron_lab
    for target, path in TICK_FILES.items():
        in_host(lab, TICK_HOST, "rm", "-f", path)
        argv = ["install", "--name=fleetops-tick", f"--target={target}", "--schedule=* * * * *",
                "--job=" + TICK_JOB.format(path=path)]
        run = ship(lab, TICK_HOST, argv + (["--mailto="] if target == "cron.d" else []))
        assert run.hosts[TICK_HOST].status == "changed", run.hosts[TICK_HOST].reason
    daemon = lab.ns_popen(TICK_HOST, ["cron", "-f"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        yield {"daemon": daemon, "started": time.monotonic()}
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
        if daemon.stderr:
            daemon.stderr.close()
        for target in TICK_FILES:
            ship(lab, TICK_HOST, ["remove", "--name=fleetops-tick", f"--target={target}"])


def task_json(capsys, task, **kwargs) -> dict:
    from invoke import Context

    task(Context(), json=True, retry_file=None, **kwargs)
    return json.loads(capsys.readouterr().out)


def test_install_task_changed_then_ok_then_remove(cron_lab, capsys):
    from fleetops.cli import cron as cron_cli

    lab, hosts = cron_lab, ["lab01", "lab02", "lab03"]
    common = {"inventory": str(lab.inventory_path), "pattern": ":".join(hosts)}
    spec = {"name": "fleet-bk", "target": "cron.d", "schedule": "0 3 * * *",
            "job": "tar czf /srv/bk-$(date +%F).tgz /etc"}
    first = task_json(capsys, cron_cli.install, **common, **spec)
    assert first["summary"]["changed"] == 3 and first["program"] == "cron"
    assert {h["data"]["action"] for h in first["hosts"].values()} == {"created"}
    second = task_json(capsys, cron_cli.install, **common, **spec)
    assert second["summary"]["ok"] == 3 and second["summary"]["changed"] == 0
    for host in hosts:
        proc = in_host(lab, host, "stat", "-c", "%a %U %G", "/etc/cron.d/fleet-bk")
        assert proc.stdout.split() == ["644", "root", "root"]
    before = in_host(lab, "lab01", "cat", "/etc/cron.d/fleet-bk").stdout
    assert "date +\\%F" in before and "flock -n /var/lib/fleetops/lock/fleetops-fleet-bk.lock" in before

    cron_cli.install(_context(), **common, **{**spec, "schedule": "0 4 * * *"}, check=True,
                     retry_file=None)
    text = capsys.readouterr().out
    for host in hosts:
        assert f"{host} | CHANGED | updated /etc/cron.d/fleet-bk" in text
        assert f"{host} | -0 3 * * * root " in text and f"{host} | +0 4 * * * root " in text
    assert in_host(lab, "lab01", "cat", "/etc/cron.d/fleet-bk").stdout == before

    removed = task_json(capsys, cron_cli.remove, **common, name="fleet-bk", target="cron.d")
    assert removed["summary"]["changed"] == 3
    again = task_json(capsys, cron_cli.remove, **common, name="fleet-bk", target="cron.d")
    assert again["summary"]["ok"] == 3
    assert in_host(lab, "lab02", "test", "-e", "/etc/cron.d/fleet-bk").returncode == 1


def _context():
    from invoke import Context

    return Context()


def test_crontab_and_run_parts_then_list(cron_lab, capsys):
    from fleetops.cli import cron as cron_cli

    lab, pattern = cron_lab, "lab04:lab05"
    user = ["install", "--name=rotate logs", "--target=user", "--schedule=@hourly",
            "--job=/usr/sbin/logrotate /etc/logrotate.conf"]
    daily = ["install", "--name=disk-report", "--target=cron.daily", "--job=df -P / > /tmp/df"]
    try:
        for argv in (user, daily):
            assert ship(lab, pattern, argv).summary["changed"] == 2
            assert ship(lab, pattern, argv).summary["ok"] == 2
        proc = in_host(lab, "lab05", "run-parts", "--test", "/etc/cron.daily")
        assert proc.stdout.split() == ["/etc/cron.daily/disk-report"]
        crontab = in_host(lab, "lab04", "crontab", "-l").stdout
        assert crontab.count("# fleetops: rotate logs\n@hourly /usr/bin/env ") == 1
        listing = task_json(capsys, cron_cli.list_, inventory=str(lab.inventory_path),
                            pattern=pattern)
        for host in ("lab04", "lab05"):
            rows = listing["hosts"][host]["data"]["entries"]
            named = {(r["target"], r["name"]): r for r in rows if not r["foreign"]}
            assert named[("user", "rotate logs")]["command"] == "/usr/sbin/logrotate " \
                                                                "/etc/logrotate.conf"
            assert named[("cron.daily", "disk-report")]["managed_by"] == "fleetops"
    finally:
        ship(lab, pattern, ["remove", "--name=rotate logs", "--target=user"])
        ship(lab, pattern, ["remove", "--name=disk-report", "--target=cron.daily"])
    assert in_host(lab, "lab04", "crontab", "-l").returncode != 0  # no crontab left behind


def test_bad_schedule_is_refused_before_any_host(cron_lab):
    from invoke.exceptions import Exit

    from fleetops.cli import cron as cron_cli

    with pytest.raises(Exit) as err:
        cron_cli.install(_context(), inventory=str(cron_lab.inventory_path), pattern="lab06",
                         name="bad", target="cron.d", schedule="*/0 * * * *", job="true")
    assert err.value.code == 5
    assert in_host(cron_lab, "lab06", "test", "-e", "/etc/cron.d/bad").returncode == 1


@pytest.mark.slow
def test_real_cron_daemon_runs_both_jobs(cron_lab, ticking):
    lab, daemon = cron_lab, ticking["daemon"]
    deadline = ticking["started"] + 75  # the next minute boundary, plus slack
    pending = dict(TICK_FILES)
    while pending and time.monotonic() < deadline:
        assert daemon.poll() is None, f"cron exited: {daemon.stderr.read().decode()[-300:]}"
        for target, path in list(pending.items()):
            if in_host(lab, TICK_HOST, "test", "-s", path).returncode == 0:
                del pending[target]
        time.sleep(1)
    assert not pending, f"cron never ran the {sorted(pending)} job(s) within 75 s"
    year = time.strftime("%Y")
    for path in TICK_FILES.values():
        assert in_host(lab, TICK_HOST, "cat", path).stdout == f"{year}\na\\\\b\n"
