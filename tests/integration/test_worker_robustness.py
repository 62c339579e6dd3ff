"""Workers under stress: soft and hard timeouts, jobs that exit or fork, a killed executor, a
killed worker, warm and cold shutdown, and stopping jobs from the CLI (SPEC section 4)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import jobbench
from jobbench.worker.worker import HARD_GRACE

from .jobs_helpers import (
    Engine,
    child_pids,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    process_alive,
    wait_until,
)


def _task(engine: Engine, job_id: str) -> dict[str, Any]:
    rows = committed(
        engine,
        lambda: jobbench.get_all("Background Task", filters={"job_id": job_id}, fields=["*"]),
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


def _elapsed(engine: Engine, job_id: str) -> float:
    record = engine.record(job_id)
    assert record is not None and record.started_at and record.ended_at
    return record.ended_at - record.started_at


def test_timeouts_soft_and_hard_then_the_next_job_runs(engine: Engine) -> None:
    """Three jobs that ignore the soft timeout (they catch everything, block in C, or block
    with a forked child), run by three workers at once; each worker then takes another job."""
    pid_file = engine.file("child.pid")
    hard = {
        "swallow": enqueue(engine, jobs_path("swallow_everything"), timeout=1, track_job=True),
        "in_c": enqueue(engine, jobs_path("block_in_c"), timeout=1),
        "fork": enqueue(engine, jobs_path("fork_child"), pid_file=pid_file, timeout=1),
    }
    soft = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), timeout=1)
    after = [enqueue(engine, jobs_path("add"), a=i, b=1) for i in range(2)]
    started = time.monotonic()

    workers = [engine.start_worker("default", burst=True) for _ in range(3)]
    assert [w.wait(30) for w in workers] == [0, 0, 0]

    assert time.monotonic() - started < 1 + 5 + 1 + 5
    for name, job in hard.items():
        job.refresh()
        assert job.status == "failed", name
        assert "exceeded its timeout of 1 s" in job.exc_info and "hard stop" in job.exc_info
        assert 1 + HARD_GRACE - 0.5 <= _elapsed(engine, job.id) <= 1 + 5, name
    assert _task(engine, hard["swallow"].id)["status"] == "Failed"
    child = int(Path(pid_file).read_text())
    assert not process_alive(child), f"the job's child {child} outlived the hard stop"

    soft.refresh()
    assert soft.status == "failed"
    assert "JobTimeoutException" in soft.exc_info and "soft stop" in soft.exc_info
    assert _elapsed(engine, soft.id) < 1 + 2
    assert [job.refresh().result for job in after] == [1, 2]
    hard_workers = {job.worker for job in hard.values()}
    assert len(hard_workers) == 3
    assert {soft.worker, *(job.worker for job in after)} <= hard_workers
    assert sum("hard stop" in w.output() for w in workers) == 3


def test_job_that_exits_the_process_fails_and_the_worker_goes_on(engine: Engine) -> None:
    gone = enqueue(engine, jobs_path("exit_hard"), code=3, track_job=True)
    after = enqueue(engine, jobs_path("add"), a=2, b=2)
    engine.run_worker("default")
    gone.refresh()
    assert gone.status == "failed"
    assert "worker died" in gone.exc_info and "exit code 3" in gone.exc_info
    assert _task(engine, gone.id)["status"] == "Failed"
    assert after.refresh().result == 4


def test_sigkill_of_the_executor_fails_the_job_and_the_worker_goes_on(engine: Engine) -> None:
    blocked = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), timeout=60)
    after = enqueue(engine, jobs_path("add"), a=3, b=3)
    worker = engine.start_worker("default", burst=True)
    engine.wait_status(blocked.id, "started")
    executors = child_pids(worker.pid)
    assert len(executors) == 1
    os.kill(executors[0], signal.SIGKILL)

    assert worker.wait() == 0
    blocked.refresh()
    assert blocked.status == "failed"
    assert "worker died" in blocked.exc_info and "SIGKILL" in blocked.exc_info
    assert after.refresh().result == 6


def test_dead_worker_is_detected_by_heartbeat_and_its_job_fails(engine: Engine) -> None:
    job = enqueue(
        engine, jobs_path("wait_for_file"), path=engine.file("never"), timeout=60, track_job=True
    )
    worker = engine.start_short_heartbeat_worker("default")
    record = engine.wait_status(job.id, "started")
    executor = child_pids(worker.pid)
    worker.signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL
    wait_until(lambda: not any(map(process_alive, executor)), 5, "the executor to die with it")
    assert engine.record(job.id).status == "started"  # nobody settled it yet
    broker = engine.broker()
    wait_until(
        lambda: record.worker not in [w.name for w in broker.workers()],
        5,
        "the dead worker's heartbeat to expire",
    )

    engine.run_worker("default")  # its housekeeping reaps at once

    job.refresh()
    assert job.status == "failed"
    assert "worker died" in job.exc_info
    task = _task(engine, job.id)
    assert task["status"] == "Failed" and "worker died" in task["exception"]


def _first_children(pid: int, timeout: float) -> list[int]:
    """The process' children as soon as it has one (a tight poll of /proc: pgrep is slow)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [int(p) for p in children.read_text().split()]
        if found:
            return found
    raise AssertionError(f"process {pid} forked nothing within {timeout} s")


