"""The job bodies of the benchmarks, the same for every system measured.

jobbench runs them from this app (installed on the benchmark site); Huey, Dramatiq, Celery and
RQ wrap these very functions in their own task objects (benchmarks/peers/). Every body ends
with one Redis INCR on a counter: that is the "no-op" (one round trip, what a job that touches
anything pays), and it is how the harness sees, the same way for every system, that a job ran.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from typing import Any

import redis
import redis.asyncio

URL = os.environ.get("JOBBENCH_BENCHMARK_REDIS", "redis://127.0.0.1:6379/12")
COUNTER = "jobbench-benchmarks:done"

_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
    weakref.WeakKeyDictionary()
)


def _redis() -> redis.Redis:
    """One client per process (thread-safe: each thread takes a pooled connection)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(URL)
    return _client


def _async_redis() -> Any:
    """One asyncio client per event loop (its connections belong to that loop)."""
    loop = asyncio.get_running_loop()
    found = _async_clients.get(loop)
    if found is None:
        found = _async_clients[loop] = redis.asyncio.Redis.from_url(URL)
    return found


def noop() -> None:
    """The "no-op": one Redis round trip."""
    _redis().incr(COUNTER)


def sleep_10ms() -> None:
    """10 ms of blocking I/O (time.sleep), then the INCR."""
    time.sleep(0.01)
    _redis().incr(COUNTER)


async def async_sleep_10ms() -> None:
    """10 ms of awaited I/O, then the INCR on the loop's own client (jobbench's async path)."""
    await asyncio.sleep(0.01)
    await _async_redis().incr(COUNTER)
