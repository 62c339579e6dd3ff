"""Several jobs at once in one executor: job threads beside the executor's main thread.

* ``async def`` jobs run up to ``async_concurrency`` at once: each in a thread of its own that
  awaits it on the thread's event loop (``async_mode = "thread"``, the default), or all as
  tasks of one shared event loop (``async_mode = "loop"``, jobbench.worker.aloop).
* Sync jobs run in threads only with ``--concurrency N`` (N > 1), up to N at once; with N = 1
  they run in the main thread as before, where SIGALRM gives them an exact soft timeout.

The main thread claims a job while a slot of each kind is free (it cannot know a job's kind
before claiming it), reads the job's kind from its function, and hands it to a thread. Each
thread runs its job, records the outcome in the broker and tells the parent itself, so a
long sync job in the main thread never holds up the others.

Soft timeouts in threads: an async job's task is cancelled at its deadline by its own event
loop (jobbench.jobs.aio.soft_deadline); a sync job gets ``JobTimeoutException`` raised in its
thread by the main thread (``PyThreadState_SetAsyncExc``), which lands at the next Python
instruction: a job blocked in C meets the parent's hard deadline instead. A stop of one job
(``jobs stop``, cold shutdown) reaches only that job's thread the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from jobbench.bench import Bench
from jobbench.errors import JobTimeoutException
from jobbench.jobs import aio
from jobbench.jobs.enqueue import resolve
from jobbench.jobs.execute import Outcome, StopJob
from jobbench.jobs.record import JobRecord
from jobbench.jobs.trust import check_method
from jobbench.worker.aloop import SharedLoop

ASYNC, SYNC = "async", "sync"
ASYNC_STREAK = 32  # async jobs claimed in a row before they are claimed several at a time
_messages: dict[int, str] = {}  # thread ident -> message of the exception raised into it


def _message(default: str) -> str:
    return _messages.pop(threading.get_ident(), default)


class SlotTimeout(JobTimeoutException):
    """Raised into a job thread at its soft deadline (instantiated there, without arguments:
    ``PyThreadState_SetAsyncExc`` takes a class)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (_message("Job exceeded its timeout (soft stop)"),)))


# Tracebacks and logs name it as what it is to the job (a JobTimeoutException), not by this
# module's helper class.
SlotTimeout.__module__, SlotTimeout.__qualname__ = "jobbench.errors", "JobTimeoutException"


class SlotStop(StopJob):
    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("stopped on request",)))


def _timeout_message(record: JobRecord) -> str:
    return f"Job exceeded its timeout of {record.timeout} s (soft stop)"


def raise_in_thread(ident: int, exc_type: type[BaseException], message: str) -> bool:
    _messages[ident] = message
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type)
    )
    return bool(done == 1)


@dataclass
class Slot:
    record: JobRecord
    kind: str
    soft_deadline: float | None  # time.monotonic(); sync thread jobs only
    ident: int | None = None
    finished: bool = False
    alarmed: bool = False
    stopping: bool = False
    task: asyncio.Task[Any] | None = None  # on the shared loop (async_mode "loop")


