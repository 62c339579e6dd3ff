"""Delayed jobs: enqueue(run_at=...) stores a ``scheduled`` job that promote_due, a claim or
run_now queues; at_front, deduplicate, once_key and replacing hold; promotion is on time and
reads only the due jobs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from jobbench.brokers.base import Broker, EnqueueItem
from jobbench.errors import QueueOverloaded
from jobbench.jobs.record import JobStatus, full_id

from .helpers import FAR_FUTURE, KEEP, SITE, enqueued, in_status, nonzero_counts, rec, started


def _delayed(broker: Broker, job_id: str, run_at: float, **options: Any) -> None:
    assert broker.enqueue(rec(job_id), run_at=run_at, **options) is True


def _order(broker: Broker, queue: str = "default") -> list[str]:
    out = []
    while (job := broker.claim([queue], "w1")) is not None:
        out.append(job.job_id)
    return out


def test_a_delayed_job_waits_scheduled_with_its_run_time(broker: Broker) -> None:
    run_at = time.time() + 3600
    record = rec("later")
    assert broker.enqueue(record, run_at=run_at) is True
    assert record.status == JobStatus.SCHEDULED and record.retry_at == run_at
    got = broker.get(record.id)
    assert got is not None and got.status == JobStatus.SCHEDULED
    assert got.retry_at == pytest.approx(run_at)
    assert broker.queue_length("default") == 0 and broker.position(record.id) is None
    assert broker.claim(["default"], "w1") is None
    assert nonzero_counts(broker) == {"default": {"scheduled": 1}}
    assert [r.job_id for r in broker.find(status="scheduled")] == ["later"]


def test_promote_due_queues_it_at_its_time_at_the_tail(broker: Broker) -> None:
    run_at = time.time() + 3600
    _delayed(broker, "later", run_at)
    enqueued(broker, "now")
    assert broker.promote_due(now=run_at - 1) == 0
    assert broker.promote_due(now=run_at + 1) == 1
    got = broker.get(full_id(SITE, "later"))
    assert got is not None and got.status == JobStatus.QUEUED and got.retry_at is None
    assert _order(broker) == ["now", "later"]


def test_a_delayed_at_front_job_goes_to_the_head_when_due(broker: Broker) -> None:
    run_at = time.time() + 3600
    _delayed(broker, "front", run_at, at_front=True)
    for name in ("a", "b"):
        enqueued(broker, name)
    assert broker.promote_due(now=run_at + 1) == 1
    assert broker.position(full_id(SITE, "front")) == 0
    assert _order(broker) == ["front", "a", "b"]


def test_at_front_is_forgotten_once_promoted_so_a_retry_goes_to_the_tail(broker: Broker) -> None:
    assert broker.enqueue(rec("front", retries_left=1), run_at=FAR_FUTURE, at_front=True)
    assert broker.run_now(full_id(SITE, "front")) is True
    job = broker.claim(["default"], "w1")
    assert job is not None and job.job_id == "front"
    enqueued(broker, "other")
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=time.time() - 1) is True
    assert broker.promote_due() == 1
    assert _order(broker) == ["other", "front"]


def test_a_run_time_not_in_the_future_enqueues_at_once(broker: Broker) -> None:
    record = rec("past")
    assert broker.enqueue(record, run_at=time.time() - 10) is True
    assert record.status == JobStatus.QUEUED
    assert broker.queue_length("default") == 1
    assert _order(broker) == ["past"]


def test_deduplicate_sees_a_delayed_job_as_pending(broker: Broker) -> None:
    _delayed(broker, "dup", FAR_FUTURE)
    assert broker.enqueue(rec("dup", payload=b"second"), deduplicate=True) is False
    assert broker.enqueue(rec("dup"), deduplicate=True, run_at=FAR_FUTURE) is False
    got = broker.get(full_id(SITE, "dup"))
    assert got is not None and got.status == JobStatus.SCHEDULED and got.payload == b"payload-dup"


def test_a_job_with_the_id_of_a_delayed_one_replaces_it(broker: Broker) -> None:
    _delayed(broker, "j1", FAR_FUTURE)
    enqueued(broker, "j1")
    assert nonzero_counts(broker) == {"default": {"queued": 1}}
    assert broker.promote_due(now=FAR_FUTURE + 1) == 0
    _delayed(broker, "j1", FAR_FUTURE)  # and the other way round
    assert nonzero_counts(broker) == {"default": {"scheduled": 1}}
    assert broker.queue_length("default") == 0
    assert broker.claim(["default"], "w1") is None


def test_once_key_holds_for_delayed_jobs(broker: Broker) -> None:
    _delayed(broker, "a", FAR_FUTURE, once_key="slot-1")
    assert broker.enqueue(rec("b"), once_key="slot-1", run_at=FAR_FUTURE) is False
    assert broker.enqueue(rec("c"), once_key="slot-1") is False
    assert nonzero_counts(broker) == {"default": {"scheduled": 1}}


def test_max_queued_does_not_apply_to_a_delayed_job(broker: Broker) -> None:
    enqueued(broker, "full")
    _delayed(broker, "later", FAR_FUTURE, max_queued=1)
    with pytest.raises(QueueOverloaded):
        broker.enqueue(rec("now"), max_queued=1)


def test_run_now_queues_a_delayed_job_or_a_waiting_retry(broker: Broker) -> None:
    _delayed(broker, "later", FAR_FUTURE)
    retry = in_status(broker, "retry", JobStatus.SCHEDULED)
    assert broker.run_now(full_id(SITE, "later")) is True
    assert broker.run_now(retry.id) is True
    assert broker.run_now(full_id(SITE, "later")) is False  # already queued
    assert broker.run_now(full_id(SITE, "nope")) is False
    assert sorted(_order(broker)) == ["later", "retry"]


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.STARTED, JobStatus.FINISHED])
def test_run_now_leaves_other_jobs_alone(broker: Broker, status: str) -> None:
    job = in_status(broker, "j1", status)
    assert broker.run_now(job.id) is False
    got = broker.get(job.id)
    assert got is not None and got.status == status


def test_a_canceled_delayed_job_is_never_promoted(broker: Broker) -> None:
    _delayed(broker, "later", time.time() + 3600)
    stored = full_id(SITE, "later")
    assert broker.request_stop(stored, KEEP) == JobStatus.CANCELED
    assert broker.promote_due(now=FAR_FUTURE) == 0
    assert broker.run_now(stored) is False
    assert broker.claim(["default"], "w1") is None


def test_a_claim_queues_due_jobs_itself(broker: Broker) -> None:
    record = rec("due")
    assert broker.enqueue(record, run_at=time.time() + 0.05) is True
    time.sleep(0.1)
    claimed = broker.claim(["default"], "w1")  # no promote_due in between
    assert claimed is not None and claimed.job_id == "due" and claimed.retry_at is None


def test_a_waiting_claim_takes_a_delayed_job_on_time(broker: Broker) -> None:
    """On-time promotion: an idle claimer wakes when the job falls due, not at the next
    housekeeping tick; the job starts within a few milliseconds of its time."""
    lateness = []
    for i in range(3):
        run_at = time.time() + 0.3
        assert broker.enqueue(rec(f"j{i}"), run_at=run_at) is True
        claimed = broker.claim(["default"], "w1", timeout=3.0)
        assert claimed is not None and claimed.job_id == f"j{i}"
        assert claimed.started_at is not None and claimed.started_at >= run_at
        lateness.append(claimed.started_at - run_at)
    assert sorted(lateness)[1] < 0.1, lateness  # the median; typically 1-10 ms


def test_a_claim_waiting_on_another_queue_still_promotes_for_all(broker: Broker) -> None:
    assert broker.enqueue(rec("long-job", queue="long"), run_at=time.time() + 0.2) is True
    woke: list[object] = []
    waiter = threading.Thread(target=lambda: woke.append(broker.claim(["long"], "w2", 3.0)))
    waiter.start()
    assert broker.claim(["default"], "w1", timeout=0.6) is None  # promotes the long job
    waiter.join(5)
    assert woke and woke[0] is not None


def test_promotion_reads_only_the_due_jobs(broker: Broker) -> None:
    """A backlog of later jobs costs promote_due (and every claim) nothing: each call stays
    far below what reading the backlog would take."""
    backlog = 3000
    assert (
        broker.enqueue_many([_item(f"later-{i}", FAR_FUTURE - i) for i in range(backlog)])
        == [True] * backlog
    )
    assert broker.enqueue(rec("due"), run_at=time.time() + 0.01) is True
    time.sleep(0.02)
    began = time.perf_counter()
    moved = broker.promote_due()
    took = time.perf_counter() - began
    assert moved == 1
    began = time.perf_counter()
    for _ in range(20):
        broker.promote_due()
    assert (time.perf_counter() - began) / 20 < 0.01 and took < 0.05


def test_due_jobs_are_promoted_in_due_order(broker: Broker) -> None:
    now = time.time()
    for name, offset in (("second", 20), ("first", 10), ("third", 30)):
        _delayed(broker, name, now + offset)
    assert broker.promote_due(now=now + 100) == 3
    assert _order(broker) == ["first", "second", "third"]


def test_started_helper_is_unaffected_by_scheduled_jobs(broker: Broker) -> None:
    _delayed(broker, "later", FAR_FUTURE)
    job = started(broker, "j1")
    assert job.status == JobStatus.STARTED
    got = broker.get(full_id(SITE, "later"))
    assert got is not None and got.status == JobStatus.SCHEDULED


def _item(job_id: str, run_at: float) -> EnqueueItem:
    return EnqueueItem(rec(job_id), run_at=run_at)


def test_a_canceled_at_front_job_requeued_and_retried_goes_to_the_tail(broker: Broker) -> None:
    assert broker.enqueue(rec("front", retries_left=1), run_at=FAR_FUTURE, at_front=True)
    stored = full_id(SITE, "front")
    assert broker.request_stop(stored, KEEP) == JobStatus.CANCELED
    assert broker.requeue(stored) is True
    job = broker.claim(["default"], "w1")
    assert job is not None and job.id == stored
    enqueued(broker, "other")
    assert broker.fail(stored, "w1", "boom", KEEP, retry_at=time.time() - 1) is True
    assert broker.promote_due() == 1
    assert _order(broker) == ["other", "front"]
