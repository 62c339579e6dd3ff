"""Broker.wait_final: blocks until the job is final (or gone, or the time runs out) and wakes
within milliseconds of the change that ended it; any number of waiters."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobbench.brokers.base import Broker
from jobbench.jobs.record import JobRecord, JobStatus, full_id

from .helpers import KEEP, SITE, enqueued, in_status, started


def _wait_in_thread(
    broker: Broker, job_id: str, timeout: float | None = 10.0
) -> tuple[threading.Thread, list[tuple[JobRecord | None, float]]]:
    out: list[tuple[JobRecord | None, float]] = []

    def run() -> None:
        record = broker.wait_final(job_id, timeout)
        out.append((record, time.monotonic()))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _ended_after(broker: Broker, job_id: str, end: Callable[[], Any]) -> tuple[JobRecord, float]:
    """Wait in a thread, end the job after a pause; (record seen, seconds from end to wake)."""
    thread, out = _wait_in_thread(broker, job_id)
    time.sleep(0.15)
    ended = time.monotonic()
    end()
    thread.join(15)
    assert out, "the waiter never returned"
    record, woke = out[0]
    assert record is not None
    return record, woke - ended


@pytest.mark.parametrize("status", [JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED])
def test_a_final_job_returns_at_once(broker: Broker, status: str) -> None:
    job = in_status(broker, "j1", status)
    began = time.monotonic()
    got = broker.wait_final(job.id, timeout=5)
    assert got is not None and got.status == status
    assert time.monotonic() - began < 0.5


def test_an_unknown_job_returns_none(broker: Broker) -> None:
    assert broker.wait_final(full_id(SITE, "nope"), timeout=5) is None


def test_the_time_runs_out_on_a_pending_job(broker: Broker) -> None:
    job = enqueued(broker, "j1")
    began = time.monotonic()
    got = broker.wait_final(job.id, timeout=0.3)
    took = time.monotonic() - began
    assert got is not None and got.status == JobStatus.QUEUED
    assert 0.3 <= took < 1.5
    assert broker.wait_final(job.id, timeout=0) is not None  # 0: just look


def test_finish_wakes_the_waiter_within_milliseconds(broker: Broker) -> None:
    """The waiter blocks on the broker; it learns of the end a few ms after it (issue 12 asks
    <= 5 ms; the bound here leaves room for a loaded test machine, benchmarks/bulk.py measures)."""
    lags = []
    for i in range(5):
        job = started(broker, f"j{i}")
        record, lag = _ended_after(
            broker, job.id, lambda job=job: broker.finish(job.id, "w1", b"42", KEEP)
        )
        assert record.status == JobStatus.FINISHED and record.result == b"42"
        lags.append(lag)
    assert statistics.median(lags) < 0.03, lags


@pytest.mark.parametrize("how", ["fail", "mark_stopped", "request_stop", "reap"])
def test_every_other_end_wakes_the_waiter(broker: Broker, how: str) -> None:
    job = enqueued(broker, "j1") if how == "request_stop" else started(broker, "j1")
    ends = {
        "fail": lambda: broker.fail(job.id, "w1", "Traceback: boom", KEEP),
        "mark_stopped": lambda: broker.mark_stopped(job.id, "w1", "stopped on request", KEEP),
        "request_stop": lambda: broker.request_stop(job.id, KEEP),
        "reap": lambda: broker.reap(KEEP),  # w1 never sent a heartbeat: it is dead
    }
    record, lag = _ended_after(broker, job.id, ends[how])
    assert record.status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    assert lag < 0.5


def test_a_retry_is_not_the_end(broker: Broker) -> None:
    job = started(broker, "j1", retries_left=1)
    thread, out = _wait_in_thread(broker, job.id)
    time.sleep(0.1)
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=time.time() - 1)
    time.sleep(0.2)
    assert not out, "woke on a retry"
    again = broker.claim(["default"], "w1")
    assert again is not None and again.id == job.id
    assert broker.finish(job.id, "w1", b"second time", KEEP)
    thread.join(10)
    assert out and out[0][0] is not None and out[0][0].result == b"second time"


def test_many_waiters_all_wake(broker: Broker) -> None:
    job = started(broker, "j1")
    waiters = [_wait_in_thread(broker, job.id) for _ in range(4)]
    time.sleep(0.15)
    assert broker.finish(job.id, "w1", None, KEEP)
    for thread, out in waiters:
        thread.join(10)
        assert out and out[0][0] is not None and out[0][0].status == JobStatus.FINISHED


def test_a_requeued_job_is_waited_on_afresh(broker: Broker) -> None:
    """The end of the first run is no news for a waiter of the second."""
    job = in_status(broker, "j1", JobStatus.FAILED)
    assert broker.requeue(job.id) is True
    got = broker.wait_final(job.id, timeout=0.3)
    assert got is not None and got.status == JobStatus.QUEUED


def test_a_job_replaced_by_a_new_one_is_waited_on_afresh(broker: Broker) -> None:
    in_status(broker, "j1", JobStatus.FINISHED)
    job = enqueued(broker, "j1")
    got = broker.wait_final(job.id, timeout=0.3)
    assert got is not None and got.status == JobStatus.QUEUED


def test_a_deleted_job_ends_the_wait_with_none(broker: Broker) -> None:
    job = enqueued(broker, "j1")
    thread, out = _wait_in_thread(broker, job.id)
    time.sleep(0.15)
    assert broker.delete(job.id)
    thread.join(10)
    assert out and out[0][0] is None


def test_a_delayed_job_is_waited_on_through_its_delay(broker: Broker) -> None:
    from .helpers import rec

    record = rec("later")
    assert broker.enqueue(record, run_at=time.time() + 0.2)
    thread, out = _wait_in_thread(broker, record.id)
    claimed = broker.claim(["default"], "w1", timeout=3)
    assert claimed is not None and claimed.id == record.id
    assert not out
    assert broker.finish(record.id, "w1", b"ok", KEEP)
    thread.join(10)
    assert out and out[0][0] is not None and out[0][0].status == JobStatus.FINISHED
