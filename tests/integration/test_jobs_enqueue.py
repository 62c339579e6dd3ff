"""enqueue on both brokers, run by real burst workers: results, queues, dedup, after-commit,
failures, users and sites, enqueue_doc (SPEC section 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    job_fn,
    jobs_path,
)


def test_enqueue_by_function_and_by_path_stores_results(engine: Engine) -> None:
    by_fn = enqueue(engine, job_fn("add"), a=2, b=3, job_id="by-fn")
    by_path = enqueue(engine, jobs_path("add"), a=10, b=-4, job_id="by-path")
    assert (by_fn.status, by_path.status) == ("queued", "queued")
    assert by_fn.method == by_path.method == "japp.jobs.add"
    assert by_fn.id == "by-fn" and by_fn.kwargs == {"a": 2, "b": 3}

    engine.run_worker("default")

    assert by_fn.refresh().status == "finished" and by_fn.result == 5
    assert by_path.refresh().status == "finished" and by_path.result == 6
    assert by_fn.attempts == 1 and by_fn.worker
    assert by_fn.enqueued_at <= by_fn.started_at <= by_fn.ended_at


def test_multi_queue_burst_runs_in_priority_order_with_at_front(engine: Engine) -> None:
    order = engine.file("order.txt")
    line = jobs_path("append_line")
    enqueue(engine, line, queue="long", path=order, tag="long")
    enqueue(engine, line, queue="default", path=order, tag="default-1")
    enqueue(engine, line, queue="default", path=order, tag="default-2")
    enqueue(engine, line, queue="short", path=order, tag="short")
    enqueue(engine, line, queue="default", path=order, tag="default-front", at_front=True)

    engine.run_worker("short,default,long")

    assert Path(order).read_text().split() == [
        "short",
        "default-front",
        "default-1",
        "default-2",
        "long",
    ]


def test_worker_only_takes_its_own_queues(engine: Engine) -> None:
    short = enqueue(engine, jobs_path("noop"), queue="short")
    long = enqueue(engine, jobs_path("noop"), queue="long")
    engine.run_worker("short")
    assert short.refresh().status == "finished"
    assert long.refresh().status == "queued"


def test_deduplicate_skips_pending_and_replaces_finished(engine: Engine) -> None:
    first = enqueue(engine, jobs_path("add"), a=1, b=1, job_id="dedup", deduplicate=True)
    assert first is not None and first.status == "queued"
    again = enqueue(engine, jobs_path("add"), a=2, b=2, job_id="dedup", deduplicate=True)
    assert again is None
    with engine.ctx():
        assert len(jobbench.list_jobs()) == 1

    engine.run_worker("default")
    assert first.refresh().result == 2

    replaced = enqueue(engine, jobs_path("add"), a=3, b=3, job_id="dedup", deduplicate=True)
    assert replaced is not None and replaced.status == "queued"
    assert replaced.kwargs == {"a": 3, "b": 3}
    engine.run_worker("default")
    assert replaced.refresh().result == 6


def test_deduplicate_requires_job_id(engine: Engine) -> None:
    with pytest.raises(jobbench.JobError, match="job_id"):
        enqueue(engine, jobs_path("noop"), deduplicate=True)


def test_enqueue_after_commit_enqueues_on_commit_and_drops_on_rollback(engine: Engine) -> None:
    with engine.ctx():
        assert jobbench.enqueue(jobs_path("noop"), job_id="kept", enqueue_after_commit=True) is None
        assert jobbench.get_job("kept") is None
        jobbench.db.commit()
        assert jobbench.get_job_status("kept") == "queued"

        assert jobbench.enqueue(jobs_path("noop"), job_id="gone", enqueue_after_commit=True) is None
        jobbench.db.rollback()
        jobbench.db.commit()
        assert jobbench.get_job("gone") is None
    assert [j.id for j in committed(engine, jobbench.list_jobs)] == ["kept"]


def test_failure_rolls_back_the_job_and_writes_an_error_log(engine: Engine) -> None:
    job = enqueue(engine, jobs_path("write_task_then_fail"), subject="doomed")
    ok = enqueue(engine, jobs_path("write_task"), subject="kept")

    engine.run_worker("default")

    job.refresh()
    assert job.status == "failed"
    assert "Traceback" in job.exc_info and "ValueError: boom after writing doomed" in job.exc_info
    assert ok.refresh().status == "finished"
    subjects = committed(engine, lambda: jobbench.get_all("Task", fields=["subject"]))
    assert [t["subject"] for t in subjects] == ["kept"]
    logs = committed(engine, lambda: jobbench.get_all("Error Log", fields=["method", "error"]))
    assert [log["method"] for log in logs] == ["japp.jobs.write_task_then_fail"]
    assert "boom after writing doomed" in logs[0]["error"]


def test_job_runs_as_enqueuing_user_on_its_site(engine: Engine) -> None:
    one = enqueue(engine, jobs_path("write_as_user"), user="x@y", subject="s1", job_id="same")
    two = enqueue(engine, jobs_path("write_as_user"), site="site2", subject="s2", job_id="same")
    assert one.user == "x@y" and two.user == "Administrator"
    with engine.ctx("site1"):
        assert jobbench.get_job("same").site == "site1"
    with engine.ctx("site2"):
        assert jobbench.get_job("same").site == "site2"

    engine.run_worker("default")

    assert one.refresh().result[:2] == ["site1", "x@y"]
    assert two.refresh().result[:2] == ["site2", "Administrator"]

    def tasks() -> list[tuple[str, str]]:
        return [(t["subject"], t["owner"]) for t in jobbench.get_all("Task", fields=["*"])]

    assert committed(engine, tasks, "site1") == [("s1", "x@y")]
    assert committed(engine, tasks, "site2") == [("s2", "Administrator")]


def test_enqueue_doc_loads_the_document_fresh(engine: Engine) -> None:
    with engine.ctx():
        doc = jobbench.new_doc("Task", subject="before")
        doc.insert()
        jobbench.db.commit()
        job = jobbench.enqueue_doc("Task", doc.name, "mark", status="Done", job_id="doc")
        assert job.queue == "long" and job.timeout == 4000
        jobbench.db.set_value("Task", doc.name, "subject", "after")
        jobbench.db.commit()
        name = doc.name

    engine.run_worker("long")

    assert job.refresh().status == "finished"
    assert job.result == "after"
    status = committed(engine, lambda: jobbench.db.get_value("Task", name, "status"))
    assert status == "Done"


def test_enqueue_doc_missing_document_or_method_fails_cleanly(engine: Engine) -> None:
    with engine.ctx():
        doc = jobbench.new_doc("Task", subject="here")
        doc.insert()
        jobbench.db.commit()
        missing = jobbench.enqueue_doc("Task", "TASK-NOPE", "mark")
        no_method = jobbench.enqueue_doc("Task", doc.name, "no_such_method")

    engine.run_worker("long")

    missing.refresh()
    assert missing.status == "failed"
    assert "DoesNotExistError" in missing.exc_info and "TASK-NOPE" in missing.exc_info
    no_method.refresh()
    assert no_method.status == "failed"
    assert "Task has no method 'no_such_method'" in no_method.exc_info


def test_max_queued_jobs_raises_queue_overloaded(engine: Engine) -> None:
    engine.set_common(max_queued_jobs=2)
    enqueue(engine, jobs_path("noop"))
    enqueue(engine, jobs_path("noop"))
    with pytest.raises(jobbench.QueueOverloaded, match="default"):
        enqueue(engine, jobs_path("noop"), job_id="third")
    with engine.ctx():
        assert jobbench.get_job("third") is None
    assert enqueue(engine, jobs_path("noop"), queue="short").status == "queued"
    engine.run_worker("default")
    assert enqueue(engine, jobs_path("noop")).status == "queued"
