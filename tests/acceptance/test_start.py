"""``jobbench start`` smoke test: a real foreground process on a temp SQLite bench runs the
scheduler and one worker per configured group; jobs enqueued from another process run; a
worker killed behind its back is restarted; SIGINT is a warm shutdown (a running job
finishes), exit code 0, no process of the bench left behind and no job ``started``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import cli_env, ok, run_cli

JOBS = """
import time


def quick(tag):
    return tag


def slow(seconds):
    time.sleep(seconds)
    return "slept"
"""


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def bench_processes(bench: Path) -> list[str]:
    pattern = f"--bench {bench}"
    out = subprocess.run(["pgrep", "-af", "--", pattern], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


@pytest.fixture
def started(bench_dir: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    (bench_dir / "apps" / "tapp" / "startjobs.py").write_text(JOBS)
    config = bench_dir / "sites" / "common_site_config.json"
    data = json.loads(config.read_text())
    data["workers"] = {"bulk": {"timeout": 60, "background_workers": 1}}
    config.write_text(json.dumps(data))
    log = bench_dir / "start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobbench", "start"],
            cwd=bench_dir,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for line in bench_processes(bench_dir):  # never leave processes behind, even on failure
            os.kill(int(line.split()[0]), signal.SIGKILL)


def status(bench: Path, job_id: str) -> str:
    out = ok(run_cli("--site", "s1", "jobs", "show", job_id, "--format", "json", cwd=bench))
    return str(json.loads(out)["status"])


def enqueue(bench: Path, method: str, queue: str, kwargs: dict[str, object]) -> str:
    args = ["--site", "s1", "enqueue", f"tapp.startjobs.{method}", "--queue", queue]
    return ok(run_cli(*args, "--kwargs", json.dumps(kwargs), cwd=bench)).strip()


def test_start_runs_jobs_restarts_children_and_stops_cleanly(
    bench_dir: Path, started: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, log = started
    groups = ["short,default", "long,default,short", "bulk"]
    wait_for(lambda: log.read_text().count("Worker ") >= 3, "three workers to start")
    wait_for(lambda: "Scheduler " in log.read_text(), "the scheduler to start")
    text = log.read_text()
    assert "scheduler" in text
    for group in groups:
        assert f"worker.{group}.1 " in text, text

    quick = [enqueue(bench_dir, "quick", q, {"tag": q}) for q in ("default", "short", "bulk")]
    wait_for(lambda: all(status(bench_dir, j) == "finished" for j in quick), "quick jobs")

    (victim,) = [p for p in bench_processes(bench_dir) if "--queue bulk" in p][:1]
    os.kill(int(victim.split()[0]), signal.SIGKILL)
    wait_for(lambda: "worker.bulk.1 " in log.read_text().split("restarting")[-1], "restart")
    wait_for(lambda: log.read_text().count("Worker ") >= 4, "the bulk worker to come back")

    slow = enqueue(bench_dir, "slow", "long", {"seconds": 2})
    wait_for(lambda: status(bench_dir, slow) == "started", "the slow job to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, log.read_text()

    assert bench_processes(bench_dir) == [], log.read_text()
    assert status(bench_dir, slow) == "finished"  # warm shutdown: the running job finished
    args = ["--site", "s1", "jobs", "list", "--status", "started", "--format", "json"]
    assert json.loads(ok(run_cli(*args, cwd=bench_dir))) == []
    text = log.read_text()
    assert "warm shutdown" in text and "all processes stopped" in text


def test_start_with_json_logs_writes_one_object_per_line(bench_dir: Path) -> None:
    """--log-format json reaches every child; start's own lines are objects too (no
    prefix), each naming its process."""
    log = bench_dir / "start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobbench", "start", "--log-format", "json"],
            cwd=bench_dir,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_for(lambda: log.read_text().count('"Worker ') >= 2, "two workers to start")
        wait_for(lambda: '"Scheduler ' in log.read_text(), "the scheduler to start")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    objects = [json.loads(line) for line in log.read_text().splitlines()]
    loggers = {o["logger"] for o in objects}
    assert {"jobbench.start", "jobbench.worker", "jobbench.scheduler"} <= loggers, loggers
    ours = [o for o in objects if o["logger"] == "jobbench.start"]
    assert ours[0]["process"] == "start" and ours[-1]["message"] == "all processes stopped"
