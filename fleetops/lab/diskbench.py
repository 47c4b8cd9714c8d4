"""Benchmark helpers for the disk history: a synthetic history and timed operations.

:func:`fill` writes ``hosts x mounts x days`` daily samples (one run per day, one
transaction per run, like real nightly runs); :func:`measure` then times, on the filled
file, appending one more run and computing every mount's forecast over the window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from fleetops.jobs.disk.forecast import DAY_S, forecast_all
from fleetops.jobs.disk.history import History

GIB = 1 << 30
T0 = 1_700_000_000.0


def synthetic_mount(host: int, mount: int, day: int) -> dict:
    """A mount that grows by (host + mount) % 7 GiB/10 per day from 20 GiB of 500 GiB."""
    size = 500 * GIB
    used = 20 * GIB + day * ((host + mount) % 7) * GIB // 10 + (host * 7919 + day) % 1024
    return {"mountpoint": f"/m{mount}", "device": f"/dev/vd{mount}", "fstype": "ext4",
            "size_bytes": size, "used_bytes": used, "avail_bytes": size - used,
            "inodes_total": 1 << 20, "inodes_used": 1000 + day, "level": "ok"}


def _mounts(hosts: int, mounts: int, day: int) -> Iterator[tuple[str, dict]]:
    for h in range(hosts):
        for m in range(mounts):
            yield f"host{h:04d}", synthetic_mount(h, m, day)


def _hosts(hosts: int) -> dict[str, tuple[str, None, str]]:
    return {f"host{h:04d}": ("ok", None, "program") for h in range(hosts)}


def fill(path: Path, hosts: int, mounts: int, days: int) -> None:
    """One run per day for ``days`` days."""
    with History(path) as history:
        names = _hosts(hosts)
        for day in range(days):
            history.append(T0 + day * DAY_S, names, _mounts(hosts, mounts, day))


def measure(path: Path, hosts: int, mounts: int, days: int,
            window_days: float = 7.0) -> dict[str, float]:
    """Seconds to append run ``days`` and to forecast every mount (read + fit)."""
    ts = T0 + days * DAY_S
    with History(path) as history:
        rows = list(_mounts(hosts, mounts, days))
        start = time.perf_counter()
        history.append(ts, _hosts(hosts), rows)
        append_s = time.perf_counter() - start
        start = time.perf_counter()
        series = history.series(ts - window_days * DAY_S)
        forecasts = forecast_all(series)
        forecast_s = time.perf_counter() - start
    growing = sum(1 for f in forecasts.values() if f.full_in_days is not None)
    return {"append_s": append_s, "forecast_s": forecast_s, "series": len(series),
            "growing": growing}
