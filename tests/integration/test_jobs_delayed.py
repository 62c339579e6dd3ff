"""Delayed jobs with real workers on both brokers: enqueue_in / enqueue_at wait as
``scheduled`` and run on time; at_front, deduplicate, track_job and enqueue_after_commit hold;
the CLI's --in / --at, jobs list / show-pending-jobs run times, jobs run-now and jobs stop."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    jobs_path,
    wait_until,
)


def test_a_delayed_job_waits_then_a_running_worker_runs_it_on_time(engine: Engine) -> None:
    """An idle worker's claim wakes when the job falls due (not at its next housekeeping)."""
    with engine.ctx():
        job = jobbench.enqueue_in(1.5, jobs_path("add"), a=1, b=2, job_id="later")
    assert job.status == "scheduled" and job.is_scheduled
    assert job.run_at is not None and job.enqueued_at is not None
    assert 1.4 < (job.run_at - job.enqueued_at).total_seconds() < 1.6
    due = job.run_at.timestamp()
    engine.start_worker("short")  # idle on another queue: promotes for every queue anyway
    engine.start_worker("default")
    record = engine.wait_status("later", "finished", timeout=20)
    assert record.started_at is not None
    lateness = record.started_at - due
    assert 0 <= lateness < 1.0, lateness
    assert job.refresh().result == 3 and job.run_at is None


def test_enqueue_at_takes_aware_and_site_local_naive_datetimes(engine: Engine) -> None:
    with engine.ctx() as local:
        zone = ZoneInfo(local.time_zone())
        target = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=5)
        aware = jobbench.enqueue_at(target, jobs_path("noop"), job_id="aware")
        naive = target.astimezone(zone).replace(tzinfo=None)
        local_job = jobbench.enqueue_at(naive, jobs_path("noop"), job_id="naive")
        past = jobbench.enqueue_at(target - dt.timedelta(days=1), jobs_path("noop"))
    assert aware.run_at == target and local_job.run_at == target
    assert past.status == "queued"  # a time already past runs as soon as a worker is free


def test_at_front_deduplicate_and_run_now(engine: Engine) -> None:
    order = engine.file("order.txt")
    line = jobs_path("append_line")
    with engine.ctx():
        first = jobbench.enqueue_in(3600, line, path=order, tag="front", at_front=True, job_id="f")
        again = jobbench.enqueue_in(60, line, path=order, tag="x", job_id="f", deduplicate=True)
        for tag in ("q1", "q2"):
            jobbench.enqueue(line, path=order, tag=tag)
        assert again is None
        assert jobbench.is_job_enqueued("f") is True
        assert jobbench.run_job_now("f") is True
        assert jobbench.run_job_now("f") is False  # queued now, not scheduled
    assert first.refresh().status == "queued"
    engine.run_worker("default")
    assert Path(order).read_text().split() == ["front", "q1", "q2"]


def test_tracked_and_after_commit_delayed_jobs(engine: Engine) -> None:
    with engine.ctx() as local:
        jobbench.enqueue_in(0.2, jobs_path("noop"), job_id="dropped", enqueue_after_commit=True)
        local.db.rollback()
        kept = jobbench.enqueue_in(0.2, jobs_path("noop"), job_id="kept", enqueue_after_commit=True)
        assert kept is None and jobbench.get_job("kept") is None
        local.db.commit()
        assert jobbench.get_job_status("kept") in ("scheduled", "queued")
        tracked = jobbench.enqueue_in(0.2, jobs_path("add"), a=2, b=2, track_job=True)
    status = committed(engine, lambda: _task_status(tracked.task_id))
    assert status == "Queued"
    time.sleep(0.3)
    engine.run_worker("default")
    assert engine.record("dropped") is None
    assert tracked.refresh().result == 4
    status = committed(engine, lambda: _task_status(tracked.task_id))
    assert status == "Completed"