def test_a_worker_killed_while_its_executor_starts_leaves_no_executor_behind(
    engine: Engine,
) -> None:
    """PDEATHSIG covers only a parent alive when the child asks for it: a worker SIGKILLed
    just after forking its executor (still importing) once left that executor adopted by
    init, claiming and running jobs with nobody's heartbeat over them."""
    for _ in range(3):
        worker = engine.start_worker("default")
        forked = _first_children(worker.pid, 30)
        worker.signal(signal.SIGKILL)  # at once: the child is still starting up
        assert worker.wait() == -signal.SIGKILL
        wait_until(lambda f=forked: not any(map(process_alive, f)), 5, "the executor to exit")
    job = enqueue(engine, jobs_path("add"), a=1, b=2)
    time.sleep(1.0)
    assert engine.record(job.id).status == "queued"  # no orphaned executor took it


def test_dead_workers_job_with_retries_left_runs_again(engine: Engine) -> None:
    go = engine.file("go")
    job = enqueue(engine, jobs_path("wait_for_file"), path=go, retry=1, track_job=True)
    worker = engine.start_short_heartbeat_worker("default")
    record = engine.wait_status(job.id, "started")
    worker.signal(signal.SIGKILL)
    worker.wait()
    broker = engine.broker()
    wait_until(
        lambda: record.worker not in [w.name for w in broker.workers()],
        5,
        "the dead worker's heartbeat to expire",
    )
    Path(go).write_text("go")

    engine.run_worker("default")  # reaps, requeues the retry at once, and runs it

    job.refresh()
    assert (job.status, job.result, job.attempts) == ("finished", "went", 2)
    assert _task(engine, job.id)["status"] == "Completed"


def test_burst_worker_runs_retries_that_are_due(engine: Engine) -> None:
    counter = engine.file("counter")
    job = enqueue(engine, jobs_path("fail_first_time"), counter=counter, retry=1)
    engine.run_worker("default")
    record = engine.record(job.id)
    assert record.status == "scheduled"
    wait_until(lambda: time.time() > record.retry_at, 5, "the retry to be due")

    engine.run_worker("default")

    job.refresh()
    assert (job.status, job.result, job.attempts) == ("finished", 2, 2)


def test_warm_shutdown_finishes_the_current_job_then_exits(engine: Engine) -> None:
    go = engine.file("go")
    current = enqueue(engine, jobs_path("wait_for_file"), path=go)
    waiting = enqueue(engine, jobs_path("noop"))
    worker = engine.start_worker("default")
    engine.wait_status(current.id, "started")

    worker.signal(signal.SIGTERM)
    worker.wait_log("Warm shutdown")
    assert worker.proc.poll() is None
    assert current.refresh().status == "started"
    Path(go).write_text("go")

    assert worker.wait() == 0
    assert current.refresh().status == "finished" and current.result == "went"
    assert waiting.refresh().status == "queued"


def test_cold_shutdown_stops_the_current_job(engine: Engine) -> None:
    current = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), track_job=True)
    waiting = enqueue(engine, jobs_path("noop"))
    worker = engine.start_worker("default")
    engine.wait_status(current.id, "started")

    worker.signal(signal.SIGTERM)
    worker.wait_log("Warm shutdown")
    worker.signal(signal.SIGTERM)

    assert worker.wait(10) == 0
    current.refresh()
    assert current.status == "stopped", f"{current.exc_info}\n{worker.output()}"
    assert "stopped" in current.exc_info
    assert _task(engine, current.id)["status"] == "Cancelled"
    assert waiting.refresh().status == "queued"


def test_cli_stop_stops_running_and_cancels_queued_jobs(engine: Engine) -> None:
    running = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), track_job=True)
    queued = enqueue(engine, jobs_path("touch"), path=engine.file("ran"), track_job=True)
    worker = engine.start_worker("default")
    engine.wait_status(running.id, "started")

    out = engine.cli("jobs", "stop", queued.id)
    assert out.returncode == 0 and "canceled" in out.stdout
    assert engine.record(queued.id).status == "canceled"
    out = engine.cli("jobs", "stop", running.id)
    assert out.returncode == 0 and "stop requested" in out.stdout

    stopped = engine.wait_status(running.id, ("stopped", "failed", "finished"), 10)
    assert stopped.status == "stopped"
    assert "stopped on request" in stopped.exc_info
    assert _task(engine, running.id)["status"] == "Cancelled"
    assert _task(engine, queued.id)["status"] == "Cancelled"
    after = enqueue(engine, jobs_path("add"), a=4, b=4)
    engine.wait_status(after.id, "finished")  # the worker carries on
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert not Path(engine.file("ran")).exists()
    assert engine.cli("jobs", "stop", "nope").returncode != 0
