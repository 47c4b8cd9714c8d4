"""Per-host results and the aggregated run result (one per task run)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from fleetops.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE

Status = Literal["ok", "changed", "failed", "unreachable", "skipped"]
STATUSES: tuple[Status, ...] = ("ok", "changed", "failed", "unreachable", "skipped")


@dataclass(slots=True)
class HostResult:
    """Exactly one per host and run. ``extra`` keys are merged into the host's JSON entry."""

    name: str
    status: Status
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "unreachable")

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            status=self.status,
            rc=self.rc,
            stdout=self.stdout,
            stderr=self.stderr,
            duration=round(self.duration, 3),
            reason=self.reason,
        )
        return doc


@dataclass(slots=True)
class RunResult:
    """All host results of one run, in inventory order."""

    hosts: dict[str, HostResult] = field(default_factory=dict)
    interrupted: bool = False
    elapsed: float = 0.0

    def add(self, result: HostResult) -> None:
        self.hosts[result.name] = result

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for result in self.hosts.values():
            counts[result.status] += 1
        return counts

    def names(self, *statuses: Status) -> list[str]:
        return [n for n, r in self.hosts.items() if r.status in statuses]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        summary = self.summary
        if summary["failed"]:
            return EXIT_FAILED
        if summary["unreachable"]:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def to_json(self, **top: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "hosts": {name: r.to_json() for name, r in self.hosts.items()},
            "summary": self.summary,
        }
        doc.update(top)
        return doc

    def dumps(self, **top: Any) -> str:
        return json.dumps(self.to_json(**top), indent=2, sort_keys=False, default=str)
