"""Broker.enqueue: record and queue entry together; at_front; deduplicate; replace; max_queued;
once_key."""

from __future__ import annotations

import threading

import pytest

from jobbench.brokers.base import Broker
from jobbench.errors import QueueOverloaded
from jobbench.jobs.record import JobStatus, full_id

from .helpers import FAR_FUTURE, KEEP, SITE, enqueued, in_status, nonzero_counts, rec, started


def test_enqueue_stores_the_record_and_its_queue_entry_together(broker: Broker) -> None:
    record = rec("a1", job_name="Nightly", user="u@example.com", timeout=42, retries_left=3)
    assert broker.enqueue(record) is True
    got = broker.get(record.id)
    assert got is not None
    assert got.status == JobStatus.QUEUED
    assert (got.site, got.queue, got.method, got.payload) == (
        SITE,
        "default",
        "tapp.tasks.work",
        b"payload-a1",
    )
    assert (got.job_name, got.user, got.timeout, got.retries_left) == (
        "Nightly",
        "u@example.com",
        42,
        3,
    )
    assert broker.queue_length("default") == 1
    assert broker.position(record.id) == 0
    claimed = broker.claim(["default"], "w1")
    assert claimed is not None and claimed.id == record.id


def test_enqueue_stores_status_queued_whatever_the_record_said(broker: Broker) -> None:
    record = rec("a1", status=JobStatus.FAILED)
    assert broker.enqueue(record) is True
    got = broker.get(record.id)
    assert got is not None and got.status == JobStatus.QUEUED
    assert broker.queue_length("default") == 1


def test_enqueue_appends_at_the_tail_and_at_front_puts_at_the_head(broker: Broker) -> None:
    for name in ("a", "b"):
        enqueued(broker, name)
    assert broker.enqueue(rec("front"), at_front=True) is True
    enqueued(broker, "c")
    assert broker.position(full_id(SITE, "front")) == 0
    order = []
    while (job := broker.claim(["default"], "w1")) is not None:
        order.append(job.job_id)
    assert order == ["front", "a", "b", "c"]


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED])
def test_deduplicate_with_a_pending_job_changes_nothing(broker: Broker, status: str) -> None:
    before = in_status(broker, "dup", status)
    length = broker.queue_length("default")
    again = rec("dup", payload=b"second")
    assert broker.enqueue(again, deduplicate=True) is False
    after = broker.get(again.id)
    assert after is not None
    assert after.status == status
    assert after.payload == before.payload
    assert after.attempts == before.attempts
    assert broker.queue_length("default") == length


@pytest.mark.parametrize(
    "status", [JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED]
)
def test_deduplicate_with_a_final_job_enqueues_anew(broker: Broker, status: str) -> None:
    in_status(broker, "dup", status)
    again = rec("dup", payload=b"second")
    assert broker.enqueue(again, deduplicate=True) is True
    got = broker.get(again.id)
    assert got is not None
    assert got.status == JobStatus.QUEUED and got.payload == b"second"
    assert got.exc_info is None and got.result is None and got.attempts == 0
    assert broker.queue_length("default") == 1
    assert broker.find(status=status) == []


def test_concurrent_deduplicated_enqueues_of_one_id_enqueue_it_once(broker: Broker) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def produce() -> None:
        barrier.wait(timeout=10)
        results.append(broker.enqueue(rec("once"), deduplicate=True))

    threads = [threading.Thread(target=produce) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False] * 7 + [True]
    assert broker.queue_length("default") == 1
    assert broker.claim(["default"], "w1") is not None
    assert broker.claim(["default"], "w1") is None


@pytest.mark.parametrize(
    "status", [JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED]
)
def test_enqueue_replaces_a_final_job_with_the_same_id(broker: Broker, status: str) -> None:
    in_status(broker, "same", status, queue="long")
    fresh = rec("same", queue="short", payload=b"new")
    assert broker.enqueue(fresh) is True
    got = broker.get(fresh.id)
    assert got is not None
    assert (got.status, got.queue, got.payload) == (JobStatus.QUEUED, "short", b"new")
    assert got.exc_info is None and got.result is None and got.attempts == 0
    # the old record left every index it was in
    assert broker.find(status=status) == []
    assert broker.find(queue="long") == []
    assert "long" not in nonzero_counts(broker)
    assert broker.queue_length("short") == 1
    assert broker.queue_length("long") == 0


