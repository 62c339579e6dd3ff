"""Slots across DST changes: ``cron.next_slot`` against an independent oracle (no database).

The oracle (``tests/dst_oracle.py``, zoneinfo only: no croniter, no jobbench code) lists every
slot of 2025-01-01 .. 2027-01-01 (UTC) for Hourly, Daily, Weekly, Monthly, All (1800 s and
240 s) and the crons ``30 2 * * *``, ``0 2 * * *``, ``*/15 * * * *``, ``15 1,2,3 * * *``,
``0 */6 * * *``, ``45 2 * * 0``, ``0,30 2 * * *`` and ``0 2,3 * * *`` in Europe/Berlin,
America/New_York, Australia/Sydney, Asia/Kolkata and UTC, under the policy of ``cron.py``'s
module docstring. Chaining ``next_slot`` from 2025-01-01 must give exactly those slots, in
order: each slot once, none missed, none invented.

Schedules with up to 10,000 slots in the two years are chained through all of it. The four
denser ones (Hourly, All every 1800 s and 240 s, ``*/15 * * * *``: 17,520 to 262,800 slots a
zone) are chained by default through windows: ±2 days around every offset change, ±12 h
around the start of every month, and the first and last two days, each chain starting from the
oracle slot just before its window. A full chain of ``*/15`` alone costs about 9 s a zone
(croniter parses the expression twice per call); ``--scheduler-long`` chains all four through
the full two years too. Measured on the 2-core machine: about 17 s for this file by
default, about 80 s with ``--scheduler-long``.

Named tests pin the issue's cases with hand-written instants, and a hypothesis test checks that
the slot after any instant is the first oracle slot after it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dst_oracle import (
    ALL_240,
    ALL_1800,
    CRON_0200_0230,
    CRON_0230,
    CRON_Q15,
    END,
    HOURLY,
    SCHEDULES,
    START,
    ZONES,
    Schedule,
    difference,
    dst_changes,
    first_after,
    iso,
    local_day,
    slots,
    slots_between,
)
from jobbench.scheduler.cron import next_slot

UTC = dt.UTC
DAY = dt.timedelta(days=1)
HOUR = 3600
DENSE = (HOURLY, ALL_1800, CRON_Q15, ALL_240)  # > 10,000 slots: windows unless --scheduler-long


def chain(schedule: Schedule, zone: str, start: dt.datetime, end: float) -> list[int]:
    """Epochs of the slots ``next_slot`` gives one after another from ``start`` up to ``end``
    (inclusive). Each must be an aware whole-second instant later than the one before."""
    got: list[int] = []
    at = start
    while True:
        nxt = next_slot(schedule.frequency, schedule.cron_format, at, zone, schedule.interval)
        assert nxt.tzinfo is not None and nxt.utcoffset() == dt.timedelta(0), nxt
        assert nxt > at, f"{schedule.label} in {zone}: next_slot({at}) = {nxt} is not later"
        assert nxt.microsecond == 0, nxt
        if nxt.timestamp() > end:
            return got
        got.append(int(nxt.timestamp()))
        at = nxt


def assert_same_slots(got: list[int], expected: tuple[int, ...], zone: str, what: str) -> None:
    """``got == expected``, with the first difference spelled out as local instants."""
    problem = difference(got, expected, zone)
    if problem:
        pytest.fail(f"{what}: {problem}")


def windows(zone: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """Merged stretches of the two years worth a chain of their own (see the docstring)."""
    stretches = [(START, START + 2 * DAY), (END - 2 * DAY, END)]
    stretches += [(c - 2 * DAY, c + 2 * DAY) for c in dst_changes(zone)]
    for year in (2025, 2026):
        for month in range(1, 13):
            first = dt.datetime(year, month, 1, tzinfo=UTC)
            stretches.append((first - DAY / 2, first + DAY / 2))
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(stretches):
        a, b = max(a, START), min(b, END)
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


# -- the property: two years of slots, chained ------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.label)
@pytest.mark.parametrize("zone", ZONES)
def test_chained_next_slot_gives_each_oracle_slot_once_in_order(
    zone: str, schedule: Schedule, request: pytest.FixtureRequest
) -> None:
    """From 2025-01-01 to 2027-01-01, ``next_slot`` chained gives exactly the oracle's slots,
    in order (the dense schedules through windows, see the module docstring)."""
    expected = slots(schedule, zone)
    assert expected, "the oracle found no slots at all"
    if schedule not in DENSE or request.config.getoption("--scheduler-long"):
        got = chain(schedule, zone, START, END.timestamp())
        assert_same_slots(got, expected, zone, f"{schedule.label} in {zone}, two years")
        return
    for a, b in windows(zone):
        before = slots_between(expected, START.timestamp(), a.timestamp())
        start = dt.datetime.fromtimestamp(before[-1], UTC) if before else START
        got = chain(schedule, zone, start, b.timestamp())
        want = slots_between(expected, start.timestamp(), b.timestamp())
        assert_same_slots(got, want, zone, f"{schedule.label} in {zone}, {a:%F} .. {b:%F}")


@pytest.mark.parametrize("zone", ZONES)
def test_the_oracle_counts_one_run_a_real_hour_and_one_run_a_wall_clock_time(zone: str) -> None:
    """A check of the oracle itself: in every zone the two years hold 17,520 real hours (an
    hourly run each), 730 days with one 02:30 run each whatever DST does, and 104 Sundays; the
    repeated and skipped hours cancel out for the elapsed schedules."""
    assert len(slots(HOURLY, zone)) == 2 * 365 * 24
    assert len(slots(ALL_1800, zone)) == 2 * 365 * 48
    assert len(slots(CRON_Q15, zone)) == 2 * 365 * 96
    assert len(slots(CRON_0230, zone)) == 2 * 365
    assert len(slots(Schedule("Weekly"), zone)) == 104
    assert len(slots(Schedule("Monthly"), zone)) == 24


def test_the_oracle_sees_every_dst_change_of_the_two_years() -> None:
    """The oracle's own offset-change search finds the known 2025-2026 changes (and none in
    Kolkata or UTC), so its transition-day handling covers the days that matter."""
    assert [c.isoformat() for c in dst_changes("Europe/Berlin")] == [
        "2025-03-30T01:00:00+00:00",
        "2025-10-26T01:00:00+00:00",
        "2026-03-29T01:00:00+00:00",
        "2026-10-25T01:00:00+00:00",
    ]
    assert [c.isoformat() for c in dst_changes("America/New_York")] == [
        "2025-03-09T07:00:00+00:00",
        "2025-11-02T06:00:00+00:00",
        "2026-03-08T07:00:00+00:00",
        "2026-11-01T06:00:00+00:00",
    ]
    assert [c.isoformat() for c in dst_changes("Australia/Sydney")] == [
        "2025-04-05T16:00:00+00:00",
        "2025-10-04T16:00:00+00:00",
        "2026-04-04T16:00:00+00:00",
        "2026-10-03T16:00:00+00:00",
    ]
    assert dst_changes("Asia/Kolkata") == () and dst_changes("UTC") == ()


# -- the named cases ------------------------------------------------------------------
def day_slots(schedule: Schedule, zone: str, day: dt.date) -> list[int]:
    """The slots ``next_slot`` chains through the local day ``day`` (from the day before)."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(day - DAY, dt.time(), tz).astimezone(UTC)
    end = dt.datetime.combine(day + 2 * DAY, dt.time(), tz).astimezone(UTC)
    return local_day(chain(schedule, zone, start, end.timestamp()), zone, day)


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


