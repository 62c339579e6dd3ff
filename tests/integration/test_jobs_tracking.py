"""track_job (Background Task), publish_progress, retry=N and RetryBackgroundJobError
(SPEC sections 3, 4 and 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    wait_until,
)


def _task(engine: Engine, job_id: str, site: str = "site1") -> dict[str, Any]:
    rows = committed(
        engine,
        lambda: jobbench.get_all("Background Task", filters={"job_id": job_id}, fields=["*"]),
        site,
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


def test_tracked_job_goes_queued_running_completed(engine: Engine) -> None:
    job = enqueue(
        engine, jobs_path("own_task_status"), user="x@y", track_job=True, job_id="tracked"
    )
    task = _task(engine, "tracked")
    assert task["status"] == "Queued"
    assert (task["user"], task["method"], task["queue"]) == ("x@y", job.method, "default")
    assert task["task_id"] == job.task_id and task["started_at"] is None

    engine.run_worker("default")

    assert job.refresh().status == "finished"
    assert job.result == "Running"  # what the job saw of its own task while it ran
    task = _task(engine, "tracked")
    assert task["status"] == "Completed"
    assert task["result"] == "Running"
    assert task["progress"] == 100
    assert task["started_at"] is not None and task["ended_at"] >= task["started_at"]


def test_tracked_job_reading_publishing_and_writing_runs_once(engine: Engine) -> None:
    """Progress commits to the site DB from the tracker's own connection must not break the
    job's transaction (on SQLite: a stale snapshot, then "database is locked" and a re-run)."""
    counter = engine.file("counter")
    job = enqueue(
        engine, jobs_path("read_publish_write"), counter=counter, subject="w", track_job=True
    )
    engine.run_worker("default")
    job.refresh()
    assert (job.status, job.result, job.attempts) == ("finished", 1, 1), job.exc_info
    assert Path(counter).read_text() == "1"
    assert job.ended_at.timestamp() - job.started_at.timestamp() < 1.0  # no in-place retry
    assert committed(engine, lambda: jobbench.get_all("Task", pluck="subject")) == ["w"]
    assert committed(engine, lambda: jobbench.get_all("Error Log")) == []
    task = _task(engine, job.id)
    assert (task["status"], task["progress"]) == ("Completed", 100)


def test_tracked_job_failure_shows_the_exception(engine: Engine) -> None:
    enqueue(engine, jobs_path("write_task_then_fail"), subject="s", track_job=True, job_id="f")
    engine.run_worker("default")
    assert engine.record("f").status == "failed"
    task = _task(engine, "f")
    assert task["status"] == "Failed"
    assert "ValueError: boom after writing s" in task["exception"]
    assert task["ended_at"] is not None


def test_tracked_enqueue_doc_references_the_document(engine: Engine) -> None:
    with engine.ctx():
        doc = jobbench.new_doc("Task", subject="ref")
        doc.insert()
        jobbench.db.commit()
        jobbench.enqueue_doc("Task", doc.name, "mark", track_job=True, job_id="d")
    task = _task(engine, "d")
    assert (task["ref_doctype"], task["ref_docname"], task["method"]) == (
        "Task",
        doc.name,
        "Task.mark",
    )
    engine.run_worker("long")
    assert _task(engine, "d")["status"] == "Completed", _task(engine, "d")


def test_progress_is_visible_on_job_and_task_while_running(engine: Engine) -> None:
    go = engine.file("go")
    job = enqueue(engine, jobs_path("progress_then_wait"), go=go, track_job=True, job_id="p")
    worker = engine.start_worker("default", burst=True)

    def halfway() -> bool:
        job.refresh()
        return job.progress == 50

    wait_until(halfway, 15, "progress 50 on the job")
    assert (job.status, job.stage) == ("started", "half way")
    task = wait_until(lambda: (t := _task(engine, "p"))["progress"] == 50 and t, 5, "task 50%")
    assert (task["status"], task["progress"], task["stage"]) == ("Running", 50, "half way")

    Path(go).write_text("go")
    assert worker.wait() == 0
    assert job.refresh().status == "finished" and job.progress == 100
    task = _task(engine, "p")
    assert (task["status"], task["progress"]) == ("Completed", 100)
    assert task["result"] == {"done": True}


def test_retry_with_backoff_then_success(engine: Engine) -> None:
    counter = engine.file("counter")
    job = enqueue(engine, jobs_path("fail_first_time"), counter=counter, retry=1, track_job=True)
    worker = engine.start_worker("default")
    record = engine.wait_status(job.id, "scheduled", 15)
    assert record.attempts == 1 and record.retries_left == 0
    assert "first attempt fails" in record.exc_info
    assert 0.9 <= record.retry_at - record.ended_at <= 1.5  # backoff: 1 s before retry 1
    done = engine.wait_status(job.id, ("finished", "failed"), 15)
    worker.signal(15)
    assert worker.wait() == 0

    assert done.status == "finished"
    assert done.attempts == 2
    assert job.refresh().result == 2
    assert done.started_at >= record.retry_at
    assert _task(engine, job.id)["status"] == "Completed"


def test_retry_exhausted_ends_failed(engine: Engine) -> None:
    job = enqueue(engine, jobs_path("write_task_then_fail"), subject="s", retry=1)
    worker = engine.start_worker("default")
    done = engine.wait_status(job.id, "failed", 15)
    worker.signal(15)
    assert worker.wait() == 0
    assert done.attempts == 2 and done.retries_left == 0
    logs = committed(engine, lambda: jobbench.get_all("Error Log", pluck="method"))
    assert logs == ["japp.jobs.write_task_then_fail"] * 2


def test_retry_background_job_error_is_retried_in_place(engine: Engine) -> None:
    counter = engine.file("counter")
    job = enqueue(engine, jobs_path("retry_in_place_once"), user="x@y", counter=counter)
    engine.run_worker("default")
    job.refresh()
    assert job.status == "finished"
    assert job.result == [2, "x@y"]
    assert job.attempts == 1  # the retry ran inside the same attempt
    assert job.ended_at.timestamp() - job.started_at.timestamp() >= 1.0  # the 1 s pause
