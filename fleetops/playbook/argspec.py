"""Argument kinds of playbook actions: one ``coerce`` used before the run and per host.

Static values are checked when the playbook is loaded (errors name file:line);
templated values are checked again after rendering, per host. An action that runs an ops
program takes its arguments from the program's spec (:func:`program_args`): kind and
choices come from there, and each value is also checked with the program's own converter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_MODE = re.compile(r"^0?[0-7]{3,4}$")
_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}
READONLY = "readonly"  # changes nothing: runs in check mode as usual
SUPPORTS_CHECK = "supports_check"  # runs in a dry mode that reports what would change
UNPREDICTABLE = "unpredictable"  # skipped in check mode unless the task sets check_mode_safe


class ArgError(ValueError):
    """A bad argument value: ``str()`` is a short reason."""


@dataclass(frozen=True)
class Arg:
    """One action argument: kind (str, path, int, number, bool, list, mode), required, default."""

    kind: str = "str"
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    program: str | None = None  # the ops program whose spec declares it (ops._argspec)
    dest: str | None = None  # its key in that spec
    command: str | None = None  # the program's sub-command declaring it (cron's install)


@dataclass(frozen=True)
class ActionSpec:
    """An action: its arguments, check-mode behaviour and host-side execution."""

    name: str
    args: Mapping[str, Arg]
    check: str
    execute: Callable[..., Any]
    summary: str
    free_form: str | None = None  # ``run: "cmd"`` means ``run: {command: "cmd"}``
    validate: Callable[[dict[str, Any]], None] | None = None
    keys: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.args))


def _what(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _scalar_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or not isinstance(value, int | float):
        hint = " (quote it in YAML)" if isinstance(value, bool) or value is None else ""
        raise ArgError(f"argument '{name}' must be a string, not {_what(value)}{hint}")
    return str(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", value):
        return int(value)
    raise ArgError(f"argument '{name}' must be an integer, not {_what(value)}")


def _number(name: str, value: Any) -> float:
    """A finite number (``.nan``, ``.inf``, ``"1e999"`` are refused)."""
    number: Any = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ArgError(f"argument '{name}' must be a number, not {_what(value)}")
    if not math.isfinite(number):
        raise ArgError(f"argument '{name}' must be a finite number, not {_what(value)}")
    return number


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise ArgError(f"argument '{name}' must be true or false, not {_what(value)}")


def _listing(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [_scalar_text(f"{name}[{i}]", item) for i, item in enumerate(value)]
    raise ArgError(f"argument '{name}' must be a list of strings, not {_what(value)}")


def _mode(name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ArgError(f"argument '{name}' must be a quoted octal string like \"0644\", not the "
                       f"number {value} (YAML reads an unquoted 0644 as 420)")
    if not isinstance(value, str) or not _MODE.match(value.strip()):
        raise ArgError(f"argument '{name}' must be an octal mode like \"0644\", not {_what(value)}")
    return "0" + value.strip().lstrip("0").rjust(3, "0")


def _path(name: str, value: Any) -> str:
    text = _scalar_text(name, value)
    if not text.startswith("/"):
        raise ArgError(f"argument '{name}' must be an absolute path, not {text!r}")
    return text


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    raise ArgError(f"argument '{name}' must be a mapping of names to values, not {_what(value)}")


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "str": _scalar_text, "path": _path, "int": _integer, "number": _number,
    "bool": _boolean, "list": _listing, "mode": _mode, "mapping": _mapping,
}


def coerce(name: str, arg: Arg, value: Any) -> Any:
    """The checked value of argument ``name``; ArgError with a one-line reason."""
    result = _COERCE[arg.kind](name, value)
    if arg.choices and result not in arg.choices:
        raise ArgError(f"argument '{name}' must be one of {', '.join(arg.choices)}, "
                       f"not {result!r}")
    if arg.program and arg.dest and arg.kind not in ("bool", "mapping"):
        for item in result if isinstance(result, list) else [result]:
            _program_check(name, arg, item)
    return result


def _program_check(name: str, arg: Arg, value: Any) -> None:
    from fleetops.ship.programs import check_option

    text = number_text(value) if isinstance(value, float) else str(value)
    try:
        check_option(arg.program or "", arg.dest or "", text, arg.command)
    except ValueError as exc:
        raise ArgError(f"argument '{name}': {exc}") from None


_SPEC_KINDS = {"bool": "bool", "int": "int", "number": "number", "str": "str"}


def program_arg(program: str, dest: str, kind: str | None = None,
                required: bool = False, command: str | None = None) -> Arg:
    """An action argument declared by ops program ``program``'s spec (argument ``dest``,
    of sub-command ``command``): ``list`` when repeatable, else the spec's kind (``kind``
    overrides, e.g. ``path``); no default (the program's own applies), flags default to
    false."""
    from fleetops.ship.programs import arg as spec_arg

    item = spec_arg(program, dest, command)
    kind = kind or ("list" if item.repeat else _SPEC_KINDS[item.kind])
    return Arg(kind, required, False if kind == "bool" else None, item.choices or (),
               program, dest, command)


def program_args(program: str, names: Mapping[str, str],
                 **kinds: str) -> dict[str, Arg]:
    """``{action key: Arg}`` for ``names`` (action key -> the spec's dest)."""
    return {key: program_arg(program, dest, kinds.get(key)) for key, dest in names.items()}


def complete(spec: ActionSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Coerced arguments with defaults filled in, then the action's own cross checks."""
    args: dict[str, Any] = {}
    for name, arg in spec.args.items():
        if name in raw and raw[name] is not None:
            args[name] = coerce(name, arg, raw[name])
        elif arg.required:
            raise ArgError(f"missing argument '{name}'")
        else:
            args[name] = arg.default
    if spec.validate is not None:
        spec.validate(args)
    return args


def number_text(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
