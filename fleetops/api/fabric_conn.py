"""``c`` of a user task: a real ``fabric.Connection`` riding fleetops's own SSH transport.

fleetops opens, verifies (strict host keys, ProxyJump, agent, OpenSSH's credential
order) and authenticates the connection; the ``fabric.Connection`` made here never
connects by itself: its ``client`` is a ``paramiko.SSHClient`` whose transport is
fleetops's, ``open()`` does nothing while that transport lives and raises
:class:`ConnectionLost` once it is gone, ``close()`` closes only its SFTP session (the
runner owns the transport). So ``run``, ``sudo``, ``put``, ``get``, ``cd``, ``prefix``,
``local`` and Invoke's ``Result`` objects are Fabric's own (Fabric 3.x docs).

What differs, on purpose:

- ``sudo`` sends the become password (``--ask-become-pass``, ``FLEETOPS_BECOME_PASSWORD``,
  ``ansible_become_password``) only to sudo's own prompt, as :mod:`fleetops.core.become`: a
  random prompt, and a random marker sudo's child prints before the command starts;
  nothing is sent after it (Invoke's watcher would answer the prompt text anywhere in
  the command's output). No password: ``sudo -n``. A wrong or missing password raises
  :class:`SudoFailed`. The command runs as ``/bin/sh -c COMMAND`` under sudo, so
  ``cd``/``prefix`` apply inside it.
- with become on for the host (``--become``, ``ansible_become``), ``run`` goes through
  ``sudo`` too, as every other fleetops task does.
- stdin is not mirrored (``in_stream=False``): 64 hosts cannot share one terminal.
- ``c.name`` is the inventory name, ``c.vars`` the host's merged variables,
  ``c.changed = True`` marks the host ``changed``, and ``c.program(NAME, *argv)`` runs a
  shipped ops program (:func:`fleetops.ship.run.run_program`) and returns its result.

Fabric is imported only when the first handle is made (a user task runs).
"""

from __future__ import annotations

import functools
import shlex
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from fleetops.core import become
from fleetops.errors import FleetopsError


class SudoFailed(FleetopsError):
    """sudo refused (wrong or missing password, not allowed): the command never ran."""


class ConnectionLost(FleetopsError):
    """The host's connection is gone (deadline, Ctrl-C, network); fleetops never reconnects
    behind the runner's back."""


class ProgramFailed(FleetopsError):
    """A shipped ops program failed on the host (``c.program(..., warn=False)``)."""

    def __init__(self, result: ProgramResult) -> None:
        super().__init__(f"ops program {result.program} failed: {result.reason}")
        self.result = result


@dataclass(slots=True)
class ProgramResult:
    """One ops program run: ``status`` ok/changed/failed, the program's ``data`` (its JSON
    document's data), ``reason`` when failed, ``rc``, stderr as text."""

    program: str
    status: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    rc: int | None = None
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "changed")

    @property
    def changed(self) -> bool:
        return self.status == "changed"


@dataclass
class Output:
    """Text of every command a host ran (stdout and stderr), capped at ``limit`` chars."""

    limit: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    size: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    discarded: dict[str, int] = field(default_factory=dict)
    last_rc: int | None = None

    def add(self, result: Any) -> None:
        self.last_rc = getattr(result, "exited", None)
        for stream in ("stdout", "stderr"):
            text = getattr(result, stream, "") or ""
            room = self.limit - self.size[stream]
            if len(text) > room:
                self.discarded[stream] = self.discarded.get(stream, 0) + len(text) - max(room, 0)
                text = text[: max(room, 0)]
            if text:
                getattr(self, stream).append(text)
                self.size[stream] += len(text)


def base_config(hide: Any = None, command_timeout: float | None = None):
    """One ``fabric.Config`` per run: no ssh_config files (fleetops resolved them already),
    no stdin mirroring, the run's command timeout (seconds) and ``run.hide`` default."""
    import paramiko
    from fabric import Config

    config = Config(ssh_config=paramiko.SSHConfig())
    config.run.in_stream = False
    if hide is not None:
        config.run.hide = hide
    if command_timeout is not None:
        config.timeouts.command = command_timeout
    return config


