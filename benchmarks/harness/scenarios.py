"""The scenarios, each from an empty broker (the benchmark DB flushed, the system's own
storage fresh). Every worker a scenario starts is ended (with its children) when it returns or
fails; the caller ends whatever is left (``Procs.kill_all``) after each scenario too.

Completion is seen the same way for every system: each job body INCRs one counter, and the
harness reads it (``done()``) every 2 ms while a drain runs.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.common import (
    ASYNC_SLEEP,
    NOOP,
    SLEEP,
    BenchError,
    Settings,
    System,
    Workers,
    done,
    flush_db,
    wait_until,
)
from harness.procs import Procs, tree_cpu_seconds, tree_memory_mb

IO_WORKERS = Workers(processes=2, threads=8)  # W5: 16 slots, as Dramatiq's 2 x 8 threads
ASYNC_SLOTS = 50  # W5-async: --async-concurrency per process, where the option exists
LATENCY_GAP = (0.003, 0.005)  # seconds between a job's end and the next enqueue
LATENCY_POLL = 0.0001  # the producer reads the counter this often while it waits
SETTLE_SECONDS = 1.0
WARMUP_JOBS = 5


@dataclass
class Context:
    system: System
    procs: Procs
    cfg: Settings
    layouts: dict[str, str]  # scenario -> how the workers ran, for the report


Values = dict[str, float]


def fresh(system: System) -> None:
    flush_db()
    system.fresh()


def fill(system: System, kind: str, n: int) -> float:
    """Enqueue ``n`` jobs one at a time from this process; returns the seconds it took."""
    with system.producer():
        started = time.perf_counter()
        for _ in range(n):
            system.enqueue(kind)
        return time.perf_counter() - started


def start(ctx: Context, workers: Workers, scenario: str) -> list[subprocess.Popen[bytes]]:
    ctx.layouts[scenario] = ctx.system.describe(workers)
    return [ctx.procs.start(c) for c in ctx.system.worker_commands(workers)]


def watch(ctx: Context, running: list[subprocess.Popen[bytes]], n: int) -> tuple[float, float]:
    """Wait until the counter reaches ``n``: the instants (perf_counter) it first was >= 1
    and reached ``n``. Raises BenchError if a worker exits or it takes too long."""
    timeout = 60 + n * 0.02  # slower than 50 jobs/s is a failure
    deadline = time.monotonic() + timeout
    first, last_check = None, 0.0
    while (count := done()) < n:
        now = time.perf_counter()
        if first is None and count:
            first = now
        if now - last_check > 0.1:
            ctx.procs.check_alive(running, "a worker")
            last_check = now
        if time.monotonic() > deadline:
            raise BenchError(f"{count:,} of {n:,} jobs done after {timeout:.0f} s")
        time.sleep(0.002)
    last = time.perf_counter()
    return (last if first is None else first), last


def drain(ctx: Context, workers: Workers, n: int, scenario: str) -> tuple[float, float]:
    """Start ``workers`` on ``n`` queued jobs: (jobs/s from the start of the worker processes
    to the n-th job's end, jobs/s from the first job's end to the n-th's)."""
    started = time.perf_counter()
    running = start(ctx, workers, scenario)
    try:
        first, last = watch(ctx, running, n)
        time.sleep(0.05)
        if (count := done()) != n:
            raise BenchError(f"{n:,} jobs enqueued, {count:,} job bodies ran")
    finally:
        ctx.procs.stop(running)
    steady = (n - 1) / (last - first) if n > 1 and last > first else float("nan")
    return n / (last - started), steady


def drain_workers(system: System, processes: int) -> Workers:
    return Workers(processes=processes, threads=system.drain_threads)


def enqueue_and_drain(ctx: Context) -> Values:
    """W1: N no-op jobs enqueued one at a time by one producer; W2: those N drained by one
    worker process."""
    fresh(ctx.system)
    seconds = fill(ctx.system, NOOP, ctx.cfg.jobs)
    rate, _steady = drain(ctx, drain_workers(ctx.system, 1), ctx.cfg.jobs, "W2")
    return {"W1": ctx.cfg.jobs / seconds, "W2": rate}


def drain_two(ctx: Context) -> Values:
    """W3: N queued no-op jobs drained by two worker processes."""
    fresh(ctx.system)
    fill(ctx.system, NOOP, ctx.cfg.jobs)
    rate, _steady = drain(ctx, drain_workers(ctx.system, 2), ctx.cfg.jobs, "W3")
    return {"W3": rate}


def io_drain(ctx: Context) -> Values:
    """W5: 2,000 x sleep(10 ms) on 2 processes x 8 threads (where the system has threads)."""
    fresh(ctx.system)
    fill(ctx.system, SLEEP, ctx.cfg.sleep_jobs)
    rate, steady = drain(ctx, IO_WORKERS, ctx.cfg.sleep_jobs, "W5")
    return {"W5": rate, "W5_steady": steady}


def async_drain(ctx: Context) -> Values:
    """W5-async: the same on ``await asyncio.sleep(0.01)`` jobs, 2 processes."""
    fresh(ctx.system)
    fill(ctx.system, ASYNC_SLEEP, ctx.cfg.sleep_jobs)
    workers = Workers(processes=2, async_slots=ASYNC_SLOTS)
    rate, steady = drain(ctx, workers, ctx.cfg.sleep_jobs, "W5-async")
    return {"W5a": rate, "W5a_steady": steady}


def latencies(system: System, n: int, already: int) -> list[float]:
    """Enqueue one no-op at a time, each 3-5 ms after the previous one ended (so the worker
    waits idle); ms from just before the enqueue call to the producer seeing its INCR."""
    samples, target = [], already
    with system.producer():
        for _ in range(n):
            time.sleep(random.uniform(*LATENCY_GAP))
            target += 1
            started = time.perf_counter()
            system.enqueue(NOOP)
            wait_until(lambda t=target: done() >= t, 30, "a latency job", LATENCY_POLL)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def idle_usage(ctx: Context, proc: subprocess.Popen[bytes]) -> Values:
    """PSS/RSS of the worker's process tree, then its CPU over ``idle_seconds`` of idling."""
    time.sleep(SETTLE_SECONDS)
    ctx.procs.check_alive([proc], "the worker")
    pss, rss, _count = tree_memory_mb(proc.pid)
    cpu_before, t0 = tree_cpu_seconds(proc.pid), time.monotonic()
    time.sleep(ctx.cfg.idle_seconds)
    cpu = (tree_cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - t0) * 100
    return {"pss": pss, "rss": rss, "cpu": cpu}


def idle_and_latency(ctx: Context) -> Values:
    """One worker process started; once it has run one job: its memory and idle CPU; then W4,
    latency with that worker idle between jobs."""
    fresh(ctx.system)
    running = start(ctx, drain_workers(ctx.system, 1), "W4")
    try:
        fill(ctx.system, NOOP, 1)
        wait_until(lambda: done() >= 1, 60, "the first job")
        values = idle_usage(ctx, running[0])
        latencies(ctx.system, WARMUP_JOBS, 1)
        samples = latencies(ctx.system, ctx.cfg.latency_jobs, 1 + WARMUP_JOBS)
        ctx.procs.check_alive(running, "the worker")
    finally:
        ctx.procs.stop(running)
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return {**values, "p50": statistics.median(samples), "p99": p99}


Scenario = Callable[[Context], Values]
SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "drain1": ("W1 enqueue + W2 drain, 1 process", enqueue_and_drain),
    "drain2": ("W3 drain, 2 processes", drain_two),
    "latency": ("idle memory + CPU, W4 latency", idle_and_latency),
    "io": ("W5 sleep(10 ms), 2 processes", io_drain),
    "async": ("W5-async await sleep(10 ms), 2 processes", async_drain),
}


def applies(name: str, system: System) -> bool:
    return name != "async" or ASYNC_SLEEP in system.kinds
