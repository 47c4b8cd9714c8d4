"""Growth and days-until-full per mount, from the disk history (pure: no I/O).

The fit is Theil–Sen (the median of the slopes between every pair of samples), robust
to a few outliers where a least-squares line (Prometheus's ``predict_linear``) is not.
A cleanup shows as a drop in used space; the fit only uses the samples since the last
drop larger than :data:`RESET_FRACTION` of the size, so "deleted 200 GiB yesterday"
neither reads as a shrinking disk nor hides today's growth.

``growth_bytes_per_day``: used bytes per day (int, negative when shrinking, ``None``
with fewer than two samples). ``full_in_days``: days until space or inodes run out at the
fitted rates (the sooner of the two, 1 decimal), ``None`` when neither is growing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetops.jobs.disk.history import Sample

DAY_S = 86400.0
RESET_FRACTION = 0.01
MAX_POINTS = 48  # Theil–Sen is O(n^2): longer series are thinned evenly
DEFAULT_WINDOW_DAYS = 7.0
DEFAULT_FILL_WARN_DAYS = 7.0


@dataclass(frozen=True, slots=True)
class Forecast:
    growth_bytes_per_day: int | None
    full_in_days: float | None
    growth_inodes_per_day: float | None = None


NO_FORECAST = Forecast(None, None, None)


def theil_sen(points: Sequence[tuple[float, float]]) -> float | None:
    """Median pairwise slope of ``(x, y)`` points (pairs with equal x skipped)."""
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points)
              for x2, y2 in points[i + 1:] if x2 != x1]
    if not slopes:
        return None
    slopes.sort()
    mid = len(slopes) // 2
    return slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def _since_last_reset(samples: Sequence[Sample]) -> Sequence[Sample]:
    start = 0
    for i in range(1, len(samples)):
        before, after = samples[i - 1], samples[i]
        if before.used_bytes is None or after.used_bytes is None:
            continue
        limit = RESET_FRACTION * (after.size_bytes or before.size_bytes or 0)
        if before.used_bytes - after.used_bytes > limit:
            start = i
    return samples[start:]


def _thin(samples: Sequence[Sample]) -> Sequence[Sample]:
    if len(samples) <= MAX_POINTS:
        return samples
    step = (len(samples) - 1) / (MAX_POINTS - 1)
    return [samples[round(i * step)] for i in range(MAX_POINTS)]


def _rate(samples: Sequence[Sample], attr: str) -> float | None:
    points = [(s.ts / DAY_S, getattr(s, attr)) for s in samples if getattr(s, attr) is not None]
    return theil_sen(points)


def forecast(samples: Sequence[Sample]) -> Forecast:
    """Forecast from one mount's samples, oldest first (the last one is "now")."""
    if len(samples) < 2:
        return NO_FORECAST
    recent = _thin(_since_last_reset(samples))
    if len(recent) < 2:
        return Forecast(0, None, 0.0)  # only a cleanup in the window: not growing now
    growth = _rate(recent, "used_bytes")
    inode_growth = _rate(recent, "inodes_used")
    last = samples[-1]
    days = []
    if growth and growth > 0 and last.avail_bytes is not None:
        days.append(max(last.avail_bytes, 0) / growth)
    if inode_growth and inode_growth > 0 and last.inodes_total and last.inodes_used is not None:
        days.append(max(last.inodes_total - last.inodes_used, 0) / inode_growth)
    full = round(min(days), 1) if days else None
    return Forecast(None if growth is None else round(growth), full,
                    None if inode_growth is None else round(inode_growth, 1))


def forecast_all(series: dict[tuple[str, str], list[Sample]]) -> dict[tuple[str, str], Forecast]:
    """:func:`forecast` for every (host, mountpoint) series."""
    return {key: forecast(samples) for key, samples in series.items()}
