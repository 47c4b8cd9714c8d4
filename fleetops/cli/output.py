"""The one place that prints run output: the reporters of :mod:`fleetops.core.events`.

- :class:`Printer`: text. Per-host lines as hosts finish (whole, never interleaved
  mid-line; ``line=`` gives a task its own lines), a live progress line on stderr when
  stderr is a terminal (``progress=False``: none), the recap (``recap=False``: none).
- :class:`PlayPrinter`: ``invoke play``'s text: play and task headers, a line per host
  and task (diffs with ``--diff``), the network inventory, a recap counting tasks.
- :class:`JsonReporter`: silent until ``run_finished``, then one JSON document
  (``hosts``, ``summary``, then the task's own fields).
- :func:`renders` / :func:`render`: the ``--format`` registry. A task registers, per
  type of typed report, one ``func(report) -> str`` per format name; a reporter's
  ``document(report, fmt)`` writes ``render(report, fmt)``.
- :func:`finish`: the end of every task: retry file, ``run_finished``, exit code.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from fleetops.core.events import SILENT, Reporter
from fleetops.results import HostResult, RunResult
from fleetops.sanitize import clean, lines

_COLORS = {"ok": "32", "changed": "33", "failed": "31", "unreachable": "31;1", "skipped": "36"}
STATUSES = ("ok", "changed", "unreachable", "failed", "skipped")

Render = Callable[[Any], str]
_FORMATS: dict[type, dict[str, Render]] = {}


def _paint(text: str, status: str, color: bool) -> str:
    return f"\x1b[{_COLORS[status]}m{text}\x1b[0m" if color else text


def renders(kind: type, *formats: str) -> Callable[[Render], Render]:
    """Decorator: ``func(report) -> str`` renders reports of type ``kind`` (or a
    subclass) in each of ``formats``; a later registration of a format wins."""
    def register(func: Render) -> Render:
        for fmt in formats:
            _FORMATS.setdefault(kind, {})[fmt] = func
        return func
    return register


def formats(kind: type) -> tuple[str, ...]:
    """The format names registered for ``kind``, in registration order."""
    for cls in kind.__mro__:
        if cls in _FORMATS:
            return tuple(_FORMATS[cls])
    return ()


def render(report: Any, fmt: str) -> str:
    """``report`` in format ``fmt``; OptionError (exit 5) for a format not registered."""
    from fleetops.errors import OptionError

    for cls in type(report).__mro__:
        table = _FORMATS.get(cls)
        if table is not None:
            if fmt not in table:
                raise OptionError(f"--format must be one of {', '.join(table)}, not {fmt!r}")
            return table[fmt](report)
    raise TypeError(f"no --format renderer for {type(report).__name__}")


class Printer(Reporter):
    """Text: finished hosts whole (never interleaved mid-line), a live progress line, recap.

    ``line(result, color) -> str``: a host's lines (default :func:`format_host`);
    ``show_output=False``: no host lines; ``progress=False``: never a progress line;
    ``recap=False``: ``run_finished`` prints nothing."""

    def __init__(self, total: int, out: TextIO | None = None, err: TextIO | None = None,
                 show_output: bool = True, line: Callable[[HostResult, bool], str] | None = None,
                 progress: bool = True, recap: bool = True) -> None:
        self.total = total
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.show_output = show_output
        self.line = line or format_host
        self.show_recap = recap
        self.color = self.out.isatty()
        self.live = progress and self.err.isatty()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._progress_shown = False
        self._last_tick = 0.0

    def run_started(self, total: int) -> None:
        self.total = total

    def host_finished(self, result: HostResult, run: RunResult) -> None:
        self.host(result, run)

    def host(self, result: HostResult, run: RunResult) -> None:
        with self._lock:
            self._clear_progress()
            if self.show_output:
                self.out.write(self.line(result, self.color))
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

    def document(self, report: Any, fmt: str) -> None:
        self.recap_clear()
        self.out.write(render(report, fmt))
        self.out.flush()

    def notice(self, text: str) -> None:
        with self._lock:
            self._clear_progress()
            self.err.write(text + "\n")
            self.err.flush()

    def run_finished(self, run: RunResult, retry_file: str | None = None,
                     **fields: Any) -> None:
        if self.show_recap:
            self.recap(run, retry_file)

    def recap(self, run: RunResult, retry_file: str | None = None) -> None:
        with self._lock:
            self._clear_progress()
        self.out.write(format_recap(run, self.color, retry_file))
        self.out.flush()


class JsonReporter(Reporter):
    """``--json``: nothing while hosts run, then the run's document and a newline."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def run_finished(self, run: RunResult, retry_file: str | None = None,
                     **fields: Any) -> None:
        run.write_json(self.out, **fields)
        self.out.write("\n")
        self.out.flush()