@pytest.mark.parametrize(
    ("zone", "day", "instant"),
    [
        # 02:30 repeats in Berlin: its first occurrence, 02:30 CEST
        ("Europe/Berlin", dt.date(2025, 10, 26), "2025-10-26T00:30:00+00:00"),
        # New York repeats 01:00-01:59, so 02:30 (EST) happens once anyway
        ("America/New_York", dt.date(2025, 11, 2), "2025-11-02T07:30:00+00:00"),
        # 02:30 repeats in Sydney: its first occurrence, 02:30 AEDT
        ("Australia/Sydney", dt.date(2025, 4, 6), "2025-04-05T15:30:00+00:00"),
    ],
)
def test_a_0230_cron_runs_once_on_a_fall_back_day(zone: str, day: dt.date, instant: str) -> None:
    """On a fall-back day ``30 2 * * *`` runs exactly once, at the first 02:30; the days either
    side run once each too."""
    assert day_slots(CRON_0230, zone, day) == [utc(instant)]
    for other in (day - DAY, day + DAY):
        (only,) = day_slots(CRON_0230, zone, other)
        assert iso(only, zone)[11:19] == "02:30:00"
    assert local_day(slots(CRON_0230, zone), zone, day) == [utc(instant)]  # the oracle agrees


def test_berlin_hourly_runs_four_times_in_the_three_wall_hours_of_the_fall_back_night() -> None:
    """Berlin, 2025-10-26: wall hours 01:00-03:59 last four real hours, and Hourly runs in
    each once: 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET."""
    got = day_slots(HOURLY, "Europe/Berlin", dt.date(2025, 10, 26))
    night = [s for s in got if "01" <= iso(s, "Europe/Berlin")[11:13] <= "03"]
    assert night == [
        utc("2025-10-25T23:00:00+00:00"),
        utc("2025-10-26T00:00:00+00:00"),
        utc("2025-10-26T01:00:00+00:00"),
        utc("2025-10-26T02:00:00+00:00"),
    ]
    assert [iso(s, "Europe/Berlin")[11:] for s in night] == [
        "01:00:00+02:00",
        "02:00:00+02:00",
        "02:00:00+01:00",
        "03:00:00+01:00",
    ]


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", dt.date(2025, 10, 26), 25),
        ("America/New_York", dt.date(2025, 11, 2), 25),
        ("Australia/Sydney", dt.date(2025, 4, 6), 25),
        ("Europe/Berlin", dt.date(2025, 3, 30), 23),
        ("America/New_York", dt.date(2025, 3, 9), 23),
        ("Australia/Sydney", dt.date(2025, 10, 5), 23),
        ("Asia/Kolkata", dt.date(2025, 3, 30), 24),
    ],
)
def test_hourly_runs_once_per_real_hour_on_a_dst_day(zone: str, day: dt.date, hours: int) -> None:
    """Hourly runs once per real hour of the day (25 on a fall-back day, 23 on a
    spring-forward day), exactly 3600 s apart, from local midnight on."""
    got = day_slots(HOURLY, zone, day)
    assert len(got) == hours
    assert {b - a for a, b in zip(got, got[1:], strict=False)} == {HOUR}
    midnight = dt.datetime.combine(day, dt.time(), ZoneInfo(zone))
    assert got[0] == int(midnight.timestamp())


