"""Dependencies: a job with ``depends_on`` waits ``deferred`` until every dependency finished,
is canceled with the reason when one fails, is stopped, canceled, reaped or deleted (unless
``allow_dependency_failure``), transitively; an unknown dependency refuses the enqueue (a batch
too) with nothing written; a retried dependency has not failed yet."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jobbench.brokers.base import Broker, EnqueueItem, WorkerInfo
from jobbench.errors import DependencyNotFound
from jobbench.jobs.record import JobRecord, JobStatus, encode_ids, full_id

from .helpers import KEEP, SITE, enqueued, in_status, nonzero_counts, rec, started


def _dependent(broker: Broker, job_id: str, *deps: str, **fields: Any) -> JobRecord:
    record = rec(job_id, depends_on=encode_ids([full_id(SITE, d) for d in deps]), **fields)
    assert broker.enqueue(record) is True
    return record


def _status(broker: Broker, job_id: str) -> str | None:
    got = broker.get(full_id(SITE, job_id))
    return None if got is None else got.status


def _claim(broker: Broker, queue: str = "default", worker: str = "w1") -> JobRecord:
    job = broker.claim([queue], worker)
    assert job is not None
    return job


def test_a_dependent_waits_deferred_and_is_queued_when_its_dependency_finished(
    broker: Broker,
) -> None:
    enqueued(broker, "a")
    record = _dependent(broker, "b", "a")
    assert record.status == JobStatus.DEFERRED
    assert _status(broker, "b") == JobStatus.DEFERRED
    assert broker.queue_length("default") == 1
    assert nonzero_counts(broker) == {"default": {"queued": 1, "deferred": 1}}
    assert [r.job_id for r in broker.find(status="deferred")] == ["b"]
    assert broker.dependents(full_id(SITE, "a")) == [full_id(SITE, "b")]
    a = _claim(broker)
    assert a.job_id == "a"
    assert broker.claim(["default"], "w2") is None  # no dependent runs before its dependency
    assert broker.finish(a.id, "w1", b"ok", KEEP) is True
    assert _status(broker, "b") == JobStatus.QUEUED
    assert broker.dependents(a.id) == []
    assert _claim(broker).job_id == "b"


def test_it_waits_for_every_dependency_across_queues(broker: Broker) -> None:
    enqueued(broker, "a")
    enqueued(broker, "x", queue="long")
    _dependent(broker, "c", "a", "x", queue="short")
    a = _claim(broker)
    assert broker.finish(a.id, "w1", None, KEEP)
    assert _status(broker, "c") == JobStatus.DEFERRED
    x = _claim(broker, "long")
    assert broker.claim(["short"], "w2") is None
    assert broker.finish(x.id, "w1", None, KEEP)
    assert _claim(broker, "short").job_id == "c"


def test_a_dependency_finished_at_enqueue_time_queues_at_once(broker: Broker) -> None:
    in_status(broker, "a", JobStatus.FINISHED)
    record = _dependent(broker, "b", "a")
    assert record.status == JobStatus.QUEUED and _status(broker, "b") == JobStatus.QUEUED


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED])
def test_a_dependency_already_ended_badly_cancels_at_enqueue(broker: Broker, status: str) -> None:
    in_status(broker, "a", status)
    record = _dependent(broker, "b", "a")
    assert record.status == JobStatus.CANCELED
    got = broker.get(record.id)
    assert got is not None and got.status == JobStatus.CANCELED
    assert "dependency 'a'" in (got.exc_info or "")
    allowed = _dependent(broker, "c", "a", allow_dependency_failure=1)
    assert allowed.status == JobStatus.QUEUED


def test_an_unknown_dependency_refuses_the_enqueue_and_writes_nothing(broker: Broker) -> None:
    with pytest.raises(DependencyNotFound, match="nope"):
        _dependent(broker, "b", "nope")
    assert broker.get(full_id(SITE, "b")) is None and nonzero_counts(broker) == {}
    items = [
        EnqueueItem(rec("first")),
        EnqueueItem(rec("second", depends_on=encode_ids([full_id(SITE, "nope")]))),
    ]
    with pytest.raises(DependencyNotFound):
        broker.enqueue_many(items)
    assert broker.find() == [] and nonzero_counts(broker) == {}


def test_a_batch_may_depend_on_its_earlier_items(broker: Broker) -> None:
    chain = [EnqueueItem(rec("s0"))] + [
        EnqueueItem(rec(f"s{i}", depends_on=encode_ids([full_id(SITE, f"s{i - 1}")])))
        for i in range(1, 4)
    ]
    assert broker.enqueue_many(chain) == [True] * 4
    assert [i.record.status for i in chain] == ["queued"] + ["deferred"] * 3
    order = []
    for _ in range(4):
        job = _claim(broker)
        assert broker.claim(["default"], "w2") is None  # never two of the chain at once
        order.append(job.job_id)
        assert broker.finish(job.id, "w1", None, KEEP)
    assert order == ["s0", "s1", "s2", "s3"]


def _fail(broker: Broker, job: JobRecord) -> None:
    assert broker.fail(job.id, "w1", "Traceback\nValueError: boom", KEEP)


def _stop(broker: Broker, job: JobRecord) -> None:
    assert broker.mark_stopped(job.id, "w1", "stopped on request", KEEP)


def _reap(broker: Broker, job: JobRecord) -> None:
    assert broker.reap(KEEP, now=time.time() + 3600) == [job.id]


@pytest.mark.parametrize(
    ("end", "word"), [(_fail, "failed"), (_stop, "was stopped"), (_reap, "failed")]
)
def test_a_failed_dependency_cancels_its_dependents_transitively(
    broker: Broker, end: Any, word: str
) -> None:
    a = started(broker, "a")
    _dependent(broker, "b", "a")
    _dependent(broker, "c", "b", queue="long")
    _dependent(broker, "d", "a", allow_dependency_failure=1)
    end(broker, a)
    b, c = broker.get(full_id(SITE, "b")), broker.get(full_id(SITE, "c"))
    assert b is not None and b.status == JobStatus.CANCELED
    assert b.exc_info == f"canceled: its dependency 'a' {word}"
    assert c is not None and c.status == JobStatus.CANCELED
    assert c.exc_info == "canceled: its dependency 'b' was canceled"
    assert _status(broker, "d") == JobStatus.QUEUED  # allow_dependency_failure
    assert broker.claim(["long"], "w2") is None
    # the settled dependents stay findable (their Background Tasks follow), none waiting
    assert broker.dependents(a.id) == []
    assert broker.dependents(a.id, waiting=False) == [full_id(SITE, "b"), full_id(SITE, "d")]
    assert broker.dependents(full_id(SITE, "b"), waiting=False) == [full_id(SITE, "c")]


def test_a_dependency_that_will_be_retried_has_not_failed(broker: Broker) -> None:
    a = started(broker, "a", retries_left=1)
    _dependent(broker, "b", "a")
    assert broker.fail(a.id, "w1", "boom", KEEP, retry_at=time.time() - 1)
    assert _status(broker, "a") == JobStatus.SCHEDULED
    assert _status(broker, "b") == JobStatus.DEFERRED
    again = _claim(broker)  # the claim promotes the due retry first
    assert again.id == a.id
    broker.heartbeat(WorkerInfo("w1", 1, "h", ["default"]), ttl=60)
    assert broker.reap(KEEP) == []
    assert broker.finish(a.id, "w1", None, KEEP)
    assert _status(broker, "b") == JobStatus.QUEUED


def test_canceling_deleting_or_purging_a_dependency_cancels_the_dependent(broker: Broker) -> None:
    for name in ("a", "x", "p"):
        enqueued(broker, name)
        _dependent(broker, f"{name}-child", name)
    assert broker.request_stop(full_id(SITE, "a"), KEEP) == JobStatus.CANCELED
    assert broker.delete(full_id(SITE, "x")) is True
    assert broker.purge([JobStatus.QUEUED]) == 1  # p (the children are deferred)
    for name, word in (("a", "was canceled"), ("x", "was deleted"), ("p", "was deleted")):
        got = broker.get(full_id(SITE, f"{name}-child"))
        assert got is not None and got.status == JobStatus.CANCELED, name
        assert got.exc_info == f"canceled: its dependency '{name}' {word}"


def test_a_deferred_job_can_be_canceled_deleted_and_purged(broker: Broker) -> None:
    enqueued(broker, "a")
    for name in ("b", "c", "d"):
        _dependent(broker, name, "a")
    _dependent(broker, "b-child", "b")
    assert broker.request_stop(full_id(SITE, "b"), KEEP) == JobStatus.CANCELED
    assert _status(broker, "b-child") == JobStatus.CANCELED
    assert broker.delete(full_id(SITE, "c")) is True
    assert broker.purge([JobStatus.DEFERRED]) == 1
    assert nonzero_counts(broker) == {"default": {"queued": 1, "canceled": 2}}
    a = _claim(broker)
    assert broker.finish(a.id, "w1", None, KEEP)
    assert broker.queue_length("default") == 0  # nothing left waiting for it


def test_a_deferred_at_front_job_goes_to_the_head(broker: Broker) -> None:
    a = started(broker, "a")
    enqueued(broker, "q1")
    record = rec("b", depends_on=encode_ids([a.id]))
    assert broker.enqueue(record, at_front=True) is True
    assert broker.finish(a.id, "w1", None, KEEP)
    assert broker.position(record.id) == 0


def test_registrations_go_with_the_dependency_record(broker: Broker) -> None:
    a = started(broker, "a")
    _dependent(broker, "b", "a")
    assert broker.finish(a.id, "w1", None, KEEP)
    assert broker.dependents(a.id, waiting=False) == [full_id(SITE, "b")]
    assert broker.cleanup(now=time.time() + 10 * KEEP.failure_ttl) == 1  # a's record
    assert broker.dependents(a.id, waiting=False) == []
    enqueued(broker, "a")  # a new job with that id: a new dependent waits for it
    _dependent(broker, "c", "a")
    assert broker.dependents(a.id) == [full_id(SITE, "c")]


def test_deduplicate_counts_a_deferred_job_as_pending(broker: Broker) -> None:
    enqueued(broker, "a")
    _dependent(broker, "b", "a")
    again = rec("b", depends_on=encode_ids([full_id(SITE, "a")]))
    assert broker.enqueue(again, deduplicate=True) is False
