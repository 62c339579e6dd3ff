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
import json
import os
import random
import signal
import threading
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
from jobbench.jobs.execute import Outcome, StopJob, execute_job, execute_job_async
from jobbench.jobs.record import JobRecord
from jobbench.worker.joblog import end_detail, retry_delay
from jobbench.worker.slots import Slots
from jobbench.worker.spec import ExecutorConfig, backoff

IDLE_CLAIM_WAIT = 1.0
CONFIG_MAX_AGE = 1.0  # seconds: how late an executor may see an edit of a config file
_KEEP_UNUSED = Retention()  # settle_and_claim's retention when it records nothing


class _State:
    in_job = False  # a sync job runs in the main thread
    inline_id: str | None = None  # its id
    exit_after_job = False
    timeout = 0
    slots: Slots | None = None
    ctrl_fd: int | None = None  # the parent's stop requests: one job id per line, "*" = all
    stop_all = False  # a stop of every job was asked for (cold shutdown)


def _on_alarm(_sig: int, _frame: FrameType | None) -> None:
    if _State.in_job:
        exc = JobTimeoutException(f"Job exceeded its timeout of {_State.timeout} s (soft stop)")
        if not aio.interrupt(exc):  # an async job is cancelled instead (jobbench.jobs.aio)
            raise exc


def _stop_requests() -> set[str]:
    """The job ids the parent wrote before its SIGUSR1 ("*": every job)."""
    fd, data = _State.ctrl_fd, b""
    if fd is not None:
        with contextlib.suppress(BlockingIOError, OSError):
            data = os.read(fd, 65536)
    ids = {line.decode(errors="replace") for line in data.split(b"\n") if line}
    # Without a control pipe a bare signal stops everything (as before there was one). With
    # one, a signal whose lines an earlier signal already read asks for nothing more.
    return ids if fd is not None else {"*"}


def _on_stop(_sig: int, _frame: FrameType | None) -> None:
    ids = _stop_requests()
    every = "*" in ids
    _State.stop_all = _State.stop_all or every
    if _State.slots is not None:
        for job_id in [None] if every else sorted(ids):
            _State.slots.stop(job_id)
    if _State.in_job and (every or _State.inline_id in ids):
        if not aio.interrupt(StopJob("stopped on request")):
            raise StopJob("stopped on request")
        return
    if every and not _State.in_job:
        _State.exit_after_job = True


def _on_warm(_sig: int, _frame: FrameType | None) -> None:
    _State.exit_after_job = True


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
        delay = retry_delay(record, outcome, backoff(record.retry_count))
        retry_at = None if delay is None else time.time() + delay
        broker.fail(record.id, worker, outcome.exc_info or "failed", keep, retry_at=retry_at)


def _ended(record: JobRecord, outcome: Outcome) -> list[object]:
    """The end line for the parent's job-end log line (worker/joblog.py)."""
    delay = retry_delay(record, outcome, backoff(record.retry_count))
    return ["E", record.id, end_detail(record, outcome, delay)]


def run_one(record: JobRecord, bench: Bench, broker: Broker) -> Outcome:
    """Execute in the main thread with the soft timeout armed; never raises."""
    _State.timeout = record.timeout
    _State.inline_id = record.id
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


def _claim(
    broker: Broker,
    order: list[str],
    worker: str,
    wait: float,
    limit: int = 1,
    hold: set[str] | None = None,
) -> list[JobRecord]:
    """Claim up to ``limit`` jobs (waiting up to ``wait`` for the first one when ``limit`` is
    1), riding out a broker outage with a backoff (0.5 s doubling to 10 s) instead of dying
    and being restarted in a loop.

    A claim whose reply was lost in an outage (the server ran it, the answer never came)
    leaves jobs ``started`` under our name that we never ran, and that no reaper takes while
    we are alive: once the broker answers again, take such jobs back first. They never ran,
    so this is their first run."""
    try:
        if _outage["pause"]:
            orphans = _lost_claims(broker, worker)
            if orphans:
                _outage["pause"] = 0.0
                return orphans
        if limit > 1:
            claimed = broker.settle_and_claim([], worker, _KEEP_UNUSED, order, limit, hold)
        else:
            record = broker.claim(order, worker, wait)
            claimed = [] if record is None else [record]
    except BrokerError:
        _back_off()
        return []
    _outage["pause"] = 0.0
    return claimed


