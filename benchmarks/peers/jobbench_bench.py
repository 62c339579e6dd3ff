"""jobbench on its Redis broker or its SQLite broker: a fresh bench (``init`` + ``new-site``,
so a new ``bench_id`` and an empty queue) for every scenario, with ``bench_app`` installed on
the site; workers are ``python -m jobbench --bench B worker`` processes."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from harness.common import (
    ASYNC_SLEEP,
    HERE,
    NOOP,
    PYTHON,
    REDIS_URL,
    SLEEP,
    Command,
    Workers,
    job_env,
)

from peers import jobbench_source

SITE = "bench.local"
QUEUE = "default"


@functools.cache
def worker_options() -> frozenset[str]:
    """The options ``jobbench worker --help`` shows today (--concurrency and
    --async-concurrency arrive with the worker engine v2: used only once they are there)."""
    out = subprocess.run(
        [PYTHON, "-m", "jobbench", "worker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **jobbench_source.env()},
    ).stdout
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out))


class JobbenchSystem:
    kinds = (NOOP, SLEEP, ASYNC_SLEEP)
    drain_threads = 1  # W2-W4: one job at a time per process

    def __init__(self, broker: str, root: Path) -> None:
        self.broker, self.root = broker, root
        self.key = f"jobbench-{broker}"
        self.label = f"jobbench, {'Redis' if broker == 'redis' else 'SQLite'} broker"
        self.bench_path: Path | None = None

    def fresh(self) -> None:
        from jobbench.bench import init_bench
        from jobbench.brokers.factory import close_brokers
        from jobbench.sites import new_site

        close_brokers()  # the producer's connections to the previous bench
        if self.bench_path is not None:
            shutil.rmtree(self.bench_path, ignore_errors=True)
        self.bench_path = self.root / f"bench-{self.broker}-{uuid.uuid4().hex[:8]}"
        bench = init_bench(self.bench_path)  # with a new random bench_id
        shutil.copytree(
            HERE / "bench_app",
            self.bench_path / "apps" / "bench_app",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        if self.broker == "redis":
            bench.update_common_config({"redis_queue": REDIS_URL})
        new_site(bench, SITE, apps=["bench_app"])

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        import jobbench

        return jobbench.site_context(SITE, bench_path=self.bench_path)

    def enqueue(self, kind: str) -> None:
        import jobbench

        jobbench.enqueue(f"bench_app.jobs.{kind}", queue=QUEUE)

    def _flags(self, workers: Workers) -> list[str]:
        flags, have = [], worker_options()
        if workers.threads > 1 and "--concurrency" in have:
            flags += ["--concurrency", str(workers.threads)]
        if workers.async_slots and "--async-concurrency" in have:
            flags += ["--async-concurrency", str(workers.async_slots)]
        if workers.async_slots and "--async-mode" in have:
            # One shared event loop, as Dramatiq's asyncio middleware and arq run async tasks
            # (the default "thread" mode gives each async job a thread: docs/scaling.md).
            flags += ["--async-mode", "loop"]
        return flags

    def worker_commands(self, workers: Workers) -> list[Command]:
        argv = [PYTHON, "-m", "jobbench", "--bench", str(self.bench_path), "worker"]
        argv += ["--quiet", "--queue", QUEUE, *self._flags(workers)]
        env = {**job_env(), **jobbench_source.env()}
        return [Command(argv, env=env) for _ in range(workers.processes)]

    def describe(self, workers: Workers) -> str:
        flags = " ".join(self._flags(workers))
        text = f"{workers.processes} × `worker{' ' + flags if flags else ''}`"
        missing = []
        if workers.threads > 1 and "--concurrency" not in flags:
            missing.append("--concurrency")
        if workers.async_slots and "--async-concurrency" not in flags:
            missing.append("--async-concurrency")
        if missing:
            text += f" (no {' / '.join(missing)} in `jobbench worker --help`: one job at a time)"
        return text

    def close(self) -> None:
        from jobbench.brokers.factory import close_brokers

        close_brokers()
