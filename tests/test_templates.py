"""Shipped templates render to files the real tools accept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2
import pytest

from ops import _crontab

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def render(name: str, **context) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(name).render(**context)


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
