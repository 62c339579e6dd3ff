"""Worker kills: short jobs across 4 supervised workers while a killer SIGKILLs a random
worker (its supervisor, or only its executor) every 0.5-1 s; the test restarts dead workers.
Afterwards every job is final exactly once, none ran twice, and every killed run is failed
with "worker died". Three layouts: sync jobs one at a time, four at once in threads, and
async def jobs on each executor's shared event loop (async_mode "loop", ten at once)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from .helpers import (
    Accounting,
    Chaos,
    Proc,
    account,
    child_pids,
    report_figures,
    wait_until,
)

CI_JOBS = 800
LONG_JOBS = 10_000
WORKERS = 4


LAYOUTS = {  # name: (--concurrency, async_mode, job function)
    "sync": (1, "thread", "effect"),
    "sync-threads-4": (4, "thread", "effect"),
    "async-loop": (1, "loop", "effect_async"),
}


def run_kills(
    chaos: Chaos, jobs: int, seed: int = 0, layout: str = "sync"
) -> tuple[Accounting, dict[str, float]]:
    rng = random.Random(seed)
    concurrency, async_mode, method = LAYOUTS[layout]

    def start(name: str) -> Proc:
        return chaos.start_worker(name, concurrency=concurrency, async_mode=async_mode)

    workers = {f"w{i}": start(f"chaos-w{i}-{chaos.kind}") for i in range(WORKERS)}
    kills = {"supervisor": 0, "executor": 0, "restarts": 0}
    stop = threading.Event()

    def killer() -> None:
        while not stop.wait(rng.uniform(0.5, 1.0)):
            slot = rng.choice(sorted(workers))
            proc = workers[slot]
            if not proc.alive():
                continue
            executors = child_pids(proc.pid)
            if executors and rng.random() < 0.5:
                os.kill(executors[0], signal.SIGKILL)  # the parent settles and respawns it
                kills["executor"] += 1
            else:
                os.kill(proc.pid, signal.SIGKILL)  # its executor dies with it (PDEATHSIG)
                proc.proc.wait(10)
                kills["supervisor"] += 1
                name = f"chaos-{slot}-{kills['supervisor']}"
                workers[slot] = start(name)
                kills["restarts"] += 1

    thread = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        ids = chaos.enqueue_effects(jobs, pause=0.02, method=method)
        wait_until(lambda: chaos.broker().queue_length("short") == 0, 600, "queue to drain")
    finally:
        stop.set()
        thread.join(15)
    # Settle: surviving workers reap the jobs of killed supervisors (heartbeat TTL 2 s).
    wait_until(lambda: chaos.pending() == 0, 60, "every job to settle", pause=0.2)
    elapsed = time.monotonic() - started
    acc = account(chaos.broker(), ids, chaos.effects())
    figures = {"seconds": round(elapsed, 1), **{k: float(v) for k, v in kills.items()}}
    return acc, figures


def report(chaos: Chaos, acc: Accounting, figures: dict[str, float], layout: str) -> None:
    """Append the figures for scripts/chaos_report.py (when it asks for them)."""
    line = {
        "scenario": "worker_kills",
        "broker": chaos.kind,
        "layout": layout,
        "jobs": acc.jobs,
        "finished": acc.finished,
        "failed_worker_died": acc.worker_died,
        "lost": len(acc.lost) + len(acc.not_final),
        "duplicates": len(acc.duplicates),
        "max_detection_s": round(acc.max_detection, 2),
        **figures,
    }
    report_figures(line)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_worker_kills_lose_nothing(chaos: Chaos, long_form: bool, layout: str) -> None:
    """With several jobs at once per executor each kill of one lands on up to that many."""
    # Four slots per worker drain the short form about four times as fast: more jobs, so the
    # killer still lands several kills.
    jobs = LONG_JOBS if long_form else CI_JOBS * (1 if layout == "sync" else 4)
    acc, figures = run_kills(chaos, jobs, seed=jobs, layout=layout)
    report(chaos, acc, figures, layout)
    assert acc.problems() == {}, acc
    assert acc.other_failures == [], acc.other_failures[:5]
    assert acc.finished + acc.failed == jobs
    assert figures["supervisor"] + figures["executor"] >= 3, f"too few kills: {figures}"
    assert acc.worker_died >= 1, f"no kill landed on a running job: {figures}"
    # A killed supervisor is noticed when its heartbeat (TTL 2 s) lapses and a reap runs
    # (every 10 s): a job waits at most TTL + reap interval + slack.
    assert acc.max_detection <= 15, acc.max_detection
