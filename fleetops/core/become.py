"""Privilege escalation with sudo(8), done so the password only ever reaches sudo.

The command runs as ``sudo -H -S -p PROMPT -u USER -- /bin/sh -c 'echo OK >&2; exec
/bin/sh -c CMD'``. PROMPT and OK are random per run. Before any of the command's stdin
is sent, stderr is read byte by byte: PROMPT means sudo asks (the password is sent,
once; a second PROMPT means it was wrong and the command fails at once), OK means sudo
let the command start (nothing was sent when sudo did not ask: root, NOPASSWD). sudo
ending without OK is a failure with sudo's own words. Hosts whose sudoers say
``requiretty`` are retried with a pty: sudo then prompts on the tty (echo off), the tty
is put in raw mode, and the command's stdin goes through a small length-framed relay
(``N\\n`` + N bytes, ``0\\n`` = EOF) because a raw tty cannot carry an EOF.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import time
import weakref
from dataclasses import dataclass, field

from fleetops.core import reap
from fleetops.core.pollfd import readable
from fleetops.core.ssh import CommandTimeout, Exec
from fleetops.core.transport import Stream

_TOKEN = secrets.token_hex(8)
PROMPT = f"[fleetops-sudo-{_TOKEN}]".encode()
OK = f"FLEETOPS-BECOME-{_TOKEN}".encode()
WRONG = (b"Sorry, try again", b"incorrect password")
NO_TTY = b"must have a tty"
# sudo must ask (PROMPT) or start the command (OK) within this many seconds; anything else
# (a PAM prompt fleetops does not know, a hung name service) fails the host, not the run.
HANDSHAKE_TIMEOUT = 30.0
RELAY = ('while IFS= read -r n && [ "$n" -gt 0 ] 2>/dev/null; do head -c "$n"; done | ')
# Connections whose host needs a pty for sudo (requiretty), learnt once per run.
_NEEDS_PTY: weakref.WeakSet = weakref.WeakSet()


class BecomeError(Exception):
    """sudo refused or failed before the command started: ``str()`` is the reason."""


class _NeedTty(Exception):
    pass


@dataclass(slots=True)
class Become:
    """Who to become and how; ``password`` is never printed (repr hides it)."""

    user: str = "root"
    password: str | None = field(default=None, repr=False)
    method: str = "sudo"


def settings(options, target) -> Become | None:
    """The host's become settings: ``Target.become*`` (inventory) override the run's
    ``--become``, ``--become-user`` and become password. None: no escalation."""
    enabled = target.become if target.become is not None else options.become
    if not enabled:
        return None
    method = target.become_method or "sudo"
    if method != "sudo":
        raise BecomeError(f"become method {method!r} is not supported (only sudo)")
    password = (target.become_password if target.become_password is not None
                else options.become_password)
    if password is not None and ("\n" in password or "\r" in password):
        raise BecomeError("the become password contains a line break: sudo reads one line")
    return Become(target.become_user or options.become_user or "root", password, method)


def become_command(command: str, become: Become, pty: bool = False) -> str:
    """The sudo command line for ``command`` (quoted; the password is never in it)."""
    inner = "/bin/sh -c " + shlex.quote(command)
    if pty:
        inner = f"stty raw -echo 2>/dev/null; echo {OK.decode()}; {RELAY}{inner}"
    else:
        inner = f"echo {OK.decode()} >&2; exec {inner}"
    flags = "-H"
    if become.password is None:
        flags += " -n"
    else:
        flags += (" -S" if not pty else "") + f" -p {shlex.quote(PROMPT.decode())}"
    return f"sudo {flags} -u {shlex.quote(become.user)} -- /bin/sh -c {shlex.quote(inner)}"


class SudoHook:
    """The ``hook`` of ``Transport.exec`` (:class:`fleetops.core.transport.Hook`): answers
    sudo's prompt before the command's stdin flows, and puts sudo's own stderr lines back
    in front of the command's. It talks to a :class:`~fleetops.core.transport.Stream`
    only, so any transport (SSH, local, the fake with :mod:`fleetops.core.fakesudo`) runs it."""

    def __init__(self, become: Become, login: str, host: str, pty: bool) -> None:
        self.become = become
        self.login = login
        self.host = host
        self.pty = pty
        self.before = b""

    def start(self, chan: Stream, deadline: float | None) -> Stream:
        """Wait for PROMPT or OK; return the stream the command's stdin goes to."""
        if self.pty:
            ready, recv = chan.recv_ready, chan.recv
        else:
            ready, recv = chan.recv_stderr_ready, chan.recv_stderr
        buf, prompts = bytearray(), 0
        limit = time.monotonic() + HANDSHAKE_TIMEOUT
        while True:
            while ready():
                data = recv(1)
                if not data:
                    break
                buf += data
                if buf.endswith(PROMPT):
                    del buf[-len(PROMPT):]
                    prompts += 1
                    self._answer(chan, prompts, buf)
                elif buf.endswith(OK + b"\n") or buf.endswith(OK + b"\r\n"):
                    self.before = bytes(buf[: buf.rindex(OK)])
                    return _FramedStdin(chan) if self.pty else chan
            if chan.eof_received or chan.closed:
                if not ready():
                    self._ended(chan, buf)
                continue
            if time.monotonic() >= limit:
                seen = bytes(buf).decode("utf-8", "replace").strip().splitlines()
                raise BecomeError(
                    f"sudo on {self.host} neither asked for the password nor started the "
                    f"command within {HANDSHAKE_TIMEOUT:g}s"
                    + (f" (last output: {seen[-1][:120]!r})" if seen else ""))
            _wait(chan, deadline)

    def _answer(self, chan, prompts: int, buf: bytearray) -> None:
        if self.become.password is None:  # not with -n; kept for a sudo that asks anyway
            raise BecomeError(self._needs_password())
        if prompts > 1 or any(w in buf for w in WRONG):
            raise BecomeError(f"sudo: incorrect password for {self.login} on {self.host}")
        chan.sendall(self.become.password.encode() + b"\n")

    def _ended(self, chan, buf: bytearray) -> None:
        """sudo exited without starting the command: say why, in one line."""
        text = bytes(buf)
        if NO_TTY in text:
            raise _NeedTty()
        if any(w in text for w in WRONG):
            raise BecomeError(f"sudo: incorrect password for {self.login} on {self.host}")
        if b"password is required" in text:
            raise BecomeError(self._needs_password())
        lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
        rc = chan.recv_exit_status() if chan.exit_status_ready() else None
        # every line: sudo names the cause first ("unknown user ops") and may add a
        # consequence after it ("error initializing audit plugin sudoers_audit")
        why = "; ".join(lines)[:300] if lines else f"exit status {rc}"
        raise BecomeError(f"sudo to {self.become.user} failed on {self.host}: {why}")

    def _needs_password(self) -> str:
        return (f"sudo: a password is required for {self.login} on {self.host} "
                "(--ask-become-pass, FLEETOPS_BECOME_PASSWORD or ansible_become_password)")

    def finish(self, result: Exec) -> Exec:
        """sudo's own lines (warnings, rc-file noise before it ran) go to stderr: on a pty
        they came on stdout, where they would corrupt a program's output."""
        before = self.before
        if self.pty:  # the newline sudo prints after the password shares the tty too
            before = before.replace(b"\r\n", b"\n").strip()
            before = before + b"\n" if before else b""
        result.stderr = before + result.stderr
        return result


