"""The one place that prints run output: live progress, per-host lines, recap."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from fleetops.results import HostResult, RunResult
from fleetops.sanitize import clean, lines

_COLORS = {"ok": "32", "changed": "33", "failed": "31", "unreachable": "31;1", "skipped": "36"}


def _paint(text: str, status: str, color: bool) -> str:
    return f"\x1b[{_COLORS[status]}m{text}\x1b[0m" if color else text


class Printer:
    """Prints finished hosts whole (never interleaved mid-line) plus a live progress line."""

    def __init__(self, total: int, out: TextIO | None = None, err: TextIO | None = None,
                 show_output: bool = True) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.show_output = show_output
        self.color = self.out.isatty()
        self.live = self.err.isatty()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._progress_shown = False
        self._last_tick = 0.0

    def host(self, result: HostResult, run: RunResult) -> None:
        with self._lock:
            self._clear_progress()
            if self.show_output:
                self.out.write(format_host(result, self.color))
                self.out.flush()
            self._progress(run)

    def tick(self, run: RunResult) -> None:
        """Refresh the live line while hosts are still running (elapsed time moves)."""
        if self.live and time.monotonic() - self._last_tick >= 0.5:
            with self._lock:
                self._clear_progress()
                self._progress(run)

    def _progress(self, run: RunResult) -> None:
        if not self.live:
            return
        summary = run.summary
        bad = summary["failed"] + summary["unreachable"]
        line = (f"[{len(run.hosts)}/{self.total}] failed={bad} "
                f"elapsed={time.monotonic() - self.started:.1f}s")
        self.err.write("\r" + line)
        self.err.flush()
        self._progress_shown = True
        self._last_tick = time.monotonic()

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.err.write("\r\x1b[K")
            self._progress_shown = False

    def recap_clear(self) -> None:
        with self._lock:
            self._clear_progress()

    def recap(self, run: RunResult, retry_file: str | None = None) -> None:
        with self._lock:
            self._clear_progress()
        self.out.write(format_recap(run, self.color, retry_file))
        self.out.flush()


def format_host(result: HostResult, color: bool = False) -> str:
    """``name | STATUS | rc=N | reason`` then one ``name | line`` per output line.

    Host text is escaped (:mod:`fleetops.sanitize`): a host cannot move the cursor,
    recolour, retitle, or start a line that is not prefixed with its own name."""
    name = clean(result.name)
    head = f"{name} | {result.status.upper()}"
    if result.rc is not None:
        head += f" | rc={result.rc}"
    if result.reason and (result.status != "ok" or result.truncated):
        head += f" | {clean(result.reason)}"
    out = [_paint(head, result.status, color)]
    for stream, text in (("", result.stdout), ("stderr: ", result.stderr)):
        for line in lines(text):
            out.append(f"{name} | {stream}{line}")
    return "\n".join(out) + "\n"


def format_recap(run: RunResult, color: bool = False, retry_file: str | None = None) -> str:
    names = {name: clean(name) for name in run.hosts}
    width = max((len(n) for n in names.values()), default=4)
    out = ["", "RECAP " + "*" * 60]
    for name, result in run.hosts.items():
        counts = " ".join(
            f"{status}={int(result.status == status)}"
            for status in ("ok", "changed", "unreachable", "failed", "skipped")
        )
        out.append(f"{_paint(names[name].ljust(width), result.status, color)} : {counts}")
    summary = run.summary
    total = " ".join(f"{k}={v}" for k, v in summary.items())
    out.append(f"{len(run.hosts)} hosts in {run.elapsed:.2f}s: {total}")
    cut = truncated_note(run)
    if cut:
        out.append(cut)
    if run.interrupted:
        out.append("interrupted: results above are what finished before Ctrl-C")
    if retry_file:
        out.append(f"retry failed/unreachable hosts with: --limit @{clean(retry_file)}")
    return "\n".join(out) + "\n"


def truncated_note(run: RunResult) -> str | None:
    """One recap line naming the hosts whose output went over ``--max-output``."""
    cut = [f"{clean(name)} ({', '.join(r.truncated)})"
           for name, r in run.hosts.items() if r.truncated]
    if not cut:
        return None
    return "output cut at --max-output (the rest was read and discarded): " + ", ".join(cut)
