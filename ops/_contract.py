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

from ops import _argspec
from ops._json import dumps

# A fleet run checks argv on the control machine against the program's argument spec
# (``ops._argspec``) and sends the values as one JSON document (a frame: 8 digits of
# length, then the JSON): a small one base64 in argv as ``FLAG=BASE64`` (it travels with
# the exec request), a large one first on stdin before the zipapp handshake, read by the
# bootstrap's loader at once and handed over as ``FLAG=FRAME``; a bare ``FLAG`` reads the
# frame from stdin here (a program run without the loader). The host then never
# imports argparse (and re, enum, gettext), a large share of each run's remote CPU.
ARGS_FLAG = _argspec.ARGS_FLAG


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
    """Argument values received from the control machine (an argparse.Namespace twin)."""

    def __init__(self, values):
        self.__dict__.update(values)


class Program(object):
    """An ops program: name, docstring, arguments and a run function.

    ``arguments``: a tuple of :class:`ops._argspec.Arg` (the one declaration every side
    reads), or an argparse builder ``add_arguments(parser)``. ``commands``: sub-commands
    (a sequence of :class:`ops._argspec.Command`, e.g. cron's install/remove/list), the
    name chosen stored as ``command_dest``, shown as ``command_metavar`` in help.
    ``parse_on_control``: the values are checked on the control machine and sent as the
    JSON document (true only when parsing depends on nothing host-specific)."""

    def __init__(self, name, doc, arguments, run, supports_check=False,
                 parse_on_control=False, epilog=None, commands=None, command_dest="action",
                 command_metavar=None):
        self.name = name
        self.doc = doc
        self.args = tuple(arguments) if isinstance(arguments, (tuple, list)) else None
        self.add_arguments = arguments if self.args is None else self._add_spec
        self.commands = tuple(commands or ())
        self.command_dest = command_dest
        self.command_metavar = command_metavar
        self.run = run
        self.supports_check = supports_check
        self.parse_on_control = parse_on_control and self.args is not None
        self.epilog = epilog

    def _add_spec(self, parser):
        _argspec.add_to_parser(parser, self.args)
        if self.commands:
            _argspec.add_commands(parser, self.commands, self.command_dest,
                                  self.command_metavar)

    def spec(self, command=None):
        """The argument spec with ``--check`` when supported (None: argparse only), then
        sub-command ``command``'s arguments (KeyError for an unknown name)."""
        if self.args is None:
            return None
        found = self.args
        if self.supports_check:
            found = found + (_argspec.Arg("--check", "flag",
                                          help="dry run: report what would change"),)
        if command is not None:
            found = found + self.command(command).args
        return found

    def command(self, name):
        """The :class:`ops._argspec.Command` called ``name`` (KeyError if none)."""
        for command in self.commands:
            if command.name == name:
                return command
        raise KeyError(name)

    def parser(self):
        parser = _parser_class()(
            prog="fleetops.pyz " + self.name,
            description=(self.doc or "").strip().splitlines()[0] if self.doc else None,
        )
        if self.epilog:
            import argparse

            parser.formatter_class = argparse.RawDescriptionHelpFormatter
            parser.epilog = self.epilog
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

    def from_document(self, word):
        """The arguments of ``FLAG=DOCUMENT`` (the loader read the frame) or a bare
        ``FLAG`` (the frame is read from stdin here); ProgramError rc 2 when bad."""
        try:
            if word == ARGS_FLAG:
                stream = sys.stdin.buffer
                body = _argspec.split_frame(_argspec.read_frame(stream.read))
            else:
                body = _argspec.split_frame(_argspec.word_frame(word[len(ARGS_FLAG) + 1:]))
            return _Args(_argspec.from_document(self.spec(), body, self.commands,
                                                self.command_dest))
        except _argspec.ArgsError as exc:
            raise ProgramError("bad arguments: %s" % exc, rc=2) from None

    def main(self, argv=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        try:
            if (len(argv) == 1 and self.parse_on_control
                    and argv[0].split("=", 1)[0] == ARGS_FLAG):
                args = self.from_document(argv[0])
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