class _FramedStdin:
    """A channel whose writes go through the remote relay of a pty session."""

    def __init__(self, chan) -> None:
        self._chan = chan

    def sendall(self, data: bytes) -> None:
        if data:
            self._chan.sendall(b"%d\n" % len(data) + data)

    def shutdown_write(self) -> None:
        self._chan.sendall(b"0\n")

    def __getattr__(self, name: str):
        return getattr(self._chan, name)


def _wait(chan, deadline: float | None) -> None:
    left = 5.0 if deadline is None else deadline - time.monotonic()
    if left <= 0:
        raise CommandTimeout("sudo did not answer before the command timeout")
    started = time.monotonic()
    readable([chan.fileno()], min(left, 0.5))
    if time.monotonic() - started < 0.002:  # readable, but only on the other stream
        time.sleep(0.005)


def run(conn, target, options, host: str, command: str, stdin,
        timeout: float | None) -> Exec:
    """``conn.exec`` with the host's become settings applied (see the module docstring);
    ``stdin`` is bytes, a dialog (``fleetops.core.transport.Dialog``) or None.

    A transport whose timed-out commands keep running on the host (``remote_kill``:
    SSH) gets the command marked and, on timeout, the kill of :mod:`fleetops.core.reap`
    over the same connection, through sudo when the command used it; the
    ``CommandTimeout`` is raised after that (its reason says if the kill failed).

    Raises BecomeError when sudo refuses or the password is wrong or missing."""
    become = settings(options, target)
    mark = reap.nonce() if timeout is not None and getattr(conn, "remote_kill", False) else None
    try:
        return _run(conn, become, target, host,
                    command if mark is None else reap.tag(command, mark), stdin, timeout)
    except CommandTimeout as exc:
        if mark is None:
            raise
        failure = _kill(conn, become, target, host, mark)
        if failure is None:
            raise
        raise CommandTimeout(f"{exc} ({failure})") from None


def _kill(conn, become: Become | None, target, host: str, mark: str) -> str | None:
    """End the processes of the timed-out command ``mark``; None, or why it failed."""
    try:
        result = _run(conn, become, target, host, reap.kill_script(mark), None,
                      reap.KILL_TIMEOUT_S)
    except Exception as exc:  # CommandTimeout, Unreachable, BecomeError: say it, go on
        return f"and ending it on the host failed: {exc}"
    if result.rc != 0:
        return "and it may still run on the host: it survived SIGKILL or the host has no /proc"
    return None


def _run(conn, become: Become | None, target, host: str, command: str, stdin,
         timeout: float | None) -> Exec:
    if become is None:
        return conn.exec(command, stdin, timeout)
    pty = conn in _NEEDS_PTY
    while True:
        hook = SudoHook(become, target.user, host, pty)
        try:
            return conn.exec(become_command(command, become, pty), stdin, timeout, hook=hook)
        except _NeedTty:
            if pty:
                raise BecomeError(f"sudo on {host} needs a tty (requiretty) and failed "
                                  "even with one") from None
            pty = True
            with contextlib.suppress(TypeError):
                _NEEDS_PTY.add(conn)
