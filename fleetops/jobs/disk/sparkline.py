"""Inline SVG sparklines for the HTML report (no script, no external asset).

The SVG text is built only from numbers and a colour constant of ours, so it is safe to
insert unescaped (``|safe`` in the template); a mount without history gets ``""``.
"""

from __future__ import annotations

from collections.abc import Sequence

WIDTH, HEIGHT = 80, 18


def sparkline_points(points: Sequence[tuple[float, float]], width: int = WIDTH,
                     height: int = HEIGHT) -> list[tuple[float, float]]:
    """Map ``(time, use %)`` to SVG coordinates: x over the time span, y 0 % at the bottom
    and 100 % at the top (1 px margins)."""
    if len(points) < 2:
        return []
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    out = []
    for ts, pct in points:
        x = 1 + (width - 2) * (ts - t0) / span
        y = 1 + (height - 2) * (1 - min(max(pct, 0.0), 100.0) / 100)
        out.append((round(x, 1), round(y, 1)))
    return out


def sparkline_svg(points: Sequence[tuple[float, float]], colour: str,
                  width: int = WIDTH, height: int = HEIGHT) -> str:
    """One ``<svg>`` with a polyline of use % over time and a dot on the last sample."""
    coords = sparkline_points(points, width, height)
    if not coords:
        return ""
    line = " ".join(f"{x:g},{y:g}" for x, y in coords)
    last_x, last_y = coords[-1]
    first, last = points[0][1], points[-1][1]
    title = f"use {first:.0f}% to {last:.0f}% over {len(points)} runs"
    return (f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f"<title>{title}</title>"
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f5f5f5"/>'
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"/>'
            f'<circle cx="{last_x:g}" cy="{last_y:g}" r="2" fill="{colour}"/></svg>')
