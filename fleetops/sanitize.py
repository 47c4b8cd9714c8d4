"""Host-supplied text made safe for a terminal, a table cell, a mail or a file.

Every human-facing printer passes text that came from a host (command output, mount
and device names, reasons, SSH versions, cron lines...) through :func:`clean` (one
line: a table cell, a reason) or :func:`lines` (multi-line command output). ``--json``
output does not: it keeps the exact text, JSON-escaped.

Rendering is ``repr``-like, one escape per character, so nothing is lost:

* C0 controls, DEL and C1 controls: ``\\xNN`` (ESC is ``\\x1b``), except ``\\n``,
  ``\\r`` and ``\\t``, written as those two characters;
* Unicode format and separator characters that reorder or hide text (bidi
  embeddings, overrides and isolates U+202A-202E and U+2066-2069, zero-width and
  invisible characters, U+2028/U+2029, the BOM, tag characters, Hangul fillers):
  ``\\uNNNN`` or ``\\UNNNNNNNN``;
* bytes that were not UTF-8, carried as surrogate escapes (``bytes.decode(...,
  "surrogateescape")``, see :func:`decode`): ``\\xNN``, the original byte; any other
  lone surrogate ``\\udNNN``.

Everything else (backslashes included) is unchanged, and a text without any of these
characters is returned as is after one regex search (the fast path of every run).
"""

from __future__ import annotations

import re
from typing import Any

# Category Cc, Cf, Zl, Zp, Cs (checked against unicodedata in tests/test_sanitize.py),
# plus the invisible Hangul fillers (category Lo) used to forge blank-looking names.
_FORMAT = ("\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e"
           "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
           "\ud800-\udfff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
           "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f")
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_UNSAFE_BUT_TAB = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_FORMAT}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CACHE: dict[str, str] = {}


def escape_char(char: str) -> str:
    """The visible form of one unsafe character (see the module docstring)."""
    text = _CACHE.get(char)
    if text is None:
        code = ord(char)
        if char in _NAMED:
            text = _NAMED[char]
        elif code < 0x100:
            text = f"\\x{code:02x}"
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            text = f"\\x{code - 0xDC00:02x}"
        elif code < 0x10000:
            text = f"\\u{code:04x}"
        else:
            text = f"\\U{code:08x}"
        _CACHE[char] = text
    return text


def _sub(match: re.Match[str]) -> str:
    return escape_char(match.group())


def clean(text: Any, tabs: bool = False) -> str:
    """One line of host text for a terminal, table cell or file: every control,
    format or non-UTF-8 character escaped (``tabs``: a tab stays a tab). ``None`` is ""."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    pattern = _UNSAFE_BUT_TAB if tabs else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_sub, text)


def lines(text: str) -> list[str]:
    """Multi-line host output as cleaned lines: split on ``\\n`` only (a CR, form feed
    or U+2028 does not start a line of its own), one ``\\r`` before the ``\\n`` dropped
    (CRLF line ends), tabs kept, a final newline does not add an empty line."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [clean(part[:-1] if part.endswith("\r") else part, tabs=True) for part in parts]


def decode(data: bytes) -> str:
    """Remote bytes as text, losslessly: bytes that are not UTF-8 become surrogate
    escapes (U+DC80-U+DCFF), which :func:`clean` prints as ``\\xNN`` and ``--json``
    as ``\\udcNN``."""
    return data.decode("utf-8", "surrogateescape")


def safe_str(text: str) -> str:
    """``text`` encodable as strict UTF-8 (for files and mail): surrogate escapes of
    non-UTF-8 bytes become ``\\xNN``; nothing else changes. Fast when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", _sub, text)
    return text


CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell from host data: cleaned, and a text starting with ``= + - @`` (a
    spreadsheet formula) prefixed with ``'``. Numbers and ``None`` pass unchanged."""
    if not isinstance(value, str):
        return value
    text = clean(value)
    return "'" + text if text.startswith(CSV_RISKY) else text