def _lost_claims(broker: Broker, worker: str) -> list[JobRecord]:
    """Jobs started under our name that run nowhere here."""
    here = _State.slots.here() if _State.slots is not None else set()
    if _State.inline_id is not None and _State.in_job:
        here.add(_State.inline_id)
    found = broker.find(status="started", limit=10_000)
    return [r for r in found if r.worker == worker and r.id not in here]


def _settle(
    broker: Broker,
    bench: Bench,
    worker: str,
    record: JobRecord,
    outcome: Outcome,
    keep: Retention,
    order: list[str] | None,
) -> JobRecord | None:
    """Record the outcome; after a success, claim the next job of ``order`` in the same round
    trip (None: claim nothing).

    No next job is claimed once a warm shutdown was asked for."""
    if outcome.status == "finished" and order is not None and not _State.exit_after_job:
        try:
            return broker.finish_and_claim(record.id, worker, outcome.result, keep, order)
        except BrokerError:
            _finish_after_outage(broker, record, worker, outcome, keep)
            return None  # a next job the lost reply claimed is taken back by _claim
    record_outcome(broker, record, worker, outcome, keep)
    if outcome.status != "finished":  # its Background Task, and those of dependents it canceled
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
    # The start instant travels along (CLOCK_MONOTONIC is one clock for every process), so
    # the parent's deadline does not move when the line reaches it a little later.
    return ["S", record.id, [record.timeout, record.method, record.queue, time.monotonic()]]


FLUSH_EVERY = 0.05  # seconds: how stale the parent's picture of running jobs may get


class _Teller:
    """Job starts and ends for the parent, written in batches: at most every FLUSH_EVERY
    seconds, so a draining executor wakes its parent ~20 times a second instead of once per
    job. A batch is one JSON line, a list of events ``[kind, job id, detail]`` (ids may hold
    any character): one ``json.dumps`` per batch, not one per event, whose fixed cost was a
    twentieth of a no-op job's. A job that runs longer is reported by the flusher thread
    within FLUSH_EVERY. Lines lost with a dying
    executor are harmless: the parent settles every job the broker still shows as ``started``
    by this worker, and outcomes are in the broker before their line is written."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._events: list[list[object]] = []
        self._lock = threading.Lock()  # job threads report too; lines never interleave
        self._last = 0.0
        self._waiting = threading.Event()  # lines are buffered: the flusher has work
        threading.Thread(target=self._flusher, name="jobbench-teller", daemon=True).start()

    def tell(self, *events: list[object]) -> None:
        with self._lock:
            self._events.extend(events)
            if time.monotonic() - self._last >= FLUSH_EVERY:
                self._flush()
            elif not self._waiting.is_set():
                self._waiting.set()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._last = time.monotonic()
        if self._events:
            data, self._events = json.dumps(self._events).encode() + b"\n", []
            with contextlib.suppress(OSError):  # the parent is gone: we die with it anyway
                os.write(self.fd, data)

    def _flusher(self) -> None:
        while True:
            self._waiting.wait()  # asleep while nothing is buffered (an idle worker)
            time.sleep(FLUSH_EVERY)
            with self._lock:
                self._waiting.clear()
                self._flush()


@dataclass
class _Run:
    """What the executor's loop works with."""

    cfg: ExecutorConfig
    bench: Bench
    broker: Broker
    keep: Retention
    teller: _Teller
    slots: Slots
    turn: int = 0

    def order(self) -> list[str]:
        self.turn += 1  # each claim takes the next turn
        return order_queues(self.cfg.queues, self.cfg.strategy, self.turn - 1)

    def settle_thread_job(self, record: JobRecord, outcome: Outcome) -> None:
        """A job thread records its own job's outcome and tells the parent."""
        _settle(self.broker, self.bench, self.cfg.worker_name, record, outcome, self.keep, None)
        self.teller.tell(_ended(record, outcome))


