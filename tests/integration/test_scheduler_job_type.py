"""The Scheduled Job Type document (SPEC section 5): validation, the create_log rule, the unique
schedule, due-ness from last run or creation, and the actions execute() and
skip_next_execution(). Nothing here touches a broker, so it runs on SQLite only."""

from __future__ import annotations

import datetime as dt

import pytest

import jobbench
from jobbench.errors import DuplicateEntryError, InvalidQueue, ValidationError
from jobbench.scheduler import cron

from .scheduler_helpers import JOB_TYPE, ZONE, Sched, sched_sqlite_fixture  # noqa: F401

J = "sapp.jobs."
HOUR = dt.timedelta(hours=1)


def _count(sched: Sched) -> int:
    return len(sched.job_types())


@pytest.mark.parametrize("bad", ["61 * * * *", "every day", "* * *", "0 0 31 2 * * * *"])
def test_an_invalid_cron_format_is_refused_naming_it_and_nothing_is_written(
    sched_sqlite: Sched, bad: str
) -> None:
    sched = sched_sqlite
    with sched.ctx():
        doc = jobbench.new_doc(JOB_TYPE, method=J + "ping", frequency="Cron", cron_format=bad)
        with pytest.raises(ValidationError) as caught:
            doc.save()
        assert repr(bad) in str(caught.value)
        assert "cron_format" in str(caught.value)
        jobbench.db.commit()
    assert _count(sched) == 0