@pytest.mark.parametrize(
    ("zone", "day", "instant", "wall"),
    [
        ("Europe/Berlin", dt.date(2025, 3, 30), "2025-03-30T01:00:00+00:00", "03:00:00+02:00"),
        ("America/New_York", dt.date(2025, 3, 9), "2025-03-09T07:00:00+00:00", "03:00:00-04:00"),
        ("Australia/Sydney", dt.date(2025, 10, 5), "2025-10-04T16:00:00+00:00", "03:00:00+11:00"),
    ],
)
def test_a_0230_cron_runs_once_at_the_end_of_the_gap_on_a_spring_forward_day(
    zone: str, day: dt.date, instant: str, wall: str
) -> None:
    """02:30 does not exist on a spring-forward day: ``30 2 * * *`` runs once, at the first
    instant after the gap (03:00 new time), and once on each day either side."""
    got = day_slots(CRON_0230, zone, day)
    assert got == [utc(instant)]
    assert iso(got[0], zone)[11:] == wall
    for other in (day - DAY, day + DAY):
        assert len(day_slots(CRON_0230, zone, other)) == 1
    assert local_day(slots(CRON_0230, zone), zone, day) == [utc(instant)]  # the oracle agrees


def test_skipped_wall_times_collapse_into_one_run_at_the_end_of_the_gap() -> None:
    """``0,30 2 * * *`` on Berlin's spring-forward day: 02:00 and 02:30 are both skipped and
    give one run, at 03:00 CEST; on the fall-back day they run once each (CEST)."""
    assert day_slots(CRON_0200_0230, "Europe/Berlin", dt.date(2025, 3, 30)) == [
        utc("2025-03-30T01:00:00+00:00")
    ]
    assert day_slots(CRON_0200_0230, "Europe/Berlin", dt.date(2025, 10, 26)) == [
        utc("2025-10-26T00:00:00+00:00"),
        utc("2025-10-26T00:30:00+00:00"),
    ]


# -- any instant: the next slot is the first oracle slot after it ----------------------------
SCHEDULE_CHOICES = st.sampled_from(SCHEDULES)
LAST_START = int((END - dt.timedelta(days=40)).timestamp())  # a slot always follows


@st.composite
def start_instants(draw: st.DrawFn, zone: str, expected: tuple[int, ...]) -> dt.datetime:
    """An instant of the two years: anywhere, near an offset change, or at/near a slot;
    whole seconds or not, given in UTC or in the zone."""
    changes = [int(c.timestamp()) for c in dst_changes(zone)]
    usable = slots_between(expected, START.timestamp(), LAST_START)
    bases = [st.integers(int(START.timestamp()), LAST_START), st.sampled_from(usable)]
    if changes:
        bases.append(st.sampled_from(changes))
    base = draw(st.one_of(bases))
    offset = draw(st.one_of(st.just(0), st.integers(-3, 3), st.integers(-4 * HOUR, 4 * HOUR)))
    micro = draw(st.one_of(st.just(0), st.integers(0, 999_999)))
    epoch = max(int(START.timestamp()), min(LAST_START, base + offset))
    instant = dt.datetime.fromtimestamp(epoch, UTC).replace(microsecond=micro)
    return instant.astimezone(ZoneInfo(zone)) if draw(st.booleans()) else instant


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_next_slot_after_any_instant_is_the_first_oracle_slot_after_it(data: st.DataObject) -> None:
    """For a random zone, schedule and instant: next_slot(start) > start, no oracle slot lies
    strictly between them, and next_slot(start) is itself an oracle slot."""
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    schedule = data.draw(SCHEDULE_CHOICES, label="schedule")
    expected = slots(schedule, zone)
    start = data.draw(start_instants(zone, expected), label="start")

    nxt = next_slot(schedule.frequency, schedule.cron_format, start, zone, schedule.interval)

    assert nxt > start
    between = slots_between(expected, start.timestamp(), nxt.timestamp() - 1e-6)
    assert not between, f"skipped oracle slots {[iso(s, zone) for s in between]}"
    want = first_after(expected, start.timestamp())
    assert want is not None
    assert nxt.timestamp() == want, f"got {iso(nxt.timestamp(), zone)}, want {iso(want, zone)}"