def test_enqueue_replaces_a_queued_job_without_a_second_queue_entry(broker: Broker) -> None:
    enqueued(broker, "same", queue="long")
    enqueued(broker, "other", queue="short")
    assert broker.enqueue(rec("same", queue="short", payload=b"new")) is True
    assert broker.queue_length("long") == 0
    assert broker.claim(["long"], "w1") is None
    assert broker.queue_length("short") == 2
    assert broker.enqueue(rec("same", queue="short", payload=b"newer")) is True
    assert broker.queue_length("short") == 2
    claimed = [broker.claim(["short"], "w1"), broker.claim(["short"], "w1")]
    assert broker.claim(["short"], "w1") is None
    assert sorted(j.job_id for j in claimed if j) == ["other", "same"]
    same = next(j for j in claimed if j and j.job_id == "same")
    assert same.payload == b"newer"


def test_enqueue_replacing_a_started_job_takes_it_from_its_worker(broker: Broker) -> None:
    started(broker, "same", worker="w1")
    assert broker.enqueue(rec("same", payload=b"new")) is True
    got = broker.get(full_id(SITE, "same"))
    assert got is not None and got.status == JobStatus.QUEUED and got.payload == b"new"
    assert broker.find(status=JobStatus.STARTED) == []
    # the old run's outcome no longer applies to the new record
    assert broker.finish(got.id, "w1", b"late", KEEP) is False
    assert broker.queue_length("default") == 1


def test_max_queued_refuses_a_full_queue_and_writes_nothing(broker: Broker) -> None:
    enqueued(broker, "a")
    enqueued(broker, "b")
    enqueued(broker, "elsewhere", queue="long")
    refused = rec("c")
    with pytest.raises(QueueOverloaded):
        broker.enqueue(refused, max_queued=2)
    assert broker.get(refused.id) is None
    assert broker.queue_length("default") == 2
    assert len(broker.find()) == 3
    assert broker.counts()["default"].get("queued") == 2
    assert broker.enqueue(refused, max_queued=3) is True
    assert broker.queue_length("default") == 3


def test_max_queued_counts_only_queued_jobs_of_that_queue(broker: Broker) -> None:
    in_status(broker, "running", JobStatus.STARTED)
    in_status(broker, "done", JobStatus.FINISHED)
    in_status(broker, "later", JobStatus.SCHEDULED)
    enqueued(broker, "a")
    enqueued(broker, "x", queue="long")
    enqueued(broker, "y", queue="long")
    assert broker.enqueue(rec("b"), max_queued=2) is True
    with pytest.raises(QueueOverloaded):
        broker.enqueue(rec("c"), max_queued=2)
    assert broker.get(full_id(SITE, "c")) is None


def test_enqueue_replacing_a_scheduled_job_leaves_the_schedule(broker: Broker) -> None:
    in_status(broker, "same", JobStatus.SCHEDULED)
    assert broker.enqueue(rec("same", payload=b"new")) is True
    assert broker.promote_due(now=FAR_FUTURE + 1) == 0
    assert broker.queue_length("default") == 1
    assert broker.find(status=JobStatus.SCHEDULED) == []


# -- once_key -------------------------------------------------------------------------------


def test_once_key_enqueues_at_most_once_per_key(broker: Broker) -> None:
    assert broker.enqueue(rec("first"), once_key="slot-09:00") is True
    second = rec("second")
    assert broker.enqueue(second, once_key="slot-09:00") is False
    assert broker.get(second.id) is None
    assert broker.queue_length("default") == 1
    assert broker.enqueue(rec("other"), once_key="slot-10:00") is True
    assert broker.enqueue(rec("plain")) is True
    assert broker.queue_length("default") == 3


def test_once_key_stays_used_after_the_job_is_gone(broker: Broker) -> None:
    first = rec("first")
    assert broker.enqueue(first, once_key="slot") is True
    job = broker.claim(["default"], "w1")
    assert job is not None and broker.finish(job.id, "w1", None, KEEP)
    assert broker.delete(first.id) is True
    assert broker.enqueue(rec("first"), once_key="slot") is False
    assert broker.get(first.id) is None


def test_once_key_is_not_taken_when_the_enqueue_is_refused(broker: Broker) -> None:
    enqueued(broker, "pending")
    assert broker.enqueue(rec("pending"), deduplicate=True, once_key="k1") is False
    with pytest.raises(QueueOverloaded):
        broker.enqueue(rec("overflow"), max_queued=1, once_key="k1")
    assert broker.get(full_id(SITE, "overflow")) is None
    assert broker.enqueue(rec("fresh"), once_key="k1") is True
    assert broker.queue_length("default") == 2


def test_concurrent_enqueues_with_one_once_key_enqueue_one_job(broker: Broker) -> None:
    barrier = threading.Barrier(8)
    results: dict[int, bool] = {}

    def produce(n: int) -> None:
        barrier.wait(timeout=10)
        results[n] = broker.enqueue(rec(f"j{n}"), once_key="slot")

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [n for n, ok in results.items() if ok]
    assert len(results) == 8 and len(winners) == 1
    assert broker.queue_length("default") == 1
    assert [j.id for j in broker.find()] == [full_id(SITE, f"j{winners[0]}")]
