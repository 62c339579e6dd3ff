"""The worker's supervisor stays lean: the ``jobbench worker`` process never loads SQLAlchemy
(no CLI module imports it at load, and the supervisor imports neither the executor nor the
site context), while its executor child does (it runs the jobs). Checked on the running
processes themselves, by the shared objects mapped into each: SQLAlchemy's compiled
extensions."""

from __future__ import annotations

from pathlib import Path

from .jobs_helpers import (
    Engine,
    child_pids,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
    wait_until,
)


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_supervisor_loads_no_orm_and_its_executor_does(engine: Engine) -> None:
    worker = engine.start_worker("default")
    wait_until(lambda: len(engine.broker().workers()) == 1, 20, "the worker to register")
    job = enqueue(engine, jobs_path("add"), a=1, b=2)
    wait_until(lambda: engine.record(job.id).status == "finished", 20, "a job to run")
    assert engine.broker().workers()[0].pid == worker.pid
    executors = child_pids(worker.pid)
    assert len(executors) == 1, executors
    assert "sqlalchemy" in _maps(executors[0])  # the executor ran a job: it has the ORM
    assert "sqlalchemy" not in _maps(worker.pid), "the supervisor loaded SQLAlchemy"
