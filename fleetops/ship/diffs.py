"""What a program changed, as a diff fit to show: secrets masked, size capped.

A program that changes files reports a unified diff (Ansible's ``--diff``: ``---``
before / ``+++`` after headers, then hunks): ``ops/files`` (content, and a ``mode:``
line), ``ops/cron`` (the crontab or cron file before/after); ``ops/dirsync`` reports
rsync's itemized changes, rendered here as ``+path`` / ``-path`` / ``~path`` lines
(:func:`sync_diff`). The host already turns binary or large content into one line
(``binary or large content differs: ...``); :func:`shown` then:

- masks every secret value the control machine knows (vault values, as Ansible's
  ``no_log`` masks them): each line of a secret is replaced by ``********``; when a
  secret was found, every removed line is masked whole too (the old value may be a
  secret the control machine no longer knows), and a secret line shorter than
  :data:`MIN_SECRET` characters hides the whole diff (masking it would garble the rest);
- replaces a diff over :data:`MAX_DIFF_CHARS` by one line saying its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fleetops.results import human_bytes

MASK = "********"
MIN_SECRET = 4
MAX_DIFF_CHARS = 256 * 1024
MAX_SYNC_LINES = 1000
HIDDEN = "diff hidden: it would show a secret value\n"

__all__ = ["HIDDEN", "MASK", "MAX_DIFF_CHARS", "mask_secrets", "shown", "sync_diff"]


def _pieces(secrets: Iterable[str]) -> list[str]:
    """Each secret's non-blank lines (stripped), longest first."""
    found = {line.strip() for secret in secrets if secret
             for line in secret.splitlines() if line.strip()}
    return sorted(found, key=len, reverse=True)


def mask_secrets(diff: str, secrets: Iterable[str]) -> str:
    """``diff`` with every secret value masked (see the module docstring)."""
    hit = False
    for piece in _pieces(secrets):
        if piece not in diff:
            continue
        if len(piece) < MIN_SECRET:
            return HIDDEN
        diff, hit = diff.replace(piece, MASK), True
    if not hit:
        return diff
    lines = diff.splitlines(True)
    for index, line in enumerate(lines):
        header = line.startswith("--- ") and index + 1 < len(lines) and \
            lines[index + 1].startswith("+++ ")
        if line.startswith("-") and not header:
            lines[index] = f"-{MASK}\n"
    return "".join(lines)


def cap(diff: str, limit: int = MAX_DIFF_CHARS) -> str:
    """``diff``, or one line when it is over ``limit`` characters."""
    if len(diff) <= limit:
        return diff
    lines = diff.count("\n")
    return (f"diff not shown: {lines} lines, {human_bytes(len(diff.encode('utf-8', 'replace')))}"
            f" (over the {human_bytes(limit)} cap)\n")


def shown(diff: str | None, secrets: Iterable[str] = ()) -> str | None:
    """The diff fit to show and store: secrets masked, then capped (None stays None)."""
    if not diff:
        return diff
    return cap(mask_secrets(diff, secrets))


def sync_diff(target: str | None, items: Sequence[Mapping[str, Any]], total: int | None = None,
              limit: int = MAX_SYNC_LINES) -> str:
    """rsync ``--itemize-changes`` items as a diff of the target tree: ``+path``
    created, ``-path`` deleted, ``~path`` content or attributes changed; at most
    ``limit`` lines, then one line counting the rest ("" when nothing changed)."""
    lines = []
    for item in items[:limit]:
        code, path = str(item.get("i") or ""), str(item.get("path") or "")
        if code.startswith("*deleting"):
            lines.append(f"-{path}\n")
        elif code[2:].startswith("+++++++"):
            lines.append(f"+{path}\n")
        else:
            lines.append(f"~{path}\n")
    if not lines:
        return ""
    more = max(total or 0, len(items)) - len(lines)
    if more > 0:
        lines.append(f"... {more} more changes not shown\n")
    label = target or "target"
    return f"--- before: {label}\n+++ after: {label}\n" + "".join(lines)
