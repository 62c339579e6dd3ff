"""Several jobs at once per worker (``--concurrency N`` for sync jobs in threads, up to
``async_concurrency`` ``async def`` jobs), on both brokers with real worker processes:
each job its own site context, soft timeouts per job, a hard stop that kills the executor puts
the siblings back at the head of their queues with the reason, a stop of one job leaves the
others running, warm and cold shutdown, and an executor killed with jobs in flight."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import jobbench
from jobbench.brokers.base import HELD_REQUEUED, Retention
from jobbench.jobs.record import JobRecord

from .jobs_helpers import (
    Engine,
    WorkerProc,
    child_pids,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    max_overlap,
    wait_until,
)


def _records(engine: Engine, jobs: list[jobbench.Job]) -> list[JobRecord]:
    records = [engine.broker().get(job.record.id) for job in jobs]
    assert all(r is not None for r in records)
    return [r for r in records if r is not None]


def _waiting_jobs(engine: Engine, go: str, n: int, **options: object) -> list[jobbench.Job]:
    return [
        enqueue(engine, jobs_path("wait_for_file"), path=go, timeout=60, **options)
        for _ in range(n)
    ]


def _all_started(engine: Engine, jobs: list[jobbench.Job], timeout: float = 15) -> None:
    wait_until(
        lambda: all(r.status == "started" for r in _records(engine, jobs)),
        timeout,
        f"{len(jobs)} jobs running at once",
    )


def test_n_sync_jobs_run_at_once_each_in_its_own_site(engine: Engine) -> None:
    go = engine.file("go")
    waiting = _waiting_jobs(engine, go, 3)
    writers = [
        enqueue(engine, jobs_path("write_as_user"), site=site, user=user, subject=site)
        for site, user in (("site1", "a@x.y"), ("site2", "b@x.y"))
    ]
    worker = engine.start_worker("default", burst=True, extra=["--concurrency", "4"])
    _all_started(engine, waiting)
    wait_until(lambda: all(w.refresh().status == "finished" for w in writers), 15, "writers")
    assert [w.result[:2] for w in writers] == [["site1", "a@x.y"], ["site2", "b@x.y"]]
    Path(go).write_text("go")
    assert worker.wait(30) == 0
    assert all(j.refresh().status == "finished" for j in waiting)
    assert max_overlap(_records(engine, waiting + writers)) >= 4
    for site in ("site1", "site2"):
        assert committed(engine, lambda: jobbench.get_all("Task", pluck="subject"), site) == [site]


def test_soft_timeout_in_a_thread_leaves_the_siblings_running(engine: Engine) -> None:
    go = engine.file("go")
    slow = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), timeout=1)
    siblings = _waiting_jobs(engine, go, 2)
    worker = engine.start_worker("default", burst=True, extra=["--concurrency", "3"])
    engine.wait_status(slow.id, "failed", 10)
    assert "JobTimeoutException" in str(slow.refresh().exc_info)
    assert "timeout of 1 s (soft stop)" in str(slow.exc_info)
    assert all(r.status == "started" for r in _records(engine, siblings))
    Path(go).write_text("go")
    assert worker.wait(30) == 0
    assert [j.refresh().status for j in siblings] == ["finished", "finished"]


def test_hard_stop_requeues_the_siblings_at_the_front_with_the_reason(engine: Engine) -> None:
    go = engine.file("go")
    stuck = enqueue(engine, jobs_path("block_in_c"), seconds=60, timeout=1)
    siblings = _waiting_jobs(engine, go, 2, track_job=True)
    later = enqueue(engine, jobs_path("add"), a=1, b=1)  # queued behind them all
    worker = engine.start_worker("default", extra=["--concurrency", "3"])
    engine.wait_status(stuck.id, "failed", 15)
    assert "hard stop" in str(stuck.refresh().exc_info)
    Path(go).write_text("go")
    for job in siblings:
        record = engine.wait_status(job.id, "finished", 20)
        assert record.attempts == 2, "a cut-off sibling runs again, once"
        assert record.exc_info is not None and record.exc_info.startswith("interrupted:")
        assert "block_in_c" in record.exc_info
    finished = engine.wait_status(later.id, "finished", 10)
    # the requeued siblings went back ahead of the job queued behind them
    assert all(finished.started_at >= engine.record(j.id).started_at for j in siblings)
    tasks = committed(
        engine,
        lambda: [
            jobbench.db.get_value("Background Task", {"job_id": j.id}, "status") for j in siblings
        ],
    )
    assert tasks == ["Completed", "Completed"]
    assert "requeued" in worker.output()
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_stop_of_one_job_leaves_the_others_running(engine: Engine) -> None:
    go = engine.file("go")
    victim, *others = _waiting_jobs(engine, go, 3)
    worker = engine.start_worker("default", extra=["--concurrency", "3"])
    _all_started(engine, [victim, *others])
    assert engine.cli("jobs", "stop", victim.id).returncode == 0
    stopped = engine.wait_status(victim.id, ("stopped", "failed", "finished"), 10)
    assert stopped.status == "stopped" and "stopped on request" in str(stopped.exc_info)
    assert all(r.status == "started" for r in _records(engine, others))
    Path(go).write_text("go")
    for job in others:
        engine.wait_status(job.id, "finished", 10)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_warm_then_cold_shutdown_with_several_jobs(engine: Engine) -> None:
    go = engine.file("go")
    first = _waiting_jobs(engine, go, 2)
    worker = engine.start_worker("default", extra=["--concurrency", "2"])
    _all_started(engine, first)
    queued = enqueue(engine, jobs_path("add"), a=2, b=2)
    worker.signal(signal.SIGTERM)  # warm: the running jobs finish, nothing new is claimed
    Path(go).write_text("go")
    assert worker.wait(20) == 0
    assert [j.refresh().status for j in first] == ["finished", "finished"]
    assert queued.refresh().status == "queued"

    Path(go).unlink()
    second = _waiting_jobs(engine, go, 2)
    worker = engine.start_worker("default", extra=["--concurrency", "3"])
    _all_started(engine, second)
    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.signal(signal.SIGTERM)  # cold: every running job ends stopped
    assert worker.wait(20) == 0
    for job in second:
        assert job.refresh().status == "stopped" and "stopped" in str(job.exc_info)


def test_executor_killed_with_jobs_in_flight_fails_each_with_the_reason(engine: Engine) -> None:
    go = engine.file("go")
    jobs = _waiting_jobs(engine, go, 3)
    worker = engine.start_worker("default", extra=["--concurrency", "3"])
    _all_started(engine, jobs)
    executors = child_pids(worker.pid)
    assert len(executors) == 1
    os.kill(executors[0], signal.SIGKILL)
    for job in jobs:
        record = engine.wait_status(job.id, "failed", 10)
        assert "worker died" in str(record.exc_info) and "SIGKILL" in str(record.exc_info)
        assert record.attempts == 1  # ran once, recorded as such: none left started
    after = enqueue(engine, jobs_path("add"), a=3, b=3)
    assert engine.wait_status(after.id, "finished", 15)  # a new executor took over
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


@pytest.mark.parametrize("mode", ["thread", "loop"])
def test_async_jobs_run_up_to_async_concurrency_at_once(engine: Engine, mode: str) -> None:
    engine.set_common(async_mode=mode)
    marks = [engine.file(f"m{i}") for i in range(12)]
    jobs = [enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=0.6, path=m) for m in marks]
    started = time.monotonic()
    engine.run_worker("default", 30)
    elapsed = time.monotonic() - started
    records = _records(engine, jobs)
    assert all(r.status == "finished" for r in records)
    assert max_overlap(records) == 10  # the default async_concurrency
    assert elapsed < 0.6 * 12 / 2, "they did not overlap"

    limited = [
        enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=0.3, path=m) for m in marks[:6]
    ]
    engine.run_worker("default", 30, "--async-concurrency", "2")
    assert max_overlap(_records(engine, limited)) == 2


def test_per_queue_concurrency_from_the_workers_config(engine: Engine) -> None:
    engine.set_common(workers={"io": {"concurrency": 3}})
    go = engine.file("go")
    jobs = [
        enqueue(engine, jobs_path("wait_for_file"), queue="io", path=go, timeout=60)
        for _ in range(3)
    ]
    worker = engine.start_worker("io", burst=True)
    _all_started(engine, jobs)
    Path(go).write_text("go")
    assert worker.wait(20) == 0


def test_a_deep_queue_is_claimed_in_batches_in_priority_order(engine: Engine) -> None:
    """With room for four, the executor claims several jobs per round trip (those share one
    claim instant), yet every short job starts before any long one, an at_front job before
    its queue's others, and the counters add up."""
    long_jobs = [enqueue(engine, jobs_path("noop"), queue="long") for _ in range(12)]
    first = enqueue(engine, jobs_path("noop"), queue="long", at_front=True)
    short_jobs = [enqueue(engine, jobs_path("noop"), queue="short") for _ in range(12)]
    worker = engine.start_worker("short,long", burst=True, extra=["--concurrency", "4"])
    assert worker.wait(60) == 0
    shorts, longs = _records(engine, short_jobs), _records(engine, long_jobs)
    (front,) = _records(engine, [first])
    everything = shorts + longs + [front]
    assert {r.status for r in everything} == {"finished"}
    starts = [r.started_at or 0.0 for r in everything]
    assert len(set(starts)) < len(starts) - 3, "no batch: every job had a claim of its own"
    assert max(r.started_at or 0.0 for r in shorts) <= (front.started_at or 0.0)
    assert (front.started_at or 0.0) <= min(r.started_at or 0.0 for r in longs)
    counters = engine.broker().counters()
    for queue, n in (("short", 12), ("long", 13)):
        assert counters[("site1", queue, "started")] == n
        assert counters[("site1", queue, "finished")] == n


