"""One host's disk data, typed: the ``diskreport`` program's ``data`` document, converted once.

The document is checked on arrival against ``fleetops/ship/schemas.py``'s ``DISKREPORT``
schema (``ship.run.classify``, or the df fallback's own check); :func:`host_disk` then
turns it into frozen dataclasses, once per host and run, and nothing downstream edits it.
Field names and units are the program's (README "Disk report on a host"): sizes in
bytes, percentages as df computes them (``ceil(used * 100 / (used + avail))``), ``level``
one of ``ok``/``unknown``/``warn``/``crit`` (None when the program did not classify).

The conversion is lenient on purpose (callers and tests also feed hand-made documents):
a mount that is not an object is dropped, a missing field is None; a document without a
``mounts`` list is "no disk data" (:func:`host_disk` returns None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Number = int | float


@dataclass(frozen=True, slots=True)
class DiskMount:
    """One filesystem as the program measured it (``data.mounts[i]``)."""

    mountpoint: str | None
    device: str | None = None
    fstype: str | None = None
    size_bytes: int | None = None
    used_bytes: int | None = None
    avail_bytes: int | None = None
    use_pct: Number | None = None
    inodes_total: int | None = None
    inodes_used: int | None = None
    inodes_pct: Number | None = None
    level: str | None = None
    over: tuple[str, ...] = ()
    error: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style read (``over`` as a list), for code written for the document."""
        value = getattr(self, key, default)
        return list(value) if key == "over" else value


@dataclass(frozen=True, slots=True)
class SkippedMount:
    """A mount the program left out on purpose (``data.skipped[i]``)."""

    mountpoint: str | None
    fstype: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class HostDisk:
    """A host's whole disk document. ``source``: ``"program"`` or ``"df"`` (the
    fallback for hosts without python3, :mod:`fleetops.jobs.disk.fallback`)."""

    mounts: tuple[DiskMount, ...]
    over: tuple[str, ...] = ()
    worst_level: str | None = None
    skipped: tuple[SkippedMount, ...] = ()
    source: str | None = None
    hostname: str | None = None
    generated: str | None = None
    saved_report: str | None = None


MOUNT_FIELDS = tuple(f for f in DiskMount.__slots__)  # type: ignore[attr-defined]


def _mount(doc: Mapping[str, Any]) -> DiskMount:
    values = {key: doc.get(key) for key in MOUNT_FIELDS}
    values["over"] = tuple(values["over"] or ())
    return DiskMount(**values)


def host_disk(data: Mapping[str, Any] | None) -> HostDisk | None:
    """The typed form of one ``diskreport`` data document; None without a mounts list."""
    if not isinstance(data, Mapping) or not isinstance(data.get("mounts"), list):
        return None
    skipped = data.get("skipped") if isinstance(data.get("skipped"), list) else ()
    return HostDisk(
        mounts=tuple(_mount(m) for m in data["mounts"] if isinstance(m, Mapping)),
        over=tuple(data.get("over") or ()), worst_level=data.get("worst_level"),
        skipped=tuple(SkippedMount(s.get("mountpoint"), s.get("fstype"), s.get("reason"))
                      for s in skipped if isinstance(s, Mapping)),
        source=data.get("source"), hostname=data.get("hostname"),
        generated=data.get("generated"), saved_report=data.get("saved_report"))
