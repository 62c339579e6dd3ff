"""The scheduler's own tick across DST changes, on a real site database and both brokers.

A simulated clock walks through time: it ticks ``Scheduler.tick(now=...)`` at the earliest
``next_run_at`` among the job types plus a random delay of 0-50 s, with extra ticks at random
moments before that (which must enqueue nothing), and after every tick claims and finishes what
was enqueued as a worker would (``Sched.finish_pending``). The jobs are not executed: the real
run's Start write sets ``last_execution`` to the real wall clock, which in a simulated walk
would be years off, so the next slot follows the tick's own record of the run, as the
scheduler leaves it. Each enqueued run's slot is the job type's ``next_run_at`` read just before
the tick. Every slot the independent oracle (``tests/dst_oracle.py``) expects must be enqueued
exactly once, and nothing else; and after every tick each job type's next run must lie after
it (a job type stuck on a slot fails at once instead of looping).

Job types: Hourly, Daily, Weekly, Monthly, All and the crons ``30 2 * * *``, ``0 2 * * *``,
``*/15 * * * *``, ``15 1,2,3 * * *``, ``0 */6 * * *``, ``45 2 * * 0``, ``0,30 2 * * *`` and
``0 2,3 * * *``. At the start of each walked stretch every job type is set to have last run
at the stretch's start (through the document, so ``next_run_at`` follows).

Short form (default): All every 1800 s, through ±28 h around every offset change of 2025-2026
in Europe/Berlin, America/New_York and Australia/Sydney, and one ordinary 3-day stretch (with
a Sunday and a first of the month) in Asia/Kolkata and UTC. Measured on the 2-core machine:
about 60 s for the whole file, both brokers (10 cases of 3-10 s; 2026-12-03, a busy day).

Long form (``--scheduler-long``): 2025-01-01 .. 2027-01-01 in all five zones, All every
3600 s; ``*/15`` sets the pace (70,080 ticks a zone, about 3 ms each). Measured: 190-220 s a
zone on SQLite, 225-280 s on Redis, about 40 min in all. Redis database 11 is shared: if a
test run elsewhere flushes it meanwhile, queued jobs vanish and the walk fails saying so.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

import jobbench
from dst_oracle import (
    CRON_0200,
    CRON_0200_0230,
    CRON_0230,
    CRON_1_2_3,
    CRON_2_3,
    CRON_6H,
    CRON_Q15,
    CRON_SUN_0245,
    DAILY,
    END,
    HOURLY,
    MONTHLY,
    START,
    WEEKLY,
    Schedule,
    difference,
    dst_changes,
    iso,
    slots,
)
from jobbench.scheduler.scheduler import Scheduler

from .scheduler_helpers import JOB_TYPE, SITE, Sched, sched_fixture  # noqa: F401

H = "sapp.hookfuncs."
MAX_DELAY = 50.0  # a tick lands up to this long after the slot it runs
SHORT = dt.timedelta(hours=28)
METHODS = {  # one method each, so the names say what they are
    "Hourly": H + "hourly_job",
    "Daily": H + "daily_job",
    "Weekly": H + "weekly_job",
    "Monthly": H + "monthly_job",
    "All": H + "every",
    "Cron": H + "cron_job",
}
CRONS = (
    CRON_0230,
    CRON_0200,
    CRON_Q15,
    CRON_1_2_3,
    CRON_6H,
    CRON_SUN_0245,
    CRON_0200_0230,
    CRON_2_3,
)
DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
ORDINARY = {  # 2025-06-01 is a Sunday and a first of the month
    "Asia/Kolkata": dt.datetime(2025, 5, 31, tzinfo=dt.UTC),
    "UTC": dt.datetime(2025, 5, 31, tzinfo=dt.UTC),
}


def schedules(interval: int) -> list[Schedule]:
    return [HOURLY, DAILY, WEEKLY, MONTHLY, Schedule("All", interval=interval), *CRONS]


def make_job_types(sched: Sched, zone: str, interval: int) -> dict[str, Schedule]:
    """Set the site's zone and interval, then create one job type per schedule."""
    sched.set_site(time_zone=zone, scheduler_interval=interval)
    made = {}
    for schedule in schedules(interval):
        fields = {"method": METHODS[schedule.frequency], "frequency": schedule.frequency}
        if schedule.cron_format:
            fields["cron_format"] = schedule.cron_format
        made[sched.new_job_type(**fields)] = schedule
    return made


def last_ran_at(sched: Sched, names: list[str], instant: dt.datetime, zone: str) -> None:
    """Make every job type look as if it last ran at ``instant`` (its next run follows)."""
    wall = instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    with sched.ctx():
        for name in names:
            doc = jobbench.get_doc(JOB_TYPE, name)
            doc.last_execution = wall
            doc.last_run_at = instant.timestamp()
            doc.save()
        jobbench.db.commit()


