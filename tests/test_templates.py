"""Shipped templates render to files the real tools accept, and every interpolated value
is quoted or refused: hostile inventory values never run as code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jinja2
import pytest

from fleetops.shellquote import UnsafeValue, install
from ops import _crontab

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def render(template: str, /, **context) -> str:
    env = install(jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True))
    return env.get_template(template).render(**context)


def test_cron_d_template_is_a_valid_cron_file_that_runs_the_job_unchanged(tmp_path):
    job = "printf '%s\\n' \"it's 100% done\" >> /tmp/x"
    text = render("cron.d.j2", cron_name="nightly-x", cron_schedule="30 2 * * *", cron_job=job)
    assert text.endswith("\n") and "MAILTO=root" in text
    line = text.splitlines()[-1]
    schedule, rest = " ".join(line.split()[:5]), line.split(None, 5)[5]
    assert _crontab.validate_schedule(schedule) == "30 2 * * *"
    user, command = rest.split(" ", 1)
    assert user == "root"
    # cron turns \% into % and \\ into \ (Debian); what sh then runs must be the job itself
    as_cron_runs = _crontab.unescape_command(command)
    out = subprocess.run(["sh", "-c", f"set -- {as_cron_runs.split(' -c ', 1)[1]}; "
                                      'printf %s "$1"'], capture_output=True, text=True)
    assert out.stdout == job


@pytest.mark.parametrize("mailto, expected", [("", 'MAILTO=""'), ("ops@x", "MAILTO=ops@x")])
def test_cron_d_template_mailto(mailto, expected):
    text = render("cron.d.j2", cron_name="n", cron_schedule="@daily", cron_job="true",
                  cron_mailto=mailto)
    assert expected in text.splitlines()


HOSTILE = ["$(touch {canary})", "; touch {canary} #", "`touch {canary}`", "x' ; touch {canary} '",
           "a b\\c %s \"q\" $HOME *"]


def job_script(tmp_path: Path, **values) -> Path:
    context = {"inventory_hostname": "web1", "report_dir": str(tmp_path / "out"),
               "fleetops_home": str(tmp_path / "lib"), "report_warn": 80, "report_crit": 90}
    context.update(values)
    # the playbook hands these to the template under its own names (play vars win over
    # inventory vars, so it reads the inventory's with "| default(...)")
    names = {"report_dir": "reports", "fleetops_home": "home", "report_warn": "warn",
             "report_crit": "crit"}
    context = {names.get(key, key): value for key, value in context.items()}
    script = tmp_path / "job.sh"
    script.write_text(render("disk-report-job.sh.j2", **context))
    return script


def run_with_fake_python(tmp_path: Path, script: Path) -> list[str]:
    """Run the job with a python3 that records its argv: what the report would get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "python3"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$ARGV_OUT\"\n"
                    "echo '{}'\n")
    fake.chmod(0o755)
    out = tmp_path / "argv"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    done = subprocess.run(["sh", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGV_OUT": str(out)},
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return out.read_bytes().decode().split("\0")[:-1]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_disk_report_job_quotes_every_value(tmp_path: Path, hostile: str):
    canary = tmp_path / "canary"
    value = hostile.format(canary=canary)
    script = job_script(tmp_path, inventory_hostname=value, report_warn=value,
                        report_crit=value, fleetops_home=str(tmp_path / value.replace("/", "_")),
                        report_dir=str(tmp_path / ("d " + value.replace("/", "_"))))
    argv = run_with_fake_python(tmp_path, script)
    assert not canary.exists()
    assert argv[1:] == ["diskreport", "--warn", value, "--crit", value]
    assert argv[0].endswith(value.replace("/", "_") + "/fleetops.pyz")
    report_dir = tmp_path / ("d " + value.replace("/", "_"))
    assert json.loads((report_dir / "disk-report.json").read_text()) == {}


@pytest.mark.parametrize("value", ["80\ntouch /tmp/x", "a\rb", "nul\0", "esc\x1b[2J"])
@pytest.mark.parametrize("field", ["inventory_hostname", "report_warn", "report_dir"])
def test_disk_report_job_refuses_control_characters(tmp_path: Path, field: str, value: str):
    with pytest.raises(UnsafeValue, match="control character"):
        job_script(tmp_path, **{field: value})


@pytest.mark.parametrize("hostile", HOSTILE)
def test_cron_d_job_is_quoted_and_runs_literally(tmp_path: Path, hostile: str):
    canary = tmp_path / "canary"
    value = hostile.format(canary=canary)
    text = render("cron.d.j2", cron_name="n", cron_schedule="@daily",
                  cron_job="printf '%s' " + _crontab_quote(value) + " > " + str(tmp_path / "o"))
    command = _crontab.unescape_command(text.splitlines()[-1].split(None, 2)[2])
    assert command.startswith("/usr/bin/flock -n /var/lib/fleetops/lock/fleetops-n.lock ")
    inner = command.split(" -c ", 1)[1]
    assert subprocess.run(["sh", "-n", "-c", inner]).returncode == 0
    # what flock runs: /bin/sh -c JOB, JOB being the operator's command exactly
    done = subprocess.run(["sh", "-c", f"set -- {inner}; /bin/sh -c \"$1\""], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o").read_text() == value and not canary.exists()


def _crontab_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


@pytest.mark.parametrize("variables, words", [
    ({"cron_schedule": "* * * * * root touch /tmp/x #"}, "fields"),
    ({"cron_schedule": "@daily\n* * * * * root touch /tmp/x"}, "control character"),
    ({"cron_name": "n\n* * * * * root touch /tmp/x"}, "control character"),
    ({"cron_name": "a b"}, "invalid name"),
    ({"cron_user": "root touch /tmp/x"}, "invalid user"),
    ({"cron_user": "root\n* * * * * root id"}, "control character"),
    ({"cron_job": "true\n* * * * * root id"}, "control character"),
    ({"cron_mailto": "a\nSHELL=/tmp/evil"}, "control character"),
])
def test_cron_d_values_that_cannot_be_made_safe_are_refused(variables: dict, words: str):
    context = {"cron_name": "n", "cron_schedule": "@daily", "cron_job": "true", **variables}
    with pytest.raises(UnsafeValue, match=words):
        render("cron.d.j2", **context)


def test_cron_d_for_another_user_locks_in_that_users_directory():
    text = render("cron.d.j2", cron_name="n", cron_schedule="@daily", cron_job="true",
                  cron_user="www-data")
    assert " www-data /usr/bin/flock -n /var/lib/fleetops/lock/www-data/fleetops-n@www-data.lock " \
        in text


def test_watcher_unit_refuses_a_newline_that_would_add_a_directive():
    unit = render("fleetops-watcher.service.j2", name="w", zipapp="/z.pyz", python="/opt/py 3")
    assert 'ExecStart="/opt/py 3" "/z.pyz" watcher run' in unit
    for variables in ({"description": "ok\nExecStartPre=/bin/touch /tmp/x"},
                      {"name": "w\nExecStartPre=/bin/id"}, {"user": "root\nGroup=x"}):
        with pytest.raises(UnsafeValue):
            render("fleetops-watcher.service.j2", **{"name": "w", "zipapp": "/z.pyz", **variables})
