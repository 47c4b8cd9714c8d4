"""Each program's typed data (:class:`fleetops.results.ProgramData` subclasses).

One class per ``ops/`` program, its fields named and ordered as the program writes its
``data`` object (the keys :mod:`fleetops.ship.schemas` checks); registered by program
name so :func:`fleetops.ship.run.classify` builds it once from the checked document.
A key a program adds later still round-trips (kept untyped, in its place). The disk
report job (``fleetops/jobs/disk/``) builds its fleet report from :class:`DiskreportData`
as built here (the df fallback builds the same class): it has no copy of these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleetops.results import ProgramData, program_data
from fleetops.ship.diffs import sync_diff

__all__ = ["ArpEntry", "ArpscanData", "CronData", "CronEntry", "DirsyncData", "DiskreportData",
           "FilesData", "LifecycleData", "Mount", "SkippedMount", "SweepAlive", "SweepData",
           "SweepError", "SyncItem"]

record = dataclass(frozen=True, slots=True, kw_only=True, eq=False)


@record
class Mount(ProgramData):
    """One filesystem of ``ops/diskreport`` (``data.mounts[i]``; README "Disk report on a
    host"): sizes in bytes, percentages as df computes them (``ceil(used * 100 / (used +
    avail))``), ``level`` one of ``ok``/``unknown``/``warn``/``crit`` (None: not
    classified, the control side judges it), ``over`` the limits crossed
    (``space_warn``...), ``dev`` the ``st_dev`` bind mounts were merged by."""

    mountpoint: str | None = None
    device: str | None = None
    fstype: str | None = None
    size_bytes: int | None = None
    used_bytes: int | None = None
    avail_bytes: int | None = None
    use_pct: float | None = None
    inodes_total: int | None = None
    inodes_used: int | None = None
    inodes_pct: float | None = None
    level: str | None = None
    over: list[str] | None = None
    error: str | None = None
    dev: int | None = None


@record
class SkippedMount(ProgramData):
    """A mount the program left out on purpose (``data.skipped[i]``) and why."""

    mountpoint: str | None = None
    fstype: str | None = None
    reason: str | None = None


@program_data("diskreport")
@record
class DiskreportData(ProgramData):
    """``ops/diskreport``: space and inode use of every filesystem, levels and limits.
    ``source``: ``"df"`` when the control side's ``df -P`` fallback
    (:mod:`fleetops.jobs.disk.fallback`) measured a host without python3, else absent."""

    NESTED = {"mounts": Mount, "skipped": SkippedMount}
    hostname: str | None = None
    generated: str | None = None
    mounts: tuple[Mount, ...] | None = None
    over: list[str] | None = None
    worst_level: str | None = None
    thresholds: dict[str, Any] | None = None
    skipped: tuple[SkippedMount, ...] | None = None
    saved_report: str | None = None
    source: str | None = None


@program_data("files")
@record
class FilesData(ProgramData):
    """``ops/files``: one file installed (content, mode, owner), ``diff`` with --diff."""

    path: str | None = None
    existed: bool | None = None
    content_changed: bool | None = None
    mode: str | None = None
    mode_before: str | None = None
    size: int | None = None
    sha256: str | None = None
    check: bool | None = None
    backup: str | None = None
    created_dir: str | None = None
    diff: str | None = None

    def diff_text(self) -> str | None:
        """The content's unified diff (and a ``mode:`` line), asked for with ``--diff``."""
        return self.diff


@record
class CronEntry(ProgramData):
    """One cron entry as ``ops/cron list`` reports it."""

    target: str | None = None
    path: str | None = None
    name: str | None = None
    managed_by: str | None = None
    foreign: bool | None = None
    schedule: str | None = None
    user: str | None = None
    command: str | None = None
    disabled: bool | None = None
    ignored: str | None = None


@program_data("cron")
@record
class CronData(ProgramData):
    """``ops/cron``: install/remove (``action``, ``diff``: the crontab before/after) or list."""

    NESTED = {"entries": CronEntry}
    target: str | None = None
    name: str | None = None
    path: str | None = None
    action: str | None = None
    diff: str | None = None
    backup: str | None = None
    user: str | None = None
    entries: tuple[CronEntry, ...] | None = None

    def diff_text(self) -> str | None:
        """The crontab (or cron file) before/after, as a unified diff."""
        return self.diff


@program_data("watcher")
@record
class LifecycleData(ProgramData):
    """A daemon's start/stop/status/logs answer (``ops/_lifecycle``)."""

    name: str | None = None
    state_dir: str | None = None
    running: bool | None = None
    pid: int | None = None
    stale_pid: int | None = None
    uptime_s: float | None = None
    stopped_in_s: float | None = None
    mode: str | None = None
    already_running: bool | None = None
    warning: str | None = None
    note: str | None = None
    args: tuple[str, ...] | list[str] | None = None
    lines: int | None = None
    last_event: dict[str, Any] | None = None
    logs: dict[str, Any] | None = None
    stdout: list[str] | None = None
    stderr: list[str] | None = None


@record
class SyncItem(ProgramData):
    """One line of ``rsync --itemize-changes``: ``i`` the 11-character code, ``path``."""

    i: str | None = None
    path: str | None = None


@program_data("dirsync")
@record
class DirsyncData(LifecycleData):
    """``ops/dirsync``: the lifecycle answers, and a ``run``'s one sync record."""

    NESTED = {"items": SyncItem}
    kind: str | None = None
    source: str | None = None
    target: str | None = None
    would_delete: dict[str, int] | None = None
    result: str | None = None
    ok: bool | None = None
    rc: int | None = None
    msg: str | None = None
    counts: dict[str, int] | None = None
    items: tuple[SyncItem, ...] | None = None
    items_total: int | None = None
    messages: list[str] | None = None
    argv: list[str] | None = None
    duration_s: float | None = None

    def diff_text(self) -> str | None:
        """A sync's changes to the target tree (:func:`fleetops.ship.diffs.sync_diff`)."""
        if self.items is None:
            return None
        return sync_diff(self.target, self.items, self.items_total) or None


@record
class SweepAlive(ProgramData):
    ip: str | None = None
    rtt_ms: float | None = None


@record
class SweepError(ProgramData):
    ip: str | None = None
    error: str | None = None


@program_data("sweep")
@record
class SweepData(ProgramData):
    """``ops/sweep``: which targets answered (ICMP echo or TCP) and which did not."""

    NESTED = {"alive": SweepAlive, "errors": SweepError}
    backend: str | None = None
    mode: str | None = None
    targets: int | None = None
    alive: tuple[SweepAlive, ...] | None = None
    no_reply: list[str] | None = None
    errors: tuple[SweepError, ...] | None = None
    elapsed_s: float | None = None
    ports: list[int] | None = None


@record
class ArpEntry(ProgramData):
    ip: str | None = None
    mac: str | None = None


@program_data("arpscan")
@record
class ArpscanData(ProgramData):
    """``ops/arpscan``: IP -> MAC of the neighbours that answered."""

    NESTED = {"entries": ArpEntry}
    method: str | None = None
    targets: int | None = None
    entries: tuple[ArpEntry, ...] | None = None
    no_reply: list[str] | None = None
    not_on_link: list[str] | None = None
    interfaces: list[str] | None = None
    elapsed_s: float | None = None
