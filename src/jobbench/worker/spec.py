"""What the worker's supervising parent shares with its executor child, kept apart from the
executor so that the parent imports none of what runs jobs (the site context, SQLAlchemy, app
code): it only forks, and the child imports ``worker/executor.py`` after the fork."""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass

MAX_BACKOFF = 3600.0
DEFAULT_ASYNC_CONCURRENCY = 10


@dataclass
class ExecutorConfig:
    bench_path: str
    worker_name: str
    queues: list[str]
    strategy: str = "default"
    burst: bool = False
    concurrency: int = 1  # sync jobs at once; above 1 they run in threads (worker/slots.py)
    async_concurrency: int = DEFAULT_ASYNC_CONCURRENCY
    async_mode: str = "thread"  # or "loop": one shared event loop (worker/aloop.py)


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """PR_SET_PDEATHSIG: the kernel sends ``sig`` to us when our parent dies (Linux).

    The request covers only a parent still alive when it is made: one that died between our
    fork and this call (a SIGKILL while the child was starting) leaves us adopted by init,
    never signalled, running jobs nobody supervises. So a child passes ``parent``, the pid it
    was forked from, and leaves at once when its parent is no longer that one."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))
    except (OSError, AttributeError):
        pass  # not Linux: the parent's heartbeat expiry still settles the job
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def backoff(retry_count: int) -> float:
    """Seconds before retry number ``retry_count + 1``: 1, 2, 4, ... capped at an hour."""
    return float(min(2**retry_count, MAX_BACKOFF))
