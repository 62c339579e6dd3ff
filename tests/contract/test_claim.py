"""Broker.claim: order, waiting, the started fields, and atomicity under concurrency."""

from __future__ import annotations

import multiprocessing
import queue as queue_mod
import threading
import time
from collections import Counter

from jobbench.brokers.base import Broker, Retention
from jobbench.jobs.record import JobStatus, full_id

from .helpers import KEEP, SITE, BrokerSpec, claim_all, enqueued, rec


def test_claim_takes_jobs_first_in_first_out(broker: Broker) -> None:
    for i in range(5):
        enqueued(broker, f"j{i}")
    got = [broker.claim(["default"], "w1") for _ in range(5)]
    assert [j.job_id for j in got if j] == [f"j{i}" for i in range(5)]


def test_claim_serves_queues_in_the_order_given(broker: Broker) -> None:
    enqueued(broker, "l1", queue="long")
    enqueued(broker, "s1", queue="short")
    enqueued(broker, "l2", queue="long")
    enqueued(broker, "s2", queue="short")
    order = ["short", "default", "long"]
    got = [broker.claim(order, "w1") for _ in range(4)]
    assert [j.job_id for j in got if j] == ["s1", "s2", "l1", "l2"]

    enqueued(broker, "l3", queue="long")
    enqueued(broker, "s3", queue="short")
    first = broker.claim(["long", "short"], "w1")
    assert first is not None and first.job_id == "l3"


def test_claim_on_empty_queues_returns_none_at_once(broker: Broker) -> None:
    enqueued(broker, "other", queue="long")
    t0 = time.monotonic()
    assert broker.claim(["default", "short"], "w1") is None
    assert time.monotonic() - t0 < 0.5
    assert broker.queue_length("long") == 1


def test_claim_marks_the_job_started_by_the_worker(broker: Broker) -> None:
    record = enqueued(broker, "j1")
    before = time.time()
    job = broker.claim(["default"], "w-7")
    after = time.time()
    assert job is not None and job.id == record.id
    assert job.status == JobStatus.STARTED
    assert job.worker == "w-7"
    assert job.started_at is not None and before - 0.01 <= job.started_at <= after + 0.01
    assert job.attempts == 1
    assert job.payload == record.payload
    stored = broker.get(record.id)
    assert stored is not None
    assert (stored.status, stored.worker, stored.attempts) == (JobStatus.STARTED, "w-7", 1)
    assert broker.queue_length("default") == 0
    assert broker.position(record.id) is None


def test_claim_increments_attempts_on_every_run(broker: Broker) -> None:
    record = enqueued(broker, "j1")
    first = broker.claim(["default"], "w1")
    assert first is not None and first.attempts == 1
    assert broker.fail(record.id, "w1", "boom", KEEP)
    assert broker.requeue(record.id)
    second = broker.claim(["default"], "w2")
    assert second is not None and second.attempts == 2 and second.worker == "w2"


def test_claim_waits_for_a_job_enqueued_during_the_wait(broker: Broker) -> None:
    record = rec("late")

    def produce() -> None:
        time.sleep(0.2)
        broker.enqueue(record)

    producer = threading.Thread(target=produce)
    t0 = time.monotonic()
    producer.start()
    job = broker.claim(["default"], "w1", timeout=5.0)
    elapsed = time.monotonic() - t0
    producer.join()
    assert job is not None and job.id == record.id and job.status == JobStatus.STARTED
    assert 0.15 <= elapsed < 4.0


def test_claim_returns_none_once_the_timeout_passes(broker: Broker) -> None:
    t0 = time.monotonic()
    assert broker.claim(["default", "short"], "w1", timeout=0.3) is None
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 2.0


def _claim_until_empty(broker: Broker, worker: str, barrier: threading.Barrier) -> list[str]:
    barrier.wait(timeout=10)
    ids = []
    while (job := broker.claim(["default"], worker)) is not None:
        assert job.worker == worker and job.status == JobStatus.STARTED
        ids.append(job.id)
    return ids


def test_threads_claim_every_job_exactly_once(broker: Broker) -> None:
    expected = {full_id(SITE, f"j{i}") for i in range(500)}
    for i in range(500):
        enqueued(broker, f"j{i}")
    barrier = threading.Barrier(8)
    results: dict[str, list[str]] = {}

    def run(worker: str) -> None:
        results[worker] = _claim_until_empty(broker, worker, barrier)

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 8, "a claiming thread died"
    claimed = Counter(i for ids in results.values() for i in ids)
    assert [i for i, n in claimed.items() if n > 1] == []
    assert set(claimed) == expected
    # every job is recorded as started by the worker that got it
    owner = {i: w for w, ids in results.items() for i in ids}
    started = broker.find(status=JobStatus.STARTED, limit=1000)
    assert {j.id: j.worker for j in started} == owner
    assert all(j.attempts == 1 for j in started)


def test_processes_claim_every_job_exactly_once(broker: Broker, broker_spec: BrokerSpec) -> None:
    expected = {full_id(SITE, f"j{i}") for i in range(500)}
    for i in range(500):
        enqueued(broker, f"j{i}")
    ctx = multiprocessing.get_context("spawn")
    n = 3
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=claim_all, args=(broker_spec, "default", f"p{k}", barrier, out))
        for k in range(n)
    ]
    for p in procs:
        p.start()
    try:
        reports = [out.get(timeout=60) for _ in procs]
    except queue_mod.Empty:
        reports = []
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    assert len(reports) == n, "a claiming process did not report"
    assert [err for _, _, err in reports if err] == []
    claimed = Counter(i for _, ids, _ in reports for i in ids)
    assert [i for i, c in claimed.items() if c > 1] == []
    assert set(claimed) == expected
    owner = {i: w for w, ids, _ in reports for i in ids}
    started = broker.find(status=JobStatus.STARTED, limit=1000)
    assert {j.id: j.worker for j in started} == owner


def test_producers_and_consumers_hand_over_every_job_once(broker: Broker) -> None:
    """A queue entry never shows up without its record: a consumer gets the full record."""
    per_producer, producers, consumers = 100, 3, 4
    done = threading.Event()
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def produce(p: int) -> None:
        for i in range(per_producer):
            broker.enqueue(rec(f"p{p}-{i}", payload=f"data-{p}-{i}".encode()))

    def consume(worker: str) -> None:
        while True:
            job = broker.claim(["default"], worker, timeout=0.05)
            if job is None:
                if done.is_set() and broker.queue_length("default") == 0:
                    return
                continue
            with lock:
                got.append((job.job_id, job.payload))

    threads = [threading.Thread(target=consume, args=(f"c{c}",)) for c in range(consumers)]
    makers = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads + makers:
        t.start()
    for t in makers:
        t.join(timeout=60)
    done.set()
    for t in threads:
        t.join(timeout=60)
    names = Counter(name for name, _ in got)
    assert [i for i, c in names.items() if c > 1] == []
    assert len(names) == per_producer * producers
    assert all(payload == f"data-{name[1:]}".encode() for name, payload in got)


def test_claimed_records_keep_no_stale_outcome(broker: Broker) -> None:
    record = enqueued(broker, "j1")
    assert broker.claim(["default"], "w1") is not None
    assert broker.finish(record.id, "w1", b"ok", Retention())
    assert broker.requeue(record.id)
    again = broker.claim(["default"], "w2")
    assert again is not None
    assert again.result is None and again.exc_info is None
