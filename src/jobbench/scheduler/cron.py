"""When a scheduled job type is next due: cron maths in the site's time zone, DST included.

Frequencies map to cron expressions as in Frappe (Hourly ``0 * * * *``, Daily ``0 0 * * *``,
Weekly ``0 0 * * 0``, Monthly ``0 0 1 * *``, Yearly/Annual ``0 0 1 1 *``; the ``Long`` and
``Maintenance`` variants share their base's expression). ``All`` runs every
``scheduler_interval`` seconds, aligned to multiples of the interval since local midnight (so
240 s gives :00, :04, :08, ... like Frappe's ``*/4 * * * *``, and intervals under a minute
work too). Cron aliases (``@hourly`` ... ``@yearly``) are accepted and stored as written.

Slots are real instants (aware datetimes), never naive wall times, because a wall time is
ambiguous in the hour a fall-back repeats. Two kinds of schedule meet a DST change differently,
as Vixie cron does:

- **Elapsed-time schedules** (the hour field is ``*``: Hourly, ``*/15 * * * *``, All) follow
  real time: every real instant whose local wall time matches is a slot, so the repeated hour
  runs twice and the skipped hour not at all; an hourly job runs once per real hour.
- **Wall-clock schedules** (named hours: Daily, ``30 2 * * *``) run once per matching wall
  time: at its first occurrence when the wall time repeats, and at the end of the gap (the
  first instant after it) when the wall time is skipped; several skipped wall times collapse
  into that one run.

The next execution is the first slot strictly after the last run (or ``creation`` for a job
type that never ran): missed slots are not replayed, and there is no random jitter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

from jobbench.errors import ValidationError

UTC = dt.UTC
CRON_MAP = {
    "Hourly": "0 * * * *",
    "Hourly Long": "0 * * * *",
    "Hourly Maintenance": "0 * * * *",
    "Daily": "0 0 * * *",
    "Daily Long": "0 0 * * *",
    "Daily Maintenance": "0 0 * * *",
    "Weekly": "0 0 * * 0",
    "Weekly Long": "0 0 * * 0",
    "Monthly": "0 0 1 * *",
    "Monthly Long": "0 0 1 * *",
    "Yearly": "0 0 1 1 *",
    "Annual": "0 0 1 1 *",
}
FREQUENCIES = ("All", *CRON_MAP, "Cron")
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_INTERVAL = 240
_LOOKBACK = dt.timedelta(hours=3)  # more than any DST shift: a wall time's earlier instants
_STEP = dt.timedelta(days=1)  # zones change offset at most once a day


def normalize_cron(expression: str) -> str:
    """The expression as stored and compared: outer and repeated spaces removed."""
    return " ".join(expression.split())


def validate_cron(expression: str | None) -> str:
    """Return the normalized expression, or raise ValidationError naming it."""
    if not expression or not isinstance(expression, str) or not expression.strip():
        raise ValidationError("Scheduled Job Type: a Cron job type needs a cron_format")
    return _validated(expression)


@lru_cache(maxsize=1024)  # every next-slot computation checks its cron: parse each once
def _validated(expression: str) -> str:
    text = normalize_cron(expression)
    expanded = ALIASES.get(text.lower(), text)
    if len(expanded.split()) not in (5, 6) or not croniter.is_valid(expanded):
        raise ValidationError(
            f"Scheduled Job Type: field 'cron_format' got {expression!r}: not a valid cron "
            "expression (five fields: minute hour day month weekday, e.g. '*/15 * * * *', "
            "or an alias such as '@hourly')"
        )
    return text


def cron_for(frequency: str, cron_format: str | None) -> str | None:
    """The cron expression of a frequency, aliases expanded (None for the interval-based All)."""
    if frequency == "Cron":
        text = validate_cron(cron_format)
        return ALIASES.get(text.lower(), text)
    if frequency == "All":
        return None
    if frequency not in CRON_MAP:
        raise ValidationError(
            f"Scheduled Job Type: field 'frequency' got {frequency!r}: expected one of "
            f"{', '.join(FREQUENCIES)}"
        )
    return CRON_MAP[frequency]


# -- instants and wall times ------------------------------------------------------------------
def to_local(instant: dt.datetime, zone: str) -> dt.datetime:
    """The naive wall time of an instant in ``zone`` (how documents store datetimes)."""
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def from_local(wall: dt.datetime, zone: str) -> dt.datetime:
    """The instant of a naive wall time: its first occurrence when a fall-back repeats it, the
    end of the gap when a spring-forward skips it. An aware value is taken as it is."""
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return _resolve(wall, ZoneInfo(zone))


def _resolve(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=0 reads it with the offset before the gap (an instant after the gap's
    # start), fold=1 with the offset after it (an instant before): the gap starts between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(zone, min(before, first), max(before, first))


def _transition(zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> dt.datetime:
    """The first instant in (lo, hi] whose UTC offset differs from lo's (to the second)."""
    offset = lo.astimezone(zone).utcoffset()
    low, high = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if dt.datetime.fromtimestamp(mid, zone).utcoffset() == offset:
            low = mid
        else:
            high = mid
    return dt.datetime.fromtimestamp(high, UTC)


