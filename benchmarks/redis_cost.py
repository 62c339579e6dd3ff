"""What one job costs a Redis server, read off the server's own counters (docs/scaling.md).

    python benchmarks/redis_cost.py [--jobs 5000] [--concurrency 1]

Starts a private redis-server on a free loopback port (so no other client's commands are
counted), a bench with one site and a no-op job, then for each phase resets the server's
statistics (CONFIG RESETSTAT) and reads INFO after it:

* **enqueue**: JOBS calls of ``jobbench.enqueue`` from one producer;
* **enqueue_many**: JOBS jobs in batches of 1,000;
* **drain**: one burst worker (``--concurrency``) runs the 2 x JOBS queued jobs (claim, start,
  finish; the worker's heartbeats and reaper calls are counted too, they are part of the bill);
* the same again with ``track_job=True``: each job also writes its Background Task in the
  site's database (SQLite here), which is where the rate goes.

Per job: commands (and which), bytes in and out of the server, and server CPU time (user + sys).
The server is single-threaded, so 1 / (CPU seconds per job) is the rate at which that one core
is saturated: the ceiling one Redis server puts on a bench, whatever the number of workers.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

import jobbench
from jobbench.bench import Bench, init_bench
from jobbench.sites import new_site

SITE = "cost.local"
APP = "costapp"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    proc = subprocess.Popen([*cmd, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def _bench(root: Path, url: str) -> Bench:
    bench = init_bench(root / "bench")
    app = bench.path / "apps" / APP
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "hooks.py").write_text("doctypes = []\n")
    (app / "jobs.py").write_text("def noop(n=0):\n    return n\n")
    bench.update_common_config({"redis_queue": url})
    new_site(bench, SITE, apps=[APP])
    return bench


def _measure(client: redis.Redis, run: Callable[[], None]) -> dict[str, Any]:
    client.config_resetstat()
    before = client.info("cpu")
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = client.info("everything")
    cpu = sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    commands = {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in after.items()
        if name.startswith("cmdstat_") and name not in ("cmdstat_config", "cmdstat_info")
    }
    return {
        "wall": wall,
        "cpu": cpu,
        "commands": commands,
        "in": int(after["total_net_input_bytes"]),
        "out": int(after["total_net_output_bytes"]),
    }


def _row(phase: str, jobs: int, m: dict[str, Any]) -> str:
    calls = sum(m["commands"].values())
    top = sorted(m["commands"].items(), key=lambda kv: -kv[1])[:6]
    spread = ", ".join(f"{name} {count / jobs:.2f}" for name, count in top)
    cpu_us = m["cpu"] / jobs * 1e6
    ceiling = jobs / m["cpu"] if m["cpu"] > 0 else float("inf")
    return (
        f"| {phase} | {calls / jobs:.2f} | {m['in'] / jobs:,.0f} | {m['out'] / jobs:,.0f} "
        f"| {cpu_us:.1f} | {ceiling:,.0f} | {jobs / m['wall']:,.0f} | {spread} |"
    )


def _drain(bench: Bench, concurrency: int) -> None:
    cmd = [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "worker", "--burst"]
    cmd += ["--queue", "default", "--concurrency", str(concurrency)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    jobs, concurrency = int(args.jobs), int(args.concurrency)
    proc, url = _server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = _bench(Path(tmp), url)
            client = redis.Redis.from_url(url)
            method = f"{APP}.jobs.noop"

            def one_by_one() -> None:
                with jobbench.site_context(SITE, bench.path):
                    for i in range(jobs):
                        jobbench.enqueue(method, n=i)

            def in_batches() -> None:
                with jobbench.site_context(SITE, bench.path):
                    for start in range(0, jobs, 1000):
                        end = min(jobs, start + 1000)
                        specs = [{"method": method, "kwargs": {"n": i}} for i in range(start, end)]
                        jobbench.enqueue_many(specs)

            def tracked() -> None:
                with jobbench.site_context(SITE, bench.path):
                    for i in range(jobs):
                        jobbench.enqueue(method, n=i, track_job=True)

            drain = f"drain (worker, concurrency {concurrency})"
            rows = [
                _row("enqueue", jobs, _measure(client, one_by_one)),
                _row("enqueue_many", jobs, _measure(client, in_batches)),
                _row(drain, 2 * jobs, _measure(client, lambda: _drain(bench, concurrency))),
                _row("enqueue, track_job=True", jobs, _measure(client, tracked)),
                _row(
                    f"{drain}, tracked",
                    jobs,
                    _measure(client, lambda: _drain(bench, concurrency)),
                ),
            ]
    finally:
        proc.kill()
        proc.wait(10)
    print(
        "| phase | commands/job | bytes in/job | bytes out/job | server CPU µs/job "
        "| one core saturates at (jobs/s) | measured jobs/s | commands per job (top 6) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
