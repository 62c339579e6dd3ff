"""Running counters, the job-duration histogram and markers: counters(), durations(),
set_marker() / get_marker()."""

from __future__ import annotations

import math
import time

from jobbench.brokers.base import DURATION_BUCKETS, Broker

from .helpers import FAR_FUTURE, KEEP, QUEUE, SITE, enqueued, rec, started


def test_counters_follow_claim_and_every_outcome(broker: Broker) -> None:
    assert broker.counters() == {}
    done = started(broker, "a")
    assert broker.finish(done.id, "w1", b"r", KEEP)
    failed = started(broker, "b")
    assert broker.fail(failed.id, "w1", "boom", KEEP)
    retried = started(broker, "c", retries_left=1)
    assert broker.fail(retried.id, "w1", "boom", KEEP, retry_at=FAR_FUTURE)
    stopped = started(broker, "d")
    assert broker.mark_stopped(stopped.id, "w1", "stopped on request", KEEP)
    started(broker, "e", site="other site|x", queue="long")
    assert broker.counters() == {
        (SITE, QUEUE, "started"): 4,
        (SITE, QUEUE, "finished"): 1,
        (SITE, QUEUE, "failed"): 2,
        (SITE, QUEUE, "stopped"): 1,
        ("other site|x", "long", "started"): 1,
    }


def test_repeated_or_refused_calls_count_nothing(broker: Broker) -> None:
    job = started(broker, "a")
    assert broker.finish(job.id, "w1", None, KEEP)
    assert not broker.finish(job.id, "w1", None, KEEP)
    assert not broker.fail(job.id, "w1", "late", KEEP)
    assert not broker.mark_stopped(job.id, None, "late", KEEP)
    other = started(broker, "b")
    assert not broker.finish(other.id, "someone-else", None, KEEP)
    enqueued(broker, "c")
    assert broker.claim(["empty"], "w1") is None
    assert broker.counters() == {(SITE, QUEUE, "started"): 2, (SITE, QUEUE, "finished"): 1}


def test_counters_survive_cleanup_purge_and_delete(broker: Broker) -> None:
    job = started(broker, "a")
    assert broker.fail(job.id, "w1", "boom", KEEP)
    assert broker.purge(["failed"]) == 1
    assert broker.cleanup(now=time.time() + 10 * 365 * 86400) == 0
    assert broker.counters() == {(SITE, QUEUE, "started"): 1, (SITE, QUEUE, "failed"): 1}


def test_reap_counts_each_settled_job_once(broker: Broker) -> None:
    job = started(broker, "a", worker="ghost")
    assert broker.reap(KEEP) == [job.id]
    assert broker.reap(KEEP) == []
    assert broker.counters()[(SITE, QUEUE, "failed")] == 1
    assert broker.durations()[QUEUE]["count"] == 1


def test_durations_histogram_is_cumulative_per_queue(broker: Broker) -> None:
    assert broker.durations() == {}
    fast = started(broker, "a")
    assert broker.finish(fast.id, "w1", None, KEEP)
    slow = rec("b", queue="long")
    assert broker.enqueue(slow)
    assert broker.claim(["long"], "w1") is not None
    time.sleep(0.06)
    assert broker.fail(slow.id, "w1", "boom", KEEP)
    stopped = started(broker, "c")
    assert broker.mark_stopped(stopped.id, "w1", "stop", KEEP)  # no duration for a stop

    hist = broker.durations()
    assert set(hist) == {QUEUE, "long"}
    for queue, expected_min in ((QUEUE, 0.0), ("long", 0.06)):
        h = hist[queue]
        les = [le for le, _ in h["buckets"]]
        assert les == [*DURATION_BUCKETS, math.inf]
        counts = [n for _, n in h["buckets"]]
        assert counts == sorted(counts) and counts[-1] == h["count"] == 1
        assert expected_min <= h["sum"] < 5.0
        # the one observation sits in the first bucket whose bound reaches it
        first = next(le for le, n in h["buckets"] if n)
        assert h["sum"] <= first
        assert all(n == 0 for le, n in h["buckets"] if le < h["sum"])
    assert dict(hist["long"]["buckets"])[0.05] == 0


def test_markers(broker: Broker) -> None:
    assert broker.get_marker("scheduler_last_tick") is None
    broker.set_marker("scheduler_last_tick", 1700000000.25)
    broker.set_marker("scheduler_last_tick", 1700000060.5)
    broker.set_marker("other", 3)
    assert broker.get_marker("scheduler_last_tick") == 1700000060.5
    assert broker.get_marker("other") == 3.0
