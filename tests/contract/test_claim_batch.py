"""Broker.settle_and_claim: a batch of successes recorded and the next batch of jobs claimed in
one step, with claim's promises: priority order, at_front, concurrency keys, the counters."""

from __future__ import annotations

import threading
from collections import Counter

from jobbench.brokers.base import Broker
from jobbench.jobs.record import JobStatus

from .helpers import KEEP, QUEUE, SITE, enqueued, rec


def test_it_claims_up_to_the_limit_in_queue_order(broker: Broker) -> None:
    for i in range(3):
        enqueued(broker, f"l{i}", queue="long")
        enqueued(broker, f"s{i}", queue="short")
    assert broker.enqueue(rec("front", queue="long"), at_front=True)
    got = broker.settle_and_claim([], "w1", KEEP, ["short", "long"], 5)
    assert [j.job_id for j in got] == ["s0", "s1", "s2", "front", "l0"]
    assert all(j.status == JobStatus.STARTED and j.worker == "w1" for j in got)
    assert all(j.attempts == 1 for j in got)
    assert [broker.queue_length(q) for q in ("short", "long")] == [0, 2]
    stored = broker.get(got[3].id)
    assert stored is not None and (stored.status, stored.worker) == (JobStatus.STARTED, "w1")


def test_it_records_every_success_then_claims(broker: Broker) -> None:
    for i in range(4):
        enqueued(broker, f"j{i}")
    first = broker.settle_and_claim([], "w1", KEEP, [QUEUE], 2)
    done = [(first[0].id, b"r0"), (first[1].id, None)]
    second = broker.settle_and_claim(done, "w1", KEEP, [QUEUE], 10)
    assert [j.job_id for j in second] == ["j2", "j3"]
    one, two = broker.get(first[0].id), broker.get(first[1].id)
    assert one is not None and (one.status, one.result) == (JobStatus.FINISHED, b"r0")
    assert two is not None and (two.status, two.result) == (JobStatus.FINISHED, None)
    assert broker.counters() == {(SITE, QUEUE, "started"): 4, (SITE, QUEUE, "finished"): 2}
    assert sum(h["count"] for h in broker.durations().values()) == 2


def test_a_success_of_another_worker_or_recorded_twice_changes_nothing(broker: Broker) -> None:
    enqueued(broker, "j1")
    (job,) = broker.settle_and_claim([], "w1", KEEP, [QUEUE], 1)
    assert broker.settle_and_claim([(job.id, b"x")], "w2", KEEP, [QUEUE], 1) == []
    stored = broker.get(job.id)
    assert stored is not None and stored.status == JobStatus.STARTED
    broker.settle_and_claim([(job.id, b"a")], "w1", KEEP, [], 0)
    broker.settle_and_claim([(job.id, b"b")], "w1", KEEP, [], 0)
    stored = broker.get(job.id)
    assert stored is not None and stored.result == b"a"
    assert broker.counters()[(SITE, QUEUE, "finished")] == 1


def test_on_empty_queues_it_claims_nothing_and_without_limit_nothing_at_all(
    broker: Broker,
) -> None:
    assert broker.settle_and_claim([], "w1", KEEP, [QUEUE], 8) == []
    enqueued(broker, "j1")
    assert broker.settle_and_claim([], "w1", KEEP, [QUEUE], 0) == []
    assert broker.settle_and_claim([], "w1", KEEP, [], 3) == []
    assert broker.queue_length(QUEUE) == 1


def test_a_key_at_its_limit_is_skipped_within_a_batch(broker: Broker) -> None:
    for i in range(3):
        assert broker.enqueue(rec(f"k{i}", concurrency_key="acct", concurrency_limit=1))
    enqueued(broker, "free")
    got = broker.settle_and_claim([], "w1", KEEP, [QUEUE], 4)
    assert [j.job_id for j in got] == ["k0", "free"]
    again = broker.settle_and_claim([(got[0].id, None)], "w1", KEEP, [QUEUE], 4)
    assert [j.job_id for j in again] == ["k1"]


def test_threads_claiming_in_batches_get_every_job_once(broker: Broker) -> None:
    for i in range(300):
        enqueued(broker, f"j{i}")
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def consume(worker: str) -> None:
        done: list[tuple[str, bytes | None]] = []
        while True:
            got = broker.settle_and_claim(done, worker, KEEP, [QUEUE], 7)
            if not got:
                return
            with lock:
                seen.update(j.id for j in got)
            done = [(j.id, None) for j in got]

    threads = [threading.Thread(target=consume, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(seen) == 300 and set(seen.values()) == {1}
    # every consumer recorded its last batch before it found the queue empty
    assert broker.counters()[(SITE, QUEUE, "finished")] == 300
