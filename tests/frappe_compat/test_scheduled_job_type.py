"""Port of frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py.

Frappe's setUp truncates Scheduled Job Type and syncs it from the hooks; here every test gets
a fresh site whose job types ``install-app`` synced from the stub Frappe's real hooks. No case
involves a broker, so they run on the SQLite bench only. (Frappe's ``UnitTestScheduledJobType``
class is empty and has no case to port.)
"""

# The first docstring line of each test names its Frappe case in full (file::Class::test),
# which may run past 100 characters.
# ruff: noqa: E501

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import jobbench as frappe
from jobbench.errors import DuplicateEntryError
from jobbench.utils import get_datetime, now_datetime

from .conftest import JOB_TYPE, LOG, Compat

CLEAR_NOTIFICATIONS = "frappe.desk.notifications.clear_notifications"
FLUSH = "frappe.email.queue.flush"


def _job(method: str) -> Any:
    return frappe.get_doc(JOB_TYPE, {"method": method})


def _due_checks(fc: Compat, method: str, due: list[str], not_due: list[str]) -> Any:
    """Set the job type's last run to 2019-01-01 00:00 and check is_event_due at each time."""
    with fc.ctx():
        job = _job(method)
        job.db_set("last_execution", "2019-01-01 00:00:00")
        for when in due:
            assert job.is_event_due(get_datetime(when)), f"{method} should be due at {when}"
        for when in not_due:
            assert not job.is_event_due(get_datetime(when)), f"{method} is not due at {when}"
        return job


