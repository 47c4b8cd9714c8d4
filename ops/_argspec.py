"""One declaration of an ops program's arguments, read by both sides.

A program lists its arguments as :class:`Arg` objects. From that one tuple come the
host-side argparse parser (a program still runs by hand: ``--help``, exit code 2), the
check of the JSON document a fleet run sends on stdin (:func:`from_document`), and on the
control machine (``fleetops.ship.programs``) the validation of option values, the
playbook action's arguments, the invoke help entries and ``docs/programs.md``.

Types are named converters shared by both sides (:data:`TYPES`): each turns one command
line word into a value or raises ValueError; its ``kind`` is the JSON type of the value
(``bool``, ``int``, ``number``, ``str``). A program may pass its own converter function
(given a ``kind`` attribute) for a type only it uses.

The JSON document (:func:`encode_document`): one object, the argument destinations as
keys, converted values (lists for repeatable arguments); absent keys take their
defaults. Framed on stdin as 8 ASCII digits (its length in bytes) then the document.
Python 3.8, stdlib only; ``json``/``argparse`` are imported only when needed (``re``
costs ~5 ms of every host run).
"""

ARGS_FLAG = "--fleetops-args"
SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS: an option left out sets no attribute
DOC_LIMIT = 1 << 20  # bytes: a larger argument document is refused on both sides
HEADER = 8  # ASCII digits of the document's length


class ArgsError(ValueError):
    """A bad argument or argument document: ``str()`` is a one-line reason."""


def converter(func, kind, name=None, text=None):
    """Give ``func`` (text -> value, ValueError) the JSON ``kind`` of its values, a name
    for error messages and ``text`` (value -> command line word) when ``str`` is wrong."""
    func.kind = kind
    if name:
        func.__name__ = name
    if text:
        func.text = text
    return func


def _octal(value):
    return "%04o" % value


def _text(value):
    return value


