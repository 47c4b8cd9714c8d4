"""The one reporter interface: what a fleet run tells whoever shows it.

The library emits these events and never prints; the reporters that render them
(text with a live progress line, per-host lines and a recap, the JSON document, the
``--format`` documents) live in :mod:`fleetops.cli.output`. Every method here does
nothing, so a reporter overrides only what it shows and :data:`SILENT` shows nothing.

Events of one task, in order (the playbook ones only for ``invoke play``):

===========================================  =========================================
``run_started(total)``                       the runner, once per fleet run (hosts)
``host_started(name)``                       the runner, from the host's worker thread
``host_finished(result, run)``               the runner's thread, per finished host
``tick(run)``                                the runner's thread, a few times a second
``play_started(play, hosts)``                the playbook engine, per play
``task_started(task)``                       the playbook engine, per task or handler
``task_host(host, record)``                  the playbook engine, per host and task
``play_stopped(reason)``                     the playbook engine (``max_fail_percentage``)
``document(report, fmt)``                    the task: a report in the ``--format`` asked
``notice(text)``                             the task: one line for the operator (stderr)
``run_finished(run, retry_file, **fields)``  the task, once, after the retry file is written:
                                             the recap, or the JSON document with ``fields``
===========================================  =========================================

``run`` is the :class:`fleetops.results.RunResult` so far (the runner adds a host
before ``host_finished``); ``result`` a :class:`fleetops.results.HostResult`.
"""

from __future__ import annotations

from typing import Any

from fleetops.results import HostResult, RunResult


class Reporter:
    """Receives a task's events; the base class ignores them all (see the module doc)."""

    def run_started(self, total: int) -> None:
        """A fleet run of ``total`` hosts starts."""

    def host_started(self, name: str) -> None:
        """A worker took host ``name`` (called from that worker's thread)."""

    def host_finished(self, result: HostResult, run: RunResult) -> None:
        """Host ``result.name`` ended with one status; ``run`` holds every host so far."""

    def tick(self, run: RunResult) -> None:
        """Hosts are still running: a live display may refresh (elapsed time moves)."""

    def play_started(self, play: Any, hosts: list[Any]) -> None:
        """A play starts on ``hosts`` (empty: no host matched)."""

    def task_started(self, task: Any) -> None:
        """A playbook task (or handler, ``task.handler``) starts on the play's hosts."""

    def task_host(self, host: str, record: Any) -> None:
        """One host's :class:`fleetops.playbook.run.TaskRecord` of the current task."""

    def play_stopped(self, reason: str) -> None:
        """No further task, batch or play starts, for ``reason``."""

    def document(self, report: Any, fmt: str) -> None:
        """A task's typed report in format ``fmt`` (``--format``)."""

    def notice(self, text: str) -> None:
        """One line for the operator beside the output (a history or mail outcome, where
        a report was written); ``text`` is already sanitised, without a newline."""

    def run_finished(self, run: RunResult, retry_file: str | None = None,
                     **fields: Any) -> None:
        """The task's run is over; ``retry_file`` was written (None: not written or empty);
        ``fields`` are the task's own top-level fields of the JSON document."""


SILENT = Reporter()
