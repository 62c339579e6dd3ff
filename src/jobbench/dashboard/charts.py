"""The overview's charts and throughput, from the broker's per-minute outcome counts.

``Broker.timeline()`` counts every attempt that ended finished or failed in the minute it ended,
inside the same atomic step as the outcome, and keeps a day of it (finished records themselves
may expire after 10 minutes, so counting records would undercount). Charts are drawn here as
geometry for an inline SVG in the template: no chart library, no script, nothing for the CSP.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

KINDS = ("finished", "failed")
THROUGHPUT_MINUTES = 5  # "finished per minute" averages the last 5 minutes
# The plot area inside the SVG's viewBox (user units); the axes' labels sit around it.
LEFT, TOP, WIDTH, HEIGHT = 56, 12, 600, 150


@dataclass
class Bar:
    x: float
    width: float
    label: str  # the bucket's time, for the tooltip
    values: dict[str, int]
    rects: list[dict[str, Any]] = field(default_factory=list)  # kind, y, height


@dataclass
class Chart:
    title: str
    unit: str  # "minute" / "hour": the y axis counts jobs per this
    bars: list[Bar]
    y_ticks: list[dict[str, Any]]  # value, y
    x_ticks: list[dict[str, Any]]  # label, x
    x_label: str
    totals: dict[str, int]
    left: int = LEFT
    top: int = TOP
    width: int = WIDTH
    height: int = HEIGHT


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1
    power: int = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def buckets(
    timeline: dict[tuple[int, str, str], int], start_minute: int, size: int, n: int
) -> list[dict[str, int]]:
    """``n`` buckets of ``size`` minutes from ``start_minute``: finished and failed, all queues."""
    out = [dict.fromkeys(KINDS, 0) for _ in range(n)]
    for (minute, _queue, kind), count in timeline.items():
        i = (minute - start_minute) // size
        if 0 <= i < n and kind in KINDS:
            out[i][kind] += count
    return out


def chart(
    timeline: dict[tuple[int, str, str], int],
    zone: str,
    now: float,
    size: int,
    n: int,
    every: int,
) -> Chart:
    """Stacked finished/failed bars of ``n`` buckets of ``size`` minutes ending now; an x tick
    every ``every`` buckets."""
    tz = ZoneInfo(zone)
    last = int(now // 60) // size * size  # the bucket holding now
    start = last - (n - 1) * size
    counts = buckets(timeline, start, size, n)
    peak = nice_ceiling(max([sum(c.values()) for c in counts] or [0]))
    slot = WIDTH / n
    fmt = "%H:%M"
    bars = []
    for i, values in enumerate(counts):
        at = dt.datetime.fromtimestamp((start + i * size) * 60, tz)
        bar = Bar(LEFT + i * slot + slot * 0.1, slot * 0.8, at.strftime(fmt), values)
        base = float(TOP + HEIGHT)
        for kind in KINDS:
            h = values[kind] / peak * HEIGHT
            if h:
                bar.rects.append({"kind": kind, "y": round(base - h, 2), "height": round(h, 2)})
            base -= h
        bars.append(bar)
    y_ticks = [
        {"value": v, "y": round(TOP + HEIGHT - v / peak * HEIGHT, 2)}
        for v in sorted({0, peak // 2, peak})
    ]
    x_ticks = [{"label": bars[i].label, "x": round(bars[i].x, 2)} for i in range(0, n, every)]
    unit = "minute" if size == 1 else "hour"
    return Chart(
        title=f"Last {'hour' if size == 1 else '24 hours'}",
        unit=unit,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        x_label=f"time ({zone})",
        totals={k: sum(c[k] for c in counts) for k in KINDS},
    )


def hour_and_day(
    timeline: dict[tuple[int, str, str], int], zone: str, now: float | None = None
) -> list[Chart]:
    """Per minute over the last hour, per hour over the last day."""
    now = time.time() if now is None else now
    return [
        chart(timeline, zone, now, size=1, n=60, every=10),
        chart(timeline, zone, now, size=60, n=24, every=3),
    ]


def throughput(
    timeline: dict[tuple[int, str, str], int], now: float | None = None
) -> dict[str, float]:
    """Per queue: jobs finished per minute over the last THROUGHPUT_MINUTES minutes."""
    now = time.time() if now is None else now
    first = int(now // 60) - THROUGHPUT_MINUTES + 1
    per: dict[str, int] = {}
    for (minute, queue, kind), n in timeline.items():
        if kind == "finished" and minute >= first:
            per[queue] = per.get(queue, 0) + n
    return {q: round(n / THROUGHPUT_MINUTES, 2) for q, n in per.items()}
