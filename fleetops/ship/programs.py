"""The control side of the ops programs' argument specs (``ops._argspec``).

One declaration per program (its ``ARGS`` tuple of ``ops._argspec.Arg``) gives here:
the check of a command line with the host's own parser (:func:`parse_argv`), the framed
JSON document sent on stdin (:func:`frame_of_argv`), typed values turned back into a
command line (:func:`to_argv`), the check of one option value (:func:`check_option`),
invoke help entries (:func:`help_entries`) and the reference ``docs/programs.md``
(:func:`render_docs`). The control side imports ``ops``; ``ops`` never imports fleetops.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ops import _argspec
from ops._argspec import Arg, ArgsError
from ops._contract import Program, ProgramError
from ops._dispatch import PROGRAMS


def load(program: str) -> Program:
    """The ``PROGRAM`` of ``ops.<program>``; KeyError for a name not in ops._dispatch."""
    if program not in PROGRAMS:
        raise KeyError(program)
    return importlib.import_module(f"ops.{program}").PROGRAM


def spec(program: str, command: str | None = None) -> tuple[Arg, ...]:
    """The program's arguments (a daemon's: its service options after ``--``), or with
    ``command`` the program's own then that sub-command's (KeyError for an unknown one)."""
    prog = load(program)
    if command is not None:
        return tuple(prog.spec(command) or ())
    service = getattr(prog, "program_args", None)
    found = service if service is not None else prog.spec()
    return tuple(found or ())


def arg(program: str, dest: str, command: str | None = None) -> Arg:
    """The argument of ``program`` (sub-command ``command``) whose value key is ``dest``
    (KeyError if none); the last one declared wins, as in the host parser's values."""
    for item in reversed(spec(program, command)):
        if item.dest == dest:
            return item
    where = f"{program} {command}" if command else program
    raise KeyError(f"{where} has no argument {dest!r}")


def parse_argv(program: str, argv: Sequence[str]) -> dict[str, Any]:
    """``argv`` parsed with the host's own parser: ``{dest: value}``; ProgramError rc 2
    (``bad arguments: ...``, one line) when it is bad, or over ``DOC_LIMIT`` in all
    (refused before parsing: argparse's repeatable options are quadratic in their count)."""
    size = sum(len(word) + 1 for word in argv)
    if size > _argspec.DOC_LIMIT:
        raise ProgramError(f"bad arguments: {size} bytes of arguments, more than "
                           f"{_argspec.DOC_LIMIT} allowed", rc=2)
    return vars(load(program).parse(list(argv)))


def frame_of_argv(program: str, argv: Sequence[str]) -> bytes | None:
    """The stdin frame of ``argv``'s values (``ops._argspec.encode_document``), or None
    when the program parses argv on the host. ProgramError rc 2 when argv is bad or
    its document is over ``ops._argspec.DOC_LIMIT``."""
    prog = load(program)
    if not prog.parse_on_control:
        return None
    try:
        return _argspec.encode_document(parse_argv(program, argv))
    except ArgsError as exc:
        raise ProgramError(f"bad arguments: {exc}", rc=2) from None


