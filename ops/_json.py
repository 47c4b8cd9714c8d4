"""A small JSON writer for the one document every program prints.

The standard ``json`` package imports ``re`` (and with it ``enum``): about 5 ms of
interpreter start-up on every host, every run, which is a large share of a fleet
run's remote CPU. Output equals ``json.dumps(obj, sort_keys=True, default=str)``
for the types programs emit: dict, list, tuple, str, int, float, bool, None.
"""

_SIMPLE = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x08: "\\b",
           0x0C: "\\f"}
_ESCAPES = {}
for _code in range(0x20):
    _ESCAPES[_code] = _SIMPLE.get(_code, "\\u%04x" % _code)
_ESCAPES.update(_SIMPLE)
_ESCAPES[0x7F] = "\\u007f"


def _string(text):
    if text.isascii():
        return '"' + text.translate(_ESCAPES) + '"'
    parts = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            parts.append(_ESCAPES.get(code, char))
        elif code < 0x10000:
            parts.append("\\u%04x" % code)
        else:
            code -= 0x10000
            parts.append("\\u%04x\\u%04x" % (0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF)))
    return '"' + "".join(parts) + '"'


def _float(value):
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
    return repr(value)


def dumps(obj):
    """``obj`` as compact-spaced JSON (``", "`` and ``": "`` like json.dumps), keys sorted."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return _string(obj)
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=_first)
        return "{" + ", ".join(_string(_key(k)) + ": " + dumps(v) for k, v in items) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(dumps(item) for item in obj) + "]"
    return _string(str(obj))


def _first(item):
    return item[0]


def _key(key):
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return dumps(key)
    if isinstance(key, float):
        return _float(key)
    return str(key)
