"""``async_mode = "loop"``: every ``async def`` job of an executor is a task of one shared
event loop, on both brokers with real workers. Each task keeps its own site context; a soft
timeout or stop cancels only its task (test_async_jobs.py runs those in both modes); the pause
of an in-place retry does not hold up the other tasks; a job that blocks the loop meets the
hard stop, and the siblings it held up are put back at the head of their queue, not lost."""

from __future__ import annotations

import signal
from pathlib import Path

import jobbench

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    max_overlap,
)


def _where(engine: Engine, mode: str) -> list[jobbench.Job]:
    """Six overlapping async jobs over two sites and users, run by a burst worker in ``mode``."""
    engine.set_common(async_mode=mode)
    jobs = [
        enqueue(engine, jobs_path("async_where"), seconds=0.4)
        if i % 2
        else enqueue(engine, jobs_path("async_where"), site="site2", user="a@b.c", seconds=0.4)
        for i in range(6)
    ]
    engine.run_worker("default", 30)
    return jobs


def test_loop_mode_runs_async_jobs_as_tasks_of_one_thread_each_in_its_own_site(
    engine: Engine,
) -> None:
    jobs = _where(engine, "loop")
    records = [engine.broker().get(j.record.id) for j in jobs]
    assert all(r is not None and r.status == "finished" for r in records)
    results = [j.refresh().result for j in jobs]
    assert len({ident for ident, _, _ in results}) == 1, "one thread ran them all"
    assert [(site, user) for _, site, user in results] == [
        ("site2", "a@b.c") if i % 2 == 0 else ("site1", "Administrator") for i in range(6)
    ]
    assert max_overlap([r for r in records if r is not None]) == 6

    threaded = _where(engine, "thread")
    assert len({j.refresh().result[0] for j in threaded}) > 1, "thread mode: a thread each"


def test_an_in_place_retry_pause_does_not_hold_up_the_loop(engine: Engine) -> None:
    engine.set_common(async_mode="loop")
    retried = enqueue(engine, jobs_path("async_retry_in_place_once"), counter=engine.file("n"))
    others = [enqueue(engine, jobs_path("async_where"), seconds=0.2) for _ in range(3)]
    engine.run_worker("default", 30)
    first = engine.record(retried.id)
    assert first is not None and first.status == "finished"
    assert first.ended_at is not None and first.started_at is not None
    assert first.ended_at - first.started_at >= 1.0, "it paused 1 s before its second attempt"
    for job in others:
        record = engine.record(job.id)
        assert record is not None and record.status == "finished" and record.ended_at
        assert record.ended_at < first.started_at + 1.0, "it ran during the pause"


def test_a_stop_cancels_only_its_own_task(engine: Engine) -> None:
    engine.set_common(async_mode="loop")
    unwound = engine.file("unwound")
    victim = enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=60, path=unwound)
    others = [enqueue(engine, jobs_path("async_where"), seconds=2) for _ in range(2)]
    worker = engine.start_worker("default")
    for job in [victim, *others]:
        engine.wait_status(job.id, "started")
    assert engine.cli("jobs", "stop", victim.id).returncode == 0
    assert engine.wait_status(victim.id, ("stopped", "failed"), 10).status == "stopped"
    assert Path(unwound).read_text() == "unwound"
    for job in others:
        assert engine.wait_status(job.id, ("finished", "failed"), 15).status == "finished"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_job_blocking_the_loop_meets_the_hard_stop_and_its_siblings_run_again(
    engine: Engine,
) -> None:
    engine.set_common(async_mode="loop")
    siblings = [enqueue(engine, jobs_path("async_where"), seconds=2) for _ in range(2)]
    stuck = enqueue(engine, jobs_path("async_block"), seconds=60, timeout=1)
    worker = engine.start_worker("default")
    failed = engine.wait_status(stuck.id, "failed", 20)
    assert "hard stop" in str(failed.exc_info)
    for job in siblings:
        record = engine.wait_status(job.id, "finished", 20)
        assert record.attempts == 2, "a sibling the blocked loop held up runs again, once"
        assert record.exc_info is not None and record.exc_info.startswith("interrupted:")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
