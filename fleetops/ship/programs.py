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


def spec(program: str) -> tuple[Arg, ...]:
    """The program's arguments (a daemon's: its service options after ``--``)."""
    prog = load(program)
    found = prog.spec() if prog.args is not None else getattr(prog, "program_args", None)
    return tuple(found or ())


def arg(program: str, dest: str) -> Arg:
    """The argument of ``program`` whose value key is ``dest`` (KeyError if none)."""
    for item in spec(program):
        if item.dest == dest:
            return item
    raise KeyError(f"{program} has no argument {dest!r}")


def parse_argv(program: str, argv: Sequence[str]) -> dict[str, Any]:
    """``argv`` parsed with the host's own parser: ``{dest: value}``; ProgramError rc 2
    (``bad arguments: ...``, one line) when it is bad."""
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


def to_argv(program: str, values: Mapping[str, Any], joined: bool = True) -> list[str]:
    """A command line of ``values`` (``{dest: value}``, None/False/[] left out) with the
    spec's own spellings, in spec order: ``--flag=VALUE`` per value (``joined`` false:
    ``--flag VALUE``), a bare ``--flag`` for true flags, one word per positional value.
    KeyError for an unknown dest."""
    known = {item.dest: item for item in spec(program)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise KeyError(f"{program} has no argument {unknown[0]!r}")
    argv: list[str] = []
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


def check_option(program: str, dest: str, text: str) -> Any:
    """One option value given as text (an invoke option): the converted value, or
    ValueError ``OPTION: invalid TYPE value: 'TEXT'`` / ``... must be one of ...``
    worded as the host parser would (the caller maps it to exit code 5)."""
    item = arg(program, dest)
    try:
        value = item.type(text)
    except (TypeError, ValueError):
        raise ValueError(f"{item.name}: invalid {item.type.__name__} value: {text!r}") from None
    if item.choices and value not in item.choices:
        raise ValueError(f"{item.name}: must be one of {', '.join(item.choices)}, not {text!r}")
    return value


def help_text(item: Arg) -> str:
    """An argument's help with argparse's ``%(default)s`` and ``%%`` expanded."""
    text = item.help or ""
    return text.replace("%(default)s", str(item.default)).replace("%%", "%")


def help_entries(program: str, names: Iterable[str]) -> dict[str, str]:
    """Invoke ``help=`` entries (``{"inode-warn": help}``) for the named dests."""
    return {dest.replace("_", "-"): help_text(arg(program, dest)) for dest in names}


_KIND_WORDS = {"bool": "flag", "int": "integer", "number": "number", "str": "text"}


def _row(item: Arg) -> str:
    name = item.name if not item.positional else (item.metavar or item.dest.upper())
    kind = item.type.__name__ if item.type.__name__ != "<lambda>" else _KIND_WORDS[item.kind]
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
        if prog.args is not None:
            how = ("checked on the control machine, sent to the host as one JSON document"
                   if prog.parse_on_control else "parsed on the host from argv")
            lines += [f"Arguments ({how}):", "", *_table(prog.spec()), ""]
            continue
        lines += ["Sub-commands, parsed on the host from argv: see "
                  f"`python3 fleetops.pyz {name} --help`.", ""]
        service = getattr(prog, "program_args", None)
        if service:
            lines += ["Service options (after `--`):", "", *_table(service), ""]
    return "\n".join(lines).rstrip() + "\n"
