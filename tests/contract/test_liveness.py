"""heartbeat / workers / unregister_worker, worker expiry, and reap."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from jobbench.brokers.base import Broker, WorkerInfo
from jobbench.jobs.record import JobStatus

from .helpers import KEEP, BrokerSpec, started, wait_until


def _info(name: str, **fields: object) -> WorkerInfo:
    values: dict[str, object] = {"pid": 4242, "host": "host-a", "queues": ["short", "default"]}
    values.update(fields)
    return WorkerInfo(name=name, **values)  # type: ignore[arg-type]


def _names(broker: Broker) -> list[str]:
    return sorted(w.name for w in broker.workers())


# -- heartbeat / workers --------------------------------------------------------------------


def test_heartbeat_registers_the_worker_with_what_it_published(broker: Broker) -> None:
    info = _info(
        "w1",
        state="busy",
        current_job="site1::j1",
        successful=3,
        failed=1,
        working_time=1.5,
        birth=1_700_000_000.0,
    )
    broker.heartbeat(info, ttl=30)
    [got] = broker.workers()
    assert (got.name, got.pid, got.host, got.queues) == ("w1", 4242, "host-a", ["short", "default"])
    assert (got.state, got.current_job) == ("busy", "site1::j1")
    assert (got.successful, got.failed) == (3, 1)
    assert got.working_time == pytest.approx(1.5)
    assert got.birth == pytest.approx(1_700_000_000.0)
    assert got.heartbeat == pytest.approx(time.time(), abs=5)


def test_a_scheduler_registers_beside_the_workers_with_its_tick(broker: Broker) -> None:
    """Schedulers share the registry (and the TTL) with workers: kind, leadership and ticks
    come back as published; reap settles nothing for an expired scheduler, only forgets it."""
    broker.heartbeat(_info("w1"), ttl=30)
    sched = _info(
        "s1",
        queues=[],
        state="leader",
        kind="scheduler",
        leader=True,
        tick_interval=60.0,
        last_tick=1_700_000_000.0,
        next_tick=1_700_000_060.0,
    )
    broker.heartbeat(sched, ttl=0.3)
    kinds = {w.name: w.kind for w in broker.workers()}
    assert kinds == {"w1": "worker", "s1": "scheduler"}
    got = next(w for w in broker.workers() if w.name == "s1")
    assert (got.leader, got.state, got.tick_interval) == (True, "leader", 60.0)
    assert (got.last_tick, got.next_tick) == (1_700_000_000.0, 1_700_000_060.0)
    wait_until(lambda: _names(broker) == ["w1"], timeout=5)
    assert broker.reap(KEEP) == []


def test_heartbeat_refreshes_one_entry_per_worker(broker: Broker) -> None:
    broker.heartbeat(_info("w1", state="busy", current_job="site1::j1"), ttl=30)
    broker.heartbeat(_info("w2"), ttl=30)
    broker.heartbeat(_info("w1", state="idle", successful=1), ttl=30)
    assert _names(broker) == ["w1", "w2"]
    w1 = next(w for w in broker.workers() if w.name == "w1")
    assert (w1.state, w1.current_job, w1.successful) == ("idle", None, 1)


def test_unregister_worker_forgets_it(broker: Broker) -> None:
    broker.heartbeat(_info("w1"), ttl=30)
    broker.heartbeat(_info("w2"), ttl=30)
    broker.unregister_worker("w1")
    assert _names(broker) == ["w2"]
    broker.unregister_worker("w1")  # again: harmless
    broker.unregister_worker("never-seen")
    assert _names(broker) == ["w2"]


def test_a_worker_without_fresh_heartbeat_expires(broker: Broker) -> None:
    broker.heartbeat(_info("short-lived"), ttl=0.3)
    broker.heartbeat(_info("long-lived"), ttl=30)
    assert _names(broker) == ["long-lived", "short-lived"]
    wait_until(lambda: _names(broker) == ["long-lived"], timeout=5)


def test_a_heartbeat_extends_the_ttl(broker: Broker) -> None:
    broker.heartbeat(_info("w1"), ttl=0.3)
    broker.heartbeat(_info("w1"), ttl=30)
    time.sleep(0.45)
    assert _names(broker) == ["w1"]


# -- reap -----------------------------------------------------------------------------------


def test_reap_fails_the_job_of_a_worker_that_never_beat(broker: Broker) -> None:
    job = started(broker, "j1", worker="ghost")
    assert broker.reap(KEEP) == [job.id]
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.FAILED
    assert got.exc_info is not None and "worker died" in got.exc_info
    assert got.ended_at is not None


def test_reap_settles_jobs_of_expired_workers_only(broker: Broker) -> None:
    broker.heartbeat(_info("dying"), ttl=0.3)
    broker.heartbeat(_info("alive"), ttl=30)
    dead_job = started(broker, "dead", worker="dying")
    live_job = started(broker, "live", worker="alive")
    assert broker.reap(KEEP) == []
    wait_until(lambda: _names(broker) == ["alive"], timeout=5)
    assert broker.reap(KEEP) == [dead_job.id]
    dead = broker.get(dead_job.id)
    assert dead is not None and dead.status == JobStatus.FAILED
    live = broker.get(live_job.id)
    assert live is not None and live.status == JobStatus.STARTED and live.worker == "alive"
    assert broker.finish(live_job.id, "alive", b"ok", KEEP) is True


def test_reap_settles_the_job_of_a_cleanly_unregistered_worker(broker: Broker) -> None:
    broker.heartbeat(_info("w1"), ttl=30)
    job = started(broker, "j1", worker="w1")
    broker.unregister_worker("w1")
    assert broker.reap(KEEP) == [job.id]
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED


def test_reap_retries_a_job_with_retries_left(broker: Broker) -> None:
    job = started(broker, "j1", worker="ghost", retries_left=2)
    now = time.time()
    assert broker.reap(KEEP, now=now) == [job.id]
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.SCHEDULED
    assert (got.retries_left, got.retry_count) == (1, 1)
    assert got.retry_at == pytest.approx(now, abs=1e-3)
    assert broker.promote_due(now=now + 1) == 1
    again = broker.claim(["default"], "w2")
    assert again is not None and again.id == job.id and again.attempts == 2


def test_reap_twice_settles_once(broker: Broker) -> None:
    job = started(broker, "j1", worker="ghost")
    assert broker.reap(KEEP) == [job.id]
    first = broker.get(job.id)
    assert broker.reap(KEEP) == []
    assert broker.get(job.id) == first


def test_concurrent_reapers_settle_each_job_once(broker: Broker, broker_spec: BrokerSpec) -> None:
    jobs = {started(broker, f"j{i}", worker=f"ghost{i % 3}").id for i in range(30)}
    reapers = [broker_spec.make() for _ in range(4)]
    barrier = threading.Barrier(len(reapers))
    results: list[list[str]] = []

    def run(reaper: Broker) -> None:
        barrier.wait(timeout=10)
        results.append(reaper.reap(KEEP))

    threads = [threading.Thread(target=run, args=(r,)) for r in reapers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for r in reapers:
        r.close()
    assert len(results) == len(reapers)
    settled = Counter(i for ids in results for i in ids)
    assert [i for i, n in settled.items() if n > 1] == []
    assert set(settled) == jobs
    assert {j.id for j in broker.find(status=JobStatus.FAILED, limit=100)} == jobs
