"""Benchmark: bulk enqueue, delayed-job promotion latency and wait() latency (issue 12).

    python benchmarks/bulk.py [--brokers sqlite,redis] [--jobs 20000] [--batch 1000]
                              [--delayed 20] [--waits 20]

For each broker, on a fresh bench with one site:

* **bulk**: ``jobbench.enqueue_many`` of JOBS no-op jobs in batches of BATCH from one producer
  (records built, checked and signed exactly as ``enqueue`` does); jobs/s, median of 3 runs.
  Also one ``enqueue`` per job, for comparison. Targets: >= 30,000 jobs/s on Redis, >= 20,000
  on SQLite.
* **promotion**: DELAYED jobs ``enqueue_in(0.5 .. 2 s)`` while one worker process is idle, then
  again (``at_front``) while two workers drain a backlog of 20,000 no-op jobs: how long after
  its run time each job started (p50 / p95 / max). Target: within a second, under load.
* **wait**: WAITS jobs run by one worker while the producer blocks in ``job.wait()``: how long
  after the job's ``ended_at`` the waiter returned (p50 / p95 / max). Target: <= 5 ms.

Redis: the server in $JOBBENCH_TEST_REDIS (default redis://127.0.0.1:6379), database 10 (12 is
benchmarks/run.py's, which flushes it); only this bench's keys are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import jobbench
from jobbench.bench import Bench, init_bench
from jobbench.sites import new_site

SITE = "bulk.local"
APP = "bulkapp"
REDIS_URL = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/") + "/10"


def build(root: Path, broker: str) -> Bench:
    bench = init_bench(root / f"bench-{broker}")
    app = bench.path / "apps" / APP
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "hooks.py").write_text("doctypes = []\n")
    (app / "jobs.py").write_text("def noop(n=0):\n    return n\n")
    if broker == "redis":
        bench.update_common_config({"redis_queue": REDIS_URL})
    new_site(bench, SITE, apps=[APP])
    return bench


def _drain(bench: Bench) -> None:
    from jobbench.brokers.factory import get_broker

    broker = get_broker(bench, bench.common_config())
    broker.purge(["queued", "scheduled", "finished", "failed", "canceled", "stopped"])


def bulk(bench: Bench, jobs: int, batch: int) -> tuple[float, float]:
    """(jobs/s of enqueue_many, jobs/s of one enqueue per job), medians of 3 runs."""
    method = f"{APP}.jobs.noop"
    many, single = [], []
    with jobbench.site_context(SITE, bench.path):
        for _ in range(3):
            _drain(bench)
            began = time.perf_counter()
            for start in range(0, jobs, batch):
                n = min(batch, jobs - start)
                jobbench.enqueue_many([{"method": method, "kwargs": {"n": i}} for i in range(n)])
            many.append(jobs / (time.perf_counter() - began))
            _drain(bench)
            few = max(1, jobs // 10)
            began = time.perf_counter()
            for i in range(few):
                jobbench.enqueue(method, n=i)
            single.append(few / (time.perf_counter() - began))
        _drain(bench)
    return statistics.median(many), statistics.median(single)


@contextmanager
def workers(bench: Bench, n: int) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
    cmd = [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "worker", "--quiet"]
    procs = [
        subprocess.Popen(cmd + ["--queue", "default"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        time.sleep(2.0)  # imports, first heartbeat
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def _until(check: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise TimeoutError("the jobs did not finish in time")
        time.sleep(0.01)


def promotion(bench: Bench, delayed: int, load: bool) -> list[float]:
    """Seconds from each delayed job's run time to its start. Under load the delayed jobs are
    ``at_front``: promoted behind a backlog of 20,000 jobs they would wait for the backlog
    (FIFO), which measures the queue, not the promotion."""
    method = f"{APP}.jobs.noop"
    with jobbench.site_context(SITE, bench.path), workers(bench, 2 if load else 1):
        if load:  # a stream that keeps both workers busy past the last run time
            for _ in range(20):
                jobbench.enqueue_many([{"method": method} for _ in range(1000)])
        jobs = [
            jobbench.enqueue_in(0.5 + 1.5 * i / delayed, method, at_front=load)
            for i in range(delayed)
        ]
        due = [job.run_at.timestamp() for job in jobs if job.run_at is not None]
        _until(lambda: all(j.refresh().status == "finished" for j in jobs), 120)
        started = [j.record.started_at or 0.0 for j in jobs]
        _drain(bench)
    return [s - d for s, d in zip(started, due, strict=True)]


def wait_latency(bench: Bench, waits: int) -> list[float]:
    """Seconds from each job's end (ended_at) to the moment its waiter returned."""
    method = f"{APP}.jobs.noop"
    lags = []
    with jobbench.site_context(SITE, bench.path), workers(bench, 1):
        for i in range(waits):
            job = jobbench.enqueue(method, n=i)
            job.wait(timeout=30)
            returned = time.time()
            lags.append(returned - (job.record.ended_at or returned))
        _drain(bench)
    return lags


def _stats(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="sqlite,redis")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--delayed", type=int, default=20)
    parser.add_argument("--waits", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for broker in args.brokers.split(","):
            bench = build(Path(tmp), broker)
            many, single = bulk(bench, args.jobs, args.batch)
            lines = [
                f"enqueue_many {many:,.0f} jobs/s (batches of {args.batch}); "
                f"enqueue one by one {single:,.0f} jobs/s",
                f"promotion, idle worker: {_stats(promotion(bench, args.delayed, False))}",
                f"promotion, 2 busy workers: {_stats(promotion(bench, args.delayed, True))}",
                f"wait() after the job's end: {_stats(wait_latency(bench, args.waits))}",
            ]
            for line in lines:
                print(f"{broker}: {line}", flush=True)
            sys.stdout.flush()
            if broker == "redis":
                _drop_keys(bench)


def _drop_keys(bench: Bench) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"jb:{{{bench.common_config()['bench_id']}}}:"
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    main()
