"""Liveness as a new user meets it, with real ``jobbench`` processes on both brokers:
``doctor`` and ``scheduler status`` before any scheduler runs (none running, a warning since
job types are due, a queued job's age), with two schedulers (both shown, one leader, its last
tick and the next one due), and after they stop (gone at once: they unregister)."""

# ruff: noqa: F811 - the fixtures imported below come back as the tests' parameters

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from .helpers import assert_error, assert_usage_error, ok, run_cli
from .test_cli_scheduler import (  # noqa: F401 - fixtures: bench, broker_bench, sched_template
    SITE,
    _spawn,
    _stop,
    _wait,
    bench,
    broker_bench,
    jb,
    sched_template,
    set_common,
)


def doctor(bench: Path) -> dict[str, Any]:
    report = json.loads(ok(jb(bench, "doctor", "--format", "json")))
    assert isinstance(report, dict)
    return report


def _leading(bench: Path, count: int) -> dict[str, Any] | None:
    """The doctor report once ``count`` schedulers are alive and one of them has ticked."""
    report = doctor(bench)
    live = report["scheduler"]
    ready = len(live["processes"]) == count and live["leader"] and live["last_tick"]
    return report if ready else None


def test_doctor_before_during_and_after_schedulers(broker_bench: Path) -> None:
    bench = broker_bench
    set_common(bench, scheduler_tick_interval=1, scheduler_interval=1)
    set_common(bench, worker_heartbeat_interval=0.5, worker_heartbeat_ttl=2)
    ok(jb(bench, "migrate"))  # the 'all' job type now runs every second
    ok(jb(bench, "enqueue", "capp.tasks.every"))  # no worker runs: it stays queued
    time.sleep(1.2)  # the 'all' job type is due, the job over a second old

    before = doctor(bench)
    assert before["scheduler"]["alive"] is False and before["scheduler"]["processes"] == []
    (site,) = before["sites"]
    assert site["due_job_types"] >= 1 and site["active"] is True
    assert site["scheduler_alive"] is False
    assert any("no scheduler is running" in w and f"{SITE}: " in w for w in before["warnings"])
    assert any("queued and no worker" in w for w in before["warnings"])
    assert before["oldest_queued"]["default"] >= 1.0
    text = ok(jb(bench, "doctor"))
    assert "Scheduler: none running; last tick never" in text
    assert f"{SITE}: scheduler active; no scheduler process is running" in text
    assert "Warning: no scheduler is running" in text
    queue_row = next(ln for ln in text.splitlines() if ln.startswith("default\t"))
    assert queue_row.split("\t")[1] == "1" and queue_row.endswith(" s"), queue_row
    status = ok(jb(bench, "scheduler", "status")).splitlines()
    assert status[1].startswith("Scheduler: none running") and "Warning:" in status[2]

    logs = [bench / "s1.log", bench / "s2.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            procs.append(_spawn(bench, log, "schedule"))
        report = _wait(lambda: _leading(bench, 2), 30, "two schedulers, one leading")
        live = report["scheduler"]
        pids = {p["pid"] for p in live["processes"]}
        assert pids == {p.pid for p in procs}
        assert [p["leader"] for p in live["processes"]] == [True, False]  # the leader first
        assert live["leader"] == live["processes"][0]["name"]
        assert live["next_tick_due"] == live["last_tick"] + 1
        assert not any("no scheduler" in w for w in report["warnings"])
        text = ok(jb(bench, "doctor"))
        assert f"Scheduler: running (2 process(es), leader {live['leader']})" in text
        assert f"{SITE}: scheduler active\n" in text and report["sites"][0]["scheduler_alive"]
        assert "next due" in text and "Last scheduled runs of s1" in text
        state = json.loads(ok(jb(bench, "scheduler", "status", "-f", "json")))
        assert state["scheduler_alive"] is True and state["leader"] == live["leader"]
        assert state["next_tick_due"] > state["last_tick"]
    finally:
        codes = [_stop(p, log) for p, log in zip(procs, logs, strict=False)]
    assert codes == [0, 0]
    after = doctor(bench)["scheduler"]
    assert after["alive"] is False and after["processes"] == []  # unregistered on the way out
    assert after["last_tick"] is not None  # the last tick is still known


def test_bad_input_is_one_line(bench: Path) -> None:
    assert_usage_error(jb(bench, "doctor", "--format", "xml"), "'xml' is not one of")
    assert_error(run_cli("--site", "nosuch", "scheduler", "status", cwd=bench), "nosuch")
