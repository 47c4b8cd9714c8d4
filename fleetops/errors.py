"""Errors the CLI turns into one line and an exit code, never a traceback."""

DEFAULT_FORKS = 64  # here, not in runner: the CLI modules need it without importing paramiko
# Every task is bounded in time by default (issue 11): a remote command that runs longer is
# killed and its host fails; the host deadline is derived (connect timeout + this + 5 s).
DEFAULT_COMMAND_TIMEOUT = 300.0

EXIT_OK = 0
EXIT_FAILED = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_INPUT = 4
EXIT_BAD_OPTIONS = 5
EXIT_INTERRUPTED = 99
EXIT_BROKEN_PIPE = 141  # stdout closed by the reader (``| head``): 128 + SIGPIPE, like a shell


def visible(text: str) -> str:
    """``text`` with every non-printable character (newline, ESC, U+2028...) written as its
    Python escape, so a message quoting bad input stays one harmless line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class FleetopsError(Exception):
    """A user-facing error: ``str()`` is the one line to print (control characters
    escaped, see :func:`visible`)."""

    exit_code = EXIT_BAD_INPUT

    def __str__(self) -> str:
        return visible(super().__str__())


class InputError(FleetopsError):
    """Bad inventory, playbook, template, CIDR...: names the file and line when known."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class OptionError(FleetopsError):
    """A bad command-line option value."""

    exit_code = EXIT_BAD_OPTIONS
