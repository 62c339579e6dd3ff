"""Broker.settle_and_claim: a batch of successes recorded and the next batch of jobs claimed in
one step, with claim's promises: priority order, at_front, concurrency keys, the counters."""

from __future__ import annotations

import threading
import time
from collections import Counter

from jobbench.brokers.base import HELD_REQUEUED, Broker
from jobbench.jobs.record import JobRecord, JobStatus

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


# -- held jobs: claimed in a batch, waiting for the worker's main thread --------------------
def _held_batch(broker: Broker) -> list[JobRecord]:
    """s1, a1, s2, a2, s3 claimed with a1, a2's method in ``hold``: s2 and s3 are held."""
    for name in ("s1", "a1", "s2", "a2", "s3"):
        method = "tapp.tasks.aio" if name.startswith("a") else "tapp.tasks.work"
        enqueued(broker, name, method=method)
    return broker.settle_and_claim([], "w1", KEEP, [QUEUE], 5, {"tapp.tasks.aio"})


def test_a_batch_holds_the_jobs_behind_its_first_one_not_in_hold(broker: Broker) -> None:
    got = _held_batch(broker)
    assert [(j.job_id, j.held) for j in got] == [
        ("s1", 0),
        ("a1", 0),
        ("s2", 1),
        ("a2", 0),
        ("s3", 1),
    ]
    stored = broker.get(got[2].id)
    assert stored is not None and (stored.status, stored.held) == (JobStatus.STARTED, 1)
    enqueued(broker, "s4")
    enqueued(broker, "s5")
    plain = broker.settle_and_claim([], "w1", KEEP, [QUEUE], 2)
    assert [j.held for j in plain] == [0, 0], "without hold nothing is held"


def test_begin_starts_a_held_job_now_and_refuses_one_not_ours_or_to_stop(broker: Broker) -> None:
    got = _held_batch(broker)
    s2, s3 = got[2], got[4]
    assert broker.begin(s2.id, "w2") == "gone"
    time.sleep(0.01)
    assert broker.begin(s2.id, "w1") == "run"
    began = broker.get(s2.id)
    assert began is not None and began.held == 0 and began.started_at > s2.started_at  # type: ignore[operator]
    assert broker.request_stop(s3.id, KEEP) == JobStatus.STARTED
    assert broker.begin(s3.id, "w1") == "stop"
    still = broker.get(s3.id)
    assert still is not None and (still.status, still.held) == (JobStatus.STARTED, 1)


def test_reap_puts_a_dead_workers_held_jobs_back_at_the_head_and_fails_the_rest(
    broker: Broker,
) -> None:
    got = _held_batch(broker)
    broker.begin(got[2].id, "w1")  # s2 began: it counts as running
    enqueued(broker, "next")
    reaped = broker.reap(KEEP, now=time.time() + 3600)
    assert sorted(reaped) == sorted(j.id for j in got)
    statuses = {j.job_id: broker.get(j.id) for j in got}
    assert {k: r.status for k, r in statuses.items() if r} == {
        "s1": JobStatus.FAILED,
        "a1": JobStatus.FAILED,
        "s2": JobStatus.FAILED,
        "a2": JobStatus.FAILED,
        "s3": JobStatus.QUEUED,
    }
    s3 = statuses["s3"]
    assert s3 is not None and s3.exc_info == HELD_REQUEUED and s3.held == 0 and s3.worker is None
    (first,) = broker.settle_and_claim([], "w2", KEEP, [QUEUE], 1)
    assert first.job_id == "s3" and first.attempts == 2, "back at the head of its queue"
