"""Next-execution maths of scheduled job types, against Frappe's own table of cases."""

from __future__ import annotations

from datetime import datetime

import pytest

from jobbench.errors import ValidationError
from jobbench.scheduler.cron import cron_for, next_execution, slot_epoch, validate_cron

UTC = "UTC"


def nxt(
    frequency: str, after: datetime, cron: str | None = None, interval: int = 240, zone: str = UTC
) -> datetime:
    return next_execution(frequency, cron, after, zone, interval)


def test_daily_is_due_just_after_midnight_and_not_before() -> None:
    # Given a daily job that last ran at 2019-01-01 00:00
    due = nxt("Daily", datetime(2019, 1, 1, 0, 0))
    # Then it is due at 2019-01-02 00:00:06 and not at 2019-01-01 23:59:59
    assert due <= datetime(2019, 1, 2, 0, 0, 6)
    assert not due <= datetime(2019, 1, 1, 23, 59, 59)


def test_weekly_from_a_tuesday_runs_on_sunday() -> None:
    assert nxt("Weekly", datetime(2019, 1, 1)) == datetime(2019, 1, 6)


def test_monthly_runs_on_the_first() -> None:
    assert nxt("Monthly", datetime(2019, 1, 1)) == datetime(2019, 2, 1)


def test_cron_every_fifteen_minutes() -> None:
    assert nxt("Cron", datetime(2019, 1, 1), cron="0/15 * * * *") == datetime(2019, 1, 1, 0, 15)


def test_hourly_runs_on_the_next_full_hour() -> None:
    assert nxt("Hourly", datetime(2019, 1, 1, 10, 37, 12)) == datetime(2019, 1, 1, 11, 0)


def test_yearly_from_a_leap_day_runs_on_new_year() -> None:
    assert nxt("Yearly", datetime(2024, 2, 29, 23, 59, 59)) == datetime(2025, 1, 1)
    assert nxt("Annual", datetime(2024, 2, 29, 23, 59, 59)) == datetime(2025, 1, 1)


def test_all_follows_the_scheduler_interval() -> None:
    assert nxt("All", datetime(2019, 1, 1, 10, 37, 12)) == datetime(2019, 1, 1, 10, 40)


def test_all_with_an_interval_under_a_minute() -> None:
    assert nxt("All", datetime(2019, 1, 1, 10, 37, 12), interval=5) == datetime(
        2019, 1, 1, 10, 37, 15
    )
    assert nxt("All", datetime(2019, 1, 1, 10, 37, 15), interval=5) == datetime(
        2019, 1, 1, 10, 37, 20
    )


def test_all_rolls_over_midnight() -> None:
    assert nxt("All", datetime(2019, 1, 1, 23, 58), interval=240) == datetime(2019, 1, 2, 0, 0)


def test_long_frequencies_share_the_cron_of_their_short_twin() -> None:
    after = datetime(2019, 1, 1, 10, 37, 12)
    assert nxt("Hourly Long", after) == nxt("Hourly", after)
    assert nxt("Daily Long", after) == nxt("Daily", after)
    assert nxt("Weekly Long", after) == nxt("Weekly", after)
    assert nxt("Monthly Long", after) == nxt("Monthly", after)


def test_a_slot_is_strictly_after_the_last_run() -> None:
    # A job that ran exactly on its slot is next due one slot later, not again now.
    assert nxt("Hourly", datetime(2019, 1, 1, 11, 0)) == datetime(2019, 1, 1, 12, 0)


def test_missed_slots_are_not_replayed() -> None:
    # After three days of downtime, a daily job is due once, then follows its schedule.
    first = nxt("Daily", datetime(2019, 1, 1))
    assert first == datetime(2019, 1, 2)
    ran_late = datetime(2019, 1, 5, 9, 30)
    assert nxt("Daily", ran_late) == datetime(2019, 1, 6)