def _claim_next(run: _Run) -> list[JobRecord]:
    """Wait for room in the slots (timing out the thread jobs meanwhile), then record the
    thread jobs' successes handed over meanwhile and claim as many jobs as there is room for,
    in one round trip; with room for one and nothing to record, wait in the claim instead."""
    upcoming = run.slots.check_deadlines(time.monotonic())
    pause = IDLE_CLAIM_WAIT if upcoming is None else max(0.0, upcoming - time.monotonic())
    done = run.slots.wait_for_room(min(pause, IDLE_CLAIM_WAIT))
    room = 0 if _State.exit_after_job else run.slots.room()  # (a warm shutdown may have come)
    if done or room > 1:
        claimed = _record_batch(run, done, room)
        if claimed or room == 0:
            return claimed
    if room == 0:
        return []
    busy = bool(run.slots.running)
    wait = 0.0 if run.cfg.burst else min(pause, IDLE_CLAIM_WAIT) if busy else IDLE_CLAIM_WAIT
    if wait > 0:  # about to block: successes of job threads must not wait for us meanwhile
        pending = run.slots.release()
        if pending:
            return _record_batch(run, pending, room)
    return _claim(run.broker, run.order(), run.cfg.worker_name, wait)


def _record_batch(run: _Run, done: list[tuple[JobRecord, Outcome]], room: int) -> list[JobRecord]:
    """Thread jobs' successes and the next claim of up to ``room`` jobs: one round trip."""
    worker, finished = run.cfg.worker_name, [(r.id, o.result) for r, o in done]
    hold = run.slots.hold() if room > 1 else None
    try:
        if not finished:
            return _claim(run.broker, run.order(), worker, 0.0, room, hold)
        order = run.order() if room > 0 else []
        claimed = run.broker.settle_and_claim(finished, worker, run.keep, order, room, hold)
    except BrokerError:  # a next batch the lost reply claimed is taken back by _claim
        for record, outcome in done:
            _finish_after_outage(run.broker, record, worker, outcome, run.keep)
        claimed = []
    run.teller.tell(*[_ended(record, outcome) for record, outcome in done])
    return claimed


def _loop(run: _Run) -> None:
    ready: list[JobRecord] = []  # claimed (and told to the parent), to start now
    waiting: set[str] = set()  # ids in ready told as waiting behind a sync job of ours
    while ready or not _State.exit_after_job:
        if not ready:
            ready = _claim_next(run)
            # Burst: done once the queues are empty (not unreachable) and no job runs any more.
            burst_done = run.cfg.burst and not _outage["pause"]
            if not ready and burst_done and run.slots.wait_idle(0.05):
                break
            if not ready:
                continue
            ready = _async_first(run, ready)
            waiting = _tell_claimed(run, ready)
        record = ready.pop(0)
        kind = run.slots.kind_of(record)
        run.slots.note(kind)
        if record.id in waiting and not _begin_waited(run, record):
            continue
        if not run.slots.runs_inline(kind):
            run.slots.start(record, kind)
            continue
        following = _run_inline(run, record)
        if following is not None:
            ready.insert(0, following)


def _async_first(run: _Run, ready: list[JobRecord]) -> list[JobRecord]:
    """A batch's jobs to start in the slots first, then those the main thread runs in turn
    (each kind in claim order): an async job must not wait behind a sync job of its batch,
    its start told and its deadline running."""
    inline = {r.id for r in ready if run.slots.runs_inline(run.slots.kind_of(r))}
    if not inline or len(inline) == len(ready):
        return ready
    return [r for r in ready if r.id not in inline] + [r for r in ready if r.id in inline]


def _tell_claimed(run: _Run, ready: list[JobRecord]) -> set[str]:
    """Tell the parent the jobs of a claim: started, but for the sync jobs behind another
    sync job of the batch (the main thread runs them one at a time; see Slots.room). Those
    are told as waiting ("W"): if the executor dies before their start they go back to their
    queue, and their start is told when it comes. Returns their ids."""
    lines: list[list[object]] = []
    waiting: set[str] = set()
    inline_ahead = False
    for record in ready:
        inline = run.slots.runs_inline(run.slots.kind_of(record))
        if inline and inline_ahead or record.held:  # (held: the broker holds it as waiting)
            waiting.add(record.id)
            lines.append(["W", record.id, record.queue])
        else:
            lines.append(_started(record))
        inline_ahead = inline_ahead or inline
    run.teller.tell(*lines)
    if waiting:  # now, not within FLUSH_EVERY: the sync job ahead may take long, or kill us
        run.teller.flush()
    return waiting


def _begin_waited(run: _Run, record: JobRecord) -> bool:
    """A job that waited in its batch starts now, unless it is no longer to run
    (_not_to_start): the broker begins it (its ``started_at`` now, no longer held) and the
    parent is told of its start (its deadlines run from now). Returns whether it is to run."""
    if _not_to_start(run, record):
        return False
    run.teller.tell(_started(record))
    run.teller.flush()  # before it runs: else a kill now would have it requeued, run twice
    return True


