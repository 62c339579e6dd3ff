"""Dramatiq on its Redis broker: one ``dramatiq --processes P --threads T`` (a parent that
forks P worker processes of T threads each)."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

from harness.common import HERE, NOOP, PYTHON, SLEEP, Command, Workers, peer_env


class DramatiqSystem:
    key = "dramatiq"
    label = "Dramatiq, Redis"
    broker = "redis"
    kinds = (NOOP, SLEEP)
    drain_threads = 8  # W2-W4 too: Dramatiq's own default, and what its users run

    def __init__(self) -> None:
        self._module: Any = None

    @property
    def module(self) -> Any:
        if self._module is None:
            self._module = importlib.import_module("peers.dramatiq_tasks")
        return self._module

    def fresh(self) -> None:
        """Nothing beyond the flushed DB."""

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def enqueue(self, kind: str) -> None:
        self.module.actors[kind].send()

    def _flags(self, workers: Workers) -> list[str]:
        return ["--processes", str(workers.processes), "--threads", str(workers.threads)]

    def worker_commands(self, workers: Workers) -> list[Command]:
        argv = [PYTHON, "-m", "dramatiq", "peers.dramatiq_tasks:broker", *self._flags(workers)]
        return [Command(argv, cwd=HERE, env=peer_env())]

    def describe(self, workers: Workers) -> str:
        return f"1 × `dramatiq {' '.join(self._flags(workers))}`"

    def close(self) -> None:
        if self._module is not None:
            self._module.broker.client.close()