def test_daily_in_berlin_across_the_spring_dst_change() -> None:
    # 2024-03-31: 02:00 -> 03:00 in Europe/Berlin. A daily 02:30 job runs at 03:00 that day.
    after = datetime(2024, 3, 30, 2, 30)
    assert nxt("Cron", after, cron="30 2 * * *", zone="Europe/Berlin") == datetime(2024, 3, 31, 3)
    # and the 00:00 daily slot is still local midnight on both sides of the change
    assert nxt("Daily", datetime(2024, 3, 31, 12), zone="Europe/Berlin") == datetime(2024, 4, 1)


def test_hourly_in_berlin_across_the_autumn_dst_change_keeps_real_hours() -> None:
    # 2024-10-27: 03:00 -> 02:00. Slots are an hour apart in real time.
    a = nxt("Hourly", datetime(2024, 10, 27, 0, 30), zone="Europe/Berlin")
    b = nxt("Hourly", a, zone="Europe/Berlin")
    assert a == datetime(2024, 10, 27, 1, 0)
    assert b == datetime(2024, 10, 27, 2, 0)
    assert slot_epoch(b, "Europe/Berlin") - slot_epoch(a, "Europe/Berlin") == 3600


def test_slot_epoch_is_the_utc_instant() -> None:
    assert slot_epoch(datetime(2019, 1, 1, 1, 0), "Europe/Berlin") == 1546300800


@pytest.mark.parametrize("bad", ["", "bad cron", "61 * * * *", "* * * *", "0 0 32 * *"])
def test_invalid_cron_is_a_validation_error_naming_it(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate_cron(bad)
    if bad:
        assert repr(bad) in str(err.value)


def test_unknown_frequency_is_refused() -> None:
    with pytest.raises(ValidationError, match="Fortnightly"):
        cron_for("Fortnightly", None)


def test_frappe_cron_map() -> None:
    assert cron_for("Hourly", None) == "0 * * * *"
    assert cron_for("Daily", None) == "0 0 * * *"
    assert cron_for("Weekly", None) == "0 0 * * 0"
    assert cron_for("Monthly", None) == "0 0 1 * *"
    assert cron_for("Yearly", None) == "0 0 1 1 *"
    assert cron_for("All", None) is None
    assert cron_for("Cron", " 0/5 * * * * ") == "0/5 * * * *"


def test_maintenance_frequencies_share_the_cron_of_hourly_and_daily() -> None:
    after = datetime(2025, 6, 3, 10, 17)
    assert nxt("Hourly Maintenance", after) == nxt("Hourly", after) == datetime(2025, 6, 3, 11)
    assert nxt("Daily Maintenance", after) == nxt("Daily", after) == datetime(2025, 6, 4)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", datetime(2025, 6, 3, 11)),
        ("@daily", datetime(2025, 6, 4)),
        ("@midnight", datetime(2025, 6, 4)),
        ("@weekly", datetime(2025, 6, 8)),  # the next Sunday
        ("@monthly", datetime(2025, 7, 1)),
        ("@yearly", datetime(2026, 1, 1)),
        ("@annually", datetime(2026, 1, 1)),
        ("@HOURLY", datetime(2025, 6, 3, 11)),
    ],
)
def test_cron_aliases(alias: str, expected: datetime) -> None:
    assert validate_cron(alias) == alias
    assert nxt("Cron", datetime(2025, 6, 3, 10, 17), cron=alias) == expected


def test_a_padded_cron_string_is_normalized() -> None:
    assert validate_cron("  0/15   * *  * *\t") == "0/15 * * * *"
    assert cron_for("Cron", " 0 2 * * * ") == "0 2 * * *"


def test_a_naive_wall_time_maps_to_its_first_occurrence_or_the_end_of_the_gap() -> None:
    from datetime import UTC as utc

    from jobbench.scheduler.cron import from_local, to_local

    berlin = "Europe/Berlin"
    repeated = from_local(datetime(2025, 10, 26, 2, 30), berlin)  # 02:30 happens twice
    assert repeated == datetime(2025, 10, 26, 0, 30, tzinfo=utc)  # the CEST one, first
    skipped = from_local(datetime(2025, 3, 30, 2, 30), berlin)  # 02:30 never happens
    assert skipped == datetime(2025, 3, 30, 1, 0, tzinfo=utc)  # 03:00 CEST, the gap's end
    assert to_local(skipped, berlin) == datetime(2025, 3, 30, 3, 0)
