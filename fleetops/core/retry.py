"""The retry file of a run: its failed and unreachable hosts, for ``--limit @path``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from fleetops.errors import FleetopsError
from fleetops.results import RunResult


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def write_retry(run: RunResult, path: str | None,
                warn: Callable[[str], None] = _stderr) -> str | None:
    """Failed and unreachable hosts, one per line after a ``#`` header, for ``--limit @path``.

    Written by :mod:`fleetops.safefile`'s rule. With nothing to retry, only a regular
    file of ours that starts with the header is removed. A file that cannot be written
    is one ``warn(message)`` (default: a line on stderr), so the run's output and exit
    code are not lost. Returns the path written, else None.
    """
    from fleetops import safefile

    if not path:
        return None
    names = run.names("failed", "unreachable")
    try:
        if not names:
            safefile.remove_retry_file(path)
            return None
        safefile.write_text(path, safefile.RETRY_HEADER + "\n".join(names) + "\n")
    except (OSError, FleetopsError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warn(f"fleetops: retry file {path} not written: {detail}")
        return None
    return path
