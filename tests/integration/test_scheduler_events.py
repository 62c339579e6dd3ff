"""Configurable events (SPEC section 5): Scheduler Event documents and the job types linked to
them, starting with the seed's own sample, run with ``import jobbench as frappe``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.errors import MethodNotFound
from jobbench.scheduler.scheduler import Scheduler

from .scheduler_helpers import JOB_TYPE, Sched, sched_fixture, sched_sqlite_fixture  # noqa: F401

SEED = Path(__file__).resolve().parents[1] / "data" / "seed" / "background-jobs.zh.md"  # verbatim


def seed_sample() -> str:
    """The seed's block that creates a "Scheduler Event" and a "Scheduled Job Type"."""
    if not SEED.exists():
        pytest.fail(f"seed document missing at {SEED}")
    found = [
        block
        for block in re.findall(r"```python\n(.*?)```", SEED.read_text(encoding="utf-8"), re.S)
        if 'new_doc("Scheduler Event")' in block and 'new_doc("Scheduled Job Type")' in block
    ]
    assert len(found) == 1, f"expected one configurable-event sample in the seed, got {found}"
    return found[0]


def _event(sched: Sched, scheduled_against: str, method: str | None = None) -> tuple[str, str]:
    """A Scheduler Event and a Cron job type linked to it (every minute); their names."""
    with sched.ctx():
        event = jobbench.new_doc("Scheduler Event")
        event.scheduled_against = scheduled_against
        event.method = method
        event.save()
        job = jobbench.new_doc(JOB_TYPE, frequency="Cron", cron_format="* * * * *")
        job.scheduler_event = event.name
        job.create_log = 1
        job.save()
        jobbench.db.commit()
        return str(event.name), str(job.name)


def _execute(sched: Sched, name: str) -> Any:
    with sched.ctx():
        return jobbench.get_doc(JOB_TYPE, name).execute()


def test_the_seed_sample_runs_verbatim_and_links_the_job_type(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    code = seed_sample()
    namespace: dict[str, Any] = {}
    with sched.ctx():
        exec("import jobbench as frappe\n" + code, namespace)  # noqa: S102 - the seed's sample
        jobbench.db.commit()

    event, job = namespace["sch_eve"], namespace["job"]
    with sched.ctx():
        stored_event = jobbench.get_doc("Scheduler Event", event.name)
        assert stored_event.scheduled_against == "Process Payment Reconciliation"
        assert stored_event.method is None
        stored = jobbench.get_doc(JOB_TYPE, job.name)
    assert stored.scheduler_event == event.name
    assert (stored.frequency, stored.cron_format) == ("Cron", "0/5 * * * *")
    assert stored.next_execution.minute % 5 == 0 and stored.next_execution.second == 0
    assert not stored.stopped

    # and it runs the doctype's run_scheduled_event hook with the event
    assert _execute(sched, job.name) == event.name
    assert sched.marks() == [
        ["site1", f"reconcile:ProcessPaymentReconciliation:{event.name}", "Administrator", "None"]
    ]


def test_an_event_with_a_method_runs_that_method(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    _, job = _event(sched, "Process Payment Reconciliation", "sapp.jobs.event_method")

    assert _execute(sched, job) == "event_method"

    assert [m[1] for m in sched.marks()] == ["event_method"]
    assert [log["status"] for log in sched.logs(job)] == ["Complete"]


def test_a_staticmethod_hook_is_called_with_the_event(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    event, job = _event(sched, "Static Reconciliation")

    _execute(sched, job)

    assert [m[1] for m in sched.marks()] == [f"static:Static Reconciliation:{event}"]


def test_an_event_against_a_missing_doctype_fails_the_run_clearly(sched_sqlite: Sched) -> None:
    sched = sched_sqlite
    _, job = _event(sched, "No Such Doctype")

    with pytest.raises(jobbench.JobbenchError, match="'No Such Doctype' is not defined"):
        _execute(sched, job)

    (log,) = sched.logs(job)
    assert log["status"] == "Failed"
    assert "No Such Doctype" in log["details"]


def test_an_event_against_a_doctype_without_the_hook_fails_the_run_clearly(
    sched_sqlite: Sched,
) -> None:
    sched = sched_sqlite
    event, job = _event(sched, "Error Log")

    with pytest.raises(jobbench.JobError, match="run_scheduled_event") as caught:
        _execute(sched, job)

    assert event in str(caught.value) and "'Error Log'" in str(caught.value)
    assert [log["status"] for log in sched.logs(job)] == ["Failed"]


def test_an_event_method_that_does_not_resolve_is_refused_at_save(sched_sqlite: Sched) -> None:
    with sched_sqlite.ctx():
        event = jobbench.new_doc("Scheduler Event", scheduled_against="Error Log")
        event.method = "sapp.jobs.no_such_function"
        with pytest.raises(MethodNotFound, match="sapp.jobs.no_such_function"):
            event.save()
        assert jobbench.get_all("Scheduler Event") == []


def test_event_job_types_fire_from_the_scheduler_and_run_in_a_worker(sched: Sched) -> None:
    by_method, by_method_job = _event(sched, "Error Log", "sapp.jobs.event_method")
    by_hook, by_hook_job = _event(sched, "Process Payment Reconciliation")
    due = max(sched.job_type(n)["next_execution"] for n in (by_method_job, by_hook_job))

    report = Scheduler(sched.bench, quiet=True).tick(now=sched.epoch(due))

    assert sorted(report.enqueued) == sorted([f"site1:{by_method_job}", f"site1:{by_hook_job}"])
    sched.run_worker()
    marks = sorted(sched.marks())
    assert marks == sorted(
        [
            ["site1", "event_method", "Administrator", f"scheduled_job::{by_method_job}"],
            [
                "site1",
                f"reconcile:ProcessPaymentReconciliation:{by_hook}",
                "Administrator",
                f"scheduled_job::{by_hook_job}",
            ],
        ]
    )
    assert by_method  # the event itself exists; its job type ran its method
    for job in (by_method_job, by_hook_job):
        assert [log["status"] for log in sched.logs(job)] == ["Complete"]
        assert sched.record(job).status == "finished"