def test_delays_that_cannot_be_are_refused_up_front(engine: Engine) -> None:
    with engine.ctx():
        for delay in (-1, float("nan"), "10", True, 10**12):
            with pytest.raises(jobbench.JobError, match="delay"):
                jobbench.enqueue_in(delay, jobs_path("noop"))
        with pytest.raises(jobbench.JobError, match="cannot run now"):
            jobbench.enqueue_in(5, jobs_path("noop"), now=True)
        with pytest.raises(jobbench.JobError, match="datetime"):
            jobbench.enqueue_at("2030-01-01", jobs_path("noop"))
        with pytest.raises(jobbench.InvalidQueue):
            jobbench.enqueue_in(5, jobs_path("noop"), queue="nope")
        with pytest.raises(jobbench.MethodNotAllowed):
            jobbench.enqueue_in(5, "os.system", command="true")
        assert jobbench.list_jobs() == []


def test_cli_enqueue_in_and_at_list_run_now_and_stop(engine: Engine) -> None:
    done = engine.cli("enqueue", jobs_path("add"), "--kwargs", '{"a": 1, "b": 1}', "--in", "3600")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert "runs at" in done.stderr
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    done = engine.cli("enqueue", jobs_path("noop"), "--at", at, "--job-id", "at-job")
    assert done.returncode == 0 and done.stdout.strip() == "at-job", done.stderr
    bad = engine.cli("enqueue", jobs_path("noop"), "--at", "tomorrow")
    assert bad.returncode != 0 and "--at" in bad.stderr
    both = engine.cli("enqueue", jobs_path("noop"), "--at", at, "--in", "5")
    assert both.returncode != 0 and "not both" in both.stderr

    listing = engine.cli("jobs", "list")
    assert listing.returncode == 0
    header, *lines = listing.stdout.splitlines()
    assert "runs at" in header.split("\t")
    runs_at = header.split("\t").index("runs at")
    assert all(line.split("\t")[runs_at] for line in lines)
    rows = json.loads(engine.cli("jobs", "list", "--format", "json").stdout)
    assert {r["id"]: r["status"] for r in rows} == {job_id: "scheduled", "at-job": "scheduled"}
    assert all(r["run_at"] for r in rows)

    pending = json.loads(engine.cli("show-pending-jobs", "--format", "json").stdout)
    (group,) = [g for g in pending if g["method"] == jobs_path("add")]
    assert group["counts"] == {"scheduled": 1} and group["next_run"] > time.time() + 3000
    text = engine.cli("show-pending-jobs").stdout
    assert "next run" in text

    assert engine.cli("jobs", "run-now", job_id).returncode == 0
    refused = engine.cli("jobs", "run-now", job_id)
    assert refused.returncode != 0 and "not scheduled" in refused.stderr
    assert engine.cli("jobs", "stop", "at-job").stdout.strip() == "at-job: canceled"
    engine.run_worker("default")
    assert engine.wait_status(job_id, "finished").result is not None
    assert engine.record("at-job").status == "canceled"


def test_busy_workers_promote_within_a_second(engine: Engine) -> None:
    """Under load (two workers draining a stream of short jobs) delayed jobs still start
    within a second of their time."""
    with engine.ctx():
        jobbench.enqueue_many([{"method": jobs_path("noop")} for _ in range(400)])
        delayed = [jobbench.enqueue_in(0.5 + i * 0.25, jobs_path("noop")) for i in range(6)]
    due = [job.run_at.timestamp() for job in delayed]  # type: ignore[union-attr]
    engine.start_worker("default")
    engine.start_worker("default")
    lateness = []
    for job, at in zip(delayed, due, strict=True):
        wait_until(lambda job=job: job.refresh().status == "finished", 30, f"job {job.id}")
        assert job.started_at is not None
        lateness.append(job.started_at.timestamp() - at)
    assert min(lateness) >= 0 and max(lateness) < 1.0, lateness


def _task_status(task_id: str | None) -> str:
    return str(jobbench.db.get_value("Background Task", {"task_id": task_id}, "status"))
