"""Running ``async def`` jobs: awaited to completion on an event loop, never left as a
coroutine object.

A job whose function returns an awaitable is run on this thread's event loop (one per thread,
kept between jobs). The task is created in the caller's ``contextvars`` context, so the site
context (``jobbench.local``, ``db``, ``session``) is the job's inside the coroutine as well.

Soft timeout and stop on request arrive as signals (jobbench.worker.executor). Raising from a
signal handler in the middle of the event loop could lose the loop's bookkeeping, so while an
async job runs the handler calls ``interrupt`` instead: it cancels the task from the loop's own
thread-safe wake-up path, the coroutine unwinds (its ``finally`` blocks run), and ``run``
raises the signal's exception (``JobTimeoutException``, ``StopJob``) in its place. A coroutine
that swallows the cancellation still meets the worker's hard deadline, which kills the process.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Running:
    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[Any]
    raise_instead: BaseException | None = None


_local = threading.local()  # .loop: this thread's event loop; .deadline: see soft_deadline
_running: dict[int, _Running] = {}  # thread ident -> the job being awaited on that thread


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


async def _wrap(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def interrupt(exc: BaseException, thread: int | None = None) -> bool:
    """From a signal handler or another thread: make the async job being awaited on
    ``thread`` (default: this one) end with ``exc``. False when none is being awaited there
    (the caller raises ``exc`` itself)."""
    running = _running.get(threading.get_ident() if thread is None else thread)
    if running is None or running.task.done():
        return False
    if running.raise_instead is None:
        running.raise_instead = exc
    running.loop.call_soon_threadsafe(running.task.cancel)
    return True


_instead: weakref.WeakKeyDictionary[asyncio.Task[Any], BaseException] = (
    weakref.WeakKeyDictionary()
)  # tasks of a shared loop cancelled on behalf of an exception (cancel_with)


def cancel_with(task: asyncio.Task[Any], exc: BaseException) -> None:
    """On the task's loop: cancel it so that it ends with ``exc`` (a soft timeout, a stop)
    instead of ``CancelledError``; the first such exception wins. The coroutine unwinds from
    the ``await`` it is at; ``instead_of``, where the job is awaited, swaps the exception."""
    if not task.done():
        _instead.setdefault(task, exc)
        task.cancel()


def instead_of(exc: BaseException) -> BaseException:
    """What the current task should raise for ``exc``: the exception ``cancel_with`` asked
    for when ``exc`` is the cancellation it caused, else ``exc`` itself."""
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task in _instead:
            task.uncancel()  # handled: the task goes on to record its outcome
            return _instead.pop(task)
    return exc


def soft_deadline(deadline: float | None, message: str = "") -> None:
    """Arm a soft timeout (a ``time.monotonic()`` instant) for the async jobs this thread
    awaits next: at that instant their task is cancelled and ``JobTimeoutException(message)``
    raised. Used by threads that cannot receive SIGALRM (jobbench.worker.slots)."""
    _local.deadline = (deadline, message) if deadline is not None else None


def settle(value: Any) -> Any:
    """``value`` itself, or what it resolves to when it is awaitable (an ``async def``
    function's coroutine)."""
    return run(value) if inspect.isawaitable(value) else value


def run(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` to completion and return its result (or raise its exception)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(awaitable)
    return _run_in_thread(awaitable)  # called from async code: this thread's loop is busy


def _run_here(awaitable: Awaitable[Any]) -> Any:
    loop = _loop()
    task = loop.create_task(_wrap(awaitable), context=contextvars.copy_context())
    running = _Running(loop, task)
    ident = threading.get_ident()
    _running[ident] = running
    timer = _arm(loop, ident)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if running.raise_instead is not None:
            raise running.raise_instead from None
        raise
    finally:
        _running.pop(ident, None)
        if timer is not None:
            timer.cancel()


def _arm(loop: asyncio.AbstractEventLoop, ident: int) -> asyncio.TimerHandle | None:
    armed = getattr(_local, "deadline", None)
    if armed is None:
        return None
    from jobbench.errors import JobTimeoutException

    deadline, message = armed
    delay = max(0.0, deadline - time.monotonic())
    return loop.call_later(delay, interrupt, JobTimeoutException(message), ident)


def _run_in_thread(awaitable: Awaitable[Any]) -> Any:
    """``now=True`` from inside a running event loop: run it to completion on a thread of its
    own, in a copy of the caller's context, and wait for it (as a synchronous call would)."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["result"] = context.run(_run_here, awaitable)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            outcome["error"] = exc
        finally:
            _loop().close()  # this thread ends here: its loop goes with it

    thread = threading.Thread(target=target, name="jobbench-now", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