class PlayPrinter(Reporter):
    """``invoke play``'s text: headers, one line per host and task, diffs, network, recap."""

    def __init__(self, show_diff: bool, check: bool, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.show_diff = show_diff
        self.check = check
        self.color = self.out.isatty()

    def _paint(self, text: str, status: str) -> str:
        return _paint(text, status, self.color)

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def play_started(self, play: Any, hosts: list[Any]) -> None:
        mode = " (check mode)" if self.check else ""
        line = f"\nPLAY [{play.name}]{mode} " + "*" * 40 + "\n"
        if not hosts:
            line += "skipping: no hosts matched\n"
        self._write(line)

    def task_started(self, task: Any) -> None:
        head = "RUNNING HANDLER" if getattr(task, "handler", False) else "TASK"
        self._write(f"\n{head} [{task.name}] " + "*" * 40 + "\n")

    def task_host(self, host: str, record: Any) -> None:
        detail = record.reason if record.status in ("failed", "unreachable", "skipped") \
            else record.summary
        host = clean(host)
        line = f"{host} | {record.status.upper()}" + (f" | {clean(detail)}" if detail else "")
        out = [self._paint(line, record.status)]
        if self.show_diff and record.diff:
            out += [f"{host} |   {text}" for text in lines(record.diff)]
        self._write("\n".join(out) + "\n")

    def play_stopped(self, reason: str) -> None:
        self._write(self._paint(f"\nPLAY STOPPED: {clean(reason)}", "failed") + "\n")

    def network(self, network: dict[str, Any] | None) -> None:
        """The addresses of the network map (:mod:`fleetops.jobs.scan`) that answered
        or have a MAC: best rtt, MACs, how many hosts saw it and how many ARP'd it."""
        rows = [entry for entry in (network or {}).get("addresses", ())
                if entry["state"] != "no-reply"]
        if not rows:
            return
        out = ["", "NETWORK INVENTORY " + "*" * 40]
        for entry in rows:
            best = entry["seen_by"][0]["rtt_ms"] if entry["seen_by"] else None
            rtt = "-" if best is None else f"{best:.3f}ms"
            macs = ",".join(m["mac"] for m in entry["macs"]) or "-"
            arp_by = {host for m in entry["macs"] for host in m["hosts"]}
            out.append(f"{entry['ip']:<15} rtt={rtt:<10} mac={macs} "
                       f"seen_by={len(entry['seen_by'])} arp_by={len(arp_by)}")
        self._write("\n".join(out) + "\n")

    def run_finished(self, run: RunResult, retry_file: str | None = None,
                     **fields: Any) -> None:
        self.network(fields.get("network"))
        self.recap(run, retry_file)

    def recap(self, run: RunResult, retry_file: str | None = None) -> None:
        names = {name: clean(name) for name in run.hosts}
        width = max((len(n) for n in names.values()), default=4)
        out = ["", "RECAP " + "*" * 60]
        for name, result in run.hosts.items():
            tasks = result.extra.get("tasks") or []
            counts = " ".join(f"{s}={sum(1 for t in tasks if t['status'] == s)}"
                              for s in STATUSES)
            note = f"  ({clean(result.reason)})" if not tasks and result.reason else ""
            out.append(f"{self._paint(names[name].ljust(width), result.status)} : "
                       f"{counts}{note}")
        total = " ".join(f"{k}={v}" for k, v in run.summary.items())
        out.append(f"{len(run.hosts)} hosts in {run.elapsed:.2f}s: {total}")
        if self.check:
            out.append("check mode: nothing was changed")
        if run.interrupted:
            out.append("interrupted: results above are what finished before Ctrl-C")
        if retry_file:
            out.append(f"retry failed/unreachable hosts with: --limit @{retry_file}")
        self._write("\n".join(out) + "\n")


def finish(run: RunResult, reporter: Reporter | None, retry_file: str | None,
           code: int | None = None, **fields: Any) -> None:
    """Write the retry file, tell ``reporter`` the run finished (recap or JSON document
    with ``fields``), then exit with ``code`` (default: the run's exit code; 0: return)."""
    from invoke.exceptions import Exit

    from fleetops.core.retry import write_retry

    retry = write_retry(run, retry_file)
    (reporter or SILENT).run_finished(run, retry, **fields)
    exit_code = run.exit_code if code is None else code
    if exit_code:
        raise Exit(code=exit_code)


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
