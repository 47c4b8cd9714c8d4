"""A fake sudo(8) for the fake hosts of :mod:`fleetops.core.testing`, for fast sudo tests.

``FakeHost(FakeSudo(program, password="pw"))`` answers the command lines
:func:`fleetops.core.become.become_command` builds (``sudo -H [-n] [-S] [-p PROMPT] -u
USER -- /bin/sh -c INNER``) the way sudo 1.9 does: ``-n`` with a password needed fails
("a password is required"), otherwise PROMPT goes to stderr (to the tty with a pty), one
line is read from stdin and compared, "Sorry, try again." and a new prompt after a wrong
one, "N incorrect password attempts" after three; ``requiretty`` without a pty fails with
"you must have a tty". Then INNER's marker (the word after its first ``echo``) is
printed as sudo's shell would, and ``program`` runs the command (INNER's last word) with
``proc.user`` set; on a pty its stdin is the length-framed relay of ``become`` (unframed
here) and its stderr shares stdout. ``log`` records what happened, in order:
``("prompt", stdin_already_there)``, ``("password", ok)``, ``("run", user, command)``.
Commands not starting with ``sudo`` go to ``program`` unchanged.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from fleetops.core.testing import FakeProcess, Program

TRIES = 3  # sudoers passwd_tries


@dataclass
class FakeSudo:
    """A fake host's program with sudo in front (see the module docstring).
    ``password`` None: NOPASSWD."""

    program: Program
    password: str | None = None
    requiretty: bool = False
    log: list[tuple[Any, ...]] = field(default_factory=list)

    def __call__(self, proc: FakeProcess) -> int | None:
        argv = shlex.split(proc.command)
        if argv[:1] != ["sudo"]:
            return self.program(proc)
        flags, user, prompt, inner = _parse(argv)
        tty = "stdout" if proc.pty else "stderr"  # where sudo talks
        if self.requiretty and not proc.pty:
            proc.write(b"sudo: sorry, you must have a tty to run sudo\n", "stderr")
            return 1
        if self.password is not None:
            if "-n" in flags:
                proc.write(b"sudo: a password is required\n", "stderr")
                return 1
            if not self._ask(proc, prompt, tty):
                return 1
        words = shlex.split(inner)
        marker, command = words[words.index("echo") + 1].rstrip(";"), words[-1]
        proc.write(marker.encode() + (b"\r\n" if proc.pty else b"\n"), tty)
        self.log.append(("run", user, command))
        return self.program(_AsUser(proc, command, user))

    def _ask(self, proc: FakeProcess, prompt: str, tty: str) -> bool:
        for _ in range(TRIES):
            self.log.append(("prompt", proc.stdin_waiting()))
            proc.write(prompt.encode(), tty)
            line = _readline(proc)
            ok = line == (self.password or "").encode() + b"\n"
            self.log.append(("password", ok))
            if proc.pty:
                proc.write(b"\r\n", "stdout")  # sudo's newline after the (unechoed) password
            if ok:
                return True
            proc.write(b"Sorry, try again.\n", tty)
        proc.write(f"sudo: {TRIES} incorrect password attempts\n".encode(), tty)
        return False


def _parse(argv: list[str]) -> tuple[set[str], str, str, str]:
    """(flags, user, prompt, inner shell command) of a ``become_command`` line."""
    flags: set[str] = set()
    user, prompt = "root", "Password: "
    i = 1
    while argv[i] != "--":
        if argv[i] in ("-u", "-p"):
            if argv[i] == "-u":
                user = argv[i + 1]
            else:
                prompt = argv[i + 1]
            i += 2
            continue
        flags.add(argv[i])
        i += 1
    if argv[i + 1:i + 3] != ["/bin/sh", "-c"]:
        raise ValueError(f"fake sudo: unexpected command {argv[i + 1:]!r}")
    return flags, user, prompt, argv[i + 3]


def _readline(proc: Any) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = proc.read(1)
        if not byte:
            break
        line += byte
    return bytes(line)


class _AsUser:
    """The program's view of the command sudo started: its own command line, the user,
    and on a pty the relay's frames (``N\\n`` + N bytes, ``0\\n`` = EOF) undone."""

    def __init__(self, proc: FakeProcess, command: str, user: str) -> None:
        self._proc = proc
        self.command = command
        self.user = user
        self._buf = bytearray()
        self._eof = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._proc, name)

    def write(self, data: bytes, stream: str = "stdout") -> None:
        self._proc.write(data, "stdout" if self._proc.pty else stream)

    def read(self, size: int = -1) -> bytes:
        if not self._proc.pty:
            return self._proc.read(size)
        while not self._eof and (size < 0 or not self._buf):
            length = int(_readline(self._proc) or b"0")
            if length == 0:
                self._eof = True
                break
            while length:
                chunk = self._proc.read(length)
                if not chunk:
                    self._eof = True
                    break
                self._buf += chunk
                length -= len(chunk)
        cut = len(self._buf) if size < 0 else min(size, len(self._buf))
        data = bytes(self._buf[:cut])
        del self._buf[:cut]
        return data