def test_throws_on_duplicate_job(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_throws_on_duplicate_job.

    A second job type with the same method and frequency (and no cron) is refused."""
    config = {"method": CLEAR_NOTIFICATIONS, "frequency": "Weekly"}
    with fc_sqlite.ctx():
        frappe.new_doc(JOB_TYPE, **config).insert()  # synced as Daily Maintenance: no clash
        with pytest.raises(DuplicateEntryError):
            frappe.new_doc(JOB_TYPE, **config).insert()
        frappe.db.rollback()


def test_throws_on_duplicate_job_with_cron_format(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_throws_on_duplicate_job_with_cron_format.

    A second Cron job type with the same method and cron string is refused."""
    config = {"method": CLEAR_NOTIFICATIONS, "frequency": "Cron", "cron_format": "*/1 * * * *"}
    with fc_sqlite.ctx():
        frappe.new_doc(JOB_TYPE, **config).insert()
        with pytest.raises(DuplicateEntryError):
            frappe.new_doc(JOB_TYPE, **config).insert()
        frappe.db.rollback()


def test_sync_jobs(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_sync_jobs.

    Hooked methods are synced with their frequency and cron, and a changed hook (flush moved to
    hourly) updates the job type on the next migrate."""
    fc = fc_sqlite
    with fc.ctx():
        assert _job(FLUSH).frequency == "All"
        assert _job(CLEAR_NOTIFICATIONS).frequency == "Daily Maintenance"
        # cron jobs are synced too
        cron_job = _job("frappe.deferred_insert.save_to_db")
        assert cron_job.frequency == "Cron"
        assert cron_job.cron_format == "0/15 * * * *"

    # the hooks change: Frappe's sync_jobs({"hourly": [flush]}); here the app's hooks.py
    # says so and migrate syncs it
    (fc.bench.path / "apps" / "frappe" / "hooks.py").write_text(
        f"scheduler_events = {{'hourly': [{FLUSH!r}]}}\n"
    )
    from integration.real_apps import forget_stub_apps
    from jobbench.sites import migrate_site

    forget_stub_apps()
    migrate_site(fc.bench, "site1")
    with fc.ctx():
        assert _job(FLUSH).frequency == "Hourly"


def test_daily_job(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_daily_job.

    A Daily job last run at 2019-01-01 00:00 is due from the next midnight on, not before."""
    _due_checks(
        fc_sqlite,
        "frappe.email.doctype.notification.notification.trigger_daily_alerts",
        due=["2019-01-02 00:00:06"],
        not_due=["2019-01-01 00:00:06", "2019-01-01 23:59:59"],
    )


def test_weekly_job(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_weekly_job.

    A Weekly Long job last run on Tuesday 2019-01-01 is due from Sunday midnight on."""
    _due_checks(
        fc_sqlite,
        "frappe.desk.form.document_follow.send_weekly_updates",
        due=["2019-01-06 00:10:01"],
        not_due=["2019-01-02 00:00:06", "2019-01-05 23:59:59"],
    )


def test_monthly_job(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_monthly_job.

    A Monthly job last run on 2019-01-01 is due from 2019-02-01 on."""
    _due_checks(
        fc_sqlite,
        "frappe.email.doctype.auto_email_report.auto_email_report.send_monthly",
        due=["2019-02-01 00:00:01"],
        not_due=["2019-01-15 00:00:06", "2019-01-31 23:59:59"],
    )


def test_cron_job(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_cron_job.

    A "0/10 * * * *" job last run at 00:00 runs next at 00:10 (read as next_execution) and is
    due from then on."""
    job = _due_checks(
        fc_sqlite,
        "frappe.email.doctype.email_account.email_account.pull",
        due=["2019-01-01 00:10:01"],
        not_due=["2019-01-01 00:05:06", "2019-01-01 00:09:59"],
    )
    with fc_sqlite.ctx():
        assert job.next_execution == get_datetime("2019-01-01 00:10:00")


def test_maintenance_jobs(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_maintenance_jobs.

    An (unsaved) Hourly Maintenance job type runs within the hour after its last run, then
    exactly one hour after that."""
    with fc_sqlite.ctx():
        sjt = frappe.new_doc(
            JOB_TYPE,
            frequency="Hourly Maintenance",
            last_execution=get_datetime("2019-01-01 23:59:00"),
        )
        # within one hour
        assert sjt.next_execution >= sjt.last_execution
        assert sjt.last_execution + dt.timedelta(hours=1) > sjt.next_execution
        # the next one exactly one hour later
        sjt.last_execution = sjt.next_execution
        assert sjt.last_execution + dt.timedelta(hours=1) == sjt.next_execution


def test_maintenance_jobs_with_a_site_offset() -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_maintenance_jobs.

    Skipped: this is the variant of unmerged PR #41245, which expects a per-site offset."""
    pytest.skip(
        "unmerged Frappe PR #41245 variant: it expects a per-site offset (38 min for "
        "'maintenance.test') on maintenance jobs; merged Frappe discards that offset and "
        "jobbench follows merged Frappe (no offset, test_maintenance_jobs covers it)"
    )


def test_cold_start(fc_sqlite: Compat) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_cold_start.

    A Daily job type that never ran counts from its creation: not due late this morning, due
    just after the coming midnight."""
    with fc_sqlite.ctx():
        now = now_datetime()
        just_before_12_am = now.replace(hour=11, minute=59, second=30)  # today, as in Frappe
        just_after_12_am = now.replace(hour=0, minute=0, second=30) + dt.timedelta(days=1)
        job = frappe.new_doc(JOB_TYPE, frequency="Daily")
        job.creation = now  # Frappe's set_user_and_timestamp(); the doc is never saved
        assert job.last_execution is None
        assert not job.is_event_due(just_before_12_am)
        assert job.is_event_due(just_after_12_am)


def test_job_survives_failing_log(fc_sqlite: Compat, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frappe: frappe/core/doctype/scheduled_job_type/test_scheduled_job_type.py::TestScheduledJobType::test_job_survives_failing_log.

    When writing the Scheduled Job Log raises, the method still runs and last_execution still
    moves on, so the job is not due again at once (unmerged PR #41245; jobbench guarantees
    it)."""
    fc = fc_sqlite
    with fc.ctx():
        job = frappe.new_doc(
            JOB_TYPE,
            method="compat.jobs.record_job_run",
            frequency="Daily",
            create_log=1,
            last_execution="2019-01-01 00:00:00",
        )
        job.insert()
        frappe.db.commit()
        name = job.name

    # Frappe hooks a raising on_update into Scheduled Job Log's doc_events; here the log's
    # own on_update raises the same way
    from jobbench.doctypes.scheduled_job_log import ScheduledJobLog

    def raise_import_error(self: Any) -> None:
        raise ImportError("cannot import name '_follow_document' from 'document_follow'")

    monkeypatch.setattr(ScheduledJobLog, "on_update", raise_import_error)
    with fc.ctx():
        frappe.get_doc(JOB_TYPE, name).execute()
    monkeypatch.undo()

    assert fc.lines(fc.bench.path / "ran.log") == ["site1"]  # the method ran
    with fc.ctx():
        assert frappe.get_all(LOG) == []  # the log write did fail
        last = frappe.db.get_value(JOB_TYPE, name, "last_execution")
        assert get_datetime(last) > get_datetime("2019-01-01 00:00:00")
        assert not frappe.get_doc(JOB_TYPE, name).is_event_due()
