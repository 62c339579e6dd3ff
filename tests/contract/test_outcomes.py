"""finish / fail / mark_stopped (conditional, idempotent), retries, failed_limit, retention."""

from __future__ import annotations

import threading
import time

import pytest

from jobbench.brokers.base import Broker, Retention
from jobbench.jobs.record import JobStatus, full_id

from .helpers import (
    FAR_FUTURE,
    KEEP,
    SITE,
    BrokerSpec,
    enqueued,
    in_status,
    nonzero_counts,
    started,
    wait_until,
)

# -- finish ---------------------------------------------------------------------------------


def test_finish_records_success_once(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    before = time.time()
    assert broker.finish(job.id, "w1", b"\x00result\xff", KEEP) is True
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.FINISHED
    assert got.result == b"\x00result\xff"
    assert got.ended_at is not None and got.ended_at >= before - 0.01
    # a repeated or late call is a no-op
    assert broker.finish(job.id, "w1", b"other", KEEP) is False
    again = broker.get(job.id)
    assert again is not None
    assert (again.status, again.result) == (JobStatus.FINISHED, b"\x00result\xff")


def test_finish_with_no_result(broker: Broker) -> None:
    job = started(broker, "j1")
    assert broker.finish(job.id, "w1", None, KEEP) is True
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FINISHED and got.result is None


def test_finish_only_by_the_worker_that_started_the_job(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.finish(job.id, "w2", b"x", KEEP) is False
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.STARTED and got.result is None


@pytest.mark.parametrize(
    "status", [JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.FAILED, JobStatus.CANCELED]
)
def test_finish_of_a_job_not_started_changes_nothing(broker: Broker, status: str) -> None:
    before = in_status(broker, "j1", status)
    assert broker.finish(before.id, "w1", b"x", KEEP) is False
    after = broker.get(before.id)
    assert after is not None and after.status == status and after.result is None


def test_finish_of_an_unknown_job_is_false(broker: Broker) -> None:
    assert broker.finish(full_id(SITE, "nope"), "w1", b"x", KEEP) is False
    assert broker.get(full_id(SITE, "nope")) is None


# -- fail -----------------------------------------------------------------------------------


def test_fail_records_the_failure_once(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.fail(job.id, "w1", "Traceback: first", KEEP) is True
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.FAILED
    assert got.exc_info == "Traceback: first"
    assert got.ended_at is not None
    assert broker.fail(job.id, "w1", "Traceback: second", KEEP) is False
    again = broker.get(job.id)
    assert again is not None and again.exc_info == "Traceback: first"
    assert broker.find(status=JobStatus.FAILED)[0].id == job.id


def test_fail_with_worker_none_matches_any_worker(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.fail(job.id, None, "boom", KEEP) is True
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED


def test_fail_by_another_worker_changes_nothing(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.fail(job.id, "w2", "boom", KEEP) is False
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.STARTED and got.exc_info is None


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.FINISHED, JobStatus.SCHEDULED])
def test_fail_of_a_job_not_started_changes_nothing(broker: Broker, status: str) -> None:
    before = in_status(broker, "j1", status)
    assert broker.fail(before.id, None, "boom", KEEP) is False
    assert broker.fail(before.id, None, "boom", KEEP, retry_at=time.time()) is False
    after = broker.get(before.id)
    assert after is not None and after.status == status
    assert after.retries_left == before.retries_left


def test_fail_with_retry_schedules_the_job(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1", retries_left=2)
    retry_at = time.time() + 3600
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=retry_at) is True
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.SCHEDULED
    assert (got.retries_left, got.retry_count) == (1, 1)
    assert got.retry_at == pytest.approx(retry_at, abs=1e-3)
    assert broker.queue_length("default") == 0
    assert broker.position(job.id) is None
    assert broker.claim(["default"], "w1") is None
    # idempotent: the scheduled job is no longer started
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=retry_at) is False
    after = broker.get(job.id)
    assert after is not None and (after.retries_left, after.retry_count) == (1, 1)


def test_fail_without_retries_left_is_final_even_with_retry_at(broker: Broker) -> None:
    job = started(broker, "j1", retries_left=0)
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=time.time()) is True
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED and got.exc_info == "boom"


def test_fail_without_retry_at_is_final_even_with_retries_left(broker: Broker) -> None:
    job = started(broker, "j1", retries_left=3)
    assert broker.fail(job.id, "w1", "boom", KEEP) is True
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED


def test_retries_run_out_then_the_job_fails(broker: Broker) -> None:
    job = started(broker, "j1", retries_left=1)
    assert broker.fail(job.id, "w1", "boom 1", KEEP, retry_at=time.time() - 1)
    assert broker.promote_due() == 1
    again = broker.claim(["default"], "w1")
    assert again is not None and again.id == job.id and again.attempts == 2
    assert broker.fail(job.id, "w1", "boom 2", KEEP, retry_at=time.time() - 1)
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.FAILED and got.exc_info == "boom 2"
    assert (got.retries_left, got.retry_count) == (0, 1)
    assert broker.promote_due() == 0


# -- promote_due ----------------------------------------------------------------------------


def test_promote_due_queues_due_jobs_at_the_tail(broker: Broker) -> None:
    retry_at = time.time() + 100
    job = started(broker, "j1", retries_left=1)
    assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=retry_at)
    enqueued(broker, "waiting")
    assert broker.promote_due(now=retry_at - 1) == 0
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.SCHEDULED
    assert broker.promote_due(now=retry_at + 1) == 1
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.QUEUED
    assert broker.queue_length("default") == 2
    assert broker.position(job.id) == 1
    assert broker.promote_due(now=retry_at + 1) == 0
    order = [broker.claim(["default"], "w1"), broker.claim(["default"], "w1")]
    assert [j.job_id for j in order if j] == ["waiting", "j1"]


