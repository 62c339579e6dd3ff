"""Concurrency keys: at most ``concurrency_limit`` jobs of one ``concurrency_key`` are started at
once, across claimers in several processes; a job held back by its key does not hold back
the jobs behind it; the slot comes back however the job ends (finish, fail, a retry, stop,
interrupt, reap)."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest

from jobbench.brokers.base import Broker, WorkerInfo
from jobbench.jobs.record import JobRecord, JobStatus, full_id

from .helpers import KEEP, SITE, BrokerSpec, nonzero_counts, rec


def _keyed(broker: Broker, job_id: str, key: str = "customer-42", limit: int = 1, **f: Any) -> None:
    assert broker.enqueue(rec(job_id, concurrency_key=key, concurrency_limit=limit, **f))


def _claim(broker: Broker, worker: str = "w1", queue: str = "default") -> JobRecord | None:
    return broker.claim([queue], worker)


def _ids(jobs: list[JobRecord | None]) -> list[str | None]:
    return [None if j is None else j.job_id for j in jobs]


def test_a_key_at_its_limit_holds_its_jobs_back_but_not_the_others(broker: Broker) -> None:
    _keyed(broker, "k1")
    _keyed(broker, "k2")
    _keyed(broker, "k3")
    assert broker.enqueue(rec("free"))
    first = _claim(broker)
    assert first is not None and first.job_id == "k1"
    nxt = _claim(broker, "w2")  # k2, k3 are held back; the job behind them is not
    assert nxt is not None and nxt.job_id == "free"
    assert _claim(broker, "w3") is None
    held = broker.get(full_id(SITE, "k2"))
    assert held is not None and held.status == JobStatus.QUEUED and held.attempts == 0
    assert broker.queue_length("default") == 0 and broker.position(held.id) is None
    assert nonzero_counts(broker)["default"] == {"queued": 2, "started": 2}
    assert broker.finish(first.id, "w1", None, KEEP)
    assert _ids([_claim(broker, "w3"), _claim(broker, "w4")]) == ["k2", None]


def test_a_limit_of_two_runs_two_at_once(broker: Broker) -> None:
    for i in range(4):
        _keyed(broker, f"k{i}", limit=2)
    a, b, c = _claim(broker), _claim(broker, "w2"), _claim(broker, "w3")
    assert _ids([a, b, c]) == ["k0", "k1", None]
    assert a is not None and broker.finish(a.id, "w1", None, KEEP)
    assert _ids([_claim(broker, "w3"), _claim(broker, "w4")]) == ["k2", None]


def test_keys_are_independent_and_span_queues(broker: Broker) -> None:
    _keyed(broker, "a1", key="a")
    _keyed(broker, "a2", key="a", queue="long")
    _keyed(broker, "b1", key="b")
    got = [broker.claim(["default", "long"], f"w{i}") for i in range(4)]
    assert _ids(got) == ["a1", "b1", None, None]


def _end(broker: Broker, job: JobRecord, how: str) -> None:
    if how == "finish":
        assert broker.finish(job.id, "w1", None, KEEP)
    elif how == "fail":
        assert broker.fail(job.id, "w1", "boom", KEEP)
    elif how == "retry":
        assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=4_000_000_000.0)
    elif how == "stop":
        assert broker.mark_stopped(job.id, "w1", "stopped on request", KEEP)
    elif how == "interrupt":
        assert broker.interrupt(job.id, "w1", "interrupted: sibling")
    else:  # the worker died: no heartbeat, the reaper settles it
        assert broker.reap(KEEP, now=time.time() + 3600) == [job.id]


@pytest.mark.parametrize("how", ["finish", "fail", "retry", "stop", "interrupt", "reap"])
def test_the_slot_comes_back_however_the_job_ends(broker: Broker, how: str) -> None:
    _keyed(broker, "k1", retries_left=1)
    _keyed(broker, "k2")
    job = _claim(broker)
    assert job is not None and job.job_id == "k1"
    assert _claim(broker, "w2") is None
    _end(broker, job, how)
    nxt = _claim(broker, "w2")
    # an interrupted job goes back to the head of its queue, as does the parked one
    assert nxt is not None and nxt.job_id in (["k1", "k2"] if how == "interrupt" else ["k2"])
    assert _claim(broker, "w3") is None  # and the limit still holds


def test_a_canceled_or_deleted_held_job_leaves_the_others_waiting(broker: Broker) -> None:
    for i in range(4):
        _keyed(broker, f"k{i}")
    job = _claim(broker)
    assert job is not None and _claim(broker, "w2") is None  # k1..k3 parked
    assert broker.request_stop(full_id(SITE, "k1"), KEEP) == JobStatus.CANCELED
    assert broker.delete(full_id(SITE, "k2")) is True
    assert broker.finish(job.id, "w1", None, KEEP)
    assert _ids([_claim(broker, "w2"), _claim(broker, "w3")]) == ["k3", None]


def test_a_job_unparked_then_canceled_passes_its_turn_on(broker: Broker) -> None:
    for i in range(3):
        _keyed(broker, f"k{i}")
    job = _claim(broker)
    assert job is not None and _claim(broker, "w2") is None
    assert broker.finish(job.id, "w1", None, KEEP)  # k1 back in the queue, k2 still held
    assert broker.request_stop(full_id(SITE, "k1"), KEEP) == JobStatus.CANCELED
    assert _ids([_claim(broker, "w2")]) == ["k2"]


def _claim_and_log(spec: BrokerSpec, worker: str, barrier: Any, out: Any) -> None:
    """Child body: claim until 0.5 s without work; log (key, start, end) of each job."""
    broker = spec.make()
    log: list[tuple[str, float, float]] = []
    try:
        barrier.wait(timeout=30)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 0.5:
            job = broker.claim(["default"], worker, timeout=0.05)
            if job is None:
                continue
            start = time.monotonic()
            time.sleep(0.002)
            end = time.monotonic()
            assert broker.finish(job.id, worker, None, KEEP)
            log.append((job.concurrency_key or "", start, end))
            idle_since = time.monotonic()
        out.put((worker, log, None))
    except BaseException as exc:
        out.put((worker, log, repr(exc)))
    finally:
        broker.close()


def test_four_claimers_never_exceed_the_limit(broker: Broker, broker_spec: BrokerSpec) -> None:
    """monotonic() is one clock for every process of the machine, so intervals compare."""
    for i in range(60):
        _keyed(broker, f"k{i}", key=f"key{i % 3}", limit=1)
    for i in range(20):
        assert broker.enqueue(rec(f"free{i}"))
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_and_log, args=(broker_spec, f"w{i}", barrier, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert [r[2] for r in results] == [None] * 4
    intervals = [entry for r in results for entry in r[1]]
    assert len(intervals) == 80
    for key in ("key0", "key1", "key2"):
        spans = sorted((s, e) for k, s, e in intervals if k == key)
        assert len(spans) == 20
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"two jobs of {key} overlapped"
    assert nonzero_counts(broker) == {"default": {"finished": 80}}


def test_the_reaper_frees_the_slot_of_a_dead_worker(broker: Broker) -> None:
    _keyed(broker, "k1")
    _keyed(broker, "k2")
    broker.heartbeat(WorkerInfo("alive", 1, "h", ["default"]), ttl=60)
    job = _claim(broker, "dead")  # "dead" never heartbeats
    assert job is not None and _claim(broker, "alive") is None
    assert broker.reap(KEEP) == [job.id]
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED
    nxt = _claim(broker, "alive")
    assert nxt is not None and nxt.job_id == "k2"
