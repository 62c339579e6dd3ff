"""get, find, counts, queue_length and position."""

from __future__ import annotations

import time

import pytest

from jobbench.brokers.base import Broker
from jobbench.jobs.record import JobStatus, full_id

from .helpers import KEEP, SITE, enqueued, in_status, nonzero_counts, rec, started


def test_get_returns_every_field_as_stored(broker: Broker) -> None:
    record = rec(
        "j1",
        payload=b"\x00\x01binary\xff\xfe",
        serializer="pickle",
        user="someone@example.com",
        timeout=1500,
        job_name="Send: mails",
        retries_left=2,
        task_id="task-77",
        on_success="tapp.hooks.ok",
        on_failure="tapp.hooks.ko",
        enqueued_at=1_700_000_000.25,
    )
    assert broker.enqueue(record) is True
    got = broker.get(record.id)
    assert got is not None
    expected = record.to_mapping() | {"status": JobStatus.QUEUED}
    actual = got.to_mapping()
    assert actual.pop("enqueued_at") == pytest.approx(expected.pop("enqueued_at"), abs=1e-3)
    assert actual == expected
    assert got.job_id == "j1"


def test_get_of_an_unknown_job_is_none(broker: Broker) -> None:
    assert broker.get(full_id(SITE, "nope")) is None


def test_same_job_id_on_two_sites_are_two_jobs(broker: Broker) -> None:
    a = enqueued(broker, "same", site="s1", payload=b"one")
    b = enqueued(broker, "same", site="s2", payload=b"two")
    got_a, got_b = broker.get(a.id), broker.get(b.id)
    assert got_a is not None and got_a.payload == b"one" and got_a.site == "s1"
    assert got_b is not None and got_b.payload == b"two" and got_b.site == "s2"
    assert broker.queue_length("default") == 2


def _populate(broker: Broker) -> list[str]:
    """Ten jobs enqueued one after another; returns their ids, oldest first."""
    base = time.time() - 100
    specs = [
        ("s1", "short", JobStatus.QUEUED),
        ("s1", "default", JobStatus.FINISHED),
        ("s2", "short", JobStatus.FAILED),
        ("s1", "short", JobStatus.STARTED),
        ("s2", "default", JobStatus.QUEUED),
        ("s1", "long", JobStatus.SCHEDULED),
        ("s2", "short", JobStatus.QUEUED),
        ("s1", "short", JobStatus.FAILED),
        ("s2", "long", JobStatus.CANCELED),
        ("s1", "default", JobStatus.QUEUED),
    ]
    ids = []
    for i, (site, queue, status) in enumerate(specs):
        job = in_status(broker, f"j{i}", status, site=site, queue=queue, enqueued_at=base + i)
        ids.append(job.id)
    return ids


def test_find_lists_newest_enqueued_first(broker: Broker) -> None:
    ids = _populate(broker)
    assert [j.id for j in broker.find()] == ids[::-1]


def test_find_filters_by_site_queue_and_status(broker: Broker) -> None:
    ids = _populate(broker)
    by_site = [j.id for j in broker.find(site="s2")]
    assert by_site == [ids[8], ids[6], ids[4], ids[2]]
    by_queue = [j.id for j in broker.find(queue="short")]
    assert by_queue == [ids[7], ids[6], ids[3], ids[2], ids[0]]
    by_status = [j.id for j in broker.find(status=JobStatus.QUEUED)]
    assert by_status == [ids[9], ids[6], ids[4], ids[0]]
    all_three = broker.find(site="s1", queue="short", status=JobStatus.FAILED)
    assert [j.id for j in all_three] == [ids[7]]
    assert broker.find(site="s2", queue="long", status=JobStatus.QUEUED) == []
    assert broker.find(site="nowhere") == []
    started_jobs = broker.find(status=JobStatus.STARTED)
    assert [(j.id, j.worker) for j in started_jobs] == [(ids[3], "w1")]


def test_find_pages_with_limit_and_offset(broker: Broker) -> None:
    ids = _populate(broker)[::-1]
    assert [j.id for j in broker.find(limit=3)] == ids[:3]
    assert [j.id for j in broker.find(limit=3, offset=3)] == ids[3:6]
    assert [j.id for j in broker.find(limit=100, offset=8)] == ids[8:]
    assert broker.find(limit=5, offset=10) == []
    queued = [j.id for j in broker.find(status=JobStatus.QUEUED, limit=2, offset=1)]
    assert queued == [ids[3], ids[5]]


def test_counts_per_queue_and_status(broker: Broker) -> None:
    _populate(broker)
    assert nonzero_counts(broker) == {
        "short": {"queued": 2, "failed": 2, "started": 1},
        "default": {"queued": 2, "finished": 1},
        "long": {"scheduled": 1, "canceled": 1},
    }


def test_counts_of_an_empty_broker(broker: Broker) -> None:
    assert nonzero_counts(broker) == {}


def test_queue_length_counts_only_queued_jobs(broker: Broker) -> None:
    _populate(broker)
    assert broker.queue_length("short") == 2
    assert broker.queue_length("default") == 2
    assert broker.queue_length("long") == 0
    assert broker.queue_length("unknown") == 0


def test_position_follows_the_queue(broker: Broker) -> None:
    a, b, c = (enqueued(broker, name) for name in ("a", "b", "c"))
    assert [broker.position(j.id) for j in (a, b, c)] == [0, 1, 2]
    front = rec("front")
    assert broker.enqueue(front, at_front=True)
    assert [broker.position(j.id) for j in (front, a, b, c)] == [0, 1, 2, 3]
    claimed = broker.claim(["default"], "w1")
    assert claimed is not None and claimed.id == front.id
    assert broker.position(front.id) is None
    assert broker.request_stop(b.id, KEEP) == JobStatus.CANCELED
    assert [broker.position(j.id) for j in (a, b, c)] == [0, None, 1]


def test_position_is_none_for_jobs_not_queued(broker: Broker) -> None:
    job = started(broker, "running")
    assert broker.position(job.id) is None
    assert broker.position(full_id(SITE, "nope")) is None
    done = in_status(broker, "done", JobStatus.FINISHED)
    assert broker.position(done.id) is None
