"""Celery with its prefork pool on Redis: one ``celery worker -P prefork -c P`` (a parent that
takes messages and hands them to P forked child processes). Prefork children run one task at
a time: Celery has no threads inside a prefork child, so ``threads`` is not used."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

from harness.common import HERE, NOOP, PYTHON, SLEEP, Command, Workers, peer_env

# Gossip, mingle and heartbeats talk to other workers through the broker: with one worker
# they only add start-up time (mingle waits for replies) and idle traffic.
QUIET = ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]


class CelerySystem:
    key = "celery"
    label = "Celery, Redis (prefork)"
    broker = "redis"
    kinds = (NOOP, SLEEP)
    drain_threads = 1  # W2-W4: one job at a time per process

    def __init__(self) -> None:
        self._module: Any = None

    @property
    def module(self) -> Any:
        if self._module is None:
            self._module = importlib.import_module("peers.celery_tasks")
        return self._module

    def fresh(self) -> None:
        """The flush dropped kombu's queue binding, which the producer declared (and cached)
        once: declare it again, or the next messages would find no queue."""
        app = self.module.app
        with app.connection_for_write() as conn:
            app.amqp.queues["default"].bind(conn).declare()

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def enqueue(self, kind: str) -> None:
        self.module.tasks[kind].delay()

    def _flags(self, workers: Workers) -> list[str]:
        return ["-P", "prefork", "-c", str(workers.processes), "-Q", "default"]

    def worker_commands(self, workers: Workers) -> list[Command]:
        argv = [PYTHON, "-m", "celery", "-A", "peers.celery_tasks", "worker"]
        return [Command([*argv, *self._flags(workers), *QUIET], cwd=HERE, env=peer_env())]

    def describe(self, workers: Workers) -> str:
        return f"1 × `celery worker {' '.join(self._flags(workers))}`"

    def close(self) -> None:
        if self._module is not None:
            self._module.app.pool.force_close_all()
