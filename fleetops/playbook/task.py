"""One task on one host: task vars, ``loop``, ``when``, the action, ``changed_when``/``failed_when``.

Runs inside a runner worker (:meth:`fleetops.playbook.run.Engine._work`), so it never raises:
template and argument errors become a ``failed`` result naming the task and host.

Ansible's order per item: the loop variable is set, ``when`` is evaluated (false: the
item is skipped), the action runs, then ``changed_when`` and ``failed_when`` are
evaluated with the task's ``register`` variable already holding this item's result.
Every item runs even when an earlier one failed; an unreachable host stops the loop.
A loop's result is failed if an item failed, changed if an item changed, skipped if
every item was skipped; its data is ``{"results": [one registered value per item]}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fleetops.core.runner import Session
from fleetops.playbook.actions import ACTIONS, Step
from fleetops.playbook.argspec import UNPREDICTABLE, ArgError, complete
from fleetops.playbook.templating import Renderer, RenderError
from fleetops.results import HostResult, ProgramData

CHECK_SKIP = "check mode: cannot predict the effect of a command"


def registered(result: HostResult) -> dict[str, Any]:
    """What ``register:`` stores: Ansible-like keys plus fleetops' status and data."""
    data = result.data_json
    value = {"status": result.status, "changed": result.status == "changed",
             "failed": result.status in ("failed", "unreachable"),
             "skipped": result.status == "skipped", "rc": result.rc,
             "stdout": result.stdout, "stderr": result.stderr,
             "stdout_lines": result.stdout.splitlines(),
             "stderr_lines": result.stderr.splitlines(),
             "reason": result.reason, "data": data}
    if "results" in data:
        value["results"] = data["results"]
    return value


class TaskRun:
    """Callable per host: ``TaskRun(...)(session) -> HostResult``."""

    def __init__(self, task: Any, renderer: Renderer, check: bool,
                 context_of: Callable[[str], tuple[Mapping[str, Any], Mapping[str, Any], str | None]],
                 make_step: Callable[..., Step]) -> None:
        self.task = task
        self.spec = ACTIONS[task.action]
        self.renderer = renderer
        self.check = check
        self.context_of = context_of
        self.make_step = make_step

    def __call__(self, session: Session) -> HostResult:
        name = session.host.name
        below, above, error = self.context_of(name)
        if error:
            return HostResult(name, "failed", reason=error)
        try:
            context = self._with_task_vars(below, above)
            if self.task.loop is None:
                return self._one(session, context)
            return self._loop(session, context)
        except (RenderError, ArgError) as exc:
            return HostResult(name, "failed", reason=f"task {self.task.name!r} on {name}: {exc}")

    def _with_task_vars(self, below: Mapping[str, Any],
                        above: Mapping[str, Any]) -> dict[str, Any]:
        """Task vars sit above play vars and below registered results and extra vars."""
        context = {**below, **above}
        if not self.task.vars:
            return context
        rendered = self.renderer.value(self.task.vars, context)
        return {**below, **rendered, **above}

    def _one(self, session: Session, context: dict[str, Any]) -> HostResult:
        task, name = self.task, session.host.name
        if task.when is not None and not self.renderer.condition(task.when, context):
            return HostResult(name, "skipped", reason=f"when: {task.when} is false")
        if self.check and self.spec.check == UNPREDICTABLE and not task.check_mode_safe:
            return HostResult(name, "skipped", reason=CHECK_SKIP)
        if task.static_args is not None:
            args = dict(task.static_args)
        else:
            args = complete(self.spec, self.renderer.value(task.args, context))
        result = self.spec.execute(self.make_step(session, args, context))
        return self._judge(result, context)

    def _judge(self, result: HostResult, context: dict[str, Any]) -> HostResult:
        """``changed_when`` then ``failed_when``; unreachable and skipped stay as they are."""
        task = self.task
        if result.status in ("unreachable", "skipped") or (
                task.changed_when is None and task.failed_when is None):
            return result
        scope = dict(context)
        if task.register:
            scope[task.register] = registered(result)
        failed = result.status == "failed"
        changed = result.status == "changed"
        if task.changed_when is not None:
            changed = all(self.renderer.condition(c, scope) for c in task.changed_when)
        if task.failed_when is not None:
            if task.register:
                scope[task.register] = dict(scope[task.register], changed=changed)
            failed = all(self.renderer.condition(c, scope) for c in task.failed_when)
            if failed and result.status != "failed":
                shown = " and ".join(str(c) for c in task.failed_when)
                result.reason = f"failed_when: {shown}"
            elif not failed:
                result.reason = None
        result.status = "failed" if failed else "changed" if changed else "ok"
        return result

    def _items(self, context: dict[str, Any]) -> list[Any]:
        items = self.renderer.value(self.task.loop, context)
        if isinstance(items, dict) or not isinstance(items, list | tuple):
            raise RenderError(f"loop must give a list, not {type(items).__name__} "
                              f"({str(items)[:80]!r})")
        return list(items)

    def _loop(self, session: Session, context: dict[str, Any]) -> HostResult:
        name, loop_var = session.host.name, self.task.loop_var
        items = self._items(context)
        results: list[HostResult] = []
        values: list[dict[str, Any]] = []
        for item in items:
            scope = dict(context)
            scope[loop_var] = item
            try:
                result = self._one(session, scope)
            except (RenderError, ArgError) as exc:
                result = HostResult(name, "failed", reason=str(exc))
            results.append(result)
            values.append({**registered(result), "item": item, loop_var: item})
            if result.status == "unreachable":
                break
        return combine(name, items, results, values)


def combine(name: str, items: list[Any], results: list[HostResult],
            values: list[dict[str, Any]]) -> HostResult:
    """One host result for a loop (see the module doc)."""
    statuses = [r.status for r in results]
    bad = next((i for i, r in enumerate(results) if r.status in ("unreachable", "failed")), None)
    if bad is not None:
        worst = "unreachable" if "unreachable" in statuses else "failed"
        first = results[bad]
        result = HostResult(name, worst, first.rc, first.stdout, first.stderr,
                            reason=f"item {bad + 1} ({str(items[bad])[:60]}): {first.reason}")
    elif results and all(s == "skipped" for s in statuses) or not results:
        result = HostResult(name, "skipped", reason="every item skipped" if results
                            else "the loop is empty")
    else:
        last = results[-1]
        result = HostResult(name, "changed" if "changed" in statuses else "ok", last.rc,
                            last.stdout, last.stderr)
    result.duration = sum(r.duration for r in results)
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    result.data = ProgramData.from_json({"results": values})
    result.summary = f"{len(results)} items: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    diffs = [r.diff for r in results if r.diff]
    if diffs:
        result.diff = "".join(diffs)
    return result