def test_an_invalid_cron_on_an_existing_job_type_leaves_it_unchanged(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0/5 * * * *")
    before = sched.job_type(name)

    with sched.ctx():
        doc = jobbench.get_doc(JOB_TYPE, name)
        doc.cron_format = "0/5 * * *"
        with pytest.raises(ValidationError, match=r"'0/5 \* \* \*'"):
            doc.save()
        jobbench.db.commit()

    assert sched.job_type(name) == before


def test_a_cron_job_type_without_a_cron_format_is_refused(sched_sqlite: Sched) -> None:
    with sched_sqlite.ctx():
        doc = jobbench.new_doc(JOB_TYPE, method=J + "ping", frequency="Cron")
        with pytest.raises(ValidationError, match="cron_format"):
            doc.insert()
    assert _count(sched_sqlite) == 0


def test_an_unknown_frequency_is_refused(sched_sqlite: Sched) -> None:
    with sched_sqlite.ctx():
        doc = jobbench.new_doc(JOB_TYPE, method=J + "ping", frequency="Fortnightly")
        with pytest.raises(ValidationError, match="Fortnightly"):
            doc.insert()
    assert _count(sched_sqlite) == 0


def test_create_log_is_forced_on_except_for_all_and_cron(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    names = {}
    for frequency in cron.FREQUENCIES:
        names[frequency] = sched.new_job_type(
            method=J + "ping",
            frequency=frequency,
            cron_format="0 1 * * *" if frequency == "Cron" else None,
            create_log=0,
        )
    stored = {f: bool(sched.job_type(n)["create_log"]) for f, n in names.items()}
    assert stored == {f: f not in ("All", "Cron") for f in cron.FREQUENCIES}

    # and an explicit create_log on All/Cron is kept
    explicit = sched.new_job_type(method=J + "pong", frequency="All", create_log=1)
    assert sched.job_type(explicit)["create_log"]


def test_the_same_method_frequency_and_cron_twice_is_a_duplicate(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0 1 * * *")
    sched.new_job_type(method=J + "ping", frequency="Hourly")

    for fields in (
        {"frequency": "Cron", "cron_format": "0 1 * * *"},
        {"frequency": "Hourly"},
    ):
        with sched.ctx(), pytest.raises(DuplicateEntryError, match=r"sapp\.jobs\.ping"):
            jobbench.new_doc(JOB_TYPE, method=J + "ping", **fields).insert()
    assert _count(sched) == 2

    # a different cron or frequency of the same method is another schedule
    sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0 2 * * *")
    sched.new_job_type(method=J + "ping", frequency="Daily")
    assert _count(sched) == 4


def test_an_update_into_an_existing_schedule_is_a_duplicate(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    sched.new_job_type(method=J + "ping", frequency="Hourly")
    other = sched.new_job_type(method=J + "ping", frequency="Daily")
    with sched.ctx():
        doc = jobbench.get_doc(JOB_TYPE, other)
        doc.frequency = "Hourly"
        with pytest.raises(DuplicateEntryError):
            doc.save()
    assert sched.job_type(other)["frequency"] == "Daily"


def test_is_event_due_follows_the_last_execution(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="Hourly")
    with sched.ctx():
        doc = jobbench.get_doc(JOB_TYPE, name)
        doc.last_execution = dt.datetime(2024, 5, 1, 10, 37, 12)
        doc.save()
        assert doc.next_execution == dt.datetime(2024, 5, 1, 11, 0)
        assert not doc.is_event_due(dt.datetime(2024, 5, 1, 10, 59, 59))
        assert doc.is_event_due(dt.datetime(2024, 5, 1, 11, 0))
        assert doc.is_event_due(dt.datetime(2024, 5, 2, 3, 0))


def test_a_cold_start_job_type_is_not_due_before_its_first_slot(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="Hourly")
    row = sched.job_type(name)
    created = row["creation"]
    first = created.replace(minute=0, second=0, microsecond=0) + HOUR

    assert row["last_execution"] is None
    assert row["next_execution"] == first
    with sched.ctx():
        doc = jobbench.get_doc(JOB_TYPE, name)
        assert not doc.is_event_due(created)
        assert not doc.is_event_due(first - dt.timedelta(seconds=1))
        assert doc.is_event_due(first)


def test_next_execution_is_in_the_site_time_zone(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="Daily")
    row = sched.job_type(name)
    with sched.ctx() as local:
        assert local.time_zone() == ZONE
        now = local.now()
    # creation is local time of the site (Asia/Kolkata), and the next slot is local midnight
    assert abs((row["creation"] - now).total_seconds()) < 60
    assert row["next_execution"] == dt.datetime.combine(
        row["creation"].date() + dt.timedelta(days=1), dt.time()
    )


def test_skip_next_execution_moves_it_one_slot(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0/15 * * * *")
    with sched.ctx():
        doc = jobbench.get_doc(JOB_TYPE, name)
        doc.last_execution = dt.datetime(2024, 5, 1, 10, 1)
        doc.save()
        assert doc.next_execution == dt.datetime(2024, 5, 1, 10, 15)
        doc.skip_next_execution()
        jobbench.db.commit()
    row = sched.job_type(name)
    assert row["last_execution"] == dt.datetime(2024, 5, 1, 10, 15)
    assert row["next_execution"] == dt.datetime(2024, 5, 1, 10, 30)


def test_execute_runs_now_and_logs_start_then_complete(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "see_own_log", frequency="Daily")
    with sched.ctx() as local:
        before = local.now()
        result = jobbench.get_doc(JOB_TYPE, name).execute()
        after = local.now()

    # while it ran, another connection saw its log at Start
    assert result == "log:Start"
    assert sched.marks() == [["site1", "log:Start", "Administrator", "None"]]
    (log,) = sched.logs(name)
    assert log["status"] == "Complete"
    assert log["details"] is None
    assert before <= log["start"] <= log["end"] <= after


def test_execute_of_a_failing_job_logs_failed_with_the_traceback(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "write_then_fail", frequency="Hourly")
    with sched.ctx() as local:
        before = local.now()
        with pytest.raises(RuntimeError, match="failed after writing"):
            jobbench.get_doc(JOB_TYPE, name).execute()
        after = local.now()

    (log,) = sched.logs(name)
    assert log["status"] == "Failed"
    assert "Traceback (most recent call last)" in log["details"]
    assert "RuntimeError: failed after writing" in log["details"]
    assert "write_then_fail" in log["details"]
    assert before <= log["start"] <= log["end"] <= after
    with sched.ctx():  # the run's own writes were rolled back, the log was not
        assert jobbench.get_all("Process Payment Reconciliation") == []
    assert [m[1] for m in sched.marks()] == ["write_then_fail"]


def test_execute_without_create_log_writes_no_log(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    name = sched.new_job_type(method=J + "ping", frequency="All")
    with sched.ctx():
        assert jobbench.get_doc(JOB_TYPE, name).execute() == "ping"
    assert sched.logs() == []
    assert [m[1] for m in sched.marks()] == ["ping"]


def test_a_queue_override_must_name_a_known_queue(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    with sched.ctx():
        doc = jobbench.new_doc(JOB_TYPE, method=J + "ping", frequency="Daily", queue="nope")
        with pytest.raises(InvalidQueue, match="nope"):
            doc.insert()
    assert _count(sched) == 0
    sched.set_common(workers={"reports": {"timeout": 900}})
    name = sched.new_job_type(method=J + "ping", frequency="Daily", queue="reports")
    with sched.ctx():
        assert jobbench.get_doc(JOB_TYPE, name).target_queue == "reports"