def test_promote_due_moves_only_due_jobs(broker: Broker) -> None:
    now = time.time()
    dues = {"soon": now - 5, "past": now - 50, "future": FAR_FUTURE}
    # every job is claimed before any fails: a claim queues the due ones itself
    jobs = [started(broker, name, retries_left=1, queue="long") for name in dues]
    for job in jobs:
        assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=dues[job.job_id])
    assert broker.promote_due(now=now) == 2
    assert broker.queue_length("long") == 2
    future = broker.get(full_id(SITE, "future"))
    assert future is not None and future.status == JobStatus.SCHEDULED


def test_concurrent_promote_due_moves_each_job_once(
    broker: Broker, broker_spec: BrokerSpec
) -> None:
    due = time.time() - 1
    jobs = [started(broker, f"j{i}", retries_left=1) for i in range(30)]  # claims, then fails
    for job in jobs:
        assert broker.fail(job.id, "w1", "boom", KEEP, retry_at=due)
    promoters = [broker_spec.make() for _ in range(4)]
    barrier = threading.Barrier(len(promoters))
    moved: list[int] = []

    def run(b: Broker) -> None:
        barrier.wait(timeout=10)
        moved.append(b.promote_due())

    threads = [threading.Thread(target=run, args=(b,)) for b in promoters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for b in promoters:
        b.close()
    assert len(moved) == len(promoters) and sum(moved) == 30
    assert broker.queue_length("default") == 30
    claimed = [broker.claim(["default"], "w2") for _ in range(31)]
    assert len({j.id for j in claimed if j}) == 30 and claimed[-1] is None


# -- mark_stopped ---------------------------------------------------------------------------


def test_mark_stopped_records_the_stop_once(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.mark_stopped(job.id, "w1", "stopped by admin", KEEP) is True
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.STOPPED and got.exc_info == "stopped by admin"
    assert broker.mark_stopped(job.id, "w1", "again", KEEP) is False
    again = broker.get(job.id)
    assert again is not None and again.exc_info == "stopped by admin"


def test_mark_stopped_is_conditional_on_started_and_worker(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert broker.mark_stopped(job.id, "w2", "x", KEEP) is False
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.STARTED
    queued = enqueued(broker, "q1")
    assert broker.mark_stopped(queued.id, None, "x", KEEP) is False
    assert broker.mark_stopped(full_id(SITE, "nope"), None, "x", KEEP) is False
    assert broker.mark_stopped(job.id, None, "any worker", KEEP) is True


# -- failed_limit and retention -------------------------------------------------------------


def test_failed_limit_deletes_the_oldest_failed_of_the_queue(broker: Broker) -> None:
    keep = Retention(failed_limit=3)
    other = started(broker, "other", queue="long")
    assert broker.fail(other.id, "w1", "boom", keep)
    ids = []
    for i in range(5):
        job = started(broker, f"f{i}")
        assert broker.fail(job.id, "w1", "boom", keep)
        ids.append(job.id)
        time.sleep(0.002)  # distinct failure times
    assert [broker.get(i) is not None for i in ids] == [False, False, True, True, True]
    assert {j.id for j in broker.find(status=JobStatus.FAILED, queue="default")} == set(ids[2:])
    assert broker.get(other.id) is not None
    assert nonzero_counts(broker)["default"] == {"failed": 3}


def test_finished_results_expire_after_results_ttl(broker: Broker) -> None:
    job = started(broker, "j1")
    keeper = started(broker, "j2")
    assert broker.finish(job.id, "w1", b"r", Retention(results_ttl=0.3))
    assert broker.finish(keeper.id, "w1", b"r", KEEP)
    assert broker.get(job.id) is not None
    wait_until(lambda: broker.get(job.id) is None, timeout=5)
    assert [j.id for j in broker.find()] == [keeper.id]
    assert broker.counts().get("default", {}).get("finished") == 1
    assert broker.cleanup() in (0, 1)  # may already be gone where the store expires keys
    assert broker.get(job.id) is None
    assert broker.get(keeper.id) is not None
    assert broker.cleanup() == 0


def test_failures_expire_after_failure_ttl(broker: Broker) -> None:
    job = started(broker, "j1")
    assert broker.fail(job.id, "w1", "boom", Retention(failure_ttl=0.3))
    assert broker.get(job.id) is not None
    wait_until(lambda: broker.get(job.id) is None, timeout=5)
    assert broker.find(status=JobStatus.FAILED) == []


def test_cleanup_deletes_final_records_whose_retention_passed(broker: Broker) -> None:
    keep = Retention(results_ttl=60, failure_ttl=7200)
    done = started(broker, "done")
    assert broker.finish(done.id, "w1", b"r", keep)
    failed = started(broker, "failed")
    assert broker.fail(failed.id, "w1", "boom", keep)
    pending = [
        in_status(broker, "queued", JobStatus.QUEUED),
        in_status(broker, "running", JobStatus.STARTED),
        in_status(broker, "later", JobStatus.SCHEDULED),
    ]
    assert broker.cleanup() == 0
    assert broker.get(done.id) is not None
    assert broker.cleanup(now=time.time() + 3600) == 1
    assert broker.get(done.id) is None
    assert broker.get(failed.id) is not None
    assert all(broker.get(p.id) is not None for p in pending)
    assert broker.queue_length("default") == 1
