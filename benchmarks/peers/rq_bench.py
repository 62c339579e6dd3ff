"""RQ with ``SimpleWorker`` (jobs run in the worker process, no fork per job): a scenario's N
processes are N ``rq worker -w rq.worker.SimpleWorker`` processes. RQ has no threads."""

from __future__ import annotations

import contextlib
from typing import Any

from harness.common import HERE, NOOP, PYTHON, REDIS_URL, SLEEP, Command, Workers, peer_env

QUEUE = "default"


class RQSystem:
    key = "rq"
    label = "RQ, SimpleWorker"
    broker = "redis"
    kinds = (NOOP, SLEEP)
    drain_threads = 1  # W2-W4: one job at a time per process

    def __init__(self) -> None:
        self._queue: Any = None

    @property
    def queue(self) -> Any:
        if self._queue is None:
            import redis
            import rq

            self._queue = rq.Queue(QUEUE, connection=redis.Redis.from_url(REDIS_URL))
        return self._queue

    def fresh(self) -> None:
        """Nothing beyond the flushed DB."""

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def enqueue(self, kind: str) -> None:
        from bench_app import jobs

        self.queue.enqueue(getattr(jobs, kind))

    def worker_commands(self, workers: Workers) -> list[Command]:
        argv = [PYTHON, "-m", "rq.cli", "worker", "--url", REDIS_URL, "--path", str(HERE)]
        argv += ["-w", "rq.worker.SimpleWorker", "--quiet", QUEUE]
        return [Command(argv, cwd=HERE, env=peer_env()) for _ in range(workers.processes)]

    def describe(self, workers: Workers) -> str:
        return f"{workers.processes} × `rq worker -w rq.worker.SimpleWorker`"

    def close(self) -> None:
        if self._queue is not None:
            self._queue.connection.close()
