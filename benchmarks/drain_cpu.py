"""What a drain costs per job: the workers' CPU, Redis's CPU and the broker calls (docs/scaling.md).

    python benchmarks/drain_cpu.py [--jobs 8000] [--kind async_sleep_10ms] [--processes 2]
        [--reps 2] [-- worker options...]

Enqueues JOBS jobs of KIND (a job body of bench_app/jobs.py: noop, sleep_10ms,
async_sleep_10ms) on a fresh bench on Redis DB 12 (flushed, as benchmarks/run.py does), then
runs PROCESSES burst workers (``jobbench worker --burst`` plus the options after ``--``) until
they exit. Prints, per repetition:

* the steady rate: (JOBS - 1) / (first job's end -> last job's end), as W5 reads it;
* worker CPU per job: user + sys of the worker trees (supervisors and executors, start-up
  included), from ``getrusage(RUSAGE_CHILDREN)`` once they have exited;
* Redis CPU per job (INFO cpu) and the ``FCALL`` calls per job (INFO commandstats): how many
  jobs share a broker round trip.

Compare two worker settings back to back (e.g. ``-- --async-concurrency 50`` against
``-- --async-concurrency 50 --async-mode loop``): this machine's speed drifts between runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, peers, bench_app

from harness.common import COUNTER, PYTHON, client, flush_db, job_env  # noqa: E402
from peers import jobbench_source  # noqa: E402
from peers.jobbench_bench import QUEUE, JobbenchSystem  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8000)
    parser.add_argument("--kind", default="async_sleep_10ms")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("worker_options", nargs="*", help="after --: jobbench worker options")
    return parser


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _redis_cpu() -> float:
    info = client().info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def one_run(root: Path, jobs: int, kind: str, processes: int, options: list[str]) -> str:
    flush_db()
    system = JobbenchSystem("redis", root)
    system.fresh()
    with system.producer():
        for _ in range(jobs):
            system.enqueue(kind)
    argv = [PYTHON, "-m", "jobbench", "--bench", str(system.bench_path), "worker"]
    argv += ["--quiet", "--burst", "--queue", QUEUE, *options]
    env = {**os.environ, **job_env(), **jobbench_source.env()}
    client().config_resetstat()
    cpu0, redis0 = _cpu_seconds(), _redis_cpu()
    workers = [subprocess.Popen(argv, env=env) for _ in range(processes)]
    first = None
    while (done := int(client().get(COUNTER) or 0)) < jobs:
        if done and first is None:
            first = time.perf_counter()
        time.sleep(0.002)
    last = time.perf_counter()
    for worker in workers:
        worker.wait(60)
    worker_us = (_cpu_seconds() - cpu0) / jobs * 1e6
    redis_us = (_redis_cpu() - redis0) / jobs * 1e6
    calls = client().info("commandstats").get("cmdstat_fcall", {}).get("calls", 0) / jobs
    system.close()
    steady = (jobs - 1) / (last - (first or last)) if last > (first or last) else float("nan")
    return (
        f"steady {steady:,.0f} jobs/s, workers {worker_us:,.0f} µs CPU/job, "
        f"Redis {redis_us:,.0f} µs CPU/job, {calls:.2f} FCALL/job"
    )


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="jobbench-drain-cpu-"))
    try:
        for rep in range(args.reps):
            line = one_run(root, args.jobs, args.kind, args.processes, args.worker_options)
            print(f"[{rep + 1}] {' '.join(args.worker_options) or '(defaults)'}: {line}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