def _word(item: Arg, value: Any) -> str:
    text = getattr(item.type, "text", None)
    if text is not None:
        return text(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_argv(program: str, values: Mapping[str, Any], joined: bool = True,
            command: str | None = None) -> list[str]:
    """A command line of ``values`` (``{dest: value}``, None/False/[] left out) with the
    spec's own spellings, in spec order: ``--flag=VALUE`` per value (``joined`` false:
    ``--flag VALUE``), a bare ``--flag`` for true flags, one word per positional value;
    with ``command`` the sub-command's name first. KeyError for an unknown dest."""
    known = {item.dest: item for item in spec(program, command)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise KeyError(f"{program} has no argument {unknown[0]!r}")
    argv: list[str] = [] if command is None else [command]
    for dest, item in known.items():
        value = values.get(dest)
        if value is None or value is False:
            continue
        items = value if isinstance(value, list | tuple) else [value]
        if item.positional:
            argv += [_word(item, v) for v in items]
        elif item.kind == "bool":
            argv.append(item.name)
        else:
            for v in items:
                argv += [f"{item.name}={_word(item, v)}"] if joined else [item.name,
                                                                          _word(item, v)]
    return argv


def check_option(program: str, dest: str, text: str, command: str | None = None) -> Any:
    """One option value given as text (an invoke option): the converted value, or
    ValueError ``OPTION: invalid TYPE value: 'TEXT'`` / ``OPTION: REASON`` (a converter's
    own reason, argparse's ArgumentTypeError) / ``... must be one of ...`` worded as the
    host parser would (the caller maps it to exit code 5)."""
    item = arg(program, dest, command)
    try:
        value = item.type(text)
    except (TypeError, ValueError) as exc:
        if type(exc).__name__ != "ArgumentTypeError" and not _own_reason(exc):
            raise ValueError(f"{item.name}: invalid {item.type.__name__} value: {text!r}"
                             ) from None
        raise ValueError(f"{item.name}: {exc}") from None
    if item.choices and value not in item.choices:
        raise ValueError(f"{item.name}: must be one of {', '.join(item.choices)}, not {text!r}")
    return value


def help_text(item: Arg) -> str:
    """An argument's help with argparse's ``%(default)s`` and ``%%`` expanded."""
    text = item.help or ""
    return text.replace("%(default)s", str(item.default)).replace("%%", "%")


def _own_reason(exc: Exception) -> bool:
    """A converter's reason argparse prints as is (an ArgumentTypeError subclass)."""
    return any(cls.__name__ == "ArgumentTypeError" for cls in type(exc).__mro__)


def help_entries(program: str, names: Iterable[str],
                 command: str | None = None) -> dict[str, str]:
    """Invoke ``help=`` entries (``{"inode-warn": help}``) for the named dests (of
    sub-command ``command``)."""
    return {dest.replace("_", "-"): help_text(arg(program, dest, command)) for dest in names}


_KIND_WORDS = {"bool": "flag", "int": "integer", "number": "number", "str": "text"}


def _row(item: Arg) -> str:
    name = item.name if not item.positional else (item.metavar or item.dest.upper())
    kind = item.type.__name__
    if kind == "<lambda>" or kind.startswith("_"):
        kind = _KIND_WORDS[item.kind]
    kind = "flag" if item.kind == "bool" else kind
    if item.repeat:
        kind += ", repeatable"
    if item.choices:
        kind += ": " + " \\| ".join(item.choices)
    default = "" if item.default in (None, (), []) or item.kind == "bool" else f"`{item.default}`"
    if item.required:
        default = "required"
    notes = help_text(item).replace("|", "\\|")
    if item.secret:
        notes += " (secret: stdin document only)"
    return f"| `{name}` | {kind} | {default} | {notes} |"


def _table(args: Iterable[Arg]) -> list[str]:
    return ["| argument | type | default | help |", "|---|---|---|---|",
            *(_row(item) for item in args)]


def _commands(prog: Program) -> list[str]:
    """The sub-command sections of ``docs/programs.md`` (argv parsed on the host)."""
    if not prog.commands:
        return ["Sub-commands, parsed on the host from argv: see "
                f"`python3 fleetops.pyz {prog.name} --help`.", ""]
    lines = [f"Sub-commands (`{prog.name} COMMAND [ARGS]`, parsed on the host from argv):", ""]
    for command in prog.commands:
        lines += [f"### {prog.name} {command.name}", "", command.help, ""]
        own = {item.dest: item for item in prog.spec(command.name)}  # the last one wins
        lines += [*_table(own.values()), ""]
    return lines


def render_docs() -> str:
    """``docs/programs.md``: every program's arguments from its spec (programs with
    sub-commands also get their host ``--help``)."""
    lines = ["# ops programs: arguments", "",
             "Generated from each program's argument spec (`ops/<program>.py` `ARGS`, see",
             "`ops/_argspec.py`) by `fleetops.ship.programs.render_docs`; "
             "`tests/test_programs_spec.py` checks it is current.", ""]
    for name in PROGRAMS:
        prog = load(name)
        summary = (prog.doc or "").strip().splitlines()[0] if prog.doc else ""
        lines += [f"## {name}", "", summary, ""]
        if prog.args is not None and not prog.commands:
            how = ("checked on the control machine, sent to the host as one JSON document"
                   if prog.parse_on_control else "parsed on the host from argv")
            lines += [f"Arguments ({how}):", "", *_table(prog.spec()), ""]
            continue
        lines += _commands(prog)
        service = getattr(prog, "program_args", None)
        if service:
            lines += ["Service options (after `--`):", "", *_table(service), ""]
    return "\n".join(lines).rstrip() + "\n"
