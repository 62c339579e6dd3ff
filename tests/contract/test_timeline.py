"""Per-minute outcome counts (``timeline()``), what the dashboard's charts and throughput read:
finish and fail (retried or not, reaped included) count in the minute they happen, per queue;
stops, refused calls and claims do not; records' expiry, purge and delete do not lower them;
they are kept ``TIMELINE_KEEP`` seconds."""

from __future__ import annotations

import time

from jobbench.brokers.base import TIMELINE_KEEP, Broker, WorkerInfo

from .helpers import FAR_FUTURE, KEEP, QUEUE, started


def _minute_totals(broker: Broker, since: float) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for (_, queue, kind), n in broker.timeline(since).items():
        totals[(queue, kind)] = totals.get((queue, kind), 0) + n
    return totals


def test_finish_and_fail_count_per_minute_and_queue(broker: Broker) -> None:
    before = time.time()
    assert broker.timeline(0) == {}
    done = started(broker, "a")
    assert broker.finish(done.id, "w1", b"r", KEEP)
    assert not broker.finish(done.id, "w1", b"r", KEEP)  # refused: counts nothing
    failed = started(broker, "b", queue="long")
    assert broker.fail(failed.id, "w1", "boom", KEEP)
    retried = started(broker, "c", retries_left=1)
    assert broker.fail(retried.id, "w1", "boom", KEEP, retry_at=FAR_FUTURE)
    stopped = started(broker, "d")
    assert broker.mark_stopped(stopped.id, "w1", "stopped on request", KEEP)
    started(broker, "e")  # still running
    after = time.time()
    found = broker.timeline(before - 60)
    minutes = {minute for minute, _, _ in found}
    assert minutes <= set(range(int(before // 60), int(after // 60) + 1)), found
    assert _minute_totals(broker, before - 60) == {
        (QUEUE, "finished"): 1,
        (QUEUE, "failed"): 1,
        ("long", "failed"): 1,
    }
    assert broker.timeline(after + 120) == {}  # ``since`` leaves out earlier minutes
    broker.purge(["failed", "finished"])
    broker.cleanup(now=time.time() + KEEP.results_ttl + 1)
    assert sum(_minute_totals(broker, before - 60).values()) == 3  # records gone, counts stay


def test_reaped_jobs_count_as_failed(broker: Broker) -> None:
    now = time.time()
    broker.heartbeat(WorkerInfo(name="w1", pid=1, host="h", queues=[QUEUE]), ttl=0.01)
    job = started(broker, "a")
    time.sleep(0.05)
    assert broker.reap(KEEP, now=time.time() + 1) == [job.id]
    assert _minute_totals(broker, now - 60) == {(QUEUE, "failed"): 1}


def test_counts_are_kept_a_day_and_no_longer(broker: Broker) -> None:
    job = started(broker, "a")
    assert broker.finish(job.id, "w1", None, KEEP)
    client = broker.client()
    if client is None:  # SQLite: cleanup() prunes what is older than TIMELINE_KEEP
        broker.cleanup(now=time.time() + TIMELINE_KEEP - 120)
        assert _minute_totals(broker, 0) == {(QUEUE, "finished"): 1}
        broker.cleanup(now=time.time() + TIMELINE_KEEP + 3600)
    else:  # Redis: the hour's hash expires by itself
        (key,) = [k for k in client.scan_iter(match="*timeline:*")]
        expires = client.expiretime(key)
        assert TIMELINE_KEEP <= expires - time.time() <= TIMELINE_KEEP + 3600
        client.delete(key)
    assert broker.timeline(0) == {}
