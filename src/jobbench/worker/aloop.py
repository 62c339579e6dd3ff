"""The executor's shared event loop (``async_mode = "loop"``): one thread whose loop runs
every ``async def`` job of the executor as a task, up to ``async_concurrency`` at once.

Against a thread and a loop per job (``async_mode = "thread"``, the default) it saves the
thread hand-offs and wake-ups each job costs there (two dozen context switches per job on a
drain of ``await asyncio.sleep(0.01)`` jobs), at a price the job's author must know: the
loop's thread runs the jobs' synchronous code too, so a blocking call in one job (a sync
HTTP request, ``time.sleep``, a site-database write waiting on a lock that another job of
the loop holds across an ``await``) holds up all of them until it returns. docs/scaling.md
says when to choose which.

Each task runs ``execute_job_async`` in a context of its own (``contextvars``), so the site
context, user and transaction are the job's across its awaits. A soft timeout or a stop
cancels the task at the ``await`` it is at, and it ends with ``JobTimeoutException`` or
``StopJob`` as a sync job would (jobbench.jobs.aio.cancel_with); the worker's hard deadline
still kills the executor when a job never gets back to an ``await``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from jobbench.jobs import aio


class SharedLoop:
    """An event loop running in a thread of its own until ``close``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="jobbench-async", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """From any thread: run ``make()`` as a task of the loop, in a fresh context."""
        self.loop.call_soon_threadsafe(self._start, make)

    def _start(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.loop.create_task(make(), context=contextvars.Context())

    def cancel(self, task: asyncio.Task[Any], exc: BaseException) -> None:
        """From any thread: make ``task`` end with ``exc`` (aio.cancel_with)."""
        self.loop.call_soon_threadsafe(aio.cancel_with, task, exc)

    def close(self) -> None:
        """Stop the loop (its tasks have ended: the executor waits for them first)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
