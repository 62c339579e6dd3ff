"""Huey with its thread consumer, on Redis or on its SQLite storage. A scenario's N processes
are N ``huey_consumer -k thread -w T`` processes on the same queue."""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from typing import Any

from harness.common import HERE, NOOP, PYTHON, SLEEP, Command, Workers, peer_env

DB_ENV = "JOBBENCH_BENCHMARK_HUEY_DB"
# Huey polls SQLite (Redis it waits on with BRPOP). Its defaults (-d 0.1 -m 10: 100 ms, backing
# off to 10 s while idle) would put seconds on the latency; it gets jobbench's SQLite polling.
SQLITE_POLLING = ["--delay", "0.001", "--max-delay", "0.008", "--backoff", "2"]


class HueySystem:
    kinds = (NOOP, SLEEP)
    drain_threads = 1  # W2-W4: one job at a time per process

    def __init__(self, broker: str, root: Path) -> None:
        self.broker, self.root = broker, root
        self.key = f"huey-{broker}"
        self.label = f"Huey, {'Redis' if broker == 'redis' else 'SQLite'} (thread consumer)"
        self.db_file = root / "huey.sqlite3"
        self._module: Any = None

    @property
    def module(self) -> Any:
        if self._module is None:
            os.environ[DB_ENV] = str(self.db_file)  # read when the module is imported
            self._module = importlib.import_module(f"peers.huey_{self.broker}_tasks")
        return self._module

    def fresh(self) -> None:
        if self.broker != "sqlite":
            return  # Redis: the DB was flushed
        storage = self.module.huey.storage
        storage.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_file}{suffix}").unlink(missing_ok=True)
        storage.initialize_schema()  # a new, empty file

    def producer(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def enqueue(self, kind: str) -> None:
        self.module.tasks[kind]()

    def _flags(self, workers: Workers) -> list[str]:
        flags = ["-k", "thread", "-w", str(workers.threads)]
        return flags + (SQLITE_POLLING if self.broker == "sqlite" else [])

    def worker_commands(self, workers: Workers) -> list[Command]:
        target = f"peers.huey_{self.broker}_tasks.huey"
        argv = [PYTHON, "-m", "huey.bin.huey_consumer", target, "-q", *self._flags(workers)]
        env = {**peer_env(), DB_ENV: str(self.db_file)}
        return [Command(argv, cwd=HERE, env=env) for _ in range(workers.processes)]

    def describe(self, workers: Workers) -> str:
        return f"{workers.processes} × `huey_consumer {' '.join(self._flags(workers))}`"

    def close(self) -> None:
        if self._module is not None and self.broker == "sqlite":
            self._module.huey.storage.close()
