"""An independent oracle for scheduled-job slots across DST changes (zoneinfo only).

It knows nothing of croniter or ``jobbench.scheduler.cron``: it has its own tiny cron parser
and its own search for a zone's offset changes, and states the policy of ``cron.py``'s module
docstring directly:

- **elapsed-time schedules** (the hour field is ``*``, and ``All``): every real instant whose
  local wall time matches is a slot, so a repeated hour has two and a skipped hour none;
- **wall-clock schedules** (named hours): one instant per matching wall time, its first
  occurrence when a fall-back repeats it, the end of the gap (the offset change itself) when a
  spring-forward skips it; wall times that land on the same instant are one slot.

``All`` matches the wall times whose seconds since local midnight are a multiple of
``interval``. Slots are UTC epoch seconds (ints). On a day without an offset change every
wall time has exactly one instant, ``wall - offset``, so only the few transition days are
resolved one wall time at a time; two years of ``All`` every 240 s cost well under a second.
"""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC")
START = dt.datetime(2025, 1, 1, tzinfo=UTC)
END = dt.datetime(2027, 1, 1, tzinfo=UTC)
DAY = 86400
_EPOCH_DATE = dt.date(1970, 1, 1)

# The frequency table (Frappe's), restated here rather than imported.
FREQUENCY_CRON = {
    "Hourly": "0 * * * *",
    "Daily": "0 0 * * *",
    "Weekly": "0 0 * * 0",
    "Monthly": "0 0 1 * *",
}


@dataclass(frozen=True)
class Schedule:
    """One schedule as a Scheduled Job Type states it."""

    frequency: str
    cron_format: str | None = None
    interval: int = 240  # scheduler_interval, used by All only

    @property
    def label(self) -> str:
        if self.frequency == "All":
            return f"All/{self.interval}s"
        return self.cron_format if self.frequency == "Cron" else self.frequency

    @property
    def expression(self) -> str | None:
        if self.frequency == "All":
            return None
        if self.frequency == "Cron":
            assert self.cron_format
            return self.cron_format
        return FREQUENCY_CRON[self.frequency]

    @property
    def elapsed(self) -> bool:
        """True for elapsed-time schedules (follow real time), False for wall-clock ones."""
        expression = self.expression
        return expression is None or expression.split()[1] in ("*", "*/1")


HOURLY = Schedule("Hourly")
DAILY = Schedule("Daily")
WEEKLY = Schedule("Weekly")
MONTHLY = Schedule("Monthly")
ALL_1800 = Schedule("All", interval=1800)
ALL_240 = Schedule("All", interval=240)
ALL_3600 = Schedule("All", interval=3600)
CRON_0230 = Schedule("Cron", "30 2 * * *")
CRON_0200 = Schedule("Cron", "0 2 * * *")
CRON_Q15 = Schedule("Cron", "*/15 * * * *")
CRON_1_2_3 = Schedule("Cron", "15 1,2,3 * * *")
CRON_6H = Schedule("Cron", "0 */6 * * *")
CRON_SUN_0245 = Schedule("Cron", "45 2 * * 0")
CRON_0200_0230 = Schedule("Cron", "0,30 2 * * *")  # two skipped wall times, one run
CRON_2_3 = Schedule("Cron", "0 2,3 * * *")  # skipped 02:00 lands on 03:00's instant
SCHEDULES = (
    HOURLY,
    DAILY,
    WEEKLY,
    MONTHLY,
    ALL_1800,
    ALL_240,
    CRON_0230,
    CRON_0200,
    CRON_Q15,
    CRON_1_2_3,
    CRON_6H,
    CRON_SUN_0245,
    CRON_0200_0230,
    CRON_2_3,
)