def next_runs(sched: Sched) -> dict[str, float]:
    """Each job type's stored next slot (UTC epoch), as the tick will read it."""
    with sched.ctx():
        rows = jobbench.get_all(JOB_TYPE, fields=["name", "next_run_at"])
    runs = {str(r.name): r.next_run_at for r in rows}
    assert None not in runs.values(), runs
    return runs


def walk(
    sched: Sched,
    names: list[str],
    zone: str,
    stretch: tuple[dt.datetime, dt.datetime],
    rng: random.Random,
) -> dict[str, list[int]]:
    """Tick through (start, end] as the scheduler process would, running nothing but finishing
    every enqueued job at once; return the slots enqueued per job type."""
    start, end = stretch
    got: dict[str, list[int]] = {name: [] for name in names}
    previous = start.timestamp()
    while True:
        due = next_runs(sched)
        earliest = min(due.values())
        stuck = {n: iso(t, zone) for n, t in due.items() if t <= previous}
        assert not stuck, f"not moved past the tick at {iso(previous, zone)}: {stuck}"
        if earliest > end.timestamp():
            return got
        if rng.random() < 0.25 and previous < earliest:
            early = rng.uniform(previous, earliest)
            report = Scheduler(sched.bench, quiet=True).tick(now=early)
            assert report.enqueued == [], f"enqueued before any slot, at {iso(early)}"
            assert report.errors == [] and report.blocked == []
        now = earliest + (0.0 if rng.random() < 0.1 else rng.uniform(0, MAX_DELAY))
        report = Scheduler(sched.bench, quiet=True).tick(now=now)
        assert report.errors == [] and report.blocked == [] and report.skipped_sites == {}
        for entry in report.enqueued:
            site, _, name = entry.partition(":")
            slot = due[name]
            assert site == SITE and slot <= now and slot == int(slot), (entry, slot, now)
            got[name].append(int(slot))
        finished = sched.finish_pending()
        assert finished == len(report.enqueued), (
            f"{len(report.enqueued)} enqueued, {finished} claimed and finished "
            "(on Redis: was database 11 flushed by another test run meanwhile?)"
        )
        previous = now


def check_walk(
    sched: Sched, zone: str, interval: int, stretches: list[tuple[dt.datetime, dt.datetime]]
) -> dict[str, int]:
    """Walk each stretch (job types reset to have last run at its start) and compare what was
    enqueued with the oracle; return how many slots each schedule had."""
    made = make_job_types(sched, zone, interval)
    names = list(made)
    rng = random.Random(f"{zone}|{sched.kind}|{interval}")
    problems, counts = [], dict.fromkeys((s.label for s in made.values()), 0)
    for start, end in stretches:
        last_ran_at(sched, names, start, zone)
        got = walk(sched, names, zone, (start, end), rng)
        for name, schedule in made.items():
            expected = slots(schedule, zone, start, end)
            counts[schedule.label] += len(expected)
            problem = difference(got[name], expected, zone)
            if problem:
                problems.append(
                    f"{schedule.label} ({name}), {start:%F %H:%M} .. {end:%F %H:%M} UTC: {problem}"
                )
    assert not problems, f"{zone} on {sched.kind}:\n" + "\n".join(problems)
    return counts


def short_stretches(zone: str) -> list[tuple[dt.datetime, dt.datetime]]:
    if zone in ORDINARY:
        begin = ORDINARY[zone]
        return [(begin, begin + dt.timedelta(days=3))]
    return [(change - SHORT, change + SHORT) for change in dst_changes(zone)]


@pytest.mark.parametrize("zone", [*DST_ZONES, *ORDINARY])
def test_each_slot_is_enqueued_once_around_every_dst_change(sched: Sched, zone: str) -> None:
    """Around each offset change of 2025-2026 (or through three ordinary days), the tick
    enqueues every slot of every schedule exactly once and nothing else."""
    stretches = short_stretches(zone)
    if zone in DST_ZONES:
        assert len(stretches) == 4, "two changes a year"
    counts = check_walk(sched, zone, 1800, stretches)
    idle = {label for label, n in counts.items() if n == 0}
    assert idle <= ({"Monthly"} if zone in DST_ZONES else set()), f"no slots to check: {idle}"


@pytest.mark.parametrize("zone", [*DST_ZONES, *ORDINARY])
def test_each_slot_is_enqueued_once_through_two_years(
    sched: Sched, zone: str, request: pytest.FixtureRequest
) -> None:
    """Through 2025 and 2026, the tick enqueues every slot of every schedule exactly once and
    nothing else (the long form)."""
    if not request.config.getoption("--scheduler-long"):
        pytest.skip("long form: run with --scheduler-long")
    counts = check_walk(sched, zone, 3600, [(START, END)])
    assert counts["Hourly"] == 2 * 365 * 24 and counts["Daily"] == 2 * 365
