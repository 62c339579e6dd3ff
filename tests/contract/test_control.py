"""request_stop, requeue, delete, purge and set_progress."""

from __future__ import annotations

import time

import pytest

from jobbench.brokers.base import Broker
from jobbench.jobs.record import FINAL_STATUSES, JobStatus, full_id

from .helpers import KEEP, SITE, enqueued, in_status, nonzero_counts, started

FINALS = sorted(FINAL_STATUSES)
# A deferred job needs a second record (its dependency): test_dependencies.py covers its
# delete and purge.
ALL_STATUSES = sorted(s for s in JobStatus if s != JobStatus.DEFERRED)

# -- request_stop ---------------------------------------------------------------------------


def test_request_stop_cancels_a_queued_job_at_once(broker: Broker) -> None:
    job = enqueued(broker, "j1")
    enqueued(broker, "j2")
    assert broker.request_stop(job.id, KEEP) == JobStatus.CANCELED
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.CANCELED
    assert broker.queue_length("default") == 1
    assert broker.position(job.id) is None
    claimed = broker.claim(["default"], "w1")
    assert claimed is not None and claimed.job_id == "j2"
    assert broker.claim(["default"], "w1") is None
    # idempotent
    assert broker.request_stop(job.id, KEEP) == JobStatus.CANCELED


def test_request_stop_cancels_a_scheduled_job(broker: Broker) -> None:
    job = in_status(broker, "j1", JobStatus.SCHEDULED)
    assert broker.request_stop(job.id, KEEP) == JobStatus.CANCELED
    assert broker.promote_due(now=time.time() + 10**10) == 0
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.CANCELED
    assert broker.queue_length("default") == 0


def test_request_stop_flags_a_started_job_for_its_worker(broker: Broker) -> None:
    job = started(broker, "j1", worker="w1")
    assert job.stop_requested == 0
    assert broker.request_stop(job.id, KEEP) == JobStatus.STARTED
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.STARTED and got.stop_requested == 1 and got.worker == "w1"
    assert broker.request_stop(job.id, KEEP) == JobStatus.STARTED
    # the worker acts on it
    assert broker.mark_stopped(job.id, "w1", "stop requested", KEEP)
    stopped = broker.get(job.id)
    assert stopped is not None and stopped.status == JobStatus.STOPPED


def test_request_stop_of_an_unknown_job_is_none(broker: Broker) -> None:
    assert broker.request_stop(full_id(SITE, "nope"), KEEP) is None
    assert broker.get(full_id(SITE, "nope")) is None


@pytest.mark.parametrize("status", FINALS)
def test_request_stop_leaves_a_final_job_as_it_is(broker: Broker, status: str) -> None:
    before = in_status(broker, "j1", status)
    assert broker.request_stop(before.id, KEEP) == status
    after = broker.get(before.id)
    assert after is not None and after.status == status


# -- requeue --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", FINALS)
def test_requeue_puts_a_final_job_back_at_the_tail(broker: Broker, status: str) -> None:
    job = in_status(broker, "j1", status)
    enqueued(broker, "ahead")
    assert broker.requeue(job.id) is True
    got = broker.get(job.id)
    assert got is not None
    assert got.status == JobStatus.QUEUED
    assert got.result is None and got.exc_info is None and got.stop_requested == 0
    assert broker.position(job.id) == 1
    assert broker.queue_length("default") == 2
    assert broker.find(status=status) == []
    order = [broker.claim(["default"], "w2"), broker.claim(["default"], "w2")]
    assert [j.job_id for j in order if j] == ["ahead", "j1"]


def test_requeue_clears_a_stop_request(broker: Broker) -> None:
    job = started(broker, "j1")
    assert broker.request_stop(job.id, KEEP) == JobStatus.STARTED
    assert broker.mark_stopped(job.id, "w1", "stopped", KEEP)
    assert broker.requeue(job.id) is True
    again = broker.claim(["default"], "w2")
    assert again is not None and again.id == job.id
    assert again.stop_requested == 0 and again.exc_info is None


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED])
def test_requeue_refuses_a_pending_job(broker: Broker, status: str) -> None:
    before = in_status(broker, "j1", status)
    length = broker.queue_length("default")
    assert broker.requeue(before.id) is False
    after = broker.get(before.id)
    assert after is not None and after.status == status
    assert broker.queue_length("default") == length


def test_requeue_of_an_unknown_job_is_false(broker: Broker) -> None:
    assert broker.requeue(full_id(SITE, "nope")) is False
    assert broker.queue_length("default") == 0


# -- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s != JobStatus.STARTED])
def test_delete_removes_the_record_and_every_entry(broker: Broker, status: str) -> None:
    job = in_status(broker, "j1", status)
    assert broker.delete(job.id) is True
    assert broker.get(job.id) is None
    assert broker.find() == []
    assert nonzero_counts(broker) == {}
    assert broker.queue_length("default") == 0
    assert broker.position(job.id) is None
    assert broker.claim(["default"], "w2") is None
    assert broker.promote_due(now=time.time() + 10**10) == 0
    assert broker.delete(job.id) is False


def test_delete_refuses_a_started_job(broker: Broker) -> None:
    job = started(broker, "j1")
    assert broker.delete(job.id) is False
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.STARTED
    assert broker.finish(job.id, "w1", b"ok", KEEP) is True


