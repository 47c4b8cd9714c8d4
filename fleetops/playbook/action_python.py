"""The ``python`` playbook action: call a user's own Python task on each host.

::

    - name: deploy the release
      python:
        task: mymodule:deploy          # MODULE:FUNCTION (a plain function or a fleet_task)
        args: {version: "{{ release }}", restart: true}
      register: deployed               # deployed.data.value is what the function returned

    - python: mymodule:uptime          # free form: no arguments

``MODULE`` is imported with the playbook's directory (then its ``library/``) first on
``sys.path``; ``FUNCTION(c, **args)`` runs with ``c`` a ``fabric.Connection`` on the
host's connection, exactly as ``fleetops.Fleet.run`` does it (:mod:`fleetops.api.fleet`): a
return is ``ok`` (``changed`` when the function set ``c.changed``), an exception is
``failed`` with the exception named, command output is the task's stdout/stderr. Its
effect cannot be predicted, so check mode skips it unless ``check_mode_safe: true``.
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
from pathlib import Path
from typing import Any

from fleetops.playbook.argspec import UNPREDICTABLE, ActionSpec, Arg, ArgError
from fleetops.results import HostResult, ProgramData

_REF = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<func>[A-Za-z_]\w*)$")
_IMPORT_LOCK = threading.Lock()


def _check(args: dict[str, Any]) -> None:
    if not _REF.match(args["task"] or ""):
        raise ArgError(f"argument 'task' must be MODULE:FUNCTION (like mymodule:deploy), "
                       f"not {args['task']!r}")


def resolve(ref: str, base_dir: Path) -> Any:
    """The function ``ref`` (``module:function``) names; ArgError with a one-line reason.
    A ``fleet_task`` gives its plain function back (``.fleet_function``)."""
    match = _REF.match(ref)
    if not match:
        raise ArgError(f"task {ref!r} is not MODULE:FUNCTION")
    with _IMPORT_LOCK:
        for path in (str(base_dir / "library"), str(base_dir)):
            if path not in sys.path:
                sys.path.insert(0, path)
        try:
            module = importlib.import_module(match["module"])
        except Exception as exc:  # the user's module: any error is this task's failure
            raise ArgError(f"cannot import {match['module']}: {type(exc).__name__}: "
                           f"{exc}") from None
    func = getattr(module, match["func"], None)
    func = getattr(func, "fleet_function", None) or getattr(func, "body", None) or func
    if not callable(func):
        raise ArgError(f"{match['module']} has no function {match['func']!r}")
    return func


def execute(step: Any) -> HostResult:
    """Run the task's function on the step's host (see the module docstring)."""
    from fleetops.api.fabric_conn import base_config
    from fleetops.api.fleet import host_work

    try:
        func = resolve(step.args["task"], step.base_dir)
    except ArgError as exc:
        return HostResult(step.name, "failed", reason=str(exc))
    options = step.session.fleet.options
    timeout = step.task.timeout or options.command_timeout
    work = host_work(func, (), dict(step.args["args"] or {}), base_config(True, timeout),
                     step.app)
    result = work(step.session)
    extra = dict(result.extra)
    result.data = ProgramData.from_json({"value": extra.pop("value", None)})
    result.extra = extra
    return result


PYTHON = ActionSpec("python", {"task": Arg(required=True), "args": Arg("mapping")},
                    UNPREDICTABLE, execute, "call a Python function (module:function) "
                    "with c = a fabric.Connection", free_form="task", validate=_check)
