"""Disk report history: one SQLite file on the control machine, appended once per fleet run.

Default path: ``$XDG_DATA_HOME/fleetops/disk-history.sqlite`` (``~/.local/share`` when
``XDG_DATA_HOME`` is unset or relative, as the XDG Base Directory spec says); the directory
is made 0700, the file 0600. The schema version is SQLite's ``PRAGMA user_version``;
:data:`MIGRATIONS` upgrades an older file in place, one transaction per step. The file is in
WAL mode and every run is appended in one ``BEGIN IMMEDIATE`` transaction, so concurrent runs
wait for each other (``busy_timeout``) instead of corrupting the file or each other.

Errors (damaged file, not writable, newer schema, lock held too long) raise
:class:`HistoryError` with a one-line message; the caller reports it and carries on.
"""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

BUSY_TIMEOUT_S = 30.0
# Each entry upgrades user_version N -> N+1. Never edit a released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs and per-mount samples
    """
    CREATE TABLE runs (id INTEGER PRIMARY KEY, ts REAL NOT NULL, hosts INTEGER NOT NULL);
    CREATE INDEX runs_ts ON runs (ts);
    CREATE TABLE samples (
        run_id INTEGER NOT NULL REFERENCES runs (id), host TEXT NOT NULL,
        mountpoint TEXT NOT NULL, device TEXT, fstype TEXT, size_bytes INTEGER,
        used_bytes INTEGER, avail_bytes INTEGER, inodes_total INTEGER, inodes_used INTEGER,
        level TEXT, PRIMARY KEY (run_id, host, mountpoint)) WITHOUT ROWID;
    """,
    # 2: per-host outcome of each run (to tell "stopped answering" from "mount removed")
    """
    CREATE TABLE host_runs (
        run_id INTEGER NOT NULL REFERENCES runs (id), host TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT, source TEXT,
        PRIMARY KEY (run_id, host)) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
SAMPLE_FIELDS = ("device", "fstype", "size_bytes", "used_bytes", "avail_bytes",
                 "inodes_total", "inodes_used", "level")


INT64 = 1 << 63


def _cell(value: Any) -> Any:
    """A value SQLite stores as given: a name that is not valid UTF-8 (surrogate escapes
    from ``os.fsdecode`` on the host) as its exact bytes (BLOB), an integer beyond 64 bits
    as NULL."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    elif isinstance(value, int) and not -INT64 <= value < INT64:
        return None
    return value


def _count(value: Any) -> int | None:
    """A stored count as an int, or None when a damaged or edited file holds something else
    (text, a blob, a float) there: one odd cell costs that point, not the report."""
    return value if type(value) is int else None


def _sample(row: tuple) -> Sample | None:
    ts = row[0]
    if type(ts) not in (int, float) or not math.isfinite(ts):
        return None
    return Sample(float(ts), *map(_count, row[3:]))


def _text(value: Any) -> Any:
    """Back from :func:`_cell`: bytes become the same surrogate-escaped string."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class HistoryError(Exception):
    """The history file cannot be used (one-line message naming the file)."""


class Sample(NamedTuple):
    """One mount at one run: ``ts`` in Unix seconds, sizes in bytes, inodes in counts."""

    ts: float
    used_bytes: int | None
    avail_bytes: int | None
    size_bytes: int | None
    inodes_used: int | None
    inodes_total: int | None


@dataclass(slots=True)
class PreviousRun:
    """The last stored run: ``hosts`` name -> status, ``levels`` (host, mount) -> level."""

    ts: float
    hosts: dict[str, str]
    levels: dict[tuple[str, str], str]


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/fleetops/disk-history.sqlite`` (XDG Base Directory spec)."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return Path(base) / "fleetops" / "disk-history.sqlite"


def _create_file(path: Path) -> None:
    """Make the parent (0700 when we create it) and the file (0600), never via a symlink."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise HistoryError(f"disk history {path}: {exc.strerror or exc}") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    if not regular:  # /dev/null, a FIFO: SQLite would leave a -journal file beside it
        raise HistoryError(f"disk history {path}: not a regular file")


