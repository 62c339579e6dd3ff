"""The next run follows ``last_execution`` however it changes, on SQLite, PostgreSQL and
MariaDB site databases: through ``save()``, ``db_set``, ``db.set_value`` and raw SQL (the
reschedule trigger), and when ``scheduler_interval`` or the time zone changes, at the next
tick and without ``migrate``. A tick reads only rows that are due or changed. Also Frappe's
``enqueue(force)`` contract and ``execute()``'s Start write, and a log that cannot be written
never stops the method. The bench uses the SQLite broker (the broker is not what is tested)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import jobbench
from jobbench.bench import Bench
from jobbench.jobs.record import full_id
from jobbench.scheduler.scheduler import Scheduler, _candidates
from jobbench.utils import get_datetime

JOB_TYPE = "Scheduled Job Type"
OLD = "2019-01-01 00:00:00"
FOLLOW_APP = """
import jobbench


def seen():
    '''Record what another connection sees of this job type while the method runs.'''
    name = jobbench.job.kwargs["job_type"] if jobbench.job else "jobs.seen"
    with jobbench.site_context(jobbench.local.site, jobbench.local.bench.path):
        last = jobbench.db.get_value("Scheduled Job Type", name, "last_execution")
    SEEN.append(last)
    return str(last)


SEEN = []
"""


@pytest.fixture
def follow(site: str, bench: Bench, make_app: Callable[..., Path]) -> Iterator[str]:
    """site1 (on each of the three databases) with an app ``fjob`` whose ``seen`` job records
    the committed last_execution."""
    from jobbench.sites import install_app

    make_app("fjob", hooks="", jobs=FOLLOW_APP)
    install_app(bench, site, "fjob")
    yield site
    from conftest import release_bench

    release_bench(bench)


def _new(frequency: str = "Daily", **fields: Any) -> Any:
    doc = jobbench.new_doc(JOB_TYPE, method="fjob.jobs.seen", frequency=frequency, **fields)
    doc.insert()
    jobbench.db.commit()
    return doc


def _row(name: str) -> Any:
    return jobbench.db.get_value(
        JOB_TYPE, name, ["last_execution", "next_execution", "next_run_at"], as_dict=True
    )


def _raw_sql(name: str, value: str) -> None:
    table = _quoted(f"tab{JOB_TYPE}")
    jobbench.db.sql(
        f"UPDATE {table} SET last_execution = :v WHERE name = :n", {"v": value, "n": name}
    )


def _db_set(name: str, value: str) -> None:
    jobbench.get_doc(JOB_TYPE, name).db_set("last_execution", value, update_modified=False)


def _set_value(name: str, value: str) -> None:
    jobbench.db.set_value(JOB_TYPE, name, "last_execution", value)


def _save(name: str, value: str) -> None:
    doc = jobbench.get_doc(JOB_TYPE, name)
    doc.last_execution = value
    doc.save()


WAYS = {"save": _save, "db_set": _db_set, "set_value": _set_value, "raw_sql": _raw_sql}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_the_next_run_follows_last_execution_however_it_was_changed(
    follow: str, bench: Bench, way: str
) -> None:
    with jobbench.site_context(follow, bench.path):
        doc = _new("Daily")
        fresh_next = _row(doc.name).next_execution
        assert fresh_next > jobbench.utils.now_datetime()  # a new job type is not due yet
        assert _candidates(jobbench.local, dt.datetime.now().timestamp(), _basis()) == []

        WAYS[way](doc.name, OLD)
        jobbench.db.commit()

        assert jobbench.get_doc(JOB_TYPE, doc.name).get_next_execution() == dt.datetime(2019, 1, 2)
        assert _candidates(jobbench.local, dt.datetime.now().timestamp(), _basis()) == [doc.name]

    report = Scheduler(bench, quiet=True).tick()

    assert report.enqueued == [f"{follow}:{doc.name}"], report
    with jobbench.site_context(follow, bench.path):
        row = _row(doc.name)
        assert row.last_execution > get_datetime(OLD)  # the run was recorded
        assert row.next_execution == fresh_next  # and the next one is the coming midnight


def _basis() -> str:
    from jobbench.scheduler.cron import schedule_basis

    interval = int(jobbench.conf.get("scheduler_interval") or 240)
    return schedule_basis(jobbench.local.time_zone(), interval)


def test_changes_made_behind_the_documents_back_null_the_next_run_until_the_tick(
    follow: str, bench: Bench
) -> None:
    with jobbench.site_context(follow, bench.path):
        doc = _new("Hourly")
        _raw_sql(doc.name, OLD)
        jobbench.db.commit()
        assert _row(doc.name).next_run_at is None
        jobbench.db.set_value(JOB_TYPE, doc.name, "next_run_at", 123.0)  # ours: left alone
        jobbench.db.commit()
        assert _row(doc.name).next_run_at == 123.0
        jobbench.db.set_value(JOB_TYPE, doc.name, "stopped", 1)  # not a schedule input
        jobbench.db.commit()
        assert _row(doc.name).next_run_at == 123.0


def test_a_new_scheduler_interval_applies_at_the_next_tick_without_migrate(
    follow: str, bench: Bench
) -> None:
    with jobbench.site_context(follow, bench.path):
        doc = _new("All")
        assert _row(doc.name).next_execution.minute % 4 == 0
    bench.update_common_config({"scheduler_interval": 420})  # every 7 minutes
    Scheduler(bench, quiet=True).tick()
    with jobbench.site_context(follow, bench.path):
        row = _row(doc.name)
        since_midnight = row.next_execution.hour * 60 + row.next_execution.minute
        assert since_midnight % 7 == 0 and row.next_execution.second == 0  # 7-minute slots
        stored = jobbench.db.get_value(JOB_TYPE, doc.name, "schedule_basis")
        assert stored.endswith("|420")


def test_a_new_time_zone_applies_at_the_next_tick_without_migrate(
    follow: str, bench: Bench
) -> None:
    bench.update_site_config(follow, {"time_zone": "Asia/Kolkata"})
    with jobbench.site_context(follow, bench.path):
        doc = _new("Daily")
        before = _row(doc.name).next_run_at
    bench.update_site_config(follow, {"time_zone": "America/New_York"})
    Scheduler(bench, quiet=True).tick()
    with jobbench.site_context(follow, bench.path):
        row = _row(doc.name)
        assert row.next_execution.time() == dt.time(0, 0)  # midnight in New York now
        assert row.next_run_at != before
        midnight = dt.datetime.fromtimestamp(row.next_run_at, dt.UTC)
        assert midnight.astimezone(ZoneInfo("America/New_York")).hour == 0


def test_a_tick_reads_only_due_or_changed_job_types(follow: str, bench: Bench) -> None:
    with jobbench.site_context(follow, bench.path):
        names = [_new("Cron", cron_format=f"{i} 3 * * *").name for i in range(30)]
        now = dt.datetime.now().timestamp()
        assert _candidates(jobbench.local, now, _basis()) == []
        _set_value(names[4], OLD)
        _raw_sql(names[7], OLD)
        jobbench.db.commit()
        assert sorted(_candidates(jobbench.local, now, _basis())) == sorted([names[4], names[7]])


def test_enqueue_force_and_due_follow_frappe(follow: str, bench: Bench) -> None:
    with jobbench.site_context(follow, bench.path):
        doc = _new("Daily")
        assert doc.enqueue() is False  # not due: nothing enqueued
        assert jobbench.get_job(doc.rq_job_id) is None
        assert doc.enqueue(force=True) is True  # forced although not due
        assert jobbench.get_job(doc.rq_job_id).status == "queued"
        assert doc.enqueue(force=True) is False  # never while a run is queued
        doc.db_set("last_execution", OLD)
        assert doc.enqueue() is False  # due, but the run is still queued
        from jobbench.brokers.factory import get_broker

        broker = get_broker(bench, jobbench.conf)
        assert len(broker.find(site=follow, queue="default", limit=10)) == 1
        assert broker.get(full_id(follow, doc.rq_job_id)) is not None


def test_execute_commits_last_execution_at_start(follow: str, bench: Bench) -> None:
    import fjob.jobs  # type: ignore[import-not-found]

    fjob.jobs.SEEN.clear()
    with jobbench.site_context(follow, bench.path):
        doc = _new("Daily")
        doc.db_set("last_execution", OLD)
        jobbench.db.commit()
        before = jobbench.utils.now_datetime()
        jobbench.get_doc(JOB_TYPE, doc.name).execute()
        after = jobbench.utils.now_datetime()
        (seen,) = fjob.jobs.SEEN
        assert seen is not None and before - dt.timedelta(seconds=1) <= seen <= after
        row = _row(doc.name)
        assert row.last_execution == seen
        assert row.next_execution == dt.datetime.combine(
            seen.date() + dt.timedelta(days=1), dt.time()
        )


def test_a_log_that_cannot_be_written_never_stops_the_method(
    follow: str, bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    import fjob.jobs  # type: ignore[import-not-found]

    fjob.jobs.SEEN.clear()
    with jobbench.site_context(follow, bench.path):
        doc = _new("Daily")  # Daily: create_log
        assert doc.create_log
        jobbench.db.execute(sa.text(f"DROP TABLE {_quoted('tabScheduled Job Log')}"))
        jobbench.db.commit()
        result = jobbench.get_doc(JOB_TYPE, doc.name).execute()
    assert fjob.jobs.SEEN and result == str(fjob.jobs.SEEN[0])
    (warning,) = [r for r in caplog.records if r.name == "jobbench.scheduler"]
    assert "could not write its Scheduled Job Log" in warning.getMessage()
    assert warning.levelname == "WARNING"


def _quoted(table: str) -> str:
    return str(jobbench.db.engine.dialect.identifier_preparer.quote(table))
