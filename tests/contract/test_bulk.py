"""Broker.enqueue_many: many jobs in one atomic step, each as enqueue would take it; a refusal
writes nothing, and nobody ever sees part of a batch."""

from __future__ import annotations

import threading
import time

import pytest

from jobbench.brokers.base import Broker, EnqueueItem
from jobbench.errors import QueueOverloaded
from jobbench.jobs.record import JobStatus, full_id

from .helpers import FAR_FUTURE, SITE, enqueued, in_status, nonzero_counts, rec


def _items(n: int, prefix: str = "j", **options: object) -> list[EnqueueItem]:
    return [EnqueueItem(rec(f"{prefix}{i}"), **options) for i in range(n)]  # type: ignore[arg-type]


def _order(broker: Broker, queue: str = "default") -> list[str]:
    out = []
    while (job := broker.claim([queue], "w1")) is not None:
        out.append(job.job_id)
    return out


def test_a_batch_is_stored_in_order_as_queued_jobs(broker: Broker) -> None:
    items = _items(50)
    assert broker.enqueue_many(items) == [True] * 50
    assert all(item.record.status == JobStatus.QUEUED for item in items)
    got = broker.get(full_id(SITE, "j7"))
    assert got is not None and got.payload == b"payload-j7" and got.status == JobStatus.QUEUED
    assert broker.queue_length("default") == 50
    assert _order(broker) == [f"j{i}" for i in range(50)]


def test_an_empty_batch_does_nothing(broker: Broker) -> None:
    assert broker.enqueue_many([]) == []
    assert nonzero_counts(broker) == {}


def test_a_batch_mixes_queues_at_front_and_delayed_jobs(broker: Broker) -> None:
    enqueued(broker, "old")
    items = [
        EnqueueItem(rec("tail")),
        EnqueueItem(rec("head"), at_front=True),
        EnqueueItem(rec("long", queue="long")),
        EnqueueItem(rec("later"), run_at=FAR_FUTURE),
        EnqueueItem(rec("later-front"), run_at=time.time() + 3600, at_front=True),
    ]
    assert broker.enqueue_many(items) == [True] * 5
    assert items[3].record.status == JobStatus.SCHEDULED
    assert items[3].record.retry_at == FAR_FUTURE
    assert nonzero_counts(broker) == {
        "default": {"queued": 3, "scheduled": 2},
        "long": {"queued": 1},
    }
    assert broker.promote_due(now=time.time() + 7200) == 1
    assert _order(broker) == ["later-front", "head", "old", "tail"]
    assert _order(broker, "long") == ["long"]


def test_deduplicate_counts_pending_jobs_and_earlier_items(broker: Broker) -> None:
    in_status(broker, "pending", JobStatus.STARTED)
    in_status(broker, "ended", JobStatus.FINISHED)
    items = [
        EnqueueItem(rec("pending"), deduplicate=True),
        EnqueueItem(rec("ended"), deduplicate=True),
        EnqueueItem(rec("new"), deduplicate=True),
        EnqueueItem(rec("new", payload=b"again"), deduplicate=True),
        EnqueueItem(rec("later"), deduplicate=True, run_at=FAR_FUTURE),
        EnqueueItem(rec("later"), deduplicate=True),
    ]
    assert broker.enqueue_many(items) == [False, True, True, False, True, False]
    new = broker.get(full_id(SITE, "new"))
    assert new is not None and new.payload == b"payload-new"
    assert nonzero_counts(broker) == {"default": {"queued": 2, "started": 1, "scheduled": 1}}


def test_a_later_item_with_the_same_id_replaces_an_earlier_one(broker: Broker) -> None:
    items = [EnqueueItem(rec("same", payload=b"one")), EnqueueItem(rec("x"))]
    items.append(EnqueueItem(rec("same", payload=b"two")))
    assert broker.enqueue_many(items) == [True, True, True]
    assert broker.queue_length("default") == 2
    got = broker.get(full_id(SITE, "same"))
    assert got is not None and got.payload == b"two"
    assert _order(broker) == ["x", "same"]


