"""The checks of option values (numbers, time bounds, sizes, login user) and the running
task's ``-u/--remote-user``: used by the shared options' declarations
(:mod:`fleetops.cli.options`) and by :func:`fleetops.cli.common.runner_options`.
A bad value is :class:`fleetops.errors.OptionError` (one line, exit 5). No heavy imports."""

from __future__ import annotations

import contextvars
import math
from typing import Any

from fleetops.errors import OptionError


def check_login_user(user: str) -> None:
    """OptionError (exit 5) for a ``-u/--remote-user`` with blanks or control characters."""
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in user):
        raise OptionError(f"-u/--remote-user: invalid user name {user!r}")


def number(value: Any, flag: str, minimum: float = 0.0, integer: bool = False) -> Any:
    """A finite number > ``minimum`` (``nan``, ``inf``, words: OptionError, exit 5)."""
    if value in (None, ""):
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"{flag} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise OptionError(f"{flag} must be a finite number, not {value!r}")
    if number <= minimum:
        raise OptionError(f"{flag} must be > {minimum:g}, not {value!r}")
    return number


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: Any, flag: str = "--max-output") -> int | None:
    """``4096``, ``64K``, ``4M``, ``1G`` (binary units, optional ``B``/``iB``) -> bytes;
    OptionError (exit 5) unless a whole number >= 1; None/"" -> None."""
    if value in (None, ""):
        return None
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in ("K", "M", "G") else ""
    digits = text[: len(text) - len(unit)]
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise OptionError(f"{flag} must be a size in bytes such as 65536, 64K or 4M, "
                          f"not {value!r}")
    return int(digits) * _SIZE_UNITS[unit]


def seconds(value: Any, flag: str, default: float | None) -> float | None:
    """A time bound in seconds: unset -> ``default``, ``0`` -> none (``inf``), else > 0."""
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"{flag} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise OptionError(f"{flag} must be a finite number of seconds >= 0 (0 = no limit), "
                          f"not {value!r}")
    return math.inf if number == 0 else number


_REMOTE_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fleetops_remote_user", default=None)


def remote_user() -> str | None:
    """The ``-u/--remote-user`` of the running task (None: not given)."""
    return _REMOTE_USER.get()
