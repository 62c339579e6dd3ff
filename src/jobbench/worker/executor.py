"""The executor: a long-lived child of the worker that claims and runs job after job.

It has the apps imported and the site connections pooled, so a job costs no fork. It tells
its parent when a job starts and ends (one line each on a pipe), so the parent can enforce the
hard deadline and settle the job if the executor dies. Signals from the parent:

* SIGALRM (its own timer) raises ``JobTimeoutException`` in the job: the soft timeout;
* SIGUSR1 raises ``StopJob`` in the job: stop it now (cold shutdown, ``jobs stop``);
  (in an ``async def`` job both cancel its task instead, see jobbench.jobs.aio);
* SIGUSR2 asks it to exit after the current job (warm shutdown).

It runs in its own process group, so the parent's hard stop (``killpg``) also reaps any
children the job forked, and it asks the kernel to kill it if the parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, Retention
from jobbench.brokers.factory import get_broker, retention
from jobbench.errors import BrokerError, JobTimeoutException
from jobbench.jobs import aio
from jobbench.jobs.execute import Outcome, StopJob, execute_job
from jobbench.jobs.record import JobRecord

MAX_BACKOFF = 3600.0
IDLE_CLAIM_WAIT = 1.0


@dataclass
class ExecutorConfig:
    bench_path: str
    worker_name: str
    queues: list[str]
    strategy: str = "default"
    burst: bool = False


class _State:
    in_job = False
    exit_after_job = False
    timeout = 0


def _on_alarm(_sig: int, _frame: FrameType | None) -> None:
    if _State.in_job:
        exc = JobTimeoutException(f"Job exceeded its timeout of {_State.timeout} s (soft stop)")
        if not aio.interrupt(exc):  # an async job is cancelled instead (jobbench.jobs.aio)
            raise exc


def _on_stop(_sig: int, _frame: FrameType | None) -> None:
    if _State.in_job:
        if not aio.interrupt(StopJob("stopped on request")):
            raise StopJob("stopped on request")
        return
    _State.exit_after_job = True


def _on_warm(_sig: int, _frame: FrameType | None) -> None:
    _State.exit_after_job = True


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """PR_SET_PDEATHSIG: the kernel sends ``sig`` to us when our parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))
    except (OSError, AttributeError):
        pass  # not Linux: the parent's heartbeat expiry still settles the job


def backoff(retry_count: int) -> float:
    """Seconds before retry number ``retry_count + 1``: 1, 2, 4, ... capped at an hour."""
    return float(min(2**retry_count, MAX_BACKOFF))


def order_queues(queues: list[str], strategy: str, turn: int) -> list[str]:
    if strategy == "round_robin" and queues:
        k = turn % len(queues)
        return queues[k:] + queues[:k]
    if strategy == "random":
        return random.sample(queues, len(queues))
    return queues


def record_outcome(
    broker: Broker, record: JobRecord, worker: str, outcome: Outcome, keep: Retention
) -> None:
    if outcome.status == "finished":
        broker.finish(record.id, worker, outcome.result, keep)
    elif outcome.status == "stopped":
        broker.mark_stopped(record.id, worker, outcome.exc_info or "stopped", keep)
    else:
        retrying = outcome.retry and record.retries_left > 0
        retry_at = time.time() + backoff(record.retry_count) if retrying else None
        broker.fail(record.id, worker, outcome.exc_info or "failed", keep, retry_at=retry_at)


def run_one(record: JobRecord, bench: Bench, broker: Broker) -> Outcome:
    """Execute with the soft timeout armed; never raises."""
    _State.timeout = record.timeout
    _State.in_job = True
    try:
        if record.timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, record.timeout)
        return execute_job(record, bench, broker)
    except StopJob:
        return Outcome("stopped", exc_info="stopped on request")
    except JobTimeoutException:
        return Outcome("failed", exc_info=traceback.format_exc())
    finally:
        _State.in_job = False
        signal.setitimer(signal.ITIMER_REAL, 0)


def _sync_task(broker: Broker, bench: Bench, record: JobRecord) -> None:
    """A stop or timeout can land outside the job's own handlers (say while its task is being
    marked Running): bring the Background Task in line with what the broker recorded."""
    from jobbench.jobs.tracking import sync_task

    with contextlib.suppress(Exception):  # tracking never takes the executor down
        sync_task(broker, bench, record.id, None)