def test_once_keys_are_taken_once_in_and_across_batches(broker: Broker) -> None:
    items = [
        EnqueueItem(rec("a"), once_key="k1"),
        EnqueueItem(rec("b"), once_key="k1"),
        EnqueueItem(rec("c"), once_key="k2"),
    ]
    assert broker.enqueue_many(items) == [True, False, True]
    assert broker.enqueue_many([EnqueueItem(rec("d"), once_key="k2")]) == [False]
    assert sorted(_order(broker)) == ["a", "c"]


def test_max_queued_refuses_the_whole_batch_and_writes_nothing(broker: Broker) -> None:
    """A refused item writes nothing: not the items before it, not their once-keys."""
    enqueued(broker, "old")
    before = nonzero_counts(broker)
    items = [EnqueueItem(rec("k"), once_key="key-1"), *_items(3), EnqueueItem(rec("z"))]
    with pytest.raises(QueueOverloaded):
        broker.enqueue_many(items, max_queued=4)
    assert nonzero_counts(broker) == before
    assert broker.get(full_id(SITE, "j0")) is None and broker.get(full_id(SITE, "k")) is None
    assert broker.enqueue(rec("k"), once_key="key-1") is True  # the key was not taken


def test_max_queued_counts_the_batch_and_skips_duplicates_and_delayed(broker: Broker) -> None:
    enqueued(broker, "old")
    items = [
        EnqueueItem(rec("old"), deduplicate=True),  # skipped: does not count
        EnqueueItem(rec("later"), run_at=FAR_FUTURE),  # enters no queue: does not count
        *_items(3),
    ]
    assert broker.enqueue_many(items, max_queued=4) == [False, True, True, True, True]
    assert broker.queue_length("default") == 4
    with pytest.raises(QueueOverloaded):
        broker.enqueue_many(_items(1, prefix="more"), max_queued=4)


def test_max_queued_per_queue(broker: Broker) -> None:
    items = [*_items(2), EnqueueItem(rec("l1", queue="long")), EnqueueItem(rec("l2", queue="long"))]
    assert broker.enqueue_many(items, max_queued=2) == [True] * 4
    with pytest.raises(QueueOverloaded, match="long"):
        broker.enqueue_many([EnqueueItem(rec("l3", queue="long"))], max_queued=2)


def test_nobody_sees_part_of_a_batch(broker: Broker) -> None:
    """Atomic: a reader polling while a large batch is written sees none of it or all of it."""
    n = 2000
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.add(broker.queue_length("default"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        time.sleep(0.02)
        assert broker.enqueue_many(_items(n)) == [True] * n
        time.sleep(0.02)
    finally:
        done.set()
        watcher.join(10)
    assert seen <= {0, n} and n in seen


def test_a_batch_wakes_an_idle_claimer(broker: Broker) -> None:
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(broker.claim(["default"], "w1", 5.0)))
    waiter.start()
    time.sleep(0.2)
    began = time.monotonic()
    broker.enqueue_many(_items(3))
    waiter.join(5)
    assert got and got[0] is not None
    assert time.monotonic() - began < 1.0


def test_single_enqueue_and_batch_agree(broker: Broker) -> None:
    a = rec("single", job_name="N", user="u@example.com", timeout=42, retries_left=3)
    b = rec("batched", job_name="N", user="u@example.com", timeout=42, retries_left=3)
    assert broker.enqueue(a) is True
    assert broker.enqueue_many([EnqueueItem(b)]) == [True]
    one, two = broker.get(a.id), broker.get(b.id)
    assert one is not None and two is not None
    fields = ("job_name", "user", "timeout", "retries_left", "status", "attempts", "payload")
    assert [getattr(one, f) for f in fields[:-1]] == [getattr(two, f) for f in fields[:-1]]
