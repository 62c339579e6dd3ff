"""job.wait() and get_result() with real workers on both brokers: the result, the failure as
JobFailed (type, message, remote traceback), JobWaitTimeout, retries and stops; the waiter
wakes right after the job ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import jobbench

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    jobs_path,
)


def test_wait_returns_the_result_soon_after_the_job_ends(engine: Engine) -> None:
    engine.start_worker("default")
    lags = []
    with engine.ctx():
        for i in range(5):
            job = jobbench.enqueue(jobs_path("add"), a=i, b=10)
            assert job.wait(timeout=20) == i + 10
            returned = time.time()
            assert job.status == "finished" and job.ended_at is not None
            lags.append(returned - job.ended_at.timestamp())
        assert jobbench.get_result(job.id, timeout=5) == 14  # an ended job: at once
    assert sorted(lags)[2] < 0.05, lags  # the median; a few ms (benchmarks/bulk.py measures)


def test_a_failure_comes_back_as_job_failed(engine: Engine) -> None:
    with engine.ctx():
        job = jobbench.enqueue(jobs_path("write_task_then_fail"), subject="s", job_id="f")
    engine.start_worker("default")
    with engine.ctx(), pytest.raises(jobbench.JobFailed) as caught:
        jobbench.get_result("f", timeout=20)
    failure = caught.value
    assert isinstance(failure, jobbench.JobError)
    assert str(failure) == "job 'f' failed: ValueError: boom after writing s"
    assert (failure.job_id, failure.status) == ("f", "failed")
    assert (failure.exc_type, failure.exc_message) == ("ValueError", "boom after writing s")
    assert failure.remote_traceback is not None
    assert failure.remote_traceback.startswith("Traceback (most recent call last):")
    assert "write_task_then_fail" in failure.remote_traceback
    assert job.refresh().status == "failed"


def test_the_time_running_out_raises_a_timeout_error(engine: Engine) -> None:
    with engine.ctx():
        job = jobbench.enqueue(jobs_path("noop"), job_id="nobody-runs-it")
        began = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            job.wait(timeout=0.3)
        assert 0.3 <= time.monotonic() - began < 2
        assert isinstance(caught.value, jobbench.JobWaitTimeout)
        assert "still queued" in str(caught.value)
        with pytest.raises(jobbench.NoSuchJobError):
            jobbench.get_result("no-such-job", timeout=1)


def test_wait_follows_a_job_through_its_retries(engine: Engine) -> None:
    counter = engine.file("counter")
    with engine.ctx():
        job = jobbench.enqueue(jobs_path("fail_first_time"), counter=counter, retry=1)
    engine.start_worker("default")
    with engine.ctx():
        assert job.wait(timeout=30) == 2  # the first attempt failed, the retry returned 2
    assert Path(counter).read_text() == "2"


def test_a_stopped_or_canceled_job_raises_job_failed(engine: Engine) -> None:
    go = engine.file("never")
    with engine.ctx():
        running = jobbench.enqueue(jobs_path("wait_for_file"), path=go, job_id="running")
        later = jobbench.enqueue_in(3600, jobs_path("noop"), job_id="later")
    engine.start_worker("default")
    engine.wait_status("running", "started")
    with engine.ctx():
        jobbench.stop_job("running")
        jobbench.stop_job("later")
        with pytest.raises(jobbench.JobFailed, match="'running' was stopped") as stopped:
            running.wait(timeout=20)
        assert stopped.value.status == "stopped" and stopped.value.exc_type is None
        with pytest.raises(jobbench.JobFailed, match="'later' was canceled"):
            later.wait(timeout=5)


def test_waiting_on_a_delayed_job_returns_once_it_ran(engine: Engine) -> None:
    engine.start_worker("default")
    with engine.ctx():
        job = jobbench.enqueue_in(0.5, jobs_path("add"), a=20, b=22)
        began = time.monotonic()
        assert job.wait(timeout=20) == 42
        assert time.monotonic() - began >= 0.4