def _positive_seconds(text):
    value = _finite(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _octal_mode(text):
    digits = text[1:] if len(text) == 5 and text[:1] == "0" else text
    if len(digits) not in (3, 4) or not all(c in "01234567" for c in digits):
        raise ValueError(text)
    return int(digits, 8)


def _flag(value):
    return bool(value)


#: name -> converter(text) -> value; ``converter.kind`` is the value's JSON type
TYPES = {
    "str": converter(_text, "str", "str"),
    "path": converter(lambda text: text, "str", "path"),
    "glob": converter(lambda text: text, "str", "glob"),
    "int": converter(lambda text: int(text), "int", "int"),
    "float": converter(lambda text: float(text), "number", "float"),
    "seconds": converter(_positive_seconds, "number", "seconds"),
    "mode": converter(_octal_mode, "int", "octal mode", _octal),
    "flag": converter(_flag, "bool", "flag"),
}


class Arg(object):
    """One argument: ``name`` is ``--flag`` or a positional name.

    ``type``: a :data:`TYPES` name or a converter with a ``kind``; ``repeat``: may be
    given many times (a list; a positional takes any number of words); ``secret``: only
    ever in the stdin document, never on a command line (the host parser has no such
    option); ``group``: help section title; ``dest``: the value's key (default: the name
    without dashes, ``-`` as ``_``); ``check``: ``check(values)`` raising ValueError for
    cross-argument rules, run on the control machine; ``private``: derived from content
    that may be secret (a size, a digest): a fleet run sends a document holding it on
    stdin, never in the host's argv (``ps`` shows argv to every user of the host); the
    host parser still has the option for runs by hand."""

    __slots__ = ("name", "type", "default", "choices", "help", "repeat", "secret", "metavar",
                 "group", "required", "dest", "check", "private")

    def __init__(self, name, type="str", default=None, choices=None, help=None, repeat=False,
                 secret=False, metavar=None, group=None, required=False, dest=None, check=None,
                 private=False):
        self.name = name
        self.type = TYPES[type] if isinstance(type, str) else type
        self.default = default
        self.choices = tuple(choices) if choices else None
        self.help = help
        self.repeat = repeat
        self.secret = secret
        self.metavar = metavar
        self.group = group
        self.required = required
        self.dest = dest or name.lstrip("-").replace("-", "_")
        self.check = check
        self.private = private

    @property
    def positional(self):
        return not self.name.startswith("-")

    @property
    def kind(self):
        return self.type.kind

    def initial(self):
        """The value when the argument is absent (a fresh list for a list default)."""
        if isinstance(self.default, (list, tuple)):
            return list(self.default)
        return self.default


def add_to_parser(parser, args):
    """Add ``args`` to an argparse parser (groups in order of first use)."""
    groups = {}
    for arg in args:
        if arg.secret:
            continue
        target = parser
        if arg.group:
            if arg.group not in groups:
                groups[arg.group] = parser.add_argument_group(arg.group)
            target = groups[arg.group]
        target.add_argument(*_names(arg), **_options(arg))


def _names(arg):
    return [arg.dest] if arg.positional else [arg.name]


def _options(arg):
    options = {"help": arg.help}
    if arg.metavar:
        options["metavar"] = arg.metavar
    if arg.positional:
        options["nargs"] = "*" if arg.repeat else None
    elif arg.dest != _names(arg)[0].lstrip("-").replace("-", "_"):
        options["dest"] = arg.dest
    if arg.kind == "bool":
        options["action"] = "store_true"
        if arg.default == SUPPRESS:
            import argparse  # argparse tests its SUPPRESS by identity

            options["default"] = argparse.SUPPRESS
        return options
    if arg.repeat and not arg.positional:
        options["action"] = "append"
    if arg.type is not TYPES["str"]:
        options["type"] = arg.type
    if arg.choices:
        options["choices"] = arg.choices
    if arg.required:
        options["required"] = True
    if arg.default is not None or arg.repeat:
        options["default"] = arg.initial()
    return options


def defaults(args):
    """``{dest: value}`` of every argument left out (a flag: false)."""
    return {arg.dest: (False if arg.kind == "bool" and arg.default in (None, SUPPRESS)
                       else arg.initial())
            for arg in args}


class Command(object):
    """One sub-command (``PROGRAM NAME [ARGS]``): ``args`` a tuple of :class:`Arg`,
    ``help`` its line in the program's help, ``description``/``epilog`` its own help's
    (an epilog, text or a function returning it when the parser is built, is printed
    as written)."""

    __slots__ = ("name", "help", "args", "description", "epilog")

    def __init__(self, name, help, args, description=None, epilog=None):
        self.name = name
        self.help = help
        self.args = tuple(args)
        self.description = description
        self.epilog = epilog


def add_commands(parser, commands, dest, metavar=None):
    """Add ``commands`` (a sequence of :class:`Command`) as argparse sub-parsers; the
    chosen name is stored under ``dest`` (required)."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar)
    sub.required = True
    for command in commands:
        options = {"help": command.help}
        if command.description:
            options["description"] = command.description
        child = sub.add_parser(command.name, **options)
        if command.epilog:
            import argparse

            child.epilog = command.epilog() if callable(command.epilog) else command.epilog
            child.formatter_class = argparse.RawDescriptionHelpFormatter
        add_to_parser(child, command.args)


def encode_document(values):
    """The stdin frame of a JSON object of argument values (ASCII, keys sorted)."""
    import json

    try:
        body = json.dumps(values, sort_keys=True, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise ArgsError("argument values are not JSON: %s" % exc) from None
    if len(body) > DOC_LIMIT:
        raise ArgsError("argument document is %d bytes, over the limit of %d" % (
            len(body), DOC_LIMIT))
    return b"%08d" % len(body) + body


def split_frame(frame):
    """The document text of a frame (header + body); ArgsError when malformed."""
    head = frame[:HEADER]
    if len(head) < HEADER or not head.isdigit():
        raise ArgsError("argument document cut short or unframed on stdin")
    size = int(head)
    if size > DOC_LIMIT:
        raise ArgsError("argument document of %d bytes is over the limit of %d" % (
            size, DOC_LIMIT))
    body = frame[HEADER:]
    if len(body) != size:
        raise ArgsError("argument document cut short: %d of %d bytes" % (len(body), size))
    return body


def word_frame(text):
    """The frame in one argv word: as read by the loader (8 digits first), else base64
    (a small document sent in argv, see ``fleetops.ship.run.split_input``)."""
    if text[:HEADER].isdigit():
        return text.encode("latin-1")
    import binascii

    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise ArgsError("argument document is not base64") from None


def read_frame(read):
    """Read one frame with ``read(n)`` (may return less; b"" at EOF): header + body."""
    data = _read_exact(read, HEADER)
    if len(data) == HEADER and data.isdigit() and int(data) <= DOC_LIMIT:
        data += _read_exact(read, int(data))
    return data


def _read_exact(read, size):
    data = b""
    while len(data) < size:
        chunk = read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _finite(text):
    value = float(text)
    if value - value != 0:
        raise ValueError("number %s is out of range" % text[:40])
    return value


def _reject(name):
    raise ValueError("%s is not JSON" % name)


def loads(body):
    """Parse one JSON value with the C scanner of ``_json`` (no ``re``: the ``json``
    package costs ~5 ms of start-up); strict: NaN/Infinity refused. ArgsError."""
    if isinstance(body, bytes):
        if not body.isascii():
            raise ArgsError("argument document is not ASCII JSON")
        body = body.decode("ascii")
    text = body.strip(" \t\r\n")
    try:
        value, end = _scanner()(text, 0)
    except Exception:  # a bad document: the json package words the reason
        value, end = _slow_loads(text)
    if end != len(text):
        raise ArgsError("argument document has extra data after its JSON value")
    return value


def _slow_loads(text):
    import json

    try:
        return json.JSONDecoder(parse_constant=_reject, parse_float=_finite).raw_decode(text)
    except (ValueError, RecursionError) as exc:
        raise ArgsError("argument document is not valid JSON (%s)" % exc) from None


def _scanner():
    try:
        from _json import make_scanner
    except ImportError:  # a Python without the accelerator: the json package
        return _slow_loads
    return make_scanner(_Context())


class _Context(object):
    """What ``_json.make_scanner`` reads from a decoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(_finite)
    parse_int = int
    parse_constant = staticmethod(_reject)
    memo = None


_JSON_TYPES = {"bool": (bool,), "int": (int,), "number": (int, float), "str": (str,)}


def check_value(arg, value):
    """``value`` from a JSON document, checked against ``arg``'s kind and choices."""
    if value is None and not arg.required and arg.kind != "bool":
        return None
    if arg.repeat:
        if not isinstance(value, list):
            raise ArgsError("argument %s: expected a list, got %s" % (arg.name, _what(value)))
        return [_scalar(arg, item) for item in value]
    return _scalar(arg, value)


def _scalar(arg, value):
    wanted = _JSON_TYPES[arg.kind]
    if not isinstance(value, wanted) or (arg.kind != "bool" and isinstance(value, bool)):
        raise ArgsError("argument %s: expected %s, got %s" % (arg.name, arg.kind, _what(value)))
    if arg.choices and value not in arg.choices:
        raise ArgsError("argument %s: invalid choice: %r (choose from %s)" % (
            arg.name, value, ", ".join(repr(c) for c in arg.choices)))
    return value


def _what(value):
    return "%s %.40r" % (type(value).__name__, value)


def from_document(args, body, commands=None, dest=None):
    """``{dest: value}`` from a JSON document's text: unknown keys, wrong types and
    missing required arguments are ArgsError; absent ones take their defaults. With
    ``commands`` (:class:`Command` sequence) the document's ``dest`` key names the
    sub-command, whose arguments are checked after ``args`` (the program's own)."""
    doc = loads(body)
    if not isinstance(doc, dict):
        raise ArgsError("argument document is not a JSON object")
    if commands:
        doc = dict(doc)
        name = doc.pop(dest, None)
        chosen = [command for command in commands if command.name == name]
        if not chosen:
            raise ArgsError("argument %s: invalid choice: %.40r (choose from %s)" % (
                dest, name, ", ".join(repr(command.name) for command in commands)))
        values = _from_doc(tuple(args) + chosen[0].args, doc)
        values[dest] = name
        return values
    return _from_doc(args, doc)


def _from_doc(args, doc):
    by_dest = {}
    for arg in args:
        by_dest[arg.dest] = arg
    unknown = sorted(key for key in doc if key not in by_dest)
    if unknown:
        raise ArgsError("argument document has unknown keys: %s" % ", ".join(unknown[:5]))
    values = defaults(args)
    for key, value in doc.items():
        values[key] = check_value(by_dest[key], value)
    for arg in args:
        if arg.required and values[arg.dest] is None:
            raise ArgsError("argument %s is required" % arg.name)
    return values
