"""before_job / after_job hooks, per-job after_job callbacks, on_success / on_failure,
queue strategies, worker-pool and the worker registry, on both brokers with real workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jobbench
from jobbench.sites import install_app

from .jobs_helpers import (
    Engine,
    child_pids,
    deadline_loop,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)

HOOK_APP = "hookapp"


def write_hook_app(engine: Engine, log: str) -> None:
    """An app whose hooks and job functions append lines to ``log``."""
    for name in [m for m in sys.modules if m == HOOK_APP or m.startswith(HOOK_APP + ".")]:
        del sys.modules[name]  # an earlier test's copy of the app (another bench)
    pkg = engine.bench.path / "apps" / HOOK_APP
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "hooks.py").write_text(
        'before_job = ["hookapp.jobs.before"]\nafter_job = ["hookapp.jobs.after"]\n'
    )
    (pkg / "jobs.py").write_text(
        textwrap.dedent(f"""
        import jobbench

        LOG = {log!r}


        def note(text):
            with open(LOG, "a") as fh:
                fh.write(text + "\\n")


        def before(method, kwargs):
            note(f"before {{method}} {{sorted(kwargs)}}")


        def after(method):
            note(f"after {{method}}")


        def body(fail=False):
            jobbench.job.after_job.add(lambda: note("callback"))
            note(f"body as {{jobbench.session.user}}")
            if fail:
                raise ValueError("body failed")
            return 42


        def ok(job, result):
            note(f"on_success {{job.id}} {{result}}")


        def bad(job, exc):
            note(f"on_failure {{job.id}} {{type(exc).__name__}}")
        """)
    )
    install_app(engine.bench, "site1", HOOK_APP)


def lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines() if Path(path).exists() else []


def test_hooks_and_after_job_callbacks_run_around_the_job(engine: Engine) -> None:
    log = engine.file("hooks.log")
    write_hook_app(engine, log)
    with engine.ctx() as local:
        job = jobbench.enqueue("hookapp.jobs.body", job_id="hooked")
        local.db.commit()
    engine.run_worker("default")
    assert engine.record("hooked").status == "finished"
    assert job.refresh().result == 42
    assert lines(log) == [
        "before hookapp.jobs.body []",
        "body as Administrator",
        "after hookapp.jobs.body",
        "callback",
    ]


def test_on_success_and_on_failure_get_the_job_and_its_outcome(engine: Engine) -> None:
    log = engine.file("callbacks.log")
    write_hook_app(engine, log)
    with engine.ctx():
        jobbench.enqueue(
            "hookapp.jobs.body",
            job_id="good",
            on_success="hookapp.jobs.ok",
            on_failure="hookapp.jobs.bad",
        )
        jobbench.enqueue(
            "hookapp.jobs.body",
            job_id="bad",
            fail=True,
            on_success="hookapp.jobs.ok",
            on_failure="hookapp.jobs.bad",
        )
    engine.run_worker("default")
    seen = lines(log)
    assert "on_success good 42" in seen
    assert "on_failure bad ValueError" in seen
    assert not any(line.startswith("on_success bad") for line in seen)
    assert not any(line.startswith("on_failure good") for line in seen)


def test_round_robin_strategy_alternates_between_queues(engine: Engine) -> None:
    order = engine.file("order.txt")
    for n in range(3):
        enqueue(engine, jobs_path("append_line"), queue="short", path=order, tag=f"s{n}")
        enqueue(engine, jobs_path("append_line"), queue="default", path=order, tag=f"d{n}")
    engine.run_worker("short,default", 30, "--strategy", "round_robin")
    assert lines(order) == ["s0", "d0", "s1", "d1", "s2", "d2"]


def test_default_strategy_empties_the_first_queue_first(engine: Engine) -> None:
    order = engine.file("order.txt")
    for n in range(2):
        enqueue(engine, jobs_path("append_line"), queue="default", path=order, tag=f"d{n}")
        enqueue(engine, jobs_path("append_line"), queue="short", path=order, tag=f"s{n}")
    engine.run_worker("short,default")
    assert lines(order) == ["s0", "s1", "d0", "d1"]


def test_random_strategy_runs_everything(engine: Engine) -> None:
    order = engine.file("order.txt")
    for n in range(4):
        enqueue(engine, jobs_path("append_line"), queue="long", path=order, tag=f"l{n}")
        enqueue(engine, jobs_path("append_line"), queue="short", path=order, tag=f"s{n}")
    engine.run_worker("short,long", 30, "--strategy", "random")
    assert sorted(lines(order)) == sorted([f"l{n}" for n in range(4)] + [f"s{n}" for n in range(4)])


def test_burst_worker_pool_shares_the_jobs_between_its_workers(engine: Engine) -> None:
    done = engine.file("done.txt")
    ids = [
        enqueue(engine, jobs_path("wait_for_file"), path=done, timeout=10, job_id=f"p{n}").id
        for n in range(6)
    ]
    Path(done).write_text("go")  # every job returns at once; each still takes a claim
    cmd = [
        sys.executable,
        "-m",
        "jobbench",
        "--bench",
        engine.path,
        "worker-pool",
        "--burst",
        "--num-workers",
        "2",
        "--queue",
        "default",
        "--quiet",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=engine.env())
    assert result.returncode == 0, result.stdout + result.stderr
    records = [engine.record(i) for i in ids]
    assert all(r is not None and r.status == "finished" for r in records)


def test_worker_pool_restarts_a_worker_that_dies(engine: Engine) -> None:
    pool = engine._start(
        [
            sys.executable,
            "-m",
            "jobbench",
            "--bench",
            engine.path,
            "worker-pool",
            "--num-workers",
            "1",
            "--queue",
            "default",
        ]
    )
    first = None
    for _ in deadline_loop(20, "the pool's worker to start"):
        kids = child_pids(pool.pid)
        if kids:
            first = kids[0]
            break
    assert first is not None
    os.kill(first, signal.SIGKILL)
    for _ in deadline_loop(20, "a replacement worker"):
        kids = child_pids(pool.pid)
        if kids and first not in kids:
            break
    enqueue(engine, jobs_path("noop"), job_id="after-restart")
    engine.wait_status("after-restart", "finished", timeout=20)
    pool.signal(signal.SIGTERM)
    assert pool.wait(30) == 0


def test_workers_register_themselves_with_their_current_job(engine: Engine) -> None:
    go = engine.file("go.txt")
    enqueue(engine, jobs_path("wait_for_file"), path=go, timeout=30, job_id="long-one")
    worker = engine.start_worker("default")
    for _ in deadline_loop(20, "the worker to show its current job"):
        found = [w for w in engine.broker().workers() if w.pid == worker.pid]
        if found and found[0].current_job:
            break
    info = found[0]
    assert info.queues == ["default"] and info.host and info.state == "busy"
    assert info.current_job is not None and info.current_job.endswith("::long-one")
    Path(go).write_text("go")
    engine.wait_status("long-one", "finished")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert all(w.pid != worker.pid for w in engine.broker().workers())
