"""Run a loaded playbook: linear strategy, one SSH connection per host and play.

For each play one :class:`~fleetops.core.runner.Fleet` is opened; each task is one
``fleet.run(batch, work)``, so every host of a batch finishes task k before any
starts task k+1, and the connection made for a host's first task is reused by the
rest. A host that fails (or is unreachable) skips its remaining tasks and later
plays; the others go on. After every task the batch's failure rate is compared
with ``max_fail_percentage`` (default: stop only when the whole batch failed);
when it is exceeded the run stops: no further task, batch or play starts anywhere.

Variables per host, lowest first (Ansible's order for the levels fleetops has):
inventory variables, the magic variables (``inventory_hostname``, ``group_names``,
``play_hosts``, ``playbook_dir``, ``fleetops_check_mode``), play ``vars``, task
``vars``, registered results, ``-e`` extra vars, and the loop variable.

Tasks are chosen by ``--tags``/``--skip-tags`` (:func:`fleetops.playbook.keys.should_run`).
A changed task's ``notify`` queues handlers for that host; after the last task of a
batch, each handler runs once, in the order of ``handlers:``, on the hosts that notified
it (by name or ``listen`` topic) and have not failed. ``become``/``become_user`` of a
task win over the play's, which win over ``--become``/``--become-user``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fleetops.core.events import Reporter
from fleetops.core.runner import Fleet, RunOptions, Session
from fleetops.playbook.actions import Step
from fleetops.playbook.keys import should_run
from fleetops.playbook.load import Play, Playbook, Task
from fleetops.playbook.task import CHECK_SKIP, TaskRun, registered
from fleetops.playbook.templating import RenderError
from fleetops.results import HostResult, RunResult
from fleetops.ship.zipapp import build_zipapp

__all__ = ["CHECK_SKIP", "Engine", "HostState", "PlaybookRun", "Reporter", "TaskRecord",
           "batches", "network_inventory"]


@dataclass
class TaskRecord:
    """One task's result on one host."""

    play: str
    name: str
    action: str
    status: str
    reason: str | None = None
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    summary: str | None = None
    diff: str | None = None
    data: dict[str, Any] | None = None

    def to_json(self, with_diff: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {"play": self.play, "name": self.name, "action": self.action,
                               "status": self.status, "reason": self.reason,
                               "duration": round(self.duration, 3)}
        if self.action == "run":
            doc.update(rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        if with_diff and self.diff:
            doc["diff"] = self.diff
        if self.data is not None:
            doc["data"] = self.data
        return doc


@dataclass
class HostState:
    """A host across the whole playbook run."""

    name: str
    tasks: list[TaskRecord] = field(default_factory=list)
    registered: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)  # inventory + magic + play vars
    extra: dict[str, Any] = field(default_factory=dict)    # -e, rendered for this host
    notified: set[str] = field(default_factory=set)        # handler names / listen topics
    vars_error: str | None = None
    failed: bool = False
    not_run: str | None = None

    def overall(self, with_diff: bool) -> HostResult:
        statuses = [t.status for t in self.tasks]
        bad = next((t for t in self.tasks if t.status in ("failed", "unreachable")), None)
        if bad is not None:
            status = bad.status
        elif "changed" in statuses:
            status = "changed"
        elif all(s == "skipped" for s in statuses):  # also: no task ran at all
            status = "skipped"
        else:
            status = "ok"
        rcs = [t.rc for t in self.tasks if t.rc is not None]
        result = HostResult(
            self.name, status, bad.rc if bad else (rcs[-1] if rcs else None),
            bad.stdout if bad else "", bad.stderr if bad else "",
            duration=sum(t.duration for t in self.tasks),
            reason=f"task {bad.name!r}: {bad.reason or bad.status}" if bad else self.not_run,
        )
        result.extra["tasks"] = [t.to_json(with_diff) for t in self.tasks]
        return result


@dataclass
class PlaybookRun:
    states: dict[str, HostState]
    plays: list[dict[str, Any]]
    interrupted: bool = False
    elapsed: float = 0.0

    def result(self, with_diff: bool) -> RunResult:
        run = RunResult(interrupted=self.interrupted, elapsed=self.elapsed)
        for state in self.states.values():
            run.add(state.overall(with_diff))
        return run


def batches(hosts: list[Any], serial: tuple[str, float] | None) -> list[list[Any]]:
    """Split the play's hosts by ``serial`` (a count, or a percentage of the play's hosts)."""
    if serial is None or not hosts:
        return [hosts]
    kind, value = serial
    size = int(value) if kind == "count" else max(1, int(len(hosts) * value / 100))
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]


