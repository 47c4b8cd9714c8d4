"""Bounded-parallel runner: one connection per host, every host ends with one result.

``Fleet.run(hosts, work)`` calls ``work(session)`` for each host in a bounded
thread pool. A worker never raises into the pool: connection problems become
``unreachable``, timeouts and exceptions become ``failed``. The main thread
enforces a whole-host deadline (it closes the host's socket, which unblocks the
worker) and turns Ctrl-C into a clean stop that keeps what already finished.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from fleetops.core import become
from fleetops.core.connect import connect
from fleetops.core.events import Reporter
from fleetops.core.hostkeys import KnownHosts, known_hosts_files
from fleetops.core.jump import Bastions, hop_label
from fleetops.core.ssh import CommandTimeout, Connection, Exec, Keys, Target, Unreachable
from fleetops.core.transport import ConnectFactory, Dialog, Transport
from fleetops.errors import DEFAULT_FORKS
from fleetops.results import HostResult, RunResult, truncation


@dataclass(slots=True)
class RunOptions:
    forks: int = DEFAULT_FORKS
    connect_timeout: float = 10.0
    command_timeout: float | None = None
    host_deadline: float | None = None
    accept_new: bool = False
    known_hosts: str = "~/.ssh/known_hosts"
    become: bool = False
    become_user: str = "root"
    become_password: str | None = None
    # --- added for real fleets and hostile hosts (issues 10, 11) ---
    password: str | None = None          # --ask-pass / FLEETOPS_PASSWORD (SSH password auth)
    connection_attempts: int = 3         # tries when the server drops us before/in the banner
    max_output: int = 4 * 1024 * 1024    # bytes kept per stream per command; the rest is drained

    def deadline_for_host(self) -> float | None:
        if self.host_deadline is not None:
            return self.host_deadline
        if self.command_timeout is None:
            return None
        return self.connect_timeout + self.command_timeout + 5.0


class Session:
    """What a worker sees of its host: lazy connection, exec helpers, the host itself."""

    def __init__(self, fleet: Fleet, host: Any, target: Target) -> None:
        self.fleet = fleet
        self.host = host
        self.target = target
        self._sock = None
        self.connected = False
        self.aborted = False

    @property
    def connection(self) -> Transport:
        return self.fleet.connection_for(self)

    def exec(
        self,
        command: str,
        stdin: bytes | Dialog | None = None,
        timeout: float | None = None,
    ) -> Exec:
        """Run ``command`` on the host, through sudo when the host or run says become
        (fleetops.core.become: the password goes only to sudo's own prompt). ``stdin``:
        bytes, or a dialog that answers the command's first output (fleetops.ship.handshake)."""
        options = self.fleet.options
        timeout = options.command_timeout if timeout is None else timeout
        conn = self.connection
        conn.max_output = options.max_output
        return become.run(conn, self.target, options, self.host.name, command,
                          stdin, timeout)

    def abort(self) -> None:
        """Called from the main thread: closing the socket unblocks any read; a
        connection still being made (or retried) stops at its next socket."""
        self.aborted = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(Exception):
                if isinstance(sock, socket.socket):
                    sock.shutdown(socket.SHUT_RDWR)
                else:  # a ProxyCommand (kills the process) or a ProxyJump channel
                    sock.close()

    def on_socket(self, sock: Any) -> None:
        """Every socket of this host's connection attempts passes here (for ``abort``)."""
        self._sock = sock
        if self.aborted:
            raise Unreachable("aborted while connecting")


class Fleet:
    """Runs work on hosts; keeps one connection per host until ``close()``."""

    def __init__(self, options: RunOptions, target_for: Callable[[Any], Target],
                 connect: ConnectFactory | None = None) -> None:
        """``connect(target, on_socket)`` opens a host's transport (default: SSH, or
        local for ``ansible_connection=local``; tests pass ``fleetops.core.testing``'s fake)."""
        self.options = options
        self.target_for = target_for
        self._open = connect or self._ssh_or_local
        self._targets: dict[int, tuple[Any, Target]] = {}  # id(host) -> (host, its Target)
        self.keys = Keys(password=options.password)
        self._known: dict[tuple, KnownHosts] = {}
        self._host_files: dict = {}               # path -> parsed known_hosts file, once a run
        self._host_files_lock = threading.Lock()
        self._warned: set[str] = set()
        self._connections: dict[str, Transport] = {}
        self._lock = threading.Lock()
        self.bastions = Bastions(self._connect_hop)
        # Paramiko logs every failed handshake with a traceback; our results carry the reason.
        logging.getLogger("paramiko").addHandler(logging.NullHandler())
        logging.getLogger("paramiko").propagate = False

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()
        for warning in self.known_hosts_warnings():  # once per run: skipped known_hosts lines
            if warning not in self._warned:
                self._warned.add(warning)
                print(f"warning: {warning}", file=sys.stderr)
        self.bastions.close()

    def known_hosts(self, target: Target | str) -> KnownHosts:
        """The host-key checker for a target's known_hosts files (or one user file path);
        each file is parsed once per run, whichever targets share it."""
        files = known_hosts_files(target, self.options.known_hosts)
        with self._lock:
            known = self._known.get(files)
            if known is None:
                known = KnownHosts(*files, accept_new=self.options.accept_new,
                                   files=self._host_files, lock=self._host_files_lock)
                self._known[files] = known
            return known

    def known_hosts_warnings(self) -> list[str]:
        """Malformed known_hosts lines met in this run, ``file:line: message``, once each."""
        with self._host_files_lock:
            return [w for f in self._host_files.values() for w in f.warnings]

    def target(self, host: Any) -> Target:
        """``host`` resolved into its :class:`~fleetops.core.ssh.Target`, once per fleet: every
        run on this fleet (each task of a play) reuses it. InputError as ``target_for``."""
        hit = self._targets.get(id(host))
        if hit is not None and hit[0] is host:
            return hit[1]
        target = self.target_for(host)
        self._targets[id(host)] = (host, target)
        return target

    def connection_for(self, session: Session) -> Transport:
        """The host's one transport of this run, opened on first use."""
        name = session.target.name
        conn = self._connections.get(name)
        if conn is not None and conn.is_active():
            session._sock = conn.sock
            session.connected = True
            return conn
        conn = self._open_target(session.target, session.on_socket)
        with self._lock:
            self._connections[name] = conn
        session.connected = True
        return conn

    def _open_target(self, target: Target, on_socket: Callable[[Any], None]) -> Transport:
        """A host's transport from the factory; through its bastions (shared per chain,
        never a direct connection) when it has ProxyJump hops."""
        if target.jump and target.connection != "local":
            opener = self.bastions.opener(target)  # Unreachable naming a dead bastion
            return self._open(target, on_socket, opener=opener,
                              via=hop_label(target.jump[-1]))
        return self._open(target, on_socket)

    def _connect_hop(self, hop: Target, opener: Any, via: str | None,
                     on_socket: Callable[[Any], None]) -> Any:
        """One bastion hop, by the run's connect factory (see :mod:`fleetops.core.jump`)."""
        return self._open(hop, on_socket, opener=opener, via=via)

    def _ssh_or_local(self, target: Target, on_socket: Callable[[Any], None],
                      opener: Any = None, via: str | None = None) -> Transport:
        """The default :data:`~fleetops.core.transport.ConnectFactory`."""
        if target.connection == "local":
            from fleetops.core.local import LocalConnection

            conn = LocalConnection(target)
            on_socket(conn)  # abort() closes it: running commands are killed
            return conn
        return self._connect(target, opener, via, on_socket)

    def _connect(self, target: Target, opener: Any, via: str | None,
                 on_socket: Callable[[Any], None]) -> Connection:
        """One connection (a host or a bastion hop) with the run's timeout and attempts."""
        known = self.known_hosts(target)
        return connect(target, known, self.keys,
                       target.connect_timeout or self.options.connect_timeout,
                       on_socket, attempts=target.connection_attempts
                       or self.options.connection_attempts, opener=opener, via=via)

    def drop(self, name: str) -> None:
        with self._lock:
            conn = self._connections.pop(name, None)
        if conn is not None:
            conn.close()

    def run(
        self,
        hosts: Iterable[Any],
        work: Callable[[Session], HostResult | None],
        on_result: Callable[[HostResult, RunResult], None] | None = None,
        on_tick: Callable[[RunResult], None] | None = None,
        events: Reporter | None = None,
    ) -> RunResult:
        """Run ``work`` on every host; ``on_result`` gets each finished host and
        ``on_tick`` is called a few times a second (both from this thread). ``events``
        (:class:`fleetops.core.events.Reporter`) instead gets ``run_started``,
        ``host_started`` (from the host's worker), ``host_finished`` and ``tick``."""
        hosts = list(hosts)
        if events is not None:
            on_result, on_tick = events.host_finished, events.tick
            events.run_started(len(hosts))
            work = _announced(work, events)
        run = RunResult()
        started = time.monotonic()
        if not hosts:
            return run
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.options.forks, len(hosts))),
                                  thread_name_prefix="fleetops")
        tracker = _Tracker()
        futures = {
            pool.submit(self._work_one, host, work, tracker): host.name for host in hosts
        }
        try:
            self._wait(futures, tracker, run, on_result, on_tick)
        except KeyboardInterrupt:
            run.interrupted = True
            tracker.abort_all()
        finally:
            pool.shutdown(wait=not run.interrupted, cancel_futures=True)
        _fill_missing(hosts, futures, run)
        run.hosts = {h.name: run.hosts[h.name] for h in hosts}
        run.elapsed = time.monotonic() - started
        return run

    def _wait(self, futures: dict[Future, str], tracker: _Tracker, run: RunResult,
              on_result: Callable[[HostResult, RunResult], None] | None,
              on_tick: Callable[[RunResult], None] | None) -> None:
        pending = set(futures)
        deadline = self.options.deadline_for_host()
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                run.add(result)
                if on_result is not None:
                    on_result(result, run)
            if deadline is not None:
                for name in tracker.expire(deadline):
                    self.drop(name)
            if on_tick is not None:
                on_tick(run)

    def _work_one(self, host: Any, work: Callable[[Session], HostResult | None],
                  tracker: _Tracker) -> HostResult:
        started = time.monotonic()
        session = None
        try:
            session = Session(self, host, self.target(host))
            tracker.start(host.name, session)
            result = work(session) or HostResult(host.name, "ok")
        except Unreachable as exc:
            self.drop(host.name)
            result = HostResult(host.name, "unreachable", reason=str(exc))
        except (CommandTimeout, become.BecomeError) as exc:
            self.drop(host.name)
            result = HostResult(host.name, "failed", reason=str(exc))
        except Exception as exc:  # a worker never raises into the pool
            self.drop(host.name)
            result = HostResult(host.name, "failed", reason=f"{type(exc).__name__}: {exc}")
        finally:
            tracker.finish(host.name)
        if host.name in tracker.overdue:
            result = _overdue(result, self.options.deadline_for_host(), session)
        result.duration = time.monotonic() - started
        return result


