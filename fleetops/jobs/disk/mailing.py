"""Mail the fleet disk report once; when that fails, keep it in a private spool.

README "Results and exit codes": exit 6 means the mail could not be sent and the report
is saved under ``reports/`` (0600 files in a 0700 directory). Nothing here prints: the
outcome (:class:`MailOutcome`) says what happened and :meth:`MailOutcome.line` is the one
line for the operator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fleetops.errors import FleetopsError
from fleetops.jobs.disk.model import FleetDiskReport

if TYPE_CHECKING:
    from ops._mail import MailSettings

DEFAULT_SPOOL = "reports"


@dataclass(frozen=True, slots=True)
class MailOutcome:
    """``message_id`` when sent; else ``error`` (the SMTP or settings error) and either
    ``saved`` (the spooled text report; the HTML one is beside it) or ``save_error``."""

    to: tuple[str, ...]
    message_id: str | None = None
    error: str | None = None
    saved: Path | None = None
    save_error: str | None = None

    @property
    def sent(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """The operator's line (host-supplied text escaped, fleetops.sanitize)."""
        from fleetops.sanitize import clean

        to = ", ".join(self.to)
        if self.sent:
            return f"report mailed to {to} ({self.message_id})"
        error = clean(self.error or "")
        if self.saved is None:
            return f"fleetops: mail to {to} failed: {error}; report not saved: {self.save_error}"
        return f"fleetops: mail to {to} failed: {error}; report saved in {self.saved}"


def mail_report(report: FleetDiskReport, to: Sequence[str], settings: MailSettings | None,
                spool_dir: str | Path = DEFAULT_SPOOL) -> MailOutcome:
    """Send ``report`` (text + HTML) once to ``to``; on ``MailError`` spool it under
    ``spool_dir`` (:func:`save_unsent`). Never raises for a mail or spool failure."""
    from fleetops.jobs.disk import report as dr
    from ops._mail import MailError

    to = tuple(to)
    try:
        message_id = dr.send_report_email(report, to, settings)
    except MailError as exc:
        try:
            saved = save_unsent(dr.render_text(report), dr.render_html(report), spool_dir)
        except (OSError, FleetopsError) as err:
            return MailOutcome(to, error=str(exc), save_error=str(err))
        return MailOutcome(to, error=str(exc), saved=saved)
    return MailOutcome(to, message_id=message_id)


def save_unsent(text: str, html: str, spool_dir: str | Path = DEFAULT_SPOOL) -> Path:
    """Spool the unsent report under ``spool_dir`` (a private 0700 directory), files 0600
    created ``O_EXCL|O_NOFOLLOW`` (never through a planted symlink), text lossless.

    Returns the ``.txt`` path; OSError or ``safefile.UnsafePath`` when it cannot."""
    from fleetops import safefile

    spool = Path(safefile.spool_dir(str(spool_dir)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        base = f"disk-report-{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            safefile.create_new(spool / f"{base}.txt", safefile.encode_text(text))
        except FileExistsError:
            continue
        safefile.create_new(spool / f"{base}.html", safefile.encode_text(html))
        return spool / f"{base}.txt"
    raise OSError(f"{spool}: no free report name")
