"""One timestamp format for every page: ``YYYY-MM-DD HH:MM:SS`` in the dashboard's time zone,
with the relative time ("3 min ago", "in 2 h") in the element's title.

Job records carry epoch seconds; documents (Scheduled Job Types, their logs, Background Tasks)
carry naive datetimes in their own site's zone, as Frappe stores them. Both are shown in one
zone, the *display zone*: the zone of the bench's ``default_site`` (else of its first site, else
the machine's), so that two sites in different zones still read on one clock. The page says
which zone it is in its footer.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from zoneinfo import ZoneInfo

from markupsafe import Markup

from jobbench.bench import Bench
from jobbench.utils import is_time_zone, system_time_zone

FORMAT = "%Y-%m-%d %H:%M:%S"
ZONE_CACHE_SECONDS = 60.0  # a site's zone changes rarely; reading it opens a site context


class Zones:
    """The time zone of each site (cached a minute), and the display zone."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self._cache: dict[str, tuple[str, float]] = {}

    def of(self, site: str) -> str:
        cached = self._cache.get(site)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        zone = self._read(site)
        self._cache[site] = (zone, time.monotonic() + ZONE_CACHE_SECONDS)
        return zone

    def _read(self, site: str) -> str:
        from jobbench.context import site_context
        from jobbench.errors import JobbenchError

        try:
            with site_context(site, self.bench.path) as local:
                return local.time_zone()
        except JobbenchError:  # a broken site must not take every page down: machine's zone
            return system_time_zone()

    def display(self) -> str:
        sites = self.bench.list_sites()
        default = self.bench.common_config().get("default_site")
        site = default if isinstance(default, str) and default in sites else None
        site = site or (sites[0] if sites else None)
        zone = self.of(site) if site else system_time_zone()
        return zone if is_time_zone(zone) else "UTC"


def to_epoch(value: object, source_zone: str) -> float | None:
    """Epoch seconds of an epoch number, an aware datetime, a naive one (in ``source_zone``)
    or an ISO string; None for anything else (an unreadable stored value shows as '-')."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(source_zone))
        try:
            return value.timestamp()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def relative(seconds: float) -> str:
    """``-90`` -> '1 min ago', ``7200`` -> 'in 2 h'."""
    span = abs(seconds)
    if span < 5:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if span >= size:
            text = f"{int(span // size)} {unit}"
            break
    return f"in {text}" if seconds > 0 else f"{text} ago"


def when(
    value: object, zone: str, source_zone: str | None = None, now: float | None = None
) -> Markup:
    """A ``<time>`` element for ``value`` shown in ``zone``, or '-' for no time."""
    ts = to_epoch(value, source_zone or zone)
    if ts is None:
        return Markup("-")
    try:
        local = dt.datetime.fromtimestamp(ts, ZoneInfo(zone))
    except (OverflowError, OSError, ValueError):
        return Markup("-")
    now = time.time() if now is None else now
    return Markup('<time datetime="{}" data-ts="{}" title="{}">{}</time>').format(
        local.isoformat(timespec="seconds"),
        f"{ts:.3f}",
        relative(ts - now),
        local.strftime(FORMAT),
    )


def duration(seconds: object) -> str:
    """``3725.2`` -> '1 h 2 min 5 s'; '' for nothing."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    whole, parts = int(seconds), list[str]()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if whole >= size or (unit == "s" and not parts):
            parts.append(f"{whole // size} {unit}")
            whole %= size
    return " ".join(parts[:3])
