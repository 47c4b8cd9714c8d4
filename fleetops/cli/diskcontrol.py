"""``invoke disk-report.schedule|unschedule --on control``: the fleet report's crontab
entry on the control machine (see :mod:`fleetops.jobs.disk.schedule_control`)."""

from __future__ import annotations

import sys
from pathlib import Path

from fleetops.errors import OptionError


def schedule_control(inventory, pattern, limit, when, report_args, email, mail_config,
                      email_when, user, history, check, diff, as_json) -> None:
    """``--on control``: one crontab entry on this machine running the fleet report."""
    from fleetops.jobs.disk import schedule_control as dc

    if not inventory:
        raise OptionError("--on control needs -i INVENTORY (the cron job reads it)")
    if not Path(inventory).is_file():
        raise OptionError(f"--inventory {inventory}: no such file")
    if email_when != "always":
        raise OptionError("--email-when is for --on hosts: the control report mails always")
    if email and not mail_config:
        raise OptionError("--on control with --email needs --mail-config FILE "
                          "(cron does not see this shell's FLEETOPS_SMTP_* variables)")
    if mail_config:
        from ops._mail import MailError, load_settings

        try:
            load_settings(mail_config)
        except MailError as exc:
            raise OptionError(f"mail settings: {exc}") from None

    def work(name: str):
        state = dc.user_data_dir(name)
        command = dc.report_command(inventory, pattern, limit, report_args, email or [],
                                    mail_config, history or str(state / "disk-history.sqlite"),
                                    state)
        return dc.install(name, when, command, check)

    control_step(work, user, check, diff, as_json)


def control_step(work, user, check: bool, diff: bool, as_json: bool) -> None:
    """Run one crontab change on this machine; print it like a host result; exit 0
    (ok/changed) or 2 (failed)."""
    import json as jsonlib

    from fleetops.jobs.disk import schedule_control as dc
    from ops._contract import ProgramError
    from ops._crontab import CronError

    try:
        name = dc.check_user(user)
        result = work(name)
    except CronError as exc:
        raise OptionError(str(exc)) from None
    except ProgramError as exc:
        print(f"control | FAILED | {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    status = "changed" if result.changed else "ok"
    if as_json:
        print(jsonlib.dumps({"control": {"status": status, "action": result.action,
                                         "user": result.user, "check": check,
                                         "diff": result.diff}}, indent=2))
    else:
        print(f"control | {status.upper()} | {result.action} crontab:{result.user}"
              + (" (check)" if check else ""))
        if diff or check:
            sys.stdout.write(result.diff)
