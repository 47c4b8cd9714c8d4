"""Load and validate a playbook before any host is contacted.

A playbook is a YAML list of plays::

    - name: motd              # optional
      hosts: web:&prod        # a host pattern (required)
      vars: {site: example}   # win over inventory vars (Ansible's precedence)
      serial: 2               # batch size, or "25%"
      max_fail_percentage: 50 # stop the run when more of a batch failed
      tasks:
        - name: write motd
          template: {src: motd.j2, dest: /etc/motd, mode: "0644"}
          when: "inventory_hostname != 'db1'"   # optional Jinja expression
          register: motd                        # optional: result as a variable
          check_mode_safe: false                # run actions only: run in --check too
          timeout: 30                           # optional command timeout (seconds)

plus Ansible's ``handlers``/``notify``/``listen``, ``loop``/``loop_control``, task
``vars``, ``changed_when``/``failed_when``, ``become``/``become_user`` and ``tags``
(checked in :mod:`fleetops.playbook.keys`).

Every mistake is one :class:`~fleetops.errors.InputError` naming ``file:line``
(line numbers come from PyYAML's composed node tree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from fleetops.errors import InputError
from fleetops.inventory.source import read_text
from fleetops.playbook import keys
from fleetops.playbook.actions import ACTIONS, copy_source
from fleetops.playbook.argspec import UNPREDICTABLE, ArgError, coerce, complete
from fleetops.playbook.templating import Renderer, describe_error, templated
from fleetops.playbook.yaml import YList, YMap, parse_yaml

PLAY_KEYS = ("name", "hosts", "vars", "serial", "max_fail_percentage", "tasks", "handlers",
             "tags", "become", "become_user")
TASK_KEYS = ("name", "when", "register", "check_mode_safe", "timeout", "vars", "loop",
             "loop_control", "changed_when", "failed_when", "notify", "tags", "become",
             "become_user")
HANDLER_KEYS = (*TASK_KEYS, "listen")
REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass
class Task:
    name: str
    action: str
    args: dict[str, Any]
    line: int
    arg_lines: dict[str, int] = field(default_factory=dict)
    when: Any = None
    register: str | None = None
    check_mode_safe: bool = False
    timeout: float | None = None
    static_args: dict[str, Any] | None = None  # checked args when nothing is templated
    vars: dict[str, Any] = field(default_factory=dict)
    loop: Any = None                     # a list, or one "{{ expression }}" giving a list
    loop_var: str = "item"
    changed_when: list[Any] | None = None  # every item must hold (Ansible: a list is AND)
    failed_when: list[Any] | None = None
    notify: list[str] = field(default_factory=list)
    notify_line: int | None = None
    tags: list[str] = field(default_factory=list)  # the play's tags included
    become: bool | None = None           # None: the play's, else the command line's
    become_user: str | None = None
    listen: list[str] = field(default_factory=list)  # handlers only
    handler: bool = False


@dataclass
class Play:
    name: str
    hosts: str
    line: int
    hosts_line: int
    vars: dict[str, Any]
    tasks: list[Task]
    serial: tuple[str, float] | None = None  # ("count", n) or ("percent", p)
    max_fail_percentage: float | None = None
    handlers: list[Task] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    become: bool | None = None
    become_user: str | None = None


@dataclass
class Playbook:
    path: str
    base_dir: Path
    plays: list[Play]
    renderer: Renderer


# -- validation --------------------------------------------------------------------------
class _Checker:
    def __init__(self, path: str, renderer: Renderer, base_dir: Path) -> None:
        self.path = path
        self.renderer = renderer
        self.base_dir = base_dir

    def fail(self, message: str, line: int | None) -> None:
        raise InputError(message, self.path, line)

    def playbook(self, data: Any) -> list[Play]:
        if data is None:
            self.fail("the playbook is empty (expected a list of plays)", 1)
        if not isinstance(data, list):
            self.fail(f"a playbook is a list of plays, not a {_kind(data)}", _line(data))
        if not data:
            self.fail("the playbook has no plays", data.line)
        return [self.play(item, data.item_lines[i]) for i, item in enumerate(data)]

    def play(self, data: Any, line: int) -> Play:
        if not isinstance(data, dict):
            self.fail(f"a play is a mapping (hosts, tasks, ...), not a {_kind(data)}", line)
        self._unknown(data, PLAY_KEYS, "play key")
        lines = data.key_lines
        hosts = data.get("hosts")
        if isinstance(hosts, list) and hosts and all(isinstance(h, str) for h in hosts):
            hosts = ":".join(hosts)
        if not isinstance(hosts, str) or not hosts.strip():
            self.fail("play needs 'hosts': a host pattern such as all or web:&prod",
                      lines.get("hosts", data.line))
        self._syntax(hosts, lines.get("hosts", data.line), "play hosts")
        name = self._text(data, "name", hosts, "play")
        play_tags = keys.tag_list(self, data["tags"], lines["tags"], f"play {name!r}: tags") \
            if "tags" in data else []
        tasks, handlers = (self._task_list(data, key, name, play_tags)
                           for key in ("tasks", "handlers"))
        play = Play(name=name, hosts=hosts, line=data.line,
                    hosts_line=lines.get("hosts", data.line), vars=self.vars(data, name),
                    tasks=tasks, handlers=handlers, tags=play_tags)
        play.serial = self.serial(data, name)
        play.max_fail_percentage = self.max_fail(data, name)
        play.become, play.become_user = keys.become(self, data, f"play {name!r}")
        keys.check_notify(self, name, [*tasks, *handlers], handlers)
        return play

    def _task_list(self, data: dict, key: str, play: str, play_tags: list[str]) -> list[Task]:
        items = data.get(key, YList())
        if items is None:
            return []
        if not isinstance(items, list):
            self.fail(f"play {play!r}: {key!r} must be a list, not {_kind(items)}",
                      data.key_lines.get(key))
        tasks = [self.task(t, items.item_lines[i], play, key == "handlers")
                 for i, t in enumerate(items)]
        for task in tasks:
            task.tags = list(dict.fromkeys([*play_tags, *task.tags]))
        return tasks

    def vars(self, data: dict, play: str) -> dict[str, Any]:
        return keys.task_vars(self, data, f"play {play!r}")

    def serial(self, data: dict, play: str) -> tuple[str, float] | None:
        value = data.get("serial")
        if value is None:
            return None
        line = data.key_lines["serial"]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return ("count", value)
        found = _PERCENT.match(value) if isinstance(value, str) else None
        if found and 0 < float(found.group(1)) <= 100:
            return ("percent", float(found.group(1)))
        self.fail(f"play {play!r}: serial must be a batch size >= 1 or a percentage like "
                  f"\"25%\" (1-100%), not {value!r}", line)
        return None

    def max_fail(self, data: dict, play: str) -> float | None:
        value = data.get("max_fail_percentage")
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100:
            return float(value)
        self.fail(f"play {play!r}: max_fail_percentage must be a number from 0 to 100, "
                  f"not {value!r}", data.key_lines["max_fail_percentage"])
        return None

    def task(self, data: Any, line: int, play: str, handler: bool = False) -> Task:
        what = "handler" if handler else "task"
        if not isinstance(data, dict):
            self.fail(f"play {play!r}: a {what} is a mapping (name plus one action), "
                      f"not {_kind(data)}", line)
        known = HANDLER_KEYS if handler else TASK_KEYS
        actions = [k for k in data if k not in known]
        label = f"{what} {data.get('name')!r}" if isinstance(data.get("name"), str) else what
        for key in actions:
            if key in keys.HINTS:
                self.fail(f"{label}: {key!r} is not implemented by fleetops "
                          f"({keys.HINTS[key]})", data.key_lines[key])
            if key not in ACTIONS:
                self.fail(f"{label}: unknown action {key!r} (actions: {', '.join(ACTIONS)}; "
                          f"task keys: {', '.join(known)})", data.key_lines[key])
        if len(actions) != 1:
            what = "no action" if not actions else f"{len(actions)} actions ({', '.join(actions)})"
            self.fail(f"{label}: a task has exactly one action, this one has {what}",
                      data.line if not actions else data.key_lines[actions[1]])
        action = actions[0]
        task = Task(name=self._text(data, "name", action, "task"), action=action, args={},
                    line=data.key_lines[action])
        task.args, task.arg_lines = self.args(data[action], task)
        self.keywords(data, task)
        self.ansible_keywords(data, task, handler)
        self.static(task)
        return task

    def ansible_keywords(self, data: dict, task: Task, handler: bool) -> None:
        """vars, loop, changed_when/failed_when, notify, tags, become, listen."""
        lines, label = data.key_lines, f"{'handler' if handler else 'task'} {task.name!r}"
        task.handler = handler
        if handler and "name" not in data:
            self.fail("handler: a handler needs a 'name' (notify refers to it)", task.line)
        task.vars = keys.task_vars(self, data, label)
        task.loop, task.loop_var = keys.loop(self, data, label)
        for key in ("changed_when", "failed_when"):
            if data.get(key) is not None:
                setattr(task, key, keys.condition_list(self, data[key], lines[key],
                                                       f"{label}: {key}"))
        for key in ("notify", "tags", "listen"):
            if data.get(key) is not None:
                read = keys.tag_list if key == "tags" else keys.names
                setattr(task, key, read(self, data[key], lines[key], f"{label}: {key}"))
        task.notify_line = lines.get("notify")
        task.become, task.become_user = keys.become(self, data, label)

    def args(self, raw: Any, task: Task) -> tuple[dict[str, Any], dict[str, int]]:
        spec = ACTIONS[task.action]
        where = f"task {task.name!r}: {task.action}"
        if spec.free_form and isinstance(raw, str):
            self._syntax(raw, task.line, f"{where}: argument {spec.free_form!r}")
            return {spec.free_form: raw}, {spec.free_form: task.line}
        if raw is None:
            raw = YMap()
            raw.line, raw.key_lines = task.line, {}
        if not isinstance(raw, dict):
            hint = f" (or a string: the {spec.free_form})" if spec.free_form else ""
            self.fail(f"{where}: arguments must be a mapping{hint}, not {_kind(raw)}", task.line)
        for key, value in raw.items():
            line = raw.key_lines.get(key, task.line)
            if key not in spec.args:
                self.fail(f"{where}: unknown argument {key!r} (arguments: "
                          f"{', '.join(spec.args)})", line)
            self._syntax(value, line, f"{where}: argument {key!r}")
            if not templated(value) and value is not None:
                try:
                    coerce(key, spec.args[key], value)
                except ArgError as exc:
                    self.fail(f"{where}: {exc}", line)
        for key, arg in spec.args.items():
            if arg.required and raw.get(key) is None:
                self.fail(f"{where}: missing argument {key!r}", task.line)
        return dict(raw), dict(raw.key_lines)

    def keywords(self, data: dict, task: Task) -> None:
        lines, label = data.key_lines, f"task {task.name!r}"
        if data.get("when") is not None:
            when = data["when"]
            if not isinstance(when, str | bool):
                self.fail(f"{label}: 'when' must be an expression, not {_kind(when)}",
                          lines["when"])
            if isinstance(when, str):
                try:
                    self.renderer.check_expression(when.strip().removeprefix("{{")
                                                   .removesuffix("}}"))
                except jinja2.TemplateSyntaxError as exc:
                    self.fail(f"{label}: when: {describe_error(exc)}", lines["when"])
            task.when = when
        register = data.get("register")
        if register is not None and (not isinstance(register, str) or not _IDENT.match(register)):
            self.fail(f"{label}: register must be a variable name, not {register!r}",
                      lines["register"])
        task.register = register
        safe = data.get("check_mode_safe", False)
        if not isinstance(safe, bool):
            self.fail(f"{label}: check_mode_safe must be true or false", lines["check_mode_safe"])
        if safe and ACTIONS[task.action].check != UNPREDICTABLE:
            self.fail(f"{label}: check_mode_safe only applies to actions whose effect cannot be "
                      f"predicted (run); {task.action} has its own check mode",
                      lines["check_mode_safe"])
        task.check_mode_safe = safe
        timeout = data.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(
                timeout, int | float) or not 0 < timeout < 1e9):
            self.fail(f"{label}: timeout must be a finite number of seconds > 0",
                      lines["timeout"])
        task.timeout = timeout

    def static(self, task: Task) -> None:
        """Whole-task checks: cross-argument rules and files, when nothing is templated."""
        spec = ACTIONS[task.action]
        if templated(task.args):
            self._files(task)
            return
        try:
            task.static_args = complete(spec, task.args)
        except ArgError as exc:
            self.fail(f"task {task.name!r}: {task.action}: {exc}", task.line)
        self._files(task)

    def _files(self, task: Task) -> None:
        src = task.args.get("src")
        if not isinstance(src, str) or templated(src):
            return
        line = task.arg_lines.get("src", task.line)
        if task.action == "template":
            if self.renderer.find(src) is None:
                self.fail(f"task {task.name!r}: template {src!r} not found in "
                          f"{self.renderer.where()}", line)
            try:
                self.renderer.load(src)
            except jinja2.TemplateSyntaxError as exc:
                raise InputError(f"template syntax error: {exc.message}",
                                 exc.filename or src, exc.lineno) from None
        elif task.action == "copy" and copy_source(self.base_dir, src) is None:
            self.fail(f"task {task.name!r}: file {src!r} not found (absolute, or under "
                      f"{self.base_dir / 'files'} or {self.base_dir})", line)

    # -- helpers ------------------------------------------------------------------------
    def _unknown(self, data: dict, known: tuple[str, ...], what: str) -> None:
        for key in data:
            if key not in known:
                self.fail(f"unknown {what} {key!r} (known: {', '.join(known)})",
                          data.key_lines[key])

    def _text(self, data: dict, key: str, default: str, what: str) -> str:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.fail(f"{what} {key} must be a string, not {_kind(value)}", data.key_lines[key])
        return str(value)

    def _syntax(self, value: Any, line: int, where: str) -> None:
        try:
            self.renderer.check_syntax(value)
        except jinja2.TemplateSyntaxError as exc:
            self.fail(f"{where}: {describe_error(exc)}", line)


def _kind(value: Any) -> str:
    return {dict: "mapping", YMap: "mapping", list: "list", YList: "list", str: "string",
            bool: "boolean", int: "number", float: "number", type(None): "null"}.get(
        type(value), type(value).__name__)


def _line(value: Any) -> int | None:
    return getattr(value, "line", None) or 1


def template_search(base_dir: Path) -> list[Path]:
    """Where template files are looked up: next to the playbook, its parent, the repo."""
    # fleetops's own templates: package data (fleetops/templates links to templates/ in a checkout)
    return [base_dir / "templates", base_dir.parent / "templates",
            Path(__file__).resolve().parents[1] / "templates"]


def load_playbook(path: str) -> Playbook:
    """Read, parse and validate ``path``; InputError (exit 4) on the first problem."""
    text = read_text(path, "playbook")  # a regular UTF-8 file of at most 16 MiB
    base_dir = Path(path).resolve().parent
    renderer = Renderer(template_search(base_dir))
    checker = _Checker(path, renderer, base_dir)
    plays = checker.playbook(parse_yaml(text, path))
    return Playbook(path=path, base_dir=base_dir, plays=plays, renderer=renderer)