class History:
    """An open history file. Use as a context manager; every method may raise HistoryError."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            _create_file(self.path)
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"disk history {self.path}: {exc}") from None
        try:
            self._guard(self._setup)
        except HistoryError:
            self.db.close()
            raise

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except (sqlite3.Error, ValueError, OverflowError, TypeError) as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise HistoryError(f"disk history {self.path}: {exc}") from None

    def _setup(self) -> None:
        self.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = self._while_locked(
            lambda: self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL journal (got {mode})")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self._while_locked(self._migrate)

    def _while_locked(self, fn):
        """``fn()``, again while SQLite says "database is locked" (bounded by the busy
        timeout): switching a new file to WAL, or a first migration racing another
        process's, can get SQLITE_BUSY without SQLite's busy handler being called."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this fleetops ({SCHEMA_VERSION})")
        while version < SCHEMA_VERSION:
            self.db.execute("BEGIN IMMEDIATE")
            current = self.db.execute("PRAGMA user_version").fetchone()[0]
            if current == version:  # another process may have migrated meanwhile
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version + 1}")
            self.db.execute("COMMIT")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]

    @property
    def version(self) -> int:
        return self._guard(lambda: self.db.execute("PRAGMA user_version").fetchone()[0])

    def runs(self) -> int:
        """Number of stored runs."""
        return self._guard(lambda: self.db.execute("SELECT count(*) FROM runs").fetchone()[0])

    def append(self, ts: float, hosts: Mapping[str, tuple[str, str | None, str | None]],
               mounts: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Store one run in one transaction; returns its id.

        ``hosts``: name -> (status, reason, source); ``mounts``: (host, mount document with
        ``mountpoint`` and :data:`SAMPLE_FIELDS`)."""
        return self._guard(self._append, ts, hosts, mounts)

    def _append(self, ts, hosts, mounts) -> int:
        rows = [tuple(map(_cell, (host, m["mountpoint"], *(m.get(k) for k in SAMPLE_FIELDS))))
                for host, m in mounts]
        self.db.execute("BEGIN IMMEDIATE")
        run_id = self.db.execute("INSERT INTO runs (ts, hosts) VALUES (?, ?)",
                                 (ts, len(hosts))).lastrowid
        self.db.executemany(
            "INSERT OR REPLACE INTO host_runs VALUES (?, ?, ?, ?, ?)",
            [(run_id, *map(_cell, (name, *info))) for name, info in hosts.items()])
        self.db.executemany(
            f"INSERT OR REPLACE INTO samples VALUES ({run_id}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows)
        self.db.execute("COMMIT")
        return run_id

    def previous(self) -> PreviousRun | None:
        """The most recent stored run (call before :meth:`append` for "since last run")."""
        return self._guard(self._previous)

    def _previous(self) -> PreviousRun | None:
        row = self.db.execute("SELECT id, ts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        run_id, ts = row
        hosts = {_text(h): _text(st) for h, st in self.db.execute(
            "SELECT host, status FROM host_runs WHERE run_id = ?", (run_id,))}
        levels = {(_text(h), _text(m)): _text(lv) for h, m, lv in self.db.execute(
            "SELECT host, mountpoint, level FROM samples WHERE run_id = ?", (run_id,))}
        return PreviousRun(ts, hosts, levels)

    def series(self, since: float) -> dict[tuple[str, str], list[Sample]]:
        """(host, mountpoint) -> samples with ``ts >= since``, oldest first."""
        return self._guard(self._series, since)

    def _series(self, since: float) -> dict[tuple[str, str], list[Sample]]:
        first = self.db.execute("SELECT min(id) FROM runs WHERE ts >= ?", (since,)).fetchone()[0]
        out: dict[tuple[str, str], list[Sample]] = {}
        if first is None:
            return out
        cursor = self.db.execute(
            "SELECT r.ts, s.host, s.mountpoint, s.used_bytes, s.avail_bytes, s.size_bytes,"
            " s.inodes_used, s.inodes_total FROM samples s JOIN runs r ON r.id = s.run_id"
            " WHERE s.run_id >= ? AND r.ts >= ? ORDER BY s.run_id", (first, since))
        for row in cursor:
            sample = _sample(row)
            if sample is None:
                continue
            key = (row[1], row[2])
            bucket = out.get(key)
            if bucket is None:
                bucket = out[key] = []
            bucket.append(sample)
        if any(bytes in (type(h), type(m)) for h, m in out):
            out = {(_text(h), _text(m)): v for (h, m), v in out.items()}
        return out


def now() -> float:
    return time.time()
