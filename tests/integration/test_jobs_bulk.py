"""enqueue_many with real workers on both brokers: records built and signed as enqueue builds
them, run by workers; every refusal checked before anything is written; dedup, tracking,
delays and enqueue_after_commit per batch."""

from __future__ import annotations

from pathlib import Path

import pytest

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    job_fn,
    jobs_path,
)


def test_a_batch_runs_like_jobs_enqueued_one_by_one(engine: Engine) -> None:
    order = engine.file("order.txt")
    specs = [
        {"method": jobs_path("add"), "kwargs": {"a": i, "b": 1}, "job_id": f"add-{i}"}
        for i in range(100)
    ]
    line = {"path": order, "tag": "t"}
    specs.append({"method": job_fn("append_line"), "kwargs": line, "queue": "long"})
    head_options = {"at_front": True, "job_name": "head", "event": "ev", "timeout": 60}
    specs.append(
        {"method": jobs_path("append_line"), "kwargs": {**line, "tag": "h"}, "queue": "long"}
        | head_options
    )
    with engine.ctx():
        jobs = jobbench.enqueue_many(specs)
        jobbench.enqueue(jobs_path("add"), a=0, b=1, job_id="single")
    assert len(jobs) == 102 and all(j is not None and j.status == "queued" for j in jobs)
    head = jobs[-1]
    assert head is not None and (head.job_name, head.event, head.timeout) == ("head", "ev", 60)
    batched, one = engine.record("add-0"), engine.record("single")
    assert batched is not None and one is not None
    assert batched.signature is not None
    assert (batched.method, batched.user, batched.serializer) == (
        one.method,
        one.user,
        one.serializer,
    )
    engine.run_worker()
    assert [j.refresh().result for j in jobs[:100] if j is not None] == list(range(1, 101))
    assert Path(order).read_text().split() == ["h", "t"]


@pytest.mark.parametrize(
    ("bad", "error", "says"),
    [
        ({"queue": "nope"}, jobbench.InvalidQueue, "queue 'nope'"),
        ({"method": "os.system"}, jobbench.MethodNotAllowed, "os.system"),
        ({"kwargs": {"x": object()}}, jobbench.ArgumentNotSerializable, "argument"),
        ({"kwargs": {"x": "y" * 5000}}, jobbench.PayloadTooLarge, "max_payload_bytes"),
        ({"method": "japp.jobs.missing"}, jobbench.MethodNotFound, "missing"),
        ({"deduplicate": True}, jobbench.JobError, "job_id"),
        ({"retry": -1}, jobbench.JobError, "retry"),
        ({"colour": "red"}, jobbench.JobError, "unknown option"),
        ({"now": True}, jobbench.JobError, "cannot run now"),
        ({"enqueue_after_commit": True}, jobbench.JobError, "whole batch"),
        ({"in": -5}, jobbench.JobError, "delay"),
    ],
)
def test_a_refused_spec_writes_nothing(
    engine: Engine, bad: dict[str, object], error: type[Exception], says: str
) -> None:
    engine.set_common(max_payload_bytes=4096)
    specs: list[dict[str, object]] = [{"method": jobs_path("noop")} for _ in range(5)]
    specs.append({"method": jobs_path("echo"), "kwargs": {}, **bad})
    specs.append({"method": jobs_path("noop"), "track_job": True})
    with engine.ctx(), pytest.raises(error, match=says) as caught:
        jobbench.enqueue_many(specs)
    assert str(caught.value).startswith("specs[5]: ")
    with engine.ctx():
        assert jobbench.list_jobs() == []
        assert jobbench.get_all("Background Task") == []