_outage = {"pause": 0.0}


def _back_off() -> None:
    _outage["pause"] = min(10.0, max(0.5, _outage["pause"] * 2))
    time.sleep(_outage["pause"])


def _claim(broker: Broker, order: list[str], worker: str, wait: float) -> JobRecord | None:
    """Claim, riding out a broker outage with a backoff (0.5 s doubling to 10 s) instead of
    dying and being restarted in a loop.

    A claim whose reply was lost in an outage (the server ran it, the answer never came)
    leaves a job ``started`` under our name that we never ran, and that no reaper takes while
    we are alive: once the broker answers again, take such a job back first. It never ran, so
    this is its first run."""
    try:
        if _outage["pause"]:
            orphan = _lost_claim(broker, worker)
            if orphan is not None:
                _outage["pause"] = 0.0
                return orphan
        record = broker.claim(order, worker, wait)
    except BrokerError:
        _back_off()
        return None
    _outage["pause"] = 0.0
    return record


def _lost_claim(broker: Broker, worker: str) -> JobRecord | None:
    for record in broker.find(status="started", limit=10_000):
        if record.worker == worker:
            return record
    return None


def _settle(
    broker: Broker,
    bench: Bench,
    worker: str,
    record: JobRecord,
    outcome: Outcome,
    keep: Retention,
    order: list[str],
) -> JobRecord | None:
    """Record the outcome; after a success, claim the next job in the same round trip.

    No next job is claimed once a warm shutdown was asked for."""
    if outcome.status == "finished" and not _State.exit_after_job:
        try:
            return broker.finish_and_claim(record.id, worker, outcome.result, keep, order)
        except BrokerError:
            _finish_after_outage(broker, record, worker, outcome, keep)
            return None  # a next job the lost reply claimed is taken back by _claim
    record_outcome(broker, record, worker, outcome, keep)
    if record.task_id and outcome.status != "finished":
        _sync_task(broker, bench, record)
    return None


def _finish_after_outage(
    broker: Broker, record: JobRecord, worker: str, outcome: Outcome, keep: Retention
) -> None:
    """The broker went away mid finish: retry until it answers (finish is conditional, so a
    finish that did land is not redone)."""
    while True:
        _back_off()
        try:
            broker.finish(record.id, worker, outcome.result, keep)
            return
        except BrokerError:
            continue


def _started(record: JobRecord) -> list[object]:
    return ["S", record.id, [record.timeout, record.method, record.queue]]


def _tell(fd: int, *events: list[object]) -> None:
    """One JSON line per event ([kind, job id, detail]); ids may hold any character."""
    os.write(fd, b"".join(json.dumps(e).encode() + b"\n" for e in events))


def executor_main(cfg: ExecutorConfig, pipe_fd: int) -> int:
    """Body of the executor process; returns its exit code."""
    os.setpgid(0, 0)
    die_with_parent()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGUSR1, _on_stop)
    signal.signal(signal.SIGUSR2, _on_warm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to shut down
    signal.signal(signal.SIGTERM, _on_warm)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the parent's wake-up handler is not ours
    signal.set_wakeup_fd(-1)
    bench = Bench(Path(cfg.bench_path))
    conf = bench.common_config()
    broker = get_broker(bench, conf)
    keep = retention(conf)
    turn = 0
    record: JobRecord | None = None
    announced = False
    while record is not None or not _State.exit_after_job:
        if record is None:
            order = order_queues(cfg.queues, cfg.strategy, turn)
            turn += 1
            wait = 0.0 if cfg.burst else IDLE_CLAIM_WAIT
            record, announced = _claim(broker, order, cfg.worker_name, wait), False
            if record is None:
                if cfg.burst and not _outage["pause"]:  # empty, not unreachable: done
                    break
                continue
        if not announced:
            _tell(pipe_fd, _started(record))
        outcome = run_one(record, bench, broker)
        order = order_queues(cfg.queues, cfg.strategy, turn)  # each claim takes the next turn
        turn += 1
        following = _settle(broker, bench, cfg.worker_name, record, outcome, keep, order)
        # One write (one wake-up of the parent) for "this ended" and "the next one started".
        lines: list[list[object]] = [["E", record.id, outcome.status]]
        if following is not None:
            lines.append(_started(following))
        _tell(pipe_fd, *lines)
        record, announced = following, following is not None
    return 0