def _announced(work: Callable[[Session], HostResult | None],
               events: Reporter) -> Callable[[Session], HostResult | None]:
    """``work`` that first tells ``events`` its host started."""
    def announced(session: Session) -> HostResult | None:
        events.host_started(session.host.name)
        return work(session)
    return announced


class _Tracker:
    """Start times of running hosts, so the main thread can enforce deadlines."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[float, Session]] = {}
        self.overdue: set[str] = set()
        self._lock = threading.Lock()

    def start(self, name: str, session: Session) -> None:
        with self._lock:
            self._running[name] = (time.monotonic(), session)

    def finish(self, name: str) -> None:
        with self._lock:
            self._running.pop(name, None)

    def expire(self, deadline: float) -> list[str]:
        now = time.monotonic()
        with self._lock:
            late = [n for n, (t, _) in self._running.items()
                    if now - t > deadline and n not in self.overdue]
            for name in late:
                self.overdue.add(name)
                self._running[name][1].abort()
        return late

    def abort_all(self) -> None:
        with self._lock:
            for _, session in self._running.values():
                session.abort()


def _overdue(result: HostResult, deadline: float | None, session: Session | None) -> HostResult:
    connected = session is not None and session.connected
    status = "failed" if connected else "unreachable"
    reason = f"host deadline of {deadline:g}s exceeded"
    if result.reason:
        reason += f" ({result.reason})"
    return replace(result, status=status, reason=reason, duration=0.0)


def _fill_missing(hosts: list[Any], futures: dict[Future, str], run: RunResult) -> None:
    for future, name in futures.items():
        if name in run.hosts:
            continue
        if future.done() and not future.cancelled():
            run.add(future.result())
        elif future.running():
            run.add(HostResult(name, "failed", reason="interrupted while running"))
        else:
            run.add(HostResult(name, "skipped", reason="interrupted before it started"))


def exec_result(name: str, result: Exec) -> HostResult:
    """Ad-hoc style classification: rc 0 is ok (a shell command reports no change)."""
    status = "ok" if result.rc == 0 else "failed"
    reason = (None if result.rc == 0 else f"command exited with rc={result.rc}"
              if result.rc is not None else "no exit status (the command was killed by a signal?)")
    host = HostResult(
        name, status, result.rc,
        result.stdout.decode("utf-8", "surrogateescape"),
        result.stderr.decode("utf-8", "surrogateescape"),
        reason=reason,
    )
    if result.discarded:
        truncation(host, result.discarded)
    return host
