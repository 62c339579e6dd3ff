"""Liveness you can set (worker_heartbeat_interval / worker_heartbeat_ttl) and a scheduler that
settles the jobs of dead workers, on both brokers with real processes: a job whose only worker
was SIGKILLed is settled while a scheduler runs; a scheduled run on a pickle bench whose
executor was killed ends its Scheduled Job Log Failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import jobbench

from .jobs_helpers import (
    Engine,
    child_pids,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    wait_until,
)


def test_scheduler_settles_the_job_of_a_dead_only_worker(engine: Engine) -> None:
    engine.set_common(worker_heartbeat_interval=0.5, worker_heartbeat_ttl=2)
    job = enqueue(engine, jobs_path("wait_for_file"), path=engine.file("never"), timeout=120)
    worker = engine.start_worker("default")
    engine.wait_status(job.id, "started")
    executor = child_pids(worker.pid)
    os.kill(worker.pid, signal.SIGKILL)  # the executor dies with it (PDEATHSIG)
    worker.proc.wait(10)
    killed_at = time.monotonic()
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in executor), 10, "executor")
    time.sleep(2.5)  # past the TTL: nothing else settles it (no other worker runs)
    assert engine.record(job.id).status == "started"

    cmd = [sys.executable, "-m", "jobbench", "--bench", engine.path, "schedule"]
    sched = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=engine.env()
    )
    try:
        record = engine.wait_status(job.id, "failed", 10)
    finally:
        sched.send_signal(signal.SIGTERM)
        out = sched.communicate(timeout=10)[0].decode()
    assert "worker died" in str(record.exc_info)
    assert "settled 1 job(s) of dead workers" in out
    assert time.monotonic() - killed_at < 2 * 1.5 + 10


def test_liveness_defaults_detect_a_dead_worker_within_15_s(engine: Engine) -> None:
    from jobbench.worker.worker import liveness, reap_interval

    interval, ttl = liveness({})
    assert interval < ttl and ttl + reap_interval(ttl) <= 15
    assert liveness({"worker_heartbeat_interval": 2, "worker_heartbeat_ttl": 3}) == (2.0, 4.0)
    # a worker beats with the configured interval: its heartbeat is in the broker at once
    engine.set_common(worker_heartbeat_interval=0.5, worker_heartbeat_ttl=2)
    worker = engine.start_worker("default")
    wait_until(lambda: len(engine.broker().workers()) == 1, 10, "a registered worker")
    beat = engine.broker().workers()[0].heartbeat
    wait_until(lambda: engine.broker().workers()[0].heartbeat > beat, 3, "a second heartbeat")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0


def test_killed_scheduled_run_on_a_pickle_bench_ends_its_log_failed(engine: Engine) -> None:
    engine.set_common(job_serializer="pickle")
    with engine.ctx() as local:
        doc = jobbench.new_doc(
            "Scheduled Job Type",
            method=jobs_path("wait_for_file"),
            frequency="Daily",
            create_log=1,
        )
        doc.insert()
        local.db.commit()
        name = doc.name
    # A run that blocks (in C) until its executor is killed.
    with engine.ctx() as local:
        local.db.set_value("Scheduled Job Type", name, {"method": jobs_path("block_in_c")})
        local.db.commit()
        assert jobbench.get_doc("Scheduled Job Type", name).enqueue(force=True)
        local.db.commit()
        job_id = jobbench.get_doc("Scheduled Job Type", name).rq_job_id
    worker = engine.start_worker("long,default,short")
    engine.wait_status(job_id, "started")

    def log_status() -> list[str]:
        return jobbench.get_all(
            "Scheduled Job Log", filters={"scheduled_job_type": name}, pluck="status"
        )

    wait_until(lambda: committed(engine, log_status) == ["Start"], 10, "the run's log")
    (executor,) = child_pids(worker.pid)
    os.kill(executor, signal.SIGKILL)
    record = engine.wait_status(job_id, "failed", 10)
    assert "worker died" in str(record.exc_info)
    # the parent ends the log right after it recorded the job failed
    wait_until(lambda: committed(engine, log_status) == ["Failed"], 10, "the log to end Failed")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