def _run_inline(run: _Run, record: JobRecord) -> JobRecord | None:
    """A sync job in the main thread; after a success the next job is claimed in the same
    round trip (when there is room for it) and told to the parent."""
    _record_released(run)  # the job may take long: job threads record their own meanwhile
    outcome = run_one(record, run.bench, run.broker)
    order = run.order() if run.slots.has_room() else None
    following = _settle(
        run.broker, run.bench, run.cfg.worker_name, record, outcome, run.keep, order
    )
    lines: list[list[object]] = [_ended(record, outcome)]
    if following is not None:
        lines.append(_started(following))
    run.teller.tell(*lines)
    return following


def _not_to_start(run: _Run, record: JobRecord) -> bool:
    """For a job that waited in its batch: during a cold shutdown leave it (the parent puts
    it back in its queue when we exit); one no longer ours (a reaper took it) is left alone;
    one a stop was asked for meanwhile (``jobs stop``, which the parent passes on only for
    running jobs) ends stopped, unrun. Else the broker begins it."""
    if _State.stop_all:
        return True
    while True:
        try:
            verdict = run.broker.begin(record.id, run.cfg.worker_name)
            break
        except BrokerError:  # it stays held: if we die now it goes back to its queue, unrun
            _back_off()
    if verdict != "stop":
        return verdict == "gone"
    outcome = Outcome("stopped", exc_info="stopped on request before it started")
    _settle(run.broker, run.bench, run.cfg.worker_name, record, outcome, run.keep, None)
    run.teller.tell(_started(record), _ended(record, outcome))
    return True


def _record_released(run: _Run) -> None:
    """Stop collecting job threads' successes, recording those handed over already."""
    pending = run.slots.release()
    if pending:
        _record_batch(run, pending, 0)


def _relay_outbox(bench: Bench) -> None:
    """Relay the after-commit jobs the broker missed at their commit (jobs/outbox.py): one pass
    now, before the first claim (so a burst worker runs what the outboxes held), then a pass a
    second in a thread of its own. Here and not in the supervisor, which loads no SQLAlchemy;
    a job that runs long does not hold it up. Never raises."""
    from jobbench.jobs.outbox import POLL_INTERVAL, OutboxRelay

    relay = OutboxRelay(bench)
    relay.poll()

    def forever() -> None:
        while True:
            time.sleep(POLL_INTERVAL)
            relay.poll()

    threading.Thread(target=forever, name="jobbench-outbox", daemon=True).start()


def executor_main(cfg: ExecutorConfig, pipe_fd: int, ctrl_fd: int | None = None) -> int:
    """Body of the executor process; returns its exit code."""
    os.setpgid(0, 0)  # (PDEATHSIG was asked for right after the fork: worker.py)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGUSR1, _on_stop)
    signal.signal(signal.SIGUSR2, _on_warm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to shut down
    signal.signal(signal.SIGTERM, _on_warm)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the parent's wake-up handler is not ours
    signal.set_wakeup_fd(-1)
    if ctrl_fd is not None:
        os.set_blocking(ctrl_fd, False)
    _State.ctrl_fd = ctrl_fd
    bench = Bench(Path(cfg.bench_path), config_max_age=CONFIG_MAX_AGE)
    conf = bench.common_config()
    broker = get_broker(bench, conf)
    keep = retention(conf)
    run: _Run | None = None

    def execute(record: JobRecord) -> Outcome:
        return execute_job(record, bench, broker)

    async def execute_async(record: JobRecord) -> Outcome:
        return await execute_job_async(record, bench, broker)

    def settle(record: JobRecord, outcome: Outcome) -> None:
        assert run is not None
        run.settle_thread_job(record, outcome)

    _relay_outbox(bench)
    shared = execute_async if cfg.async_mode == "loop" else None
    slots = Slots(bench, execute, settle, cfg.concurrency, cfg.async_concurrency, shared)
    _State.slots = slots
    teller = _Teller(pipe_fd)
    run = _Run(cfg, bench, broker, keep, teller, slots)
    try:
        _loop(run)
        _record_released(run)
        while not slots.wait_idle(0.2):  # a warm exit lets the thread jobs finish
            slots.check_deadlines(time.monotonic())
    finally:
        slots.close()
        teller.flush()
    return 0