class Slots:
    """The job threads of one executor and what runs in them."""

    def __init__(
        self,
        bench: Bench,
        run: Callable[[JobRecord], Outcome],
        settle: Callable[[JobRecord, Outcome], None],
        sync_limit: int,
        async_limit: int,
        run_async: Callable[[JobRecord], Coroutine[Any, Any, Outcome]] | None = None,
    ) -> None:
        """``run_async`` given: async jobs are tasks of one shared loop (async_mode "loop")."""
        self.bench = bench
        self._run, self._settle, self._run_async = run, settle, run_async
        self.sync_limit, self.async_limit = sync_limit, async_limit
        self.threaded_sync = sync_limit > 1
        self._shared = SharedLoop() if run_async is not None else None
        async_threads = 0 if self._shared is not None else async_limit
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, (sync_limit if self.threaded_sync else 0) + async_threads),
            thread_name_prefix="jobbench-job",
        )
        self._cond = threading.Condition()
        self.running: dict[str, Slot] = {}
        self._kinds: dict[tuple[str, str], str] = {}
        self._async_streak = 0  # async jobs claimed in a row (see room)
        # Successes the main thread records in its next round trip, with the next claim: from
        # its wait for room until it blocks in a claim, runs a job itself or leaves (release).
        self._collecting = False
        self._done: list[tuple[JobRecord, Outcome]] = []

    # -- what kind of job, and is there room -----------------------------------------------
    def kind_of(self, record: JobRecord) -> str:
        """``async`` for an ``async def`` function; ``sync`` otherwise, and for anything that
        does not resolve or may not run here (execute_job then fails it with the reason)."""
        key = (record.site, record.method)
        kind = self._kinds.get(key)
        if kind is None:
            kind = SYNC
            with contextlib.suppress(Exception):  # decided properly by execute_job
                check_method(record.method, self.bench.merged_config(record.site))
                self.bench.add_apps_dir_to_path()  # as the job's site context will
                fn = resolve(record.method)
                if inspect.iscoroutinefunction(getattr(fn, "__func__", fn)):
                    kind = ASYNC
            self._kinds[key] = kind
        return kind

    def hold(self) -> set[str] | None:
        """For a batch claim (Broker.settle_and_claim): the methods that start at once here,
        so the broker holds the jobs that wait for the main thread; None when no job waits
        for it (job threads run the sync jobs)."""
        if self.threaded_sync:
            return None
        return {method for (_site, method), kind in self._kinds.items() if kind == ASYNC}

    def _count(self, kind: str) -> int:
        return sum(1 for s in self.running.values() if s.kind == kind)

    def has_room(self) -> bool:
        """A slot of each kind is free (the next claim may be of either)."""
        sync_full = self.threaded_sync and self._count(SYNC) >= self.sync_limit
        return not sync_full and self._count(ASYNC) < self.async_limit

    def note(self, kind: str) -> None:
        """Count a claimed job's kind, for ``room``."""
        self._async_streak = self._async_streak + 1 if kind == ASYNC else 0

    def room(self) -> int:
        """How many jobs of either kind can start now: the smaller free count; with sync
        jobs in the main thread, one (it runs a sync job itself, after claiming), unless the
        last ASYNC_STREAK jobs claimed were all async: then the free async slots. A sync job
        in such a batch behind another waits for the main thread, told to the parent as
        waiting until it starts (worker/executor.py, _tell_claimed)."""
        free_async = self.async_limit - self._count(ASYNC)
        if not self.threaded_sync:
            if free_async <= 0:
                return 0
            return free_async if self._async_streak >= ASYNC_STREAK else 1
        return max(0, min(self.sync_limit - self._count(SYNC), free_async))

    def wait_for_room(self, timeout: float) -> list[tuple[JobRecord, Outcome]]:
        """Wait up to ``timeout`` for room (none needed when there is some already); return
        the successes handed over meanwhile, which the caller now records.

        From here until ``release`` job threads hand their successes to the main thread,
        which records them with its next claim: a round trip shared by several jobs, not one
        per job (only while the main thread comes back here within a round trip)."""
        with self._cond:
            self._collecting = True
            if not self.has_room() and not self._done:
                self._cond.wait(timeout)
            done, self._done = self._done, []
            return done

    def release(self) -> list[tuple[JobRecord, Outcome]]:
        """The main thread is about to block (a waiting claim, a sync job of its own) or to
        leave: job threads record their own successes again. Returns those handed over
        since its last wait, which it records now."""
        with self._cond:
            self._collecting = False
            done, self._done = self._done, []
            return done

    def here(self) -> set[str]:
        """Ids of the jobs this executor has: running, or ended with a success not recorded."""
        with self._cond:
            return set(self.running) | {record.id for record, _ in self._done}

    def _hand_over(self, slot: Slot, outcome: Outcome) -> bool:
        """Leave a success to the main thread's next round trip, while it collects them
        (from its wait for room until ``release``)."""
        if outcome.status != "finished":
            return False
        with self._cond:
            if any(record is slot.record for record, _ in self._done):
                return True  # (a stop or timeout raised into us just after handing it over)
            if not self._collecting:
                return False
            self._done.append((slot.record, outcome))
            self.running.pop(slot.record.id, None)
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            if self.running:
                self._cond.wait(timeout)
            return not self.running

    def runs_inline(self, kind: str) -> bool:
        return kind == SYNC and not self.threaded_sync

    # -- running ----------------------------------------------------------------------------
    def start(self, record: JobRecord, kind: str) -> None:
        timeout = record.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        slot = Slot(record, kind, deadline if kind == SYNC else None)
        with self._cond:
            self.running[record.id] = slot
        if kind == ASYNC and self._shared is not None:
            self._shared.spawn(lambda: self._task_body(slot, deadline))
        else:
            self._pool.submit(self._body, slot, deadline)

    def _body(self, slot: Slot, deadline: float | None) -> None:
        slot.ident = threading.get_ident()
        outcome: Outcome | None = None
        try:
            message = _timeout_message(slot.record)
            aio.soft_deadline(deadline if slot.kind == ASYNC else None, message)
            outcome = self._run(slot.record)
        except StopJob:
            outcome = Outcome("stopped", exc_info="stopped on request")
        except BaseException:  # noqa: BLE001 - a timeout landing around the job's own handlers
            outcome = Outcome("failed", exc_info=traceback.format_exc())
        finally:
            slot.finished = True  # no more exceptions are raised into this thread
            self._settle_safely(slot, outcome)

    async def _task_body(self, slot: Slot, deadline: float | None) -> None:
        """An async job as a task of the shared loop; settled as a thread job is."""
        assert self._run_async is not None and self._shared is not None
        slot.ident, slot.task = threading.get_ident(), asyncio.current_task()
        timer = None
        if deadline is not None and slot.task is not None:
            message = _timeout_message(slot.record)
            delay = max(0.0, deadline - time.monotonic())
            timeout = JobTimeoutException(message)
            timer = self._shared.loop.call_later(delay, aio.cancel_with, slot.task, timeout)
        outcome: Outcome | None = None
        try:
            outcome = await self._run_async(slot.record)
        except StopJob:
            outcome = Outcome("stopped", exc_info="stopped on request")
        except BaseException:  # noqa: BLE001 - a cancellation landing outside the job's handlers
            outcome = Outcome("failed", exc_info=traceback.format_exc())
        finally:
            slot.finished = True
            if timer is not None:
                timer.cancel()
            self._settle_safely(slot, outcome)

    def _settle_safely(self, slot: Slot, outcome: Outcome | None) -> None:
        if outcome is None:
            outcome = Outcome("failed", exc_info="the job thread ended without an outcome")
        try:
            for _ in range(3):  # a stop or timeout raised into us just as the job ended
                try:
                    if not self._hand_over(slot, outcome):
                        self._settle(slot.record, outcome)
                    break
                except (SlotTimeout, SlotStop):
                    continue  # recording is conditional: doing it again is harmless
        except BaseException:  # noqa: BLE001 - the parent settles it when the executor ends
            logging.getLogger("jobbench.worker").exception(
                "could not record the outcome of %s (the worker settles it)", slot.record.id
            )
        finally:
            with self._cond:
                self.running.pop(slot.record.id, None)
                self._cond.notify_all()

    # -- timeouts and stops from the main thread -------------------------------------------
    def check_deadlines(self, now: float) -> float | None:
        """Raise the soft timeout into sync job threads past their deadline; return the next
        deadline still ahead (None: none)."""
        upcoming: float | None = None
        for slot in list(self.running.values()):
            if slot.soft_deadline is None or slot.alarmed or slot.finished:
                continue
            if now >= slot.soft_deadline and slot.ident is not None:
                slot.alarmed = True
                message = _timeout_message(slot.record)
                raise_in_thread(slot.ident, SlotTimeout, message)
            elif upcoming is None or slot.soft_deadline < upcoming:
                upcoming = slot.soft_deadline
        return upcoming

    def stop(self, job_id: str | None) -> bool:
        """Stop one job (None: every job) running in a thread; False if none matched."""
        hit = False
        for slot in list(self.running.values()):
            if job_id is not None and slot.record.id != job_id:
                continue
            if slot.ident is None or slot.finished or slot.stopping:
                continue
            slot.stopping = hit = True
            if slot.task is not None and self._shared is not None:
                self._shared.cancel(slot.task, SlotStop())
            elif slot.kind == ASYNC:
                aio.interrupt(SlotStop(), slot.ident)
            else:
                raise_in_thread(slot.ident, SlotStop, "stopped on request")
        return hit

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._shared is not None:
            self._shared.close()
