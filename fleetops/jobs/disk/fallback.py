"""Disk figures from ``df -P`` / ``df -Pi`` for hosts without a usable python3.

When the ``diskreport`` program cannot start (``no usable python3``), the same SSH
connection runs ``LC_ALL=C df -P`` (with the mount table, for filesystem types) and then
``LC_ALL=C df -Pi``, each with the command timeout. The output is parsed here
(:func:`parse_df`, pure and tested on recorded output) and goes through the program's own
rules: its argument parser, pseudo-filesystem list, ``--include``/``--exclude``/``--local``,
thresholds and per-mount overrides (``ops/_mounts.py``). The host's data is the
program's own class (:class:`fleetops.ship.data.DiskreportData`, built once, as
``ship.run.classify`` builds it) and says ``"source": "df"``.

Figures follow POSIX ``df -P``: sizes in the header's block unit (``1024-blocks``, or
``512-blocks`` under ``POSIXLY_CORRECT``), capacity recomputed as df does
(``ceil(used * 100 / (used + avail))``). Inode columns may be ``-`` (btrfs): then None.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetops.results import HostResult
from fleetops.sanitize import clean
from fleetops.ship import schemas
from fleetops.ship.data import DiskreportData
from ops import _mounts

DF_SPACE = "LC_ALL=C df -P; echo '@@fleetops-mounts@@'; cat /proc/self/mounts"
DF_INODES = "LC_ALL=C df -Pi"
MARKER = "@@fleetops-mounts@@"
NO_PYTHON = "no usable python3"
_LINE = re.compile(r"^(?P<device>.+?)\s+(?P<total>\d+|-)\s+(?P<used>\d+|-)\s+(?P<avail>\d+|-)"
                   r"\s+(?P<pct>\d+%|-)\s+(?P<mountpoint>/.*)$")
_BLOCKS = re.compile(r"(\d+)-blocks")


@dataclass(frozen=True, slots=True)
class DfLine:
    """One ``df -P`` (or ``-Pi``) line: counts in blocks (or inodes), None for ``-``."""

    device: str
    mountpoint: str
    total: int | None
    used: int | None
    avail: int | None


class NoFilesystems(ValueError):
    """Nothing selected: a failure, as df's "no file systems processed" (exit 1)."""


def _int(text: str) -> int | None:
    return None if text == "-" else int(text)


def parse_df(text: str) -> tuple[int, list[DfLine]]:
    """``(block_size, lines)`` from ``df -P`` or ``df -Pi`` output (block size 1 for -i).

    Lines that do not match (headers, wrapped or garbled lines) are skipped; ValueError
    when there is no header at all."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Filesystem"):
        raise ValueError(f"not df -P output: {text[:80]!r}")
    match = _BLOCKS.search(lines[0])
    block = int(match.group(1)) if match else 1
    out = []
    for line in lines[1:]:
        found = _LINE.match(line)
        if found:
            out.append(DfLine(found["device"], found["mountpoint"], _int(found["total"]),
                              _int(found["used"]), _int(found["avail"])))
    return block, out


def program_options(argv: Sequence[str]) -> tuple[argparse.Namespace, Any]:
    """Parse the ``diskreport`` argv with the program's own parser: (args, Limits)."""
    from ops import diskreport

    parser = argparse.ArgumentParser(prog="diskreport", add_help=False)
    diskreport.add_arguments(parser)
    args = parser.parse_args(list(argv))
    limits, _ = diskreport.validate(args)
    return args, limits


def _record(mount: _mounts.Mount, space: DfLine, block: int, inodes: DfLine | None,
            limits: Any) -> dict[str, Any] | None:
    if not space.total or space.used is None or space.avail is None:
        return None  # zero size (or no figures): skipped as the program does
    numbers: dict[str, Any] = {
        "size_bytes": space.total * block, "used_bytes": space.used * block,
        "avail_bytes": space.avail * block,
        "use_pct": _mounts.ceil_pct(space.used, space.used + space.avail),
        "inodes_total": None, "inodes_used": None, "inodes_pct": None}
    if inodes is not None and inodes.total and inodes.used is not None:
        numbers.update(inodes_total=inodes.total, inodes_used=inodes.used,
                       inodes_pct=_mounts.ceil_pct(inodes.used, inodes.total))
    limits_space = _mounts.space_limits(mount.mountpoint, limits.space, limits.overrides)
    level, over = _mounts.classify(numbers, limits_space, limits.inodes)
    return {"mountpoint": mount.mountpoint, "device": mount.device, "fstype": mount.fstype,
            **numbers, "level": level, "over": over, "error": None}


