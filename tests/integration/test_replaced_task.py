"""A tracked job replaced by a job with the same id: its Background Task ends Cancelled
(enqueue calls jobbench.jobs.tracking.end_replaced) instead of staying Queued at 0 % forever."""

from __future__ import annotations

from typing import Any

import jobbench
from jobbench.jobs.tracking import REPLACED

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)


def _tasks(engine: Engine, job_id: str) -> dict[str, Any]:
    rows = committed(
        engine,
        lambda: jobbench.get_all("Background Task", filters={"job_id": job_id}, fields=["*"]),
    )
    return {row["name"]: dict(row) for row in rows}


def test_the_replaced_jobs_task_ends_cancelled_and_the_new_one_runs(engine: Engine) -> None:
    method = jobs_path("own_task_status")
    first = enqueue(engine, method, track_job=True, job_id="same")
    second = enqueue(engine, method, track_job=True, job_id="same")  # enqueue ends the first

    tasks = _tasks(engine, "same")
    old, new = tasks[first.task_id], tasks[second.task_id]
    assert (old["status"], old["exception"]) == ("Cancelled", REPLACED)
    assert old["ended_at"] is not None
    assert new["status"] == "Queued" and new["ended_at"] is None

    engine.run_worker("default")
    tasks = _tasks(engine, "same")
    assert tasks[second.task_id]["status"] == "Completed"
    assert tasks[first.task_id]["status"] == "Cancelled"  # settled once, not touched again


def test_ended_tasks_and_other_ids_are_left_alone(engine: Engine) -> None:
    method = jobs_path("own_task_status")
    done = enqueue(engine, method, track_job=True, job_id="again")
    other = enqueue(engine, method, track_job=True, job_id="other")
    engine.run_worker("default")
    later = enqueue(engine, method, track_job=True, job_id="again")

    assert _tasks(engine, "again")[done.task_id]["status"] == "Completed"
    assert _tasks(engine, "other")[other.task_id]["status"] == "Completed"
    assert _tasks(engine, "again")[later.task_id]["status"] == "Queued"
