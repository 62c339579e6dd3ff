"""Dependencies and concurrency keys with real workers on both brokers: a dependent starts only
after its dependency ended, a failure cancels the chain with the reason, enqueue_many takes
both options; 4 workers never run two jobs of a key (limit 1) at once, also when one of them
is SIGKILLed mid-job and the reaper settles its job; the CLI shows and lists them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.errors import DependencyNotFound, JobError

from .jobs_helpers import (
    APP,
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    jobs_path,
    wait_until,
)

SPANS_MODULE = '''
"""Jobs that log when they start and end: one O_APPEND write per line (atomic)."""
import os
import time

import jobbench


def _append(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def span(path, seconds=0.0, fail=False):
    record = jobbench.job.record
    key = record.concurrency_key or "-"
    _append(path, f"S\\t{key}\\t{jobbench.job.id}\\t{time.time()!r}\\n")
    time.sleep(seconds)
    _append(path, f"E\\t{key}\\t{jobbench.job.id}\\t{time.time()!r}\\n")
    if fail:
        raise ValueError("boom")
'''
SPAN = f"{APP}.spans.span"


@pytest.fixture(name="spans")
def spans_fixture(engine: Engine) -> str:
    (engine.bench.path / "apps" / APP / "spans.py").write_text(SPANS_MODULE)
    return engine.file("spans.log")


def _task(engine: Engine, job_id: str) -> dict[str, Any]:
    rows = committed(
        engine,
        lambda: jobbench.get_all("Background Task", filters={"job_id": job_id}, fields=["*"]),
        "site1",
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


def _assert_canceled_for_its_dependency(engine: Engine, job_id: str) -> None:
    task = _task(engine, job_id)
    assert task["status"] == "Cancelled" and "its dependency" in (task["exception"] or ""), task


def _first_and_mid(spans: str) -> None:
    """A queued job "first" and a tracked job "mid" deferred on it."""
    jobbench.enqueue(SPAN, path=spans, job_id="first", queue="long")
    jobbench.enqueue(SPAN, path=spans, depends_on="first", job_id="mid", track_job=True)


def _lines(path: str) -> list[tuple[str, str, str, float]]:
    if not Path(path).exists():
        return []
    rows = [line.split("\t") for line in Path(path).read_text().splitlines()]
    return [(kind, key, job_id, float(at)) for kind, key, job_id, at in rows]


def _times(path: str) -> dict[tuple[str, str], float]:
    return {(kind, job_id): at for kind, _, job_id, at in _lines(path)}


def test_a_chain_runs_in_order_and_a_failure_cancels_what_follows(
    engine: Engine, spans: str
) -> None:
    with engine.ctx():
        a = jobbench.enqueue(SPAN, path=spans, seconds=0.2, job_id="a", queue="long")
        b = jobbench.enqueue(SPAN, path=spans, depends_on=a, job_id="b", queue="short")
        bad = jobbench.enqueue(SPAN, path=spans, fail=True, depends_on="b", job_id="bad")
        after_bad = jobbench.enqueue(SPAN, path=spans, depends_on=[bad], job_id="after-bad")
        tail = jobbench.enqueue(
            SPAN, path=spans, depends_on=after_bad, job_id="tail", track_job=True
        )
        jobbench.enqueue(
            SPAN, path=spans, depends_on=[bad, b], allow_dependency_failure=True, job_id="anyway"
        )
        assert b.status == "deferred" and b.is_deferred and b.depends_on == ["a"]
        assert tail.depends_on == ["after-bad"] and a.status == "queued"
        assert jobbench.is_job_enqueued("b") is True
    listed = engine.cli("jobs", "list", "--status", "deferred", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    deferred = {r["id"] for r in json.loads(listed.stdout)}
    assert deferred == {"b", "bad", "after-bad", "tail", "anyway"}
    table = engine.cli("jobs", "list", "--status", "deferred").stdout.splitlines()
    assert table[0].split("\t")[-1] == "depends on"
    assert any(line.startswith("b\t") and line.endswith("\ta") for line in table), table
    shown = engine.cli("jobs", "show", "a")
    assert "dependents: ['b']" in shown.stdout, shown.stdout
    engine.start_worker("short,default,long")
    engine.start_worker("short,default,long")  # two workers: order comes from the dependencies
    assert engine.wait_status("anyway", "finished", timeout=30) is not None
    times = _times(spans)
    assert times[("S", "b")] >= times[("E", "a")]
    assert times[("S", "bad")] >= times[("E", "b")]
    assert times[("S", "anyway")] >= times[("E", "bad")]
    for job_id, reason in (("after-bad", "'bad' failed"), ("tail", "'after-bad' was canceled")):
        record = engine.record(job_id)
        assert record is not None and record.status == "canceled"
        assert record.exc_info == f"canceled: its dependency {reason}"
        assert ("S", job_id) not in times
    shown = engine.cli("jobs", "show", "tail")
    assert "depends_on: ['after-bad']" in shown.stdout and "was canceled" in shown.stdout
    # a tracked dependent's Background Task follows its cancel, also one canceled at enqueue
    with engine.ctx():
        late = jobbench.enqueue(SPAN, path=spans, depends_on="bad", track_job=True, job_id="late")
        assert late.status == "canceled"
    for job_id in ("tail", "late"):
        _assert_canceled_for_its_dependency(engine, job_id)


def test_deleting_a_pending_dependency_cancels_its_dependents_and_their_tasks(
    engine: Engine, spans: str
) -> None:
    with engine.ctx():
        _first_and_mid(spans)
        jobbench.enqueue(SPAN, path=spans, depends_on="mid", job_id="last", track_job=True)
        assert _task(engine, "mid")["status"] == "Queued"
        assert jobbench.delete_job("first") is True
    mid, last = engine.record("mid"), engine.record("last")
    assert mid is not None and mid.exc_info == "canceled: its dependency 'first' was deleted"
    assert last is not None and last.exc_info == "canceled: its dependency 'mid' was canceled"
    for job_id in ("mid", "last"):
        _assert_canceled_for_its_dependency(engine, job_id)


def test_purge_jobs_cancels_the_dependents_of_what_it_deletes_and_their_tasks(
    engine: Engine, spans: str
) -> None:
    with engine.ctx():
        _first_and_mid(spans)
    purged = engine.cli("purge-jobs")
    assert purged.returncode == 0, purged.stderr
    assert engine.record("first") is None
    mid = engine.record("mid")
    assert mid is not None and mid.exc_info == "canceled: its dependency 'first' was deleted"
    _assert_canceled_for_its_dependency(engine, "mid")


def test_enqueue_refuses_what_it_cannot_do_and_enqueue_many_takes_both(
    engine: Engine, spans: str
) -> None:
    with engine.ctx():
        with pytest.raises(DependencyNotFound, match="nope"):
            jobbench.enqueue(SPAN, path=spans, depends_on="nope", job_id="x")
        with pytest.raises(JobError, match="delayed"):
            jobbench.enqueue_in(60, SPAN, path=spans, depends_on="x")
        with pytest.raises(JobError, match="concurrency_limit"):
            jobbench.enqueue(SPAN, path=spans, concurrency_key="k", concurrency_limit=0)
        assert jobbench.get_job("x") is None
        jobs = jobbench.enqueue_many(
            [
                {"method": SPAN, "kwargs": {"path": spans}, "job_id": "m0"},
                {"method": SPAN, "kwargs": {"path": spans}, "job_id": "m1", "depends_on": "m0"},
                {
                    "method": SPAN,
                    "kwargs": {"path": spans},
                    "depends_on": ["m0", "m1"],
                    "concurrency_key": "c",
                },
            ]
        )
        assert [j.status for j in jobs if j is not None] == ["queued", "deferred", "deferred"]
        with pytest.raises(DependencyNotFound, match=r"specs\[1\]|nope"):
            jobbench.enqueue_many(
                [
                    {"method": SPAN, "kwargs": {"path": spans}, "job_id": "n0"},
                    {"method": SPAN, "kwargs": {"path": spans}, "depends_on": "nope"},
                ]
            )
        assert jobbench.get_job("n0") is None  # nothing of the refused batch was written
    last = jobs[2]
    assert last is not None and last.concurrency_key == "c" and last.depends_on == ["m0", "m1"]
    with engine.ctx("site2"):  # another site of the bench, on the same broker
        other = jobbench.enqueue(SPAN, path=spans, depends_on=jobs[1], job_id="site2-job")
        assert other.status == "deferred" and other.depends_on == ["site1::m1"]
    engine.run_worker("default")
    times = _times(spans)
    assert times[("S", "m1")] >= times[("E", "m0")]
    assert times[("S", last.id)] >= times[("E", "m1")]
    assert times[("S", "site2-job")] >= times[("E", "m1")]


def test_a_dependency_on_another_broker_is_refused(engine: Engine, spans: str) -> None:
    """site2 given a broker of its own (a site config's redis_queue): no step could be
    atomic over both, so a site1 job cannot be its jobs' dependency."""
    elsewhere = "redis://127.0.0.1:6379/14" if engine.kind == "sqlite" else ""
    engine.bench.update_site_config("site2", {"redis_queue": elsewhere or None})
    with engine.ctx():
        first = jobbench.enqueue(SPAN, path=spans, job_id="first")
    with engine.ctx("site2"), pytest.raises(JobError, match="another broker"):
        jobbench.enqueue(SPAN, path=spans, depends_on=first, job_id="second")


def _kill_tree(pid: int) -> None:
    """SIGKILL a worker and its executor's process group (the job inside dies with it)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    for child in (int(p) for p in out.stdout.split()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _intervals(engine: Engine, spans: str, killed: str) -> dict[str, list[tuple[float, float]]]:
    """Per key, when each job held the key's slot: start to end, and for the killed job
    start to when the reaper settled it (its record's ended_at)."""
    starts = {job_id: (key, at) for kind, key, job_id, at in _lines(spans) if kind == "S"}
    ends = {job_id: at for kind, _, job_id, at in _lines(spans) if kind == "E"}
    record = engine.record(killed)
    assert record is not None and record.ended_at is not None
    ends[killed] = record.ended_at
    out: dict[str, list[tuple[float, float]]] = {}
    for job_id, (key, start) in starts.items():
        out.setdefault(key, []).append((start, ends[job_id]))
    return out


def test_four_workers_never_run_two_jobs_of_a_key_even_when_one_is_killed(
    engine: Engine, spans: str
) -> None:
    engine.set_common(worker_heartbeat_interval=0.5, worker_heartbeat_ttl=2)
    with engine.ctx():
        for i in range(12):
            key = f"customer-{i % 2}"
            jobbench.enqueue(SPAN, path=spans, seconds=0.3, job_id=f"k{i}", concurrency_key=key)
        for i in range(6):
            jobbench.enqueue(SPAN, path=spans, seconds=0.05, job_id=f"free{i}")
    workers = {engine.start_worker("default").pid for _ in range(4)}
    broker = engine.broker()

    def victim() -> Any:
        started = [r for r in broker.find(status="started") if r.concurrency_key]
        running = {r.job_id for r in started} & {s[2] for s in _lines(spans) if s[0] == "S"}
        return next((r for r in started if r.job_id in running), None)

    target = wait_until(victim, 20, "a keyed job running")
    pids = {w.name: w.pid for w in broker.workers()}
    assert pids[target.worker] in workers
    _kill_tree(pids[target.worker])
    for i in range(12):
        engine.wait_status(f"k{i}", ("finished", "failed"), timeout=40)
    killed = engine.record(target.job_id)
    assert killed is not None and killed.status == "failed"
    assert "worker died" in (killed.exc_info or "")
    for i in range(6):
        assert engine.wait_status(f"free{i}", "finished", timeout=5) is not None
    per_key = _intervals(engine, spans, target.job_id)
    assert sorted(per_key) == ["-", "customer-0", "customer-1"]
    assert len(per_key["customer-0"]) == len(per_key["customer-1"]) == 6  # each ran once
    for key in ("customer-0", "customer-1"):
        ordered = sorted(per_key[key])
        for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
            assert start >= end, f"two jobs of {key} ran at once"
    others = [engine.record(f"k{i}") for i in range(12) if f"k{i}" != target.job_id]
    assert all(r is not None and r.status == "finished" for r in others)


def test_metrics_count_deferred_jobs(engine: Engine, spans: str) -> None:
    from jobbench.inspect import Inspector, metrics_text

    with engine.ctx():
        first = jobbench.enqueue(SPAN, path=spans, job_id="first")
        jobbench.enqueue(SPAN, path=spans, depends_on=first, job_id="second")
    lines = metrics_text(Inspector(engine.bench)).splitlines()
    assert 'jobbench_jobs{site="site1",queue="default",status="deferred"} 1' in lines
    assert 'jobbench_jobs{site="site1",queue="default",status="queued"} 1' in lines


def test_cli_enqueue_with_dependencies_and_a_concurrency_key(engine: Engine) -> None:
    first = engine.cli("enqueue", jobs_path("add"), "--kwargs", '{"a": 1, "b": 1}', "--job-id", "a")
    assert first.returncode == 0, first.stderr
    after = engine.cli(
        "enqueue", jobs_path("add"), "--kwargs", '{"a": 2, "b": 2}', "--depends-on", "a",
        "--concurrency-key", "k1", "--concurrency-limit", "2", "--job-id", "b",
    )  # fmt: skip
    assert after.returncode == 0 and after.stdout.strip() == "b", after.stderr
    assert "deferred: waits for a" in after.stderr
    record = engine.record("b")
    assert record is not None and record.status == "deferred"
    assert (record.concurrency_key, record.concurrency_limit) == ("k1", 2)
    listing = engine.cli("jobs", "list", "--status", "deferred").stdout.splitlines()
    assert len(listing) == 2 and listing[1].split("\t")[0] == "b"
    unknown = engine.cli("enqueue", jobs_path("noop"), "--depends-on", "nosuch")
    assert unknown.returncode == 1 and "no job 'nosuch'" in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    lonely = engine.cli("enqueue", jobs_path("noop"), "--concurrency-limit", "2")
    assert lonely.returncode == 2 and "needs --concurrency-key" in lonely.stderr
    engine.run_worker("default")
    assert engine.record("b").status == "finished"
    assert [r.id for r in engine.broker().find(status="queued")] == []