class Engine:
    """Runs every play of a playbook on already selected hosts."""

    def __init__(self, book: Playbook, options: RunOptions, target_for: Callable[[Any], Any],
                 check: bool = False, diff: bool = False, reporter: Reporter | None = None,
                 extra_vars: dict[str, Any] | None = None,
                 tags: frozenset[str] = frozenset(), skip_tags: frozenset[str] = frozenset()):
        self.book = book
        self.extra_vars = extra_vars or {}
        self.tags = tags
        self.skip_tags = skip_tags
        self.options = options
        self.target_for = target_for
        self.check = check
        self.diff = diff
        self.reporter = reporter or Reporter()
        self.app = build_zipapp()
        self.states: dict[str, HostState] = {}
        self.interrupted = False

    def run(self, selections: list[tuple[Play, list[Any]]]) -> PlaybookRun:
        started = time.monotonic()
        plays: list[dict[str, Any]] = []
        for index, (play, selected) in enumerate(selections):
            hosts = [h for h in selected if not self._state(h.name).failed]
            self.reporter.play_started(play, hosts)
            info: dict[str, Any] = {"name": play.name, "hosts": [h.name for h in hosts],
                                    "stopped": None}
            plays.append(info)
            stop = self._play(play, hosts) if hosts else None
            if stop:
                info["stopped"] = stop
                self.reporter.play_stopped(stop)
                for _, later in selections[index + 1:]:
                    self._not_run(later, stop)
                break
        run = PlaybookRun(self.states, plays, self.interrupted)
        run.elapsed = time.monotonic() - started
        return run

    def _state(self, name: str) -> HostState:
        if name not in self.states:
            self.states[name] = HostState(name)
        return self.states[name]

    def _not_run(self, hosts: list[Any], reason: str) -> None:
        for host in hosts:
            state = self._state(host.name)
            if not state.tasks and not state.failed:
                state.not_run = f"not run: {reason}"

    def _play(self, play: Play, hosts: list[Any]) -> str | None:
        names = [h.name for h in hosts]
        groups = batches(hosts, play.serial)
        with Fleet(self.options, self.target_for) as fleet:
            for number, batch in enumerate(groups):
                for host in batch:
                    self._prepare(play, host, names)
                stop = self._batch(fleet, play, batch)
                for host in batch:  # a finished batch keeps no connection open
                    fleet.drop(host.name)
                if stop:
                    for later in groups[number + 1:]:
                        self._not_run(later, stop)
                    return stop
        return None

    def _prepare(self, play: Play, host: Any, names: list[str]) -> None:
        state = self._state(host.name)
        base = dict(host.vars)
        base.update(inventory_hostname=host.name,
                    inventory_hostname_short=host.name.split(".")[0],
                    group_names=sorted(g for g in host.groups if g != "all"),
                    play_hosts=names, playbook_dir=str(self.book.base_dir),
                    fleetops_check_mode=self.check)
        state.vars_error = None
        state.notified = set()
        try:
            state.extra = self.book.renderer.value(self.extra_vars, {**base, **state.registered})
        except RenderError as exc:
            state.vars_error = f"extra vars on {host.name}: {exc}"
            state.extra = dict(self.extra_vars)
        for key, value in play.vars.items():
            if state.vars_error:
                break
            try:
                base[key] = self.book.renderer.value(
                    value, {**base, **state.registered, **state.extra})
            except RenderError as exc:
                state.vars_error = f"vars of play {play.name!r} on {host.name}: {key}: {exc}"
        state.context = base

    def _layers(self, name: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """(below task vars, above task vars, error) for a host (see the module doc)."""
        state = self.states[name]
        return state.context, {**state.registered, **state.extra}, state.vars_error

    def _batch(self, fleet: Fleet, play: Play, batch: list[Any]) -> str | None:
        tasks = [t for t in play.tasks if should_run(t.tags, self.tags, self.skip_tags)]
        for task in tasks:
            active = [h for h in batch if not self.states[h.name].failed]
            if not active:
                break
            stop = self._task(fleet, play, task, active, batch)
            if stop:
                return stop
        for handler in play.handlers:
            topics = {handler.name, *handler.listen}
            active = [h for h in batch if not self.states[h.name].failed
                      and topics & self.states[h.name].notified]
            if active:
                stop = self._task(fleet, play, handler, active, batch)
                if stop:
                    return stop
        return None

    def _task(self, fleet: Fleet, play: Play, task: Task, active: list[Any],
              batch: list[Any]) -> str | None:
        self.reporter.task_started(task)
        recorded: set[str] = set()

        def on_result(result: HostResult, run: RunResult) -> None:
            recorded.add(result.name)
            self._record(play, task, result)

        fleet.options = self._task_options(task, play)
        try:
            run = fleet.run(active, self._work(task), on_result=on_result)
        finally:
            fleet.options = self.options
        for name, result in run.hosts.items():
            if name not in recorded:
                self._record(play, task, result)
        if run.interrupted:
            self.interrupted = True
            return "interrupted"
        return self._over_limit(play, batch)

    def _task_options(self, task: Task, play: Play | None = None) -> RunOptions:
        """become/become_user: the task's, else the play's, else the command line's; a task's
        ``timeout:`` is its command timeout (unless ``--deadline`` was given, the host
        deadline is derived from it, so a long task is not cut by the default one)."""
        become = task.become if task.become is not None else play.become if play else None
        user = task.become_user or (play.become_user if play else None)
        changes: dict[str, Any] = {}
        if become is not None:
            changes["become"] = become
        if user is not None:
            changes["become_user"] = user
        if task.timeout is not None:
            changes["command_timeout"] = float(task.timeout)
        return replace(self.options, **changes) if changes else self.options

    def _over_limit(self, play: Play, batch: list[Any]) -> str | None:
        failed = sum(1 for h in batch if self.states[h.name].failed)
        if not failed:
            return None
        percent = failed * 100 / len(batch)
        limit = play.max_fail_percentage
        if limit is None:
            return "every host failed" if failed == len(batch) else None
        if percent > limit:
            return (f"max_fail_percentage {limit:g}% exceeded: {failed} of {len(batch)} hosts "
                    f"failed ({percent:.0f}%)")
        return None

    def _record(self, play: Play, task: Task, result: HostResult) -> None:
        state = self.states[result.name]
        record = TaskRecord(play.name, task.name, task.action, result.status, result.reason,
                            result.rc, result.stdout, result.stderr, result.duration,
                            result.summary, result.diff,
                            None if result.data is None else result.data.to_json())
        state.tasks.append(record)
        if result.failed:
            state.failed = True
        if task.register:
            state.registered[task.register] = registered(result)
        if task.notify and result.status == "changed":
            state.notified.update(task.notify)
        self.reporter.task_host(result.name, record)

    def _work(self, task: Task) -> Callable[[Session], HostResult]:
        def make_step(session: Session, args: dict[str, Any], context: dict[str, Any]) -> Step:
            return Step(session, task, args, context, self.book.renderer, self.check,
                        self.diff, self.app, self.book.base_dir)

        return TaskRun(task, self.book.renderer, self.check, self._layers, make_step)


def network_inventory(states: dict[str, HostState]) -> dict[str, Any] | None:
    """The network map of :mod:`fleetops.jobs.scan` (the shape of ``invoke scan --json``'s
    ``network``) from every host's ``sweep`` and ``arpscan`` tasks: an ok or changed
    task gives its data, a failed or unreachable one marks its host a vantage without
    data, a skipped one does not count. None when no host ran either action."""
    from fleetops.jobs.scan import network_map

    found: dict[str, list[tuple[str, Any]]] = {"sweep": [], "arpscan": []}
    for name, state in states.items():
        for record in state.tasks:
            if record.action in found and record.status != "skipped":
                usable = record.status in ("ok", "changed")
                found[record.action].append((name, (record.data or {}) if usable else None))
    if not found["sweep"] and not found["arpscan"]:
        return None
    return network_map(found["sweep"], found["arpscan"] or None)