def test_a_run_of_async_jobs_is_claimed_in_batches_and_a_sync_job_behind_keeps_its_deadline(
    engine: Engine,
) -> None:
    """Without --concurrency, after 32 async jobs in a row the executor claims as many jobs as
    it has free async slots. A sync job of such a batch that waits behind another (the main
    thread runs them one at a time) gets its hard deadline from its real start: the second
    here ends 7.5 s after its claim, past the 4 + 3 s its claim instant would allow."""
    waiting = [enqueue(engine, jobs_path("async_where"), seconds=3) for _ in range(40)]
    first = enqueue(engine, jobs_path("sleep_then_return"), seconds=4.5, timeout=6)
    second = enqueue(engine, jobs_path("sleep_then_return"), seconds=3, timeout=4)
    worker = engine.start_worker("default", burst=True, extra=["--async-concurrency", "50"])
    assert worker.wait(60) == 0
    one, two = _records(engine, [first, second])
    assert one.status == "finished", one.exc_info
    assert two.status == "finished", two.exc_info
    starts = [r.started_at for r in _records(engine, waiting)]
    assert starts[-1] == one.started_at and len(set(starts)) <= 33, "not claimed in a batch"
    # the second's started_at is its real start (Broker.begin), after the first ran
    assert (two.started_at or 0.0) >= (one.started_at or 0.0) + 4.5


