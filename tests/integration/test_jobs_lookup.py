"""Job lookup through the facade: get_job, get_job_status, is_job_enqueued, list_jobs, the Job
handle's refresh() and get_position(); and the job CLI (SPEC sections 2, 4 and 7)."""

from __future__ import annotations

import json

import jobbench

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)


def test_lookup_functions_follow_a_job_through_its_life(engine: Engine) -> None:
    with engine.ctx():
        a = jobbench.enqueue(jobs_path("add"), a=1, b=2, job_id="a:1|x")
        b = jobbench.enqueue(jobs_path("add"), a=3, b=4, job_id="b")
        c = jobbench.enqueue(jobs_path("noop"), job_id="c", at_front=True)
        other = jobbench.enqueue(jobs_path("noop"), queue="short", job_id="s")
        assert [j.get_position() for j in (c, a, b, other)] == [0, 1, 2, 0]
        assert jobbench.get_job_status("a:1|x") == "queued"
        assert jobbench.is_job_enqueued("a:1|x") is True
        assert jobbench.get_job("a:1|x").kwargs == {"a": 1, "b": 2}
        assert jobbench.get_job("unknown") is None
        assert jobbench.get_job_status("unknown") is None
        assert jobbench.is_job_enqueued("unknown") is False
        assert [j.id for j in jobbench.list_jobs(queue="default")] == ["c", "b", "a:1|x"]
        assert [j.id for j in jobbench.list_jobs(queue="short")] == ["s"]
    enqueue(engine, jobs_path("noop"), site="site2", job_id="on-site2")
    with engine.ctx():
        assert "on-site2" not in [j.id for j in jobbench.list_jobs()]
        assert "on-site2" in [j.id for j in jobbench.list_jobs(site="all")]

    engine.run_worker("default")

    assert a.status == "queued"  # a handle shows what it last read
    assert a.refresh().status == "finished" and a.result == 3
    assert a.get_position() is None
    assert other.refresh().get_position() == 0
    with engine.ctx():
        assert jobbench.get_job_status("b") == "finished"
        assert jobbench.is_job_enqueued("b") is False
        assert [j.id for j in jobbench.list_jobs(status="finished")] == ["c", "b", "a:1|x"]
        assert [j.id for j in jobbench.list_jobs(status="queued")] == ["s"]


def _cli_ok(engine: Engine, *args: str) -> str:
    done = engine.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _cli_error(engine: Engine, *args: str, contains: str) -> str:
    done = engine.cli(*args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert contains in done.stderr, done.stderr
    assert len([line for line in lines if line.startswith(("Error", "Usage", "Try"))]) >= 1
    assert lines[-1].startswith("Error"), done.stderr
    return done.stderr


def test_cli_enqueue_list_show_execute(engine: Engine) -> None:
    out = _cli_ok(
        engine, "enqueue", "japp.jobs.add", "--kwargs", '{"a": 20, "b": 22}', "--job-id", "c1"
    )
    assert out.strip() == "c1"
    _cli_ok(engine, "enqueue", "japp.jobs.noop", "--queue", "short", "--job-id", "c2")
    listed = json.loads(_cli_ok(engine, "jobs", "list", "--format", "json"))
    assert {(r["id"], r["queue"], r["status"]) for r in listed} == {
        ("c1", "default", "queued"),
        ("c2", "short", "queued"),
    }

    engine.run_worker("short,default")

    shown = json.loads(_cli_ok(engine, "jobs", "show", "c1", "--format", "json"))
    assert (shown["status"], shown["result"], shown["kwargs"]) == (
        "finished",
        42,
        {"a": 20, "b": 22},
    )
    assert "finished" in _cli_ok(engine, "jobs", "show", "c1")
    assert _cli_ok(engine, "execute", "japp.jobs.add", "--kwargs", '{"a": 1, "b": 1}') == "2\n"
    _cli_ok(engine, "execute", "japp.jobs.write_task", "--kwargs", '{"subject": "via cli"}')
    subjects = committed(engine, lambda: jobbench.get_all("Task", pluck="subject"))
    assert subjects == ["via cli"]


def test_cli_retry_delete_purge_failed(engine: Engine) -> None:
    counter = engine.file("counter")
    _cli_ok(
        engine,
        "enqueue",
        "japp.jobs.fail_first_time",
        "--kwargs",
        json.dumps({"counter": counter}),
        "--job-id",
        "flaky",
    )
    _cli_ok(
        engine,
        "enqueue",
        "japp.jobs.write_task_then_fail",
        "--job-id",
        "bad1",
        "--kwargs",
        '{"subject": "x"}',
    )
    _cli_ok(
        engine,
        "enqueue",
        "japp.jobs.write_task_then_fail",
        "--job-id",
        "bad2",
        "--kwargs",
        '{"subject": "y"}',
    )
    engine.run_worker("default")
    failed = json.loads(_cli_ok(engine, "jobs", "list", "--status", "failed", "--format", "json"))
    assert sorted(r["id"] for r in failed) == ["bad1", "bad2", "flaky"]

    assert "queued again" in _cli_ok(engine, "jobs", "retry", "flaky")
    _cli_error(engine, "jobs", "retry", "flaky", contains="still pending")
    engine.run_worker("default")
    assert engine.record("flaky").status == "finished"
    assert engine.record("flaky").attempts == 2

    assert "deleted" in _cli_ok(engine, "jobs", "delete", "bad1")
    assert engine.record("bad1") is None
    _cli_error(engine, "jobs", "show", "bad1", contains="no job 'bad1'")
    assert "Purged 1 failed job(s)" in _cli_ok(engine, "jobs", "purge-failed")
    assert engine.record("bad2") is None
    assert engine.record("flaky").status == "finished"


def test_cli_errors_are_one_line_and_non_zero(engine: Engine) -> None:
    _cli_error(engine, "enqueue", "japp.jobs.add", "--kwargs", "{not json", contains="--kwargs")
    _cli_error(engine, "enqueue", "japp.jobs.add", "--kwargs", "[1, 2]", contains="JSON object")
    err = _cli_error(engine, "enqueue", "japp.jobs.noop", "--queue", "nope", contains="'nope'")
    assert "short, default, long" in err
    assert len(err.strip().splitlines()) == 1
    err = _cli_error(engine, "enqueue", "japp.jobs.missing", contains="japp.jobs.missing")
    assert len(err.strip().splitlines()) == 1
    _cli_error(engine, "execute", "japp.jobs.add", "--kwargs", "{", contains="--kwargs")
    assert committed(engine, jobbench.list_jobs) == []