def test_delete_of_an_unknown_job_is_false(broker: Broker) -> None:
    assert broker.delete(full_id(SITE, "nope")) is False


# -- purge ----------------------------------------------------------------------------------


def _one_of_each(broker: Broker, queue: str = "default", site: str = SITE) -> dict[str, str]:
    return {
        status: in_status(broker, f"{queue}-{site}-{status}", status, queue=queue, site=site).id
        for status in ALL_STATUSES
    }


def test_purge_deletes_jobs_of_the_given_statuses(broker: Broker) -> None:
    ids = _one_of_each(broker)
    assert broker.purge([JobStatus.FAILED, JobStatus.FINISHED]) == 2
    assert broker.get(ids[JobStatus.FAILED]) is None
    assert broker.get(ids[JobStatus.FINISHED]) is None
    left = {j.status for j in broker.find()}
    assert left == set(ALL_STATUSES) - {JobStatus.FAILED, JobStatus.FINISHED}


def test_purge_never_touches_started_jobs(broker: Broker) -> None:
    ids = _one_of_each(broker)
    assert broker.purge(ALL_STATUSES) == len(ALL_STATUSES) - 1
    assert [j.id for j in broker.find()] == [ids[JobStatus.STARTED]]
    assert broker.purge([JobStatus.STARTED]) == 0
    assert broker.finish(ids[JobStatus.STARTED], "w1", None, KEEP) is True


def test_purge_of_queued_and_scheduled_jobs_empties_their_queues(broker: Broker) -> None:
    ids = _one_of_each(broker)
    assert broker.purge([JobStatus.QUEUED, JobStatus.SCHEDULED]) == 2
    assert broker.queue_length("default") == 0
    assert broker.claim(["default"], "w2") is None
    assert broker.promote_due(now=time.time() + 10**10) == 0
    assert broker.get(ids[JobStatus.QUEUED]) is None


def test_purge_filters_by_queue_and_site(broker: Broker) -> None:
    a = _one_of_each(broker, queue="short", site="s1")
    b = _one_of_each(broker, queue="long", site="s1")
    c = _one_of_each(broker, queue="short", site="s2")
    assert broker.purge([JobStatus.FAILED], queue="short") == 2
    assert broker.get(a[JobStatus.FAILED]) is None and broker.get(c[JobStatus.FAILED]) is None
    assert broker.get(b[JobStatus.FAILED]) is not None
    assert broker.purge([JobStatus.FINISHED], site="s1") == 2
    assert broker.get(a[JobStatus.FINISHED]) is None and broker.get(b[JobStatus.FINISHED]) is None
    assert broker.get(c[JobStatus.FINISHED]) is not None
    assert broker.purge([JobStatus.QUEUED, JobStatus.STOPPED], queue="long", site="s2") == 0
    assert broker.purge([JobStatus.QUEUED, JobStatus.STOPPED], queue="short", site="s2") == 2
    assert broker.get(c[JobStatus.QUEUED]) is None and broker.get(c[JobStatus.STOPPED]) is None
    assert broker.get(a[JobStatus.QUEUED]) is not None
    assert broker.queue_length("short") == 1
    assert broker.queue_length("long") == 1


# -- set_progress ---------------------------------------------------------------------------


def test_set_progress_last_write_wins(broker: Broker) -> None:
    job = started(broker, "j1")
    broker.set_progress(job.id, 25.0, "loading")
    got = broker.get(job.id)
    assert got is not None and (got.progress, got.stage) == (25.0, "loading")
    broker.set_progress(job.id, 80.5, "writing")
    got = broker.get(job.id)
    assert got is not None and (got.progress, got.stage) == (80.5, "writing")
    broker.set_progress(job.id, None, None)
    got = broker.get(job.id)
    assert got is not None and (got.progress, got.stage) == (None, None)
    assert got.status == JobStatus.STARTED


# -- interrupt ------------------------------------------------------------------------------


def test_interrupt_puts_a_started_job_back_at_the_head_with_the_reason(broker: Broker) -> None:
    job = started(broker, "cut", worker="w1")
    enqueued(broker, "j2")
    enqueued(broker, "j3")
    assert broker.interrupt(job.id, "w1", "interrupted: a sibling's hard stop")
    got = broker.get(job.id)
    assert got is not None and got.status == JobStatus.QUEUED
    assert got.worker is None and got.started_at is None
    assert got.exc_info == "interrupted: a sibling's hard stop"
    assert broker.position(job.id) == 0 and broker.queue_length("default") == 3
    again = broker.claim(["default"], "w2")
    assert again is not None and again.job_id == "cut" and again.attempts == 2
    assert [broker.claim(["default"], "w2").job_id for _ in range(2)] == ["j2", "j3"]


def test_interrupt_needs_the_claiming_worker_and_a_started_job(broker: Broker) -> None:
    job = started(broker, "cut", worker="w1")
    assert not broker.interrupt(job.id, "w2", "not mine")
    assert broker.get(job.id).status == JobStatus.STARTED
    for status in FINALS + [JobStatus.QUEUED, JobStatus.SCHEDULED]:
        other = in_status(broker, f"in-{status}", status)
        assert not broker.interrupt(other.id, None, "no")
        assert broker.get(other.id).status == status
    assert not broker.interrupt(full_id(SITE, "nope"), None, "no")
    assert broker.interrupt(job.id, None, "any worker")  # None matches any
    assert not broker.interrupt(job.id, None, "twice")  # queued now
