"""What every module of the benchmarks shares: the Redis DB, the counter, the settings, the
worker layout of a scenario and the interface each system under test implements."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

HERE = Path(__file__).resolve().parents[1]  # benchmarks/
DB = 12  # a Redis DB of its own: flushed before every scenario and at the end, nothing else
REDIS_URL = f"redis://127.0.0.1:6379/{DB}"
URL_ENV = "JOBBENCH_BENCHMARK_REDIS"  # read by bench_app/jobs.py in every worker process
COUNTER = "jobbench-benchmarks:done"  # every job body INCRs it once (bench_app/jobs.py)
POLL = 0.002  # seconds between two reads of the counter while a drain runs
PYTHON = sys.executable

# The job kinds; each system maps them onto its own task objects of the same bodies.
NOOP, SLEEP, ASYNC_SLEEP = "noop", "sleep_10ms", "async_sleep_10ms"


DEFAULT_JOBS = 20_000  # N of W1-W3 in a full run


class BenchError(Exception):
    """A scenario could not be measured (a worker failed, timed out, or lost or repeated jobs)."""


@dataclass(frozen=True)
class Settings:
    jobs: int  # W1-W3
    sleep_jobs: int  # W5 and W5-async
    latency_jobs: int  # W4
    reps: int
    idle_seconds: float
    quick: bool
    jobbench_rev: str | None = None  # a git revision to measure instead of the working tree


@dataclass(frozen=True)
class Workers:
    """The worker layout of a scenario; each system maps it onto its own CLI."""

    processes: int
    threads: int = 1  # sync jobs at once per process, where the system has threads
    async_slots: int = 0  # async jobs at once per process (jobbench's --async-concurrency)


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to os.environ


class System(Protocol):
    """One row of the table: a system on one broker."""

    key: str  # for --only and the results, e.g. "huey-redis"
    label: str  # the row's name in the table
    broker: str  # "redis" or "sqlite"
    kinds: tuple[str, ...]  # the job kinds it runs: NOOP, SLEEP, maybe ASYNC_SLEEP
    drain_threads: int  # threads per process in W2-W4 (Dramatiq 8, the others 1)

    def fresh(self) -> None:
        """An empty broker (the Redis DB is already flushed when this is called)."""

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        """The context enqueues run in (jobbench: a site context)."""

    def enqueue(self, kind: str) -> None:
        """Enqueue one job of ``kind`` with the system's own client API."""

    def worker_commands(self, workers: Workers) -> list[Command]:
        """The worker process(es) to start for ``workers``."""

    def describe(self, workers: Workers) -> str:
        """How ``workers`` is run, in words, for the report."""

    def close(self) -> None:
        """Drop the producer's connections and files."""


_client: redis.Redis | None = None


def client() -> redis.Redis:
    """The harness's own connection to the benchmark DB."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(REDIS_URL, socket_timeout=10)
    return _client


def flush_db() -> None:
    """Empty the benchmark DB (and so every Redis broker's queue and the counter)."""
    client().flushdb()


def done() -> int:
    """How many job bodies have run since the last flush."""
    return int(client().get(COUNTER) or 0)


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = POLL) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(poll)


def job_env() -> dict[str, str]:
    """What a worker process needs in its environment to run the job bodies."""
    return {URL_ENV: REDIS_URL}


def peer_env() -> dict[str, str]:
    """A peer's worker: the job bodies plus benchmarks/ on the import path (peers.*)."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**job_env(), "PYTHONPATH": path}
