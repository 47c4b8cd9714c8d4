"""Schedule the disk report on hosts: stable zipapp, 0600 mail settings, a cron.d entry.

Each host gets, over its one connection:
1. the zipapp at ``ZIPAPP_PATH`` (0644, root), installed by the ``files`` program from stdin;
2. with ``--email``, the SMTP settings at ``MAIL_CONFIG`` (0600), also via stdin (a password
   never appears in argv, output or logs);
3. the cron.d entry ``CRON_NAME`` running ``python3 ZIPAPP_PATH diskreport ...``.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetops.core.runner import Session
from fleetops.results import HostResult, ProgramData
from fleetops.ship.run import run_program
from fleetops.ship.zipapp import Zipapp

ZIPAPP_PATH = "/usr/local/lib/fleetops/fleetops.pyz"
MAIL_CONFIG = "/etc/fleetops/disk-report-mail.conf"
CRON_NAME = "fleetops-disk-report"


@dataclass(slots=True)
class Schedule:
    when: str
    report_args: list[str]
    email: list[str] = field(default_factory=list)
    mail_config: bytes | None = None
    check: bool = False


def mail_config_text(path: str | None, env: dict[str, str]) -> bytes:
    """The INI the host's ``diskreport --mail-config`` reads: the control's settings file
    merged with ``FLEETOPS_SMTP_*`` (checked first: a bad or world-readable file is refused)."""
    from ops._mail import load_settings, load_values

    load_settings(path, env)
    values = load_values(path, env)
    parser = configparser.ConfigParser(interpolation=None)
    parser["smtp"] = {k: str(v) for k, v in values.items() if v not in (None, "")}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().encode()


def cron_job(schedule: Schedule) -> str:
    argv = ["python3", ZIPAPP_PATH, "diskreport", *schedule.report_args]
    for address in schedule.email:
        argv += ["--email", address]
    if schedule.email:
        argv += ["--mail-config", MAIL_CONFIG]
    return " ".join(shlex.quote(a) for a in argv)


def _install_file(session: Session, app: Zipapp, dest: str, data: bytes, mode: str,
                  check: bool, secret: bool = False) -> HostResult:
    """Install ``data`` at ``dest`` with the files program (content on stdin; the size
    and digest it checks travel parsed on stdin too, never in argv). ``secret``: the
    result keeps no derived trace of the content (see :func:`_redacted`)."""
    digest = hashlib.sha256(data).hexdigest()
    argv = ["--dest", dest, "--size", str(len(data)), "--sha256", digest, "--mode", mode,
            "--owner", "root", "--parents"]
    if check:
        argv.append("--check")
    result = run_program(session, "files", argv, app, stdin=data)
    return _redacted(result, len(data), digest) if secret else result


SECRET_FILE_KEYS = ("path", "existed", "content_changed", "mode", "mode_before", "check",
                    "backup", "created_dir")


def _redacted(result: HostResult, size: int, digest: str) -> HostResult:
    """A secret file's install result without its hash, size or content: the program's
    data is cut to ``SECRET_FILE_KEYS``, its raw output dropped, and a reason that
    names the size or the digest (or a prefix of it) has them replaced."""
    data = result.data or {}
    result.data = ProgramData.from_json({k: data[k] for k in SECRET_FILE_KEYS if k in data})
    result.extra, result.uploaded_bytes = {}, None
    result.stdout = result.stderr = ""
    if result.reason:
        reason = result.reason.replace(digest, "[redacted]").replace(digest[:12], "[redacted]")
        result.reason = re.sub(rf"(?<![\w.]){size}(?![\w.])", "[redacted]", reason)
    return result


def schedule_host(session: Session, app: Zipapp, schedule: Schedule) -> HostResult:
    steps = [lambda: _install_file(session, app, ZIPAPP_PATH, app.data, "0644", schedule.check)]
    if schedule.email and schedule.mail_config is not None:
        steps.append(lambda: _install_file(session, app, MAIL_CONFIG, schedule.mail_config,
                                           "0600", schedule.check, secret=True))
    cron_argv = ["install", "--name", CRON_NAME, "--target", "cron.d", "--user", "root",
                 "--schedule", schedule.when, "--job", cron_job(schedule)]
    if schedule.check:
        cron_argv.append("--check")
    steps.append(lambda: run_program(session, "cron", cron_argv, app))
    return _combine(session.host.name, steps, stop_on_failure=True)


def unschedule_host(session: Session, app: Zipapp, check: bool) -> HostResult:
    cron_argv = ["remove", "--name", CRON_NAME, "--target", "cron.d"]
    if check:
        cron_argv.append("--check")
    paths = " ".join(shlex.quote(p) for p in (ZIPAPP_PATH, MAIL_CONFIG))
    action = "echo" if check else "rm -f"
    remove = (f'for f in {paths}; do if [ -e "$f" ]; then {action} "$f" >/dev/null && '
              f'echo "$f"; fi; done')

    def remove_files() -> HostResult:
        done = session.exec(remove)
        removed = done.stdout.decode("utf-8", "surrogateescape").split()
        status = "failed" if done.rc else ("changed" if removed else "ok")
        return HostResult(session.host.name, status, done.rc, reason=None if not done.rc else
                          done.stderr.decode("utf-8", "surrogateescape").strip(),
                          extra={"data": {"removed": removed}})

    return _combine(session.host.name, [lambda: run_program(session, "cron", cron_argv, app),
                                        remove_files], stop_on_failure=False)


def _combine(name: str, steps: Sequence, stop_on_failure: bool) -> HostResult:
    """Run the steps; the host's result is the worst of them, data listed per step."""
    results: list[HostResult] = []
    for step in steps:
        result = step()
        results.append(result)
        if result.status == "failed" and stop_on_failure:
            break
    statuses = [r.status for r in results]
    status = ("failed" if "failed" in statuses else
              "changed" if "changed" in statuses else "ok")
    failed = next((r for r in results if r.status == "failed"), None)
    return HostResult(
        name, status, failed.rc if failed else 0,
        reason=failed.reason if failed else None,
        extra={"steps": [{"status": r.status, "reason": r.reason,
                          "data": None if r.data is None else r.data.to_json()}
                         for r in results]})
