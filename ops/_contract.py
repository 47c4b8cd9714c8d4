"""The one contract every ops program follows.

A program declares its arguments (an argparse builder), optional ``--check``
support, and a ``run(args)`` function returning an :class:`Outcome` or raising
:class:`ProgramError`. :meth:`Program.main` checks the arguments before anything
runs and always prints exactly one JSON document on stdout::

    {"ok": bool, "changed": bool, "data": {...}, "error": str|null, "program": name}

Exit codes: 0 ok, 1 failed, 2 bad arguments; a program may pick another code
for an ok outcome (e.g. diskreport over its critical threshold) via ``Outcome.rc``.
Nothing else may be written to stdout: diagnostics go to stderr.
"""
import os
import sys

from ops._json import dumps

# A fleet run checks argv on the control machine (same spec, same argparse) and sends
# the parsed values: the host then never imports argparse (and re, enum, gettext), a
# large share of each run's remote CPU. ``FLAG BASE64`` carries them in argv, so they
# travel with the exec request and the program starts without waiting for its stdin
# (one round trip less per warm run); a bare ``FLAG`` reads them from stdin instead.
PARSED_ARGS_FLAG = "--fleetops-parsed-args"


class ProgramError(Exception):
    """An expected failure: reported as ``ok: false`` with this one-line reason."""

    def __init__(self, message, data=None, rc=1):
        Exception.__init__(self, message)
        self.data = data or {}
        self.rc = rc


class Outcome(object):
    __slots__ = ("changed", "data", "rc")

    def __init__(self, changed=False, data=None, rc=0):
        self.changed = bool(changed)
        self.data = data if data is not None else {}
        self.rc = rc


def result(ok, changed=False, data=None, error=None, program=None):
    doc = {"ok": bool(ok), "changed": bool(changed), "data": data or {}, "error": error}
    if program:
        doc["program"] = program
    return doc


def emit(doc, stream=None):
    stream = stream or sys.stdout
    stream.write(dumps(doc) + "\n")
    stream.flush()


class _ArgsError(Exception):
    pass


_PARSER_CLASS = []


def _parser_class():
    """argparse.ArgumentParser that raises instead of exiting (built on first use)."""
    if not _PARSER_CLASS:
        import argparse

        class _Parser(argparse.ArgumentParser):
            def error(self, message):
                raise _ArgsError(message)

            def _get_formatter(self):
                # argparse builds a formatter (importing shutil for the terminal width)
                # on every add_argument; only real help output needs the width.
                width = int(os.environ.get("COLUMNS", "0") or 0) or 100
                return self.formatter_class(prog=self.prog, width=width - 2)

        _PARSER_CLASS.append(_Parser)
    return _PARSER_CLASS[0]


class _Args(object):
    """Parsed arguments received from the control machine (an argparse.Namespace twin)."""

    def __init__(self, values):
        self.__dict__.update(values)


def encode_args(values):
    """Frame a dict of parsed argument values for :data:`PARSED_ARGS_FLAG` (4-byte length
    + marshal version 4: every Python 3 reads it, and it can carry no code)."""
    import marshal

    body = marshal.dumps(values, 4)
    return len(body).to_bytes(4, "big") + body


def _read_exact(stream, size):
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise ProgramError("bad arguments: parsed arguments cut short on stdin", rc=2)
        data += chunk
    return data


def _decode_arg_text(text):
    """The frame of :func:`encode_args`, base64 in one argv word."""
    import binascii

    try:
        frame = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise ProgramError("bad arguments: parsed arguments are not base64", rc=2) from None
    return _decode_args(_Frame(frame))


class _Frame(object):
    """Just enough of a binary stream over bytes for :func:`_read_exact`."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def read(self, size):
        chunk = self.data[self.at:self.at + size]
        self.at += len(chunk)
        return chunk


def _decode_args(stream):
    import marshal

    size = int.from_bytes(_read_exact(stream, 4), "big")
    values = marshal.loads(_read_exact(stream, size))
    if not isinstance(values, dict):
        raise ProgramError("bad arguments: parsed arguments are not a mapping", rc=2)
    return _Args(values)


class Program(object):
    """An ops program: name, docstring, argument spec and a run function."""

    def __init__(self, name, doc, add_arguments, run, supports_check=False,
                 parse_on_control=False):
        self.name = name
        self.doc = doc
        self.add_arguments = add_arguments
        self.run = run
        self.supports_check = supports_check
        # True only when parsing depends on nothing host-specific (defaults, types)
        self.parse_on_control = parse_on_control

    def parser(self):
        parser = _parser_class()(
            prog="fleetops.pyz " + self.name,
            description=(self.doc or "").strip().splitlines()[0] if self.doc else None,
        )
        self.add_arguments(parser)
        if self.supports_check:
            parser.add_argument(
                "--check", action="store_true", help="dry run: report what would change"
            )
        return parser

    def parse(self, argv):
        """Parse argv; raise ProgramError(rc=2) with a one-line reason on bad input."""
        try:
            return self.parser().parse_args(argv)
        except _ArgsError as exc:
            raise ProgramError("bad arguments: %s" % exc, rc=2) from None

    def encode(self, argv):
        """Parse argv here and frame the values for the host (ProgramError if bad)."""
        return encode_args(vars(self.parse(argv)))

    def main(self, argv=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        try:
            if argv[:1] == [PARSED_ARGS_FLAG] and len(argv) <= 2 and self.parse_on_control:
                args = (_decode_arg_text(argv[1]) if len(argv) == 2
                        else _decode_args(sys.stdin.buffer))
            else:
                args = self.parse(argv)
            outcome = self.run(args)
        except ProgramError as exc:
            emit(result(False, data=exc.data, error=str(exc), program=self.name))
            return exc.rc
        except KeyboardInterrupt:
            emit(result(False, error="interrupted", program=self.name))
            return 130
        except Exception as exc:  # the contract: a program never dies without its JSON
            import traceback

            traceback.print_exc(file=sys.stderr)
            emit(result(False, error="internal error: %s: %s" % (type(exc).__name__, exc),
                        program=self.name))
            return 1
        emit(result(True, outcome.changed, outcome.data, program=self.name))
        return outcome.rc
