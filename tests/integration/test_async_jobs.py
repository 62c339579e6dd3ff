"""``async def`` jobs are awaited, with everything a sync job gets (site context, user, commit
and rollback, tracking, retries, callbacks), on both brokers with real workers; their soft
timeout and a stop on request cancel the task (its ``finally`` runs); ``now=True`` runs them to
completion. (They used to be marked finished with a coroutine's repr as the result.) The tests
with a worker run in both async modes: a thread and loop per job, and one shared loop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    job_fn,
    jobs_path,
)


@pytest.fixture(params=["thread", "loop"])
def mode(request: pytest.FixtureRequest, engine: Engine) -> str:
    """The worker's async_mode (worker/slots.py, worker/aloop.py)."""
    engine.set_common(async_mode=request.param)
    return str(request.param)


def _subjects(engine: Engine) -> list[str]:
    return committed(engine, lambda: jobbench.get_all("Task", pluck="subject"))


@pytest.mark.usefixtures("mode")
def test_async_job_runs_in_its_site_as_its_user_and_commits(engine: Engine) -> None:
    job = enqueue(engine, jobs_path("async_write"), subject="from async", track_job=True)
    other = enqueue(engine, jobs_path("async_write"), site="site2", user="a@b.c", subject="s2")
    engine.run_worker()
    assert job.refresh().status == "finished"
    site, user, name = job.result
    assert (site, user) == ("site1", "Administrator") and name.startswith("TASK-")
    assert other.refresh().result[:2] == ["site2", "a@b.c"]
    assert _subjects(engine) == ["from async"]
    task = committed(
        engine, lambda: jobbench.db.get_value("Background Task", {"job_id": job.id}, "status")
    )
    assert task == "Completed"


@pytest.mark.usefixtures("mode")
def test_async_failure_rolls_back_and_is_retried(engine: Engine) -> None:
    failed = enqueue(engine, jobs_path("async_fail"), subject="rolled back")
    counter = engine.file("counter")
    retried = enqueue(engine, jobs_path("async_fail_first_time"), counter=counter, retry=1)
    engine.run_worker()
    assert failed.refresh().status == "failed"
    assert "ValueError: async boom after rolled back" in str(failed.exc_info)
    assert "rolled back" not in _subjects(engine)
    # the retry waits for its backoff (1 s), then a second burst worker runs it
    engine.wait_status(retried.id, "scheduled")
    import time

    time.sleep(1.2)
    engine.run_worker()
    assert retried.refresh().status == "finished" and retried.result == 2


@pytest.mark.usefixtures("mode")
def test_async_soft_timeout_cancels_the_task(engine: Engine) -> None:
    unwound = engine.file("unwound")
    job = enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=30, path=unwound, timeout=1)
    after = enqueue(engine, jobs_path("async_write"), subject="after the timeout")
    engine.run_worker(timeout=20)
    assert job.refresh().status == "failed"
    assert "JobTimeoutException" in str(job.exc_info) and "soft stop" in str(job.exc_info)
    assert Path(unwound).read_text() == "unwound"  # the coroutine's finally ran
    assert after.refresh().status == "finished"  # the event loop is fine afterwards


@pytest.mark.usefixtures("mode")
def test_async_job_stopped_on_request(engine: Engine) -> None:
    unwound = engine.file("unwound")
    job = enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=60, path=unwound)
    worker = engine.start_worker("default")
    engine.wait_status(job.id, "started")
    assert engine.cli("jobs", "stop", job.id).returncode == 0
    stopped = engine.wait_status(job.id, ("stopped", "failed", "finished"), 10)
    assert stopped.status == "stopped" and "stopped on request" in str(stopped.exc_info)
    assert Path(unwound).read_text() == "unwound"
    after = enqueue(engine, jobs_path("async_write"), subject="after the stop")
    engine.wait_status(after.id, "finished")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


@pytest.mark.parametrize("how", ["now", "is_async"])
def test_now_runs_an_async_job_to_completion(engine: Engine, how: str) -> None:
    options = {"now": True} if how == "now" else {"is_async": False}
    with engine.ctx() as local:
        result = jobbench.enqueue(job_fn("async_write"), subject=f"inline {how}", **options)
        local.db.commit()
    assert result[:2] == ["site1", "Administrator"]
    assert _subjects(engine) == [f"inline {how}"]


def test_now_from_inside_a_running_event_loop(engine: Engine) -> None:
    async def caller() -> list[str]:
        with engine.ctx() as local:
            result = jobbench.enqueue(job_fn("async_write"), subject="from a loop", now=True)
            local.db.commit()
            return list(result)

    assert asyncio.run(caller())[:2] == ["site1", "Administrator"]
    assert _subjects(engine) == ["from a loop"]