def _batch_behind_a_sync_job(
    engine: Engine, behind_method: str = "wait_then_touch", **behind_kwargs: object
) -> tuple[jobbench.Job, jobbench.Job, WorkerProc]:
    """40 async jobs in a row, then a sync job that waits for the file "go", then one that
    (by default) waits for "go2" and leaves "done": the last two come in one batch, the
    second waiting behind the first (asserted)."""
    go = engine.file("go")
    for _ in range(40):
        enqueue(engine, jobs_path("async_where"), seconds=1)
    first = enqueue(engine, jobs_path("wait_for_file"), path=go, timeout=60)
    kwargs = behind_kwargs or {"go": engine.file("go2"), "done": engine.file("done")}
    behind = enqueue(engine, jobs_path(behind_method), **kwargs)
    worker = engine.start_worker("default", extra=["--async-concurrency", "50"])
    engine.wait_status(first.id, "started")
    one, two = _records(engine, [first, behind])
    assert two.status == "started" and one.started_at == two.started_at, "not one batch"
    assert (one.held, two.held) == (0, 1), "the broker holds the waiting job"
    return first, behind, worker


def test_a_job_waiting_in_a_batch_goes_back_to_its_queue_when_the_executor_dies(
    engine: Engine,
) -> None:
    first, behind, worker = _batch_behind_a_sync_job(engine)
    done = engine.file("done")
    (executor,) = child_pids(worker.pid)
    os.kill(executor, signal.SIGKILL)
    failed = engine.wait_status(first.id, "failed", 10)
    assert "worker died" in str(failed.exc_info)
    requeued = engine.wait_status(behind.id, ("queued", "started"), 10)
    assert requeued.exc_info is not None and requeued.exc_info.startswith("interrupted:")
    assert "before it started it" in requeued.exc_info
    Path(engine.file("go2")).write_text("go")
    record = engine.wait_status(behind.id, "finished", 15)
    assert Path(done).exists() and record.attempts == 2  # two claims, one run
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_job_waiting_in_a_batch_goes_back_to_its_queue_when_the_whole_worker_dies(
    engine: Engine,
) -> None:
    """Supervisor SIGKILLed (its executor dies with it): another worker's reaper fails the
    job that ran, and puts the held one, which never ran, back at the head of its queue."""
    first, behind, worker = _batch_behind_a_sync_job(engine)
    (executor,) = child_pids(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    broker = engine.broker()
    wait_until(lambda: _gone(executor), 10, "the executor to die with its parent")
    reaped = broker.reap(Retention(), now=time.time() + 3600)  # as if the heartbeat lapsed
    assert {first.record.id, behind.record.id} <= set(reaped)  # (async jobs may run too)
    assert "worker died" in str(_records(engine, [first])[0].exc_info)
    requeued = engine.record(behind.id)
    assert requeued is not None and requeued.status == "queued", requeued
    assert str(requeued.exc_info) == HELD_REQUEUED and requeued.held == 0
    Path(engine.file("go2")).write_text("go")
    again = engine.start_worker("default", burst=True)
    assert again.wait(30) == 0
    record = engine.wait_status(behind.id, "finished", 15)
    assert Path(engine.file("done")).exists() and record.attempts == 2  # two claims, one run


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_job_that_waited_in_a_batch_begins_when_it_starts(engine: Engine) -> None:
    """Its start reaches the broker: no longer held, ``started_at`` its real start."""
    first, behind, worker = _batch_behind_a_sync_job(engine)
    claimed_at = _records(engine, [behind])[0].started_at
    time.sleep(0.3)
    Path(engine.file("go")).write_text("go")
    wait_until(lambda: (r := engine.record(behind.id)) and r.held == 0, 10, "its begin")
    began = _records(engine, [behind])[0]
    assert began.status == "started" and began.started_at >= claimed_at + 0.3  # type: ignore[operator]
    Path(engine.file("go2")).write_text("go")
    assert engine.wait_status(behind.id, "finished", 15)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_job_that_waited_in_a_batch_and_started_is_not_requeued_when_killed(
    engine: Engine,
) -> None:
    """Its start reaches the worker before it runs: killed the moment it starts, it ends
    failed ("worker died"), as any running job, and is never run a second time."""
    mark = engine.file("mark")
    first, behind, worker = _batch_behind_a_sync_job(
        engine, "touch_then_wait", mark=mark, go=engine.file("go2")
    )
    (executor,) = child_pids(worker.pid)
    Path(engine.file("go")).write_text("go")
    deadline = time.monotonic() + 15
    while not Path(mark).exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(executor, signal.SIGKILL)
    failed = engine.wait_status(behind.id, "failed", 10)
    assert "worker died" in str(failed.exc_info)
    assert first.refresh().status == "finished"
    time.sleep(0.5)  # a requeued copy would have started by now
    assert Path(mark).read_text() == "started\n", "it ran once"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_stop_of_a_job_waiting_in_a_batch_stops_it_unrun(engine: Engine) -> None:
    first, behind, worker = _batch_behind_a_sync_job(engine)
    done = engine.file("done")
    assert engine.cli("jobs", "stop", behind.id).returncode == 0
    assert engine.record(behind.id).stop_requested  # type: ignore[union-attr]
    Path(engine.file("go")).write_text("go")
    assert engine.wait_status(first.id, "finished", 15)
    stopped = engine.wait_status(behind.id, ("stopped", "finished", "failed"), 15)
    assert stopped.status == "stopped" and "before it started" in str(stopped.exc_info)
    assert not Path(done).exists(), "it never ran"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_a_cold_shutdown_puts_a_job_waiting_in_a_batch_back_in_its_queue(engine: Engine) -> None:
    first, behind, worker = _batch_behind_a_sync_job(engine)
    done = engine.file("done")
    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.signal(signal.SIGTERM)  # cold: the running job ends stopped
    assert worker.wait(20) == 0
    assert first.refresh().status == "stopped"
    record = engine.record(behind.id)
    assert record is not None and record.status == "queued", record
    assert str(record.exc_info).startswith("interrupted:") and not Path(done).exists()


def test_a_thread_jobs_success_is_recorded_at_once_while_the_main_thread_waits_to_claim(
    engine: Engine,
) -> None:
    """Successes of job threads ride on the main thread's next round trip only while it comes
    back within one; when it blocks in a waiting claim (up to a second on an idle queue) a
    job thread records its own success at once, instead of leaving it to wait for that claim."""
    worker = engine.start_worker("default", extra=["--concurrency", "4"])
    try:
        lags = []
        for n in range(5):
            go = engine.file(f"go-{n}")
            (job,) = _waiting_jobs(engine, go, 1)
            _all_started(engine, [job])
            time.sleep(0.2)  # the main thread is in its waiting claim by now
            released = time.time()
            Path(go).write_text("go")
            record = wait_until(
                lambda j=job: (r := engine.broker().get(j.record.id)) and r.ended_at and r,
                10,
                "the job's success recorded",
            )
            assert record.status == "finished"
            lags.append(record.ended_at - released)
        assert max(lags) < 0.3, f"successes waited for the claim: {lags}"
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0


def test_an_async_jobs_success_is_recorded_while_the_main_thread_runs_a_sync_job(
    engine: Engine,
) -> None:
    """With sync jobs in the main thread, a long one there must not hold back the recording
    of an async job that ended beside it."""
    go, mark = engine.file("go"), engine.file("mark")
    async_job = enqueue(engine, jobs_path("async_sleep_then_mark"), seconds=0.3, path=mark)
    sync_job = enqueue(engine, jobs_path("wait_for_file"), path=go, timeout=60)  # claimed 2nd
    worker = engine.start_worker("default", burst=True)
    try:
        wait_until(lambda: os.path.exists(mark), 15, "the async job's end")
        wait_until(lambda: async_job.refresh().status == "finished", 2, "its success recorded")
        assert sync_job.refresh().status == "started"  # still running in the main thread
    finally:
        Path(go).write_text("go")
    assert worker.wait(30) == 0
    assert sync_job.refresh().status == "finished"


def test_an_async_job_behind_a_sync_job_in_a_batch_starts_at_once(engine: Engine) -> None:
    """The async jobs of a batch start before its sync ones: one behind a sync job that runs
    long neither waits for it nor (its deadline running) gets the executor hard-killed."""
    go = engine.file("go")
    for _ in range(40):
        enqueue(engine, jobs_path("async_where"), seconds=0.5)
    first = enqueue(engine, jobs_path("wait_for_file"), path=go, timeout=60)
    behind = enqueue(engine, jobs_path("async_where"), seconds=0.1, timeout=1)
    worker = engine.start_worker("default", extra=["--async-concurrency", "50"])
    try:
        engine.wait_status(first.id, "started")
        one, two = _records(engine, [first, behind])
        assert one.started_at == two.started_at, "not one batch"
        assert engine.wait_status(behind.id, ("finished", "failed"), 10).status == "finished"
        time.sleep(1 + 3.5)  # past the async job's timeout + the hard grace
        assert first.refresh().status == "started", "the sync job was cut off"
    finally:
        Path(go).write_text("go")
    assert engine.wait_status(first.id, ("finished", "failed"), 15).status == "finished"
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