def _next_change(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
    """The first offset change in (start, end], or None."""
    offset = start.astimezone(zone).utcoffset()
    lo = start
    while lo < end:
        hi = min(lo + _STEP, end)
        if hi.astimezone(zone).utcoffset() != offset:
            return _transition(zone, lo, hi)
        lo = hi
    return None


# -- the next slot ----------------------------------------------------------------------------
def next_slot(
    frequency: str,
    cron_format: str | None,
    after: dt.datetime,
    time_zone: str,
    interval: int = DEFAULT_INTERVAL,
) -> dt.datetime:
    """The first slot strictly after the instant ``after`` (aware; a naive value is read as a
    wall time of ``time_zone``). Returns an aware UTC datetime."""
    zone = ZoneInfo(time_zone)
    start = from_local(after, time_zone)
    expression = cron_for(frequency, cron_format)
    if expression is None:
        step = max(1, int(interval))
        return _next_elapsed(lambda wall, incl: _interval_after(wall, step, incl), start, zone)
    if _is_wall_clock(expression):
        return _next_wall_clock(expression, start, zone)
    return _next_elapsed(lambda wall, incl: _cron_after(expression, wall, incl), start, zone)


def next_execution(
    frequency: str,
    cron_format: str | None,
    after: dt.datetime,
    time_zone: str,
    interval: int = DEFAULT_INTERVAL,
) -> dt.datetime:
    """``next_slot`` as a naive wall time of ``time_zone`` (Frappe's ``next_execution``)."""
    return to_local(next_slot(frequency, cron_format, after, time_zone, interval), time_zone)


def _is_wall_clock(expression: str) -> bool:
    """Named hours: the schedule is about wall-clock times (see the module docstring)."""
    return expression.split()[1] not in ("*", "*/1")


def _cron_after(expression: str, wall: dt.datetime, inclusive: bool) -> dt.datetime:
    base = wall - dt.timedelta(microseconds=1) if inclusive else wall
    result: dt.datetime = croniter(expression, base).get_next(dt.datetime)
    return result


def _interval_after(wall: dt.datetime, interval: int, inclusive: bool) -> dt.datetime:
    """The next wall time after ``wall`` that is a multiple of ``interval`` since midnight;
    every day starts a fresh run of slots at midnight."""
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (wall - midnight).total_seconds()
    slots = math.ceil(elapsed / interval) if inclusive else math.floor(elapsed / interval) + 1
    return min(midnight + dt.timedelta(seconds=slots * interval), midnight + dt.timedelta(days=1))


def _next_elapsed(
    wall_after: Callable[[dt.datetime, bool], dt.datetime], start: dt.datetime, zone: ZoneInfo
) -> dt.datetime:
    """Follow real time: within a stretch of constant UTC offset, the wall-time arithmetic of
    ``wall_after`` is exact; at an offset change, start again from the change (inclusive)."""
    at, inclusive = start, False
    while True:
        offset = at.astimezone(zone).utcoffset()
        assert offset is not None
        wall = (at + offset).replace(tzinfo=None)
        candidate = (wall_after(wall, inclusive) - offset).replace(tzinfo=UTC)
        change = _next_change(zone, at, candidate)
        if change is None:
            return candidate
        at, inclusive = change, True


def _next_wall_clock(expression: str, start: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first matching wall time whose instant (see ``from_local``) is after ``start``."""
    wall = start.astimezone(zone).replace(tzinfo=None) - _LOOKBACK
    while True:
        wall = _cron_after(expression, wall, False)
        instant = _resolve(wall, zone)
        if instant > start:
            return instant


def schedule_basis(time_zone: str, interval: int) -> str:
    """What a stored next run was derived with; another basis means derive it again."""
    return f"{time_zone}|{interval}"


def slot_epoch(slot: dt.datetime, time_zone: str) -> int:
    """A slot's identity as UTC epoch seconds (a naive slot is read as a local wall time)."""
    return int(from_local(slot, time_zone).timestamp())