# -- a small cron parser ----------------------------------------------------------------------
def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if rng == "*":
            first, last = low, high
        elif "-" in rng:
            a, b = rng.split("-")
            first, last = int(a), int(b)
        else:
            first = int(rng)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    assert values and min(values) >= low and max(values) <= high, (text, values)
    return frozenset(values)


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> _Cron:
        minute, hour, day, month, weekday = expression.split()
        weekdays = {d % 7 for d in _field(weekday, 0, 7)}
        return cls(
            _field(minute, 0, 59),
            _field(hour, 0, 23),
            _field(day, 1, 31),
            _field(month, 1, 12),
            frozenset(weekdays),
            day == "*",
            weekday == "*",
        )

    def day_matches(self, date: dt.date) -> bool:
        if date.month not in self.months:
            return False
        in_days = date.day in self.days
        in_weekdays = (date.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # one is '*': both must hold (one trivially)
            return in_days and in_weekdays
        return in_days or in_weekdays  # both restricted: either (Vixie cron)

    def seconds_of_day(self) -> list[int]:
        return sorted(h * 3600 + m * 60 for h in self.hours for m in self.minutes)


def _day_plan(schedule: Schedule) -> tuple[Callable[[dt.date], bool], list[int]]:
    """Which local dates have slots, and the wall times (seconds since midnight) they match."""
    expression = schedule.expression
    if expression is None:
        return (lambda _date: True), list(range(0, DAY, schedule.interval))
    cron = _Cron.parse(expression)
    return cron.day_matches, cron.seconds_of_day()


# -- the zone's offset changes ----------------------------------------------------------------
def _seconds_east(aware: dt.datetime) -> int:
    offset = aware.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def _offset(zone: ZoneInfo, epoch: int) -> int:
    return _seconds_east(dt.datetime.fromtimestamp(epoch, zone))


@functools.cache
def transitions(zone_name: str, start: int, end: int) -> tuple[int, ...]:
    """Epoch seconds of every offset change in (start, end]: the first second of the new
    offset. Found by an hourly scan, then bisected to the second."""
    zone = ZoneInfo(zone_name)
    found: list[int] = []
    lo, off = start, _offset(zone, start)
    while lo < end:
        hi = min(lo + 3600, end)
        if _offset(zone, hi) != off:
            a, b = lo, hi
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(zone, mid) == off:
                    a = mid
                else:
                    b = mid
            found.append(b)
            off = _offset(zone, hi)
        lo = hi
    return tuple(found)


def _wall(zone: ZoneInfo, epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, zone).replace(tzinfo=None)


def _instants_of(zone: ZoneInfo, wall: dt.datetime) -> list[int]:
    """Every real instant whose wall time is ``wall``: none, one, or two (a repeated hour)."""
    found = []
    for fold in (0, 1):
        # via UTC: astimezone() to the same tzinfo returns the value unchanged
        epoch = int(wall.replace(tzinfo=zone, fold=fold).timestamp())
        if _wall(zone, epoch) == wall:
            found.append(epoch)
    return sorted(set(found))


def _resolve(zone: ZoneInfo, wall: dt.datetime, changes: list[int]) -> int:
    """The one instant of a wall time: its first occurrence, or the end of the gap."""
    found = _instants_of(zone, wall)
    if found:
        return found[0]
    for change in changes:
        before, after = _wall(zone, change - 1), _wall(zone, change)
        if before < wall < after:
            return change
    raise AssertionError(f"{wall} in {zone} is neither a wall time nor in a gap")


# -- slots ------------------------------------------------------------------------------------
def _slots(schedule: Schedule, zone_name: str, start: int, end: int) -> list[int]:
    zone = ZoneInfo(zone_name)
    changes = list(transitions(zone_name, start - 2 * DAY, end + 2 * DAY))
    odd_days = {_wall(zone, c + d).date() for c in changes for d in (-1, 0)}
    matches, times = _day_plan(schedule)
    found: set[int] = set()
    date = _wall(zone, start).date() - dt.timedelta(days=1)
    last = _wall(zone, end).date() + dt.timedelta(days=1)
    while date <= last:
        if matches(date):
            midnight = dt.datetime.combine(date, dt.time())
            if date in odd_days:
                for second in times:
                    wall = midnight + dt.timedelta(seconds=second)
                    if schedule.elapsed:
                        found.update(_instants_of(zone, wall))
                    else:
                        found.add(_resolve(zone, wall, changes))
            else:
                noon = (midnight + dt.timedelta(hours=12)).replace(tzinfo=zone)
                base = (date - _EPOCH_DATE).days * DAY - _seconds_east(noon)
                found.update(base + second for second in times)
        date += dt.timedelta(days=1)
    return sorted(s for s in found if start < s <= end)


@functools.cache
def _cached(schedule: Schedule, zone_name: str, start: int, end: int) -> tuple[int, ...]:
    return tuple(_slots(schedule, zone_name, start, end))


def slots(
    schedule: Schedule, zone_name: str, start: dt.datetime = START, end: dt.datetime = END
) -> tuple[int, ...]:
    """The expected slots (UTC epoch seconds, ascending) in the interval (start, end]."""
    return _cached(schedule, zone_name, int(start.timestamp()), int(end.timestamp()))


def slots_between(all_slots: tuple[int, ...], start: float, end: float) -> tuple[int, ...]:
    """The part of a sorted slot list in (start, end]."""
    return all_slots[bisect.bisect_right(all_slots, start) : bisect.bisect_right(all_slots, end)]


def first_after(all_slots: tuple[int, ...], after: float) -> int | None:
    """The first slot strictly after ``after``, or None past the end of the list."""
    i = bisect.bisect_right(all_slots, after)
    return all_slots[i] if i < len(all_slots) else None


def dst_changes(
    zone_name: str, start: dt.datetime = START, end: dt.datetime = END
) -> tuple[dt.datetime, ...]:
    """The zone's offset changes in (start, end], as aware UTC datetimes."""
    found = transitions(zone_name, int(start.timestamp()), int(end.timestamp()))
    return tuple(dt.datetime.fromtimestamp(t, UTC) for t in found)


def iso(epoch: float, zone_name: str = "UTC") -> str:
    """An epoch as a readable instant of ``zone_name`` (for assertion messages)."""
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(zone_name)).isoformat()


def difference(got: list[int], expected: tuple[int, ...] | list[int], zone_name: str) -> str | None:
    """None when ``got == expected``, else the first difference spelled out as local instants
    (with what is missing and what is extra)."""
    if list(got) == list(expected):
        return None
    i = next(
        (k for k, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e),
        min(len(got), len(expected)),
    )

    def show(seq: list[int] | tuple[int, ...]) -> list[str]:
        return [iso(e, zone_name) for e in seq]

    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    twice = sorted(e for e, n in collections.Counter(got).items() if n > 1)[:5]
    return (
        f"{len(got)} slots, expected {len(expected)}; first difference at #{i}:\n"
        f"  got      {show(got[max(0, i - 2) : i + 3])}\n"
        f"  expected {show(expected[max(0, i - 2) : i + 3])}\n"
        f"  missing {show(missing)}\n  extra   {show(extra)}\n  twice   {show(twice)}"
    )


def local_day(epochs: Iterator[int] | tuple[int, ...], zone_name: str, day: dt.date) -> list[int]:
    """The epochs whose local date in ``zone_name`` is ``day``."""
    zone = ZoneInfo(zone_name)
    return [e for e in epochs if _wall(zone, e).date() == day]
