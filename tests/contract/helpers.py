"""Helpers for the broker contract suite: how to build a broker, records, and jobs in a state.

``BrokerSpec`` is plain picklable data so a child process (multiprocessing, spawn) can build
its own, fresh broker object on the same storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobbench.brokers.base import Broker, Retention
from jobbench.jobs.record import JobRecord, JobStatus, encode_ids, full_id

KEEP = Retention()
SITE = "site1"
QUEUE = "default"
FAR_FUTURE = 4_000_000_000.0  # year 2096: a retry that never comes due during a test


@dataclass(frozen=True)
class BrokerSpec:
    """Which broker to build: ``sqlite`` on a file, or ``redis`` on a URL with a bench id
    (one server, or a Cluster reached through one of its nodes)."""

    kind: str
    target: str
    bench_id: str = ""
    cluster: bool = False  # target is a node of a Redis Cluster

    def make(self) -> Broker:
        if self.kind == "sqlite":
            from jobbench.brokers.sqlite import SQLiteBroker

            return SQLiteBroker(self.target)
        from jobbench.brokers.redis import RedisBroker
        from jobbench.brokers.redis_conn import RedisSettings

        settings = RedisSettings(self.target, cluster=self.cluster)
        return RedisBroker(self.target, bench_id=self.bench_id, settings=settings)


def rec(job_id: str, queue: str = QUEUE, site: str = SITE, **fields: Any) -> JobRecord:
    """A fresh record with stored id ``<site>::<job_id>``."""
    values: dict[str, Any] = {
        "method": "tapp.tasks.work",
        "payload": f"payload-{job_id}".encode(),
    }
    values.update(fields)
    return JobRecord(id=full_id(site, job_id), site=site, queue=queue, **values)


def enqueued(broker: Broker, job_id: str, **fields: Any) -> JobRecord:
    record = rec(job_id, **fields)
    assert broker.enqueue(record) is True
    return record


def started(broker: Broker, job_id: str, worker: str = "w1", **fields: Any) -> JobRecord:
    """Enqueue a job at the head of its queue and claim it as ``worker``."""
    record = rec(job_id, **fields)
    assert broker.enqueue(record, at_front=True) is True
    claimed = broker.claim([record.queue], worker)
    assert claimed is not None and claimed.id == record.id
    return claimed


def in_status(broker: Broker, job_id: str, status: str, **fields: Any) -> JobRecord:
    """A job brought into ``status`` through the broker's own methods; returns the record."""
    if status == JobStatus.QUEUED:
        enqueued(broker, job_id, **fields)
    elif status == JobStatus.DEFERRED:  # waiting for a queued job of another queue
        blocker = rec(f"{job_id}-dependency", queue="blockers", site=fields.get("site", SITE))
        assert broker.enqueue(blocker) is True
        enqueued(broker, job_id, depends_on=encode_ids([blocker.id]), **fields)
    elif status == JobStatus.CANCELED:
        record = enqueued(broker, job_id, **fields)
        assert broker.request_stop(record.id, KEEP) == JobStatus.CANCELED
    else:
        if status == JobStatus.SCHEDULED:
            fields.setdefault("retries_left", 1)
        record = started(broker, job_id, **fields)
        _settle(broker, record.id, status)
    got = broker.get(full_id(fields.get("site", SITE), job_id))
    assert got is not None and got.status == status
    return got


def _settle(broker: Broker, stored_id: str, status: str) -> None:
    if status == JobStatus.FINISHED:
        assert broker.finish(stored_id, "w1", b"result", KEEP)
    elif status == JobStatus.FAILED:
        assert broker.fail(stored_id, "w1", "Traceback: boom", KEEP)
    elif status == JobStatus.STOPPED:
        assert broker.mark_stopped(stored_id, "w1", "stopped on request", KEEP)
    elif status == JobStatus.SCHEDULED:
        assert broker.fail(stored_id, "w1", "Traceback: boom", KEEP, retry_at=FAR_FUTURE)
    else:
        assert status == JobStatus.STARTED


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, every: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        time.sleep(every)


def claim_all(spec: BrokerSpec, queue: str, worker: str, barrier: Any, out: Any) -> None:
    """Child-process body: build a fresh broker, wait for the others, claim until empty."""
    broker = spec.make()
    ids: list[str] = []
    try:
        barrier.wait(timeout=30)
        while (job := broker.claim([queue], worker)) is not None:
            assert job.worker == worker and job.status == JobStatus.STARTED
            ids.append(job.id)
        out.put((worker, ids, None))
    except BaseException as exc:  # report to the parent instead of dying silently
        out.put((worker, ids, repr(exc)))
    finally:
        broker.close()


def nonzero_counts(broker: Broker) -> dict[str, dict[str, int]]:
    """``broker.counts()`` without zero entries (a backend may or may not list them)."""
    counts = {q: {s: n for s, n in by.items() if n} for q, by in broker.counts().items()}
    return {q: by for q, by in counts.items() if by}