def make(session: Any, config: Any, app: Any = None, echo_to: Any = None) -> Any:
    """The handle for one host of a run: a ``FleetConnection`` (a ``fabric.Connection``)
    on ``session.connection``'s transport; ``echo_to``: where remote output that is not
    hidden goes instead of stdout (``--json`` keeps stdout for its document). Raises
    fleetops's Unreachable if connecting fails (the runner words it) and FleetopsError
    for a local-connection host."""
    conn = session.connection
    if not hasattr(conn, "transport") or conn.transport is conn:
        raise FleetopsError("ansible_connection=local hosts cannot run Python tasks "
                            "(a Fabric Connection needs SSH)")
    c = connection_class()(session, conn, config.clone(), app)
    c._set(_echo_to=echo_to)
    return c


@functools.cache
def connection_class() -> type:
    """``FleetConnection``, defined on first use so Fabric is imported only then."""
    import paramiko
    from fabric import Connection
    from fabric.runners import Remote
    from invoke.exceptions import Failure

    from fleetops.api.fabric_wait import InlineWait

    class FleetRemote(InlineWait, Remote):
        """Fabric's Remote runner; with no ``in_stream`` the command's stdin is at EOF
        at once (as ``ssh -n``): nothing waits for input that will never come. Output
        is read and the command awaited in the calling thread (fleetops.api.fabric_wait)."""

        def start(self, command: str, shell: str, env: dict, timeout: Any = None) -> None:
            super().start(command, shell, env, timeout)
            if not self.streams["in"] and not self.using_pty and self.stdin_eof_now:
                self.channel.shutdown_write()

        stdin_eof_now = True

        def write_our_output(self, stream: Any, string: str) -> None:
            echo_to = self.context._echo_to
            if echo_to is not None and stream is sys.stdout:
                stream = echo_to
            super().write_our_output(stream, string)

    class SudoRemote(FleetRemote):
        """A Remote runner that answers sudo's prompt (stderr) before the command starts."""

        stdin_eof_now = False
        inline_io = False  # the stderr handshake blocks: Invoke's IO threads

        def __init__(self, *args: Any, sudo: become.Become, host: str, login: str,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.sudo = sudo
            self.sudo_host = host
            self.login = login
            self.started = False
            self.failure: str | None = None
            self._go = threading.Event()  # set once sudo started the command (or failed)

        def _write_proc_stdin(self, data: bytes) -> Any:
            """The command's stdin (``in_stream``) flows only after sudo started it."""
            self._go.wait()
            return None if self.failure else super()._write_proc_stdin(data)

        def close_proc_stdin(self) -> Any:
            self._go.wait()
            return None if self.failure else super().close_proc_stdin()

        def read_proc_stderr(self, num_bytes: int) -> bytes:
            if self.started:
                return self.channel.recv_stderr(num_bytes)
            try:
                return self._handshake()
            finally:
                self._go.set()

        def _handshake(self) -> bytes:
            buf, prompts = bytearray(), 0
            while True:
                data = self.channel.recv_stderr(1)
                if not data:  # sudo ended without starting the command
                    self.failure = self._why(bytes(buf))
                    self.started = True
                    return bytes(buf)
                buf += data
                if buf.endswith(become.PROMPT):
                    del buf[-len(become.PROMPT):]
                    prompts += 1
                    if self.sudo.password is None or prompts > 1 or any(
                            w in buf for w in become.WRONG):
                        self.failure = self._why(bytes(buf), wrong=prompts > 1)
                        self.started = True
                        self.channel.close()
                        return b""
                    self.channel.sendall(self.sudo.password.encode() + b"\n")
                elif buf.endswith(become.OK + b"\n"):
                    self.started = True
                    self._go.set()
                    if not self.streams["in"]:
                        self.channel.shutdown_write()
                    return bytes(buf[: buf.rindex(become.OK)]) or self.read_proc_stderr(1)

        def _why(self, text: bytes, wrong: bool = False) -> str:
            where = f"{self.login} on {self.sudo_host}"
            if wrong or any(w in text for w in become.WRONG):
                return f"sudo: incorrect password for {where}"
            if b"password is required" in text or self.sudo.password is None and not text:
                return (f"sudo: a password is required for {where} (--ask-become-pass, "
                        "FLEETOPS_BECOME_PASSWORD or ansible_become_password)")
            lines = [ln for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
            return (f"sudo to {self.sudo.user} failed on {self.sudo_host}: "
                    f"{lines[-1].strip() if lines else 'no output'}")

    class FleetConnection(Connection):
        """A ``fabric.Connection`` on fleetops's transport (see the module docstring)."""

        def __init__(self, session: Any, conn: Any, config: Any, app: Any) -> None:
            target = session.target
            super().__init__(target.address, user=target.user, port=target.port,
                             config=config, forward_agent=False, gateway=False)
            client = paramiko.SSHClient()
            client._transport = conn.transport
            self._set(client=client, transport=conn.transport, _fleet_session=session,
                      _fleet_app=app, name=session.host.name,
                      vars=dict(getattr(session.host, "vars", {}) or {}),
                      changed=False, output=Output(session.fleet.options.max_output))

        def __setattr__(self, key: str, value: Any) -> None:
            """Invoke's ``DataProxy.__setattr__`` (a real attribute is set, anything else
            goes to the config) without its ``key in dir(self)`` per assignment: the
            same test, on the instance's and its classes' ``__dict__``."""
            if key in self.__dict__ or any(key in k.__dict__ for k in type(self).__mro__):
                object.__setattr__(self, key, value)
            else:
                self[key] = value

        def open(self) -> None:
            if not self.is_connected:
                raise ConnectionLost(f"the connection to {self.name} is closed")

        def _remote_runner(self) -> Any:
            return FleetRemote(context=self, inline_env=self.inline_ssh_env)

        def close(self) -> None:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None

        def _become(self) -> become.Become | None:
            session = self._fleet_session
            return become.settings(session.fleet.options, session.target)

        def run(self, command: str, **kwargs: Any) -> Any:
            if self._become() is not None:
                return self.sudo(command, **kwargs)
            self.open()
            try:
                result = self._run(self._remote_runner(), command, **kwargs)
            except Failure as exc:
                self.output.add(exc.result)
                raise
            self.output.add(result)
            return result

        def sudo(self, command: str, **kwargs: Any) -> Any:
            """Fabric's ``sudo(command, user=..., password=..., **run_kwargs)``, with the
            password sent only to sudo's prompt (module docstring)."""
            self.open()
            if kwargs.get("pty") or (kwargs.get("pty") is None and self.config.run.pty):
                raise FleetopsError("c.sudo with pty=True is not supported: the password "
                                    "must reach sudo's prompt before the command starts")
            session = self._fleet_session
            options, target = session.fleet.options, session.target
            password = kwargs.pop("password", None) or self.config.sudo.password
            if password is None:
                password = (target.become_password if target.become_password is not None
                            else options.become_password)
            user = (kwargs.pop("user", None) or target.become_user or options.become_user
                    or "root")
            how = become.Become(user, password)
            inner = self._prefix_commands(command)
            env = kwargs.pop("env", None)
            if env:
                exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items()))
                inner = f"export {exports} && {inner}"
            runner = SudoRemote(context=self, inline_env=self.inline_ssh_env, sudo=how,
                                host=self.name, login=target.user)
            try:
                result = runner.run(become.become_command(inner, how), **kwargs)
            except Exception as exc:
                if runner.failure:
                    raise SudoFailed(runner.failure) from None
                if isinstance(exc, Failure):
                    exc.result.command = command
                    self.output.add(exc.result)
                raise
            if runner.failure:
                raise SudoFailed(runner.failure)
            result.command = command
            self.output.add(result)
            return result

        def program(self, name: str, *argv: str, stdin: bytes | None = None,
                    timeout: float | None = None, warn: bool = False) -> ProgramResult:
            """Run the shipped ops program ``name`` (``ops/NAME.py``) with ``argv`` on this
            host; ``stdin`` (bytes) reaches the program's stdin (secrets, content).
            A changed result marks the host changed; a failed one raises ProgramFailed
            unless ``warn``."""
            from fleetops.ship.run import run_program
            from fleetops.ship.zipapp import build_zipapp

            self.open()
            app = self._fleet_app or build_zipapp()  # built once per process, on first use
            host = run_program(self._fleet_session, name, [str(a) for a in argv], app,
                               timeout=timeout, stdin=stdin)
            result = ProgramResult(name, host.status, host.data_json,
                                   host.reason, host.rc, host.stderr)
            if result.changed:
                self.changed = True
            if not result.ok and not warn:
                raise ProgramFailed(result)
            return result

    return FleetConnection