def df_data(space_text: str, inodes_text: str, argv: Sequence[str]) -> dict[str, Any]:
    """The ``diskreport`` data document (``mounts``, ``over``, ``worst_level``, ``skipped``,
    ``source``) from the two commands' output and the program's argv."""
    args, limits = program_options(argv)
    df_text, _, table_text = space_text.partition(MARKER)
    block, space_lines = parse_df(df_text)
    try:
        _, inode_lines = parse_df(inodes_text)
    except ValueError:
        inode_lines = []
    inodes = {line.mountpoint: line for line in inode_lines}
    table = {m.mountpoint: m for m in _mounts.parse_mounts(table_text)}
    mounts = [table.get(line.mountpoint) or _mounts.Mount(line.device, line.mountpoint, "", "")
              for line in space_lines]
    fstypes = [t for item in args.skip_fstype for t in item.split(",") if t]
    selected, skipped = _mounts.select_mounts(mounts, args.local, args.include, args.exclude,
                                              fstypes, args.include_containers)
    by_point = {line.mountpoint: line for line in space_lines}
    records = []
    skips = [{"mountpoint": m.mountpoint, "fstype": m.fstype, "reason": r}
             for m, r in skipped if r not in ("pseudo", "container")]
    for mount in selected:
        record = _record(mount, by_point[mount.mountpoint], block, inodes.get(mount.mountpoint),
                         limits)
        if record is None:
            skips.append({"mountpoint": mount.mountpoint, "fstype": mount.fstype,
                          "reason": "zero size"})
        else:
            records.append(record)
    if not records:
        raise NoFilesystems("no file systems processed")
    return {"mounts": records, "over": [r["mountpoint"] for r in records
                                        if r["level"] in ("warn", "crit")],
            "worst_level": _mounts.worst(r["level"] for r in records),
            "thresholds": limits.as_data(), "skipped": skips, "source": "df"}


def needs_fallback(result: HostResult) -> bool:
    return result.status == "failed" and NO_PYTHON in (result.reason or "")


def df_fallback(exec_: Callable[..., Any], name: str, argv: Sequence[str],
                timeout: float | None, first: HostResult) -> HostResult:
    """Run the two df commands through ``exec_(command, timeout=...)`` (a Session's exec);
    ``first`` is the failed program result, kept as the reason when df fails too."""
    space = exec_(DF_SPACE, timeout=timeout)
    inodes = exec_(DF_INODES, timeout=timeout)
    out = space.stdout.decode("utf-8", "surrogateescape")
    try:
        data = df_data(out, inodes.stdout.decode("utf-8", "surrogateescape"), argv)
    except NoFilesystems as exc:
        return HostResult(name, "failed", 1, reason=f"df -P: {exc}")
    except (ValueError, SystemExit) as exc:
        err = space.stderr.decode("utf-8", "replace").strip().splitlines()
        why = clean(err[-1]) if err else str(exc)
        return HostResult(name, "failed", space.rc, reason=f"{first.reason}; df -P: {why}")
    try:
        schemas.check_data(data, "diskreport")  # the same checks as the program's data
    except schemas.SchemaError as exc:
        return HostResult(name, "failed", space.rc, reason=f"df -P: bad figures: {exc}")
    return HostResult(name, "ok", 0, data=DiskreportData.from_json(data))


def fleet_disk_report(hosts: Iterable[Any], args_for: Callable[[Any], Sequence[str]], options,
                      on_result=None, on_tick=None, timeout: float | None = None,
                      connect=None, target_for=None):
    """Like ``ship.fleet_program(hosts, "diskreport", ...)``, with the df fallback.

    ``connect`` and ``target_for`` as :class:`fleetops.core.runner.Fleet` takes them
    (default: SSH, the inventory's connection settings)."""
    from fleetops.core.runner import Fleet
    from fleetops.ship import run as ship
    from fleetops.ship.run import run_program
    from fleetops.ship.zipapp import build_zipapp

    app = build_zipapp()

    def work(session) -> HostResult:
        argv = list(args_for(session.host))
        result = run_program(session, "diskreport", argv, app, timeout)
        if needs_fallback(result):
            return df_fallback(session.exec, session.host.name, argv, timeout, result)
        return result

    with Fleet(options, target_for or ship.target_for, connect) as fleet:
        return fleet.run(hosts, work, on_result=on_result, on_tick=on_tick)