def test_a_spec_that_is_not_a_dict_or_has_no_method_is_refused(engine: Engine) -> None:
    with engine.ctx():
        with pytest.raises(jobbench.JobError, match=r"specs\[1\]: a spec must be a dict"):
            jobbench.enqueue_many([{"method": jobs_path("noop")}, jobs_path("noop")])  # type: ignore[list-item]
        with pytest.raises(jobbench.JobError, match=r"specs\[0\]: the spec has no 'method'"):
            jobbench.enqueue_many([{"kwargs": {}}])
        assert jobbench.enqueue_many([]) == []
        assert jobbench.list_jobs() == []


def test_deduplicated_specs_come_back_as_none_and_lose_their_task(engine: Engine) -> None:
    tracked_dedup = {"deduplicate": True, "track_job": True}
    with engine.ctx():
        jobbench.enqueue(jobs_path("noop"), job_id="taken")
        jobs = jobbench.enqueue_many(
            [
                {"method": jobs_path("noop"), "job_id": "taken", **tracked_dedup},
                {"method": jobs_path("noop"), "job_id": "new", **tracked_dedup},
                {"method": jobs_path("noop"), "job_id": "new", "deduplicate": True},
            ]
        )
    assert jobs[0] is None and jobs[2] is None and jobs[1] is not None
    tasks = committed(engine, lambda: jobbench.get_all("Background Task", fields=["job_id"]))
    assert [t["job_id"] for t in tasks] == ["new"]


def test_overloaded_queue_refuses_the_batch(engine: Engine) -> None:
    engine.set_common(max_queued_jobs=10)
    with engine.ctx():
        jobbench.enqueue_many([{"method": jobs_path("noop")} for _ in range(8)])
        with pytest.raises(jobbench.QueueOverloaded):
            jobbench.enqueue_many([{"method": jobs_path("noop"), "track_job": True}] * 3)
        assert len(jobbench.list_jobs()) == 8
        assert jobbench.get_all("Background Task") == []


def test_delayed_specs_and_a_batch_after_commit(engine: Engine) -> None:
    with engine.ctx() as local:
        later = jobbench.enqueue_many([{"method": jobs_path("noop"), "in": 3600}])[0]
        assert later is not None and later.status == "scheduled" and later.run_at is not None
        pending = jobbench.enqueue_many(
            [{"method": jobs_path("add"), "kwargs": {"a": 1, "b": 2}, "job_id": "ac"}],
            enqueue_after_commit=True,
        )
        assert pending == [None] and jobbench.get_job("ac") is None
        local.db.commit()
        assert jobbench.get_job_status("ac") == "queued"
        rolled_back = [{"method": jobs_path("noop"), "job_id": "rb"}]
        jobbench.enqueue_many(rolled_back, enqueue_after_commit=True)
        local.db.rollback()
    engine.run_worker("default")
    assert engine.record("rb") is None
    assert engine.wait_status("ac", "finished").result == b"3"
    assert later.refresh().status == "scheduled"


def test_tracked_jobs_a_batch_replaces_end_cancelled(engine: Engine) -> None:
    """As with enqueue: a spec with the id of a pending tracked job (or of an earlier spec)
    replaces it, and the replaced job's Background Task ends Cancelled."""
    from jobbench.jobs.tracking import REPLACED

    method = jobs_path("noop")
    with engine.ctx():
        first = jobbench.enqueue(method, job_id="same", track_job=True)
        jobs = jobbench.enqueue_many(
            [
                {"method": method, "job_id": "same", "track_job": True},
                {"method": method, "job_id": "twice", "track_job": True},
                {"method": method, "job_id": "twice", "track_job": True},
            ]
        )
    rows = committed(
        engine,
        lambda: jobbench.get_all("Background Task", fields=["task_id", "status", "exception"]),
    )
    status = {r["task_id"]: (r["status"], r["exception"]) for r in rows}
    assert status[first.task_id] == ("Cancelled", REPLACED)
    assert status[jobs[1].task_id] == ("Cancelled", REPLACED)  # replaced by the spec after it
    assert status[jobs[0].task_id][0] == status[jobs[2].task_id][0] == "Queued"
