"""How the ``invoke`` program treats fleetops' tasks: option errors, help, closed stdout.

``tasks.py`` calls :func:`install` when Invoke loads it, before the task arguments are
parsed. It changes three things of Invoke 2.x, for this process only:

* a command-line parse error (unknown option, missing value or positional argument,
  unknown task, a word for an integer option such as ``--forks x``) prints ``fleetops: <message>`` and the task's usage on stderr and exits
  with 5 (bad option value) instead of Invoke's exit 1;
* automatic short flags are letters or digits only (Invoke derived ``-`` from
  ``--mail-config``, shown as a broken ``--=STRING``), and repeatable (list) options show
  their value in ``--help`` (``-e STRING, --exclude=STRING``) instead of looking boolean;
* :func:`quiet_broken_pipe` is what every task's ``cli_errors`` calls when stdout was
  closed by its reader (``| head -1``): no traceback, exit 141 (128 + SIGPIPE).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from fleetops.errors import EXIT_BAD_OPTIONS, EXIT_BROKEN_PIPE

_INSTALLED = False


def install() -> None:
    """Patch Invoke's task parsing and help (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from invoke.parser.context import ParserContext
    from invoke.program import Program
    from invoke.tasks import Task

    _INSTALLED = True
    _wrap_parse_tasks(Program)
    _wrap_listings(Program)
    _wrap_arg_opts(Task)
    _wrap_help_for(ParserContext)


def _wrap_parse_tasks(program_class: Any) -> None:
    from invoke.exceptions import Exit, ParseError

    original = program_class.parse_tasks

    def parse_tasks(self: Any) -> None:
        try:
            original(self)
            _refuse_option_as_positional(self.tasks, ParseError)
        except (ParseError, ValueError) as exc:  # ValueError: Invoke's int() of "--forks x"
            contexts = getattr(getattr(self, "parser", None), "contexts", {})
            name = getattr(getattr(exc, "context", None), "name", None) or next(
                (arg for arg in self.core.unparsed if arg in contexts), None)
            what = exc if isinstance(exc, ParseError) else _bad_int(contexts.get(name),
                                                                     self.core.unparsed)
            if "No idea what" in str(what):
                what = _unknown_flag(contexts.get(name), self.core.unparsed) or what
            print(f"fleetops: {what}", file=sys.stderr)
            if name and name in contexts:
                with contextlib.redirect_stdout(sys.stderr):
                    self.print_task_help(name)
            else:
                print("fleetops: see `invoke --list` and `invoke --help TASK`", file=sys.stderr)
            raise Exit(code=EXIT_BAD_OPTIONS) from None

    program_class.parse_tasks = parse_tasks


def _refuse_option_as_positional(contexts: Any, error: type) -> None:
    """Invoke hands an unknown option (``--becmoe``, ``-x``) to a pending positional
    argument: ``invoke run -i INV --becmoe`` ran ``--becmoe`` as the command on every
    host. No command, playbook or lab host name starts with ``-``: that is a parse error
    (exit 5), naming the option."""
    for context in contexts or ():
        for arg in getattr(context, "positional_args", ()):
            value = arg.value
            if isinstance(value, str) and value.startswith("-") and value != "-":
                exc = error(f"unknown option {value.partition('=')[0]!r} "
                            f"(or {arg.name.upper()} starting with '-')")
                exc.context = context
                raise exc


def _unknown_flag(context: Any, argv: list[str]) -> str | None:
    """``unknown option '--becmoe'`` when Invoke's "No idea what 'CMD' is!" came from an
    unknown option that took the positional argument's place."""
    flags = getattr(context, "flags", None)
    if not flags:
        return None
    for token in argv:
        if token == "--":
            break
        flag = token.partition("=")[0]
        if not flag.startswith("-") or flag == "-" or flag in flags or \
                flag in getattr(context, "inverse_flags", {}):
            continue
        if not flag.startswith("--") and all(f"-{c}" in flags for c in flag[1:]):
            continue  # combined short flags (-jp)
        return f"unknown option {flag!r}"
    return None


def _bad_int(context: Any, argv: list[str]) -> str:
    """``--forks must be an integer, not 'x'`` for the integer option Invoke choked on."""
    flags = getattr(context, "flags", {})
    for index, token in enumerate(argv):
        name, eq, value = token.partition("=")
        flag = flags.get(name)
        if flag is None or flag.kind is not int:
            continue
        if not eq:
            value = argv[index + 1] if index + 1 < len(argv) else ""
        try:
            int(value)
        except ValueError:
            return f"--{flag.name.replace('_', '-')} must be an integer, not {value!r}"
    return "an integer option has a value that is not an integer"


def _wrap_arg_opts(task_class: Any) -> None:
    original = task_class.arg_opts

    def arg_opts(self: Any, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts = original(self, name, default, taken_names)
        opts["names"] = [n for n in opts["names"] if len(n) > 1 or n.isalnum()]
        return opts

    task_class.arg_opts = arg_opts


def _wrap_help_for(context_class: Any) -> None:
    original = context_class.help_for

    def help_for(self: Any, flag: str) -> tuple[str, str]:
        names, text = original(self, flag)
        if self.flags[flag].kind is list:
            parts = [n + (" STRING" if len(n.strip("-")) == 1 else "=STRING")
                     for n in names.split(", ")]
            names = ", ".join(parts)
        return names, text

    context_class.help_for = help_for


def _wrap_listings(program_class: Any) -> None:
    """``invoke --list`` / ``--help TASK`` into a closed pipe (``| head``): exit 141
    quietly, as the tasks do, instead of Invoke's BrokenPipeError traceback."""
    for name in ("list_tasks", "print_task_help", "print_help"):
        original = getattr(program_class, name)

        def listing(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            try:
                result = _original(self, *args, **kwargs)
                sys.stdout.flush()
                return result
            except BrokenPipeError:
                quiet_broken_pipe()
                raise SystemExit(EXIT_BROKEN_PIPE) from None

        setattr(program_class, name, listing)


def quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
