"""The broker contract: how job records and queues are stored and handed to workers.

A broker knows nothing of sites, documents or serialisation: it stores ``JobRecord`` values and
moves their ids between queues and statuses. Every method states what is atomic and what is
idempotent; the contract test suite (tests/contract/) holds both implementations to it.

Vocabulary: a job is *pending* while ``queued``, ``started`` or ``scheduled`` (waiting for a
retry, or a delayed job waiting for its run time); it is *final* once ``finished``, ``failed``,
``stopped`` or ``canceled``. Times are epoch seconds (``time.time()``).

``retry_at`` is the time a ``scheduled`` job is due: the run time of a delayed job
(``enqueue(run_at=...)``) as much as the time of a retry. The name stays ``retry_at`` because
it is a stored field; ``promote_due`` and ``run_now`` treat both kinds alike.

Dependencies and concurrency keys (docs/jobs.md) ride on record fields, so no method takes
more arguments for them. ``enqueue``/``enqueue_many`` of a record with ``depends_on`` (stored
ids): an id neither stored nor an earlier item of the batch raises ``DependencyNotFound``
(nothing written); with a dependency pending the job is stored ``deferred`` (a pending status
entering no queue), with all done it is queued as without them, with one failed, stopped or
canceled it is stored ``canceled`` with the reason (unless ``allow_dependency_failure``).
The step that makes a job final (finish, fail without a retry, mark_stopped, a cancel, reap)
or deletes it pending also queues its deferred dependents whose dependencies are all done, or
cancels them with the reason, transitively. A claim starts a job with a ``concurrency_key``
only while fewer than its ``concurrency_limit`` jobs of that key are ``started``; otherwise it
parks the job (still ``queued``, out of ``queue_length`` and ``position``) and goes on with
the jobs behind it. Every step that takes a job out of ``started`` frees its slot and puts
parked jobs of the key back at the head of their queues, in the same atomic step.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from jobbench.jobs.record import JobRecord


@dataclass
class WorkerInfo:
    """What a worker, or a scheduler, publishes about itself with each heartbeat.

    Schedulers register in the same registry as workers (``kind="scheduler"``, no queues),
    so one mechanism says which processes are alive; readers that mean workers filter on
    ``kind``. The fields after ``heartbeat`` are a scheduler's only."""

    name: str
    pid: int
    host: str
    queues: list[str]
    state: str = "idle"  # idle | busy | stopping; a scheduler: leader | standby | stopping
    current_job: str | None = None
    successful: int = 0
    failed: int = 0
    working_time: float = 0.0
    birth: float = field(default_factory=time.time)
    heartbeat: float = field(default_factory=time.time)
    kind: str = "worker"  # worker | scheduler
    leader: bool = False  # holds the scheduler lease
    tick_interval: float | None = None  # seconds between aligned ticks
    last_tick: float | None = None  # epoch of its last tick (a leader's: it did the work)
    next_tick: float | None = None  # epoch of the next aligned tick it will wake for

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EnqueueItem:
    """One job of ``Broker.enqueue_many``: a record and the options ``enqueue`` takes for it."""

    record: JobRecord
    at_front: bool = False
    deduplicate: bool = False
    once_key: str | None = None
    run_at: float | None = None
    # The id was just made at random (128 bits): no stored record can have it, so the broker
    # may skip looking for one to replace. Only a hint; False is always correct.
    new_id: bool = False


@dataclass(frozen=True)
class Retention:
    """How long outcomes are kept (from config: rq_results_ttl, rq_job_failure_ttl, ...)."""

    results_ttl: float = 600.0
    failure_ttl: float = 7 * 24 * 3600.0
    failed_limit: int = 1000


# A held job (settle_and_claim) of a worker whose heartbeat expired: it never ran.
HELD_REQUEUED = (
    "interrupted: its worker died after claiming it in a batch and before starting it; it was "
    "put back at the head of its queue"
)
ONCE_TTL = 7 * 24 * 3600.0  # how long a once_key (a scheduler slot identity) is remembered

# Upper bounds (seconds) of the job-duration histogram's buckets; a last +Inf bucket is implied.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip

# Kinds of ``counters()``: every claim counts ``started``; each attempt then ends as one of
# ``finished``, ``failed`` (retried or not, reaped included) or ``stopped``.
COUNTER_KINDS = ("started", "finished", "failed", "stopped")
# ``timeline()``: attempts that ended ``finished`` or ``failed``, per minute, kept this long
# (a day's chart plus an hour). The Redis scripts (lua/common.lua) repeat the figure.
TIMELINE_KINDS = ("finished", "failed")
TIMELINE_KEEP = 25 * 3600


def cumulative(per_bucket: Sequence[int], total: float) -> DurationHistogram:
    """A histogram from per-bucket (non-cumulative) counts, +Inf last, and the sum."""
    bounds = [*DURATION_BUCKETS, float("inf")]
    running, buckets = 0, []
    for bound, n in zip(bounds, per_bucket, strict=True):
        running += n
        buckets.append((bound, running))
    return {"buckets": buckets, "sum": total, "count": running}


def unknown_dependency(stored_id: str) -> str:
    """The message of ``DependencyNotFound`` for a dependency the broker has no record of."""
    _, job_id = stored_id.partition("::")[::2]
    return (
        f"depends_on: no job {job_id!r} (never enqueued, deleted, or past its retention); "
        "nothing was enqueued"
    )


def bucket_index(seconds: float) -> int:
    """Index in ``DURATION_BUCKETS`` of the first bound >= ``seconds`` (len() for +Inf)."""
    for i, bound in enumerate(DURATION_BUCKETS):
        if seconds <= bound:
            return i
    return len(DURATION_BUCKETS)


class DurationHistogram(TypedDict):
    """One queue's job durations: cumulative ``(le, count)`` buckets ending with +Inf."""

    buckets: list[tuple[float, int]]
    sum: float
    count: int


class Broker(ABC):
    """Stores job records and queues; hands jobs to workers. Safe to share across threads."""

    # -- producing ----------------------------------------------------------------------------
    @abstractmethod
    def enqueue(
        self,
        record: JobRecord,
        *,
        at_front: bool = False,
        deduplicate: bool = False,
        max_queued: int | None = None,
        once_key: str | None = None,
        run_at: float | None = None,
    ) -> bool:
        """Store ``record`` (status ``queued``) and append it to its queue (head if at_front).

        Atomic: the record and its queue entry appear together or not at all. If a record with
        the same id exists: with ``deduplicate`` and that job pending, nothing changes and the
        result is False; otherwise the old record is replaced (and leaves any queue/index it was
        in). With ``max_queued``, raise ``QueueOverloaded`` (nothing written) when the queue
        already holds that many queued jobs. With ``once_key``, enqueue at most once per key:
        a key already used (remembered for ``ONCE_TTL`` seconds) makes this a no-op returning
        False; the key is taken in the same atomic step as the enqueue, and only when the job
        is enqueued. Returns True when the job was enqueued.

        A delayed job: with ``run_at`` later than now the record is stored ``scheduled`` with
        ``retry_at = run_at`` and enters no queue until ``promote_due`` (or a claim, or
        ``run_now``) queues it, at the head of its queue if ``at_front`` was given, else at
        the tail. A ``run_at`` not later than now enqueues as without it. ``deduplicate``,
        ``once_key`` and replacing hold for a delayed job too (a scheduled job is pending);
        ``max_queued`` does not apply to it, as it enters no queue now."""

    @abstractmethod
    def enqueue_many(
        self, items: Sequence[EnqueueItem], *, max_queued: int | None = None
    ) -> list[bool]:
        """Enqueue every item as ``enqueue`` would, in order, in ONE atomic step (one
        transaction, one script): afterwards all of them took effect, or none did.

        Returns ``enqueue``'s result per item: False where ``deduplicate`` met a pending job
        (an earlier item of the batch with that id counts) or the ``once_key`` was taken (by
        an earlier item too). Items with the same id and no ``deduplicate``: the later one
        replaces the earlier. With ``max_queued``, raise ``QueueOverloaded`` and write nothing
        when the batch would leave a queue holding more than ``max_queued`` queued jobs (those
        it held plus the batch's items for it that are queued at once)."""

    # -- consuming ----------------------------------------------------------------------------
    @abstractmethod
    def claim(self, queues: Sequence[str], worker: str, timeout: float = 0.0) -> JobRecord | None:
        """Take the first queued job of the first non-empty queue, in the order given.

        Atomic: the job leaves its queue and becomes ``started`` with ``worker``,
        ``started_at`` and ``attempts + 1`` in one step, so no two callers ever get the same
        job. Waits up to ``timeout`` seconds for one to arrive (0: do not wait). Returns the
        updated record, or None. The same atomic step adds 1 to the ``started`` counter of the
        job's (site, queue).

        A claim first queues the ``scheduled`` jobs that are due (as ``promote_due``), and a
        waiting claim also wakes when the next one falls due: a delayed job or retry is queued
        within milliseconds of its time while a worker waits, whatever the housekeeping
        interval."""

    @abstractmethod
    def finish(self, job_id: str, worker: str, result: bytes | None, keep: Retention) -> bool:
        """Record success: ``finished``, ``ended_at``, ``result``, kept ``results_ttl``.

        Conditional: only a job ``started`` by ``worker`` changes; returns whether it did, so a
        late or repeated call is a harmless no-op (idempotent). When it changes, the same atomic
        step adds 1 to the ``finished`` counter and records ``ended_at - started_at`` in the
        queue's duration histogram (so a repeated call counts nothing)."""

    def finish_and_claim(
        self,
        job_id: str,
        worker: str,
        result: bytes | None,
        keep: Retention,
        queues: Sequence[str],
    ) -> JobRecord | None:
        """``finish`` then ``claim(queues, worker, timeout=0)``, each with its own promises.

        A worker's hot path: brokers do both in one round trip where they can (here: as the
        one-job case of ``settle_and_claim``, which such a broker overrides)."""
        claimed = self.settle_and_claim([(job_id, result)], worker, keep, queues, 1)
        return claimed[0] if claimed else None

    def settle_and_claim(
        self,
        finished: Sequence[tuple[str, bytes | None]],
        worker: str,
        keep: Retention,
        queues: Sequence[str],
        limit: int,
        hold: Collection[str] | None = None,
    ) -> list[JobRecord]:
        """``finish(job_id, worker, result, keep)`` for each ``(job_id, result)``, then claim up
        to ``limit`` jobs (``timeout=0``), each step with its own promises; the claimed jobs
        come in claim order: priority order of ``queues``, each queue's head first.

        With ``hold`` (the methods the worker starts at once: its async ones), a claimed job of
        any other method behind one such job of this batch is *held*: ``started`` by the worker
        with ``held`` = 1, waiting for the worker to ``begin`` it. A reaper puts a held job of a
        dead worker back at the head of its queue (it never ran), where it fails a running one.
        (This generic form holds nothing; both brokers of the project override it.)

        A worker running several jobs at once: brokers record a batch of outcomes and take the
        next batch of jobs in one round trip where they can."""
        for job_id, result in finished:
            self.finish(job_id, worker, result, keep)
        claimed: list[JobRecord] = []
        while queues and len(claimed) < limit:
            record = self.claim(queues, worker, 0.0)
            if record is None:
                break
            claimed.append(record)
        return claimed

    def begin(self, job_id: str, worker: str) -> str:
        """A job ``worker`` claimed (held or not) starts now: ``held`` cleared, ``started_at``
        now. Returns "run"; "stop" when a stop was asked for meanwhile (the job is left as it
        is: the caller ends it stopped, unrun); "gone" when it is no longer ``started`` by
        ``worker`` (say a reaper took it). Atomic in the brokers of the project; this generic
        form only reads."""
        record = self.get(job_id)
        if record is None or record.status != "started" or record.worker != worker:
            return "gone"
        return "stop" if record.stop_requested else "run"

    @abstractmethod
    def fail(
        self,
        job_id: str,
        worker: str | None,
        exc_info: str,
        keep: Retention,
        retry_at: float | None = None,
    ) -> bool:
        """Record a failure of a ``started`` job (by ``worker``; None matches any worker).

        With ``retry_at`` and ``retries_left > 0`` the job becomes ``scheduled`` with
        ``retries_left - 1`` and ``retry_count + 1``, to be queued again by ``promote_due``;
        otherwise it becomes ``failed`` with ``exc_info``, kept ``failure_ttl``, and the oldest
        failed records of its queue beyond ``failed_limit`` are deleted. Conditional and
        idempotent like ``finish``; either way the change adds 1 to the ``failed`` counter and
        records the attempt's duration, in the same atomic step."""

    @abstractmethod
    def mark_stopped(self, job_id: str, worker: str | None, reason: str, keep: Retention) -> bool:
        """A ``started`` job was stopped on request: ``stopped`` with ``reason`` as exc_info.
        Conditional and idempotent like ``finish``; the change adds 1 to the ``stopped``
        counter in the same atomic step (no duration is recorded)."""

    # -- control ------------------------------------------------------------------------------
    @abstractmethod
    def interrupt(self, job_id: str, worker: str | None, reason: str) -> bool:
        """A ``started`` job (claimed by ``worker``; None: any) that was cut off through no
        fault of its own (its executor was killed to hard-stop a sibling job) goes back to the
        head of its queue as ``queued``, with ``reason`` in ``exc_info`` (its record says it
        ran before; ``attempts`` counts both runs). Returns whether it changed. Atomic."""

    @abstractmethod
    def run_now(self, job_id: str) -> bool:
        """Queue a ``scheduled`` job (delayed, or waiting for a retry) at once, where
        ``promote_due`` would put it. Returns False for any other status or an unknown job.
        Atomic."""

    @abstractmethod
    def request_stop(self, job_id: str, keep: Retention) -> str | None:
        """Stop a job: a queued or scheduled one becomes ``canceled`` at once; a started one
        gets ``stop_requested`` set for its worker to act on. Returns the job's status after
        the call, or None when there is no such job. Idempotent."""

    @abstractmethod
    def requeue(self, job_id: str) -> bool:
        """Put a final job (failed, stopped, canceled, finished) back at the tail of its queue
        as ``queued``, clearing result, exc_info and stop_requested. Returns False for a
        pending or unknown job. Atomic."""

    @abstractmethod
    def delete(self, job_id: str) -> bool:
        """Remove the record and every queue/index entry of a job that is not ``started``.
        Returns whether something was deleted."""

    @abstractmethod
    def purge(
        self, statuses: Sequence[str], queue: str | None = None, site: str | None = None
    ) -> int:
        """Delete every job with one of ``statuses`` (never ``started``), optionally only in
        ``queue`` and/or ``site``. Returns how many were deleted."""

    @abstractmethod
    def set_progress(self, job_id: str, progress: float | None, stage: str | None) -> None:
        """Record a running job's progress (0..100) and stage. Last write wins."""

    # -- liveness -----------------------------------------------------------------------------
    @abstractmethod
    def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        """Register or refresh a worker (or scheduler); it counts as alive for ``ttl``
        seconds from now. A scheduler has no started jobs, so ``reap`` settles nothing of
        one whose heartbeat expired; it only forgets it."""

    @abstractmethod
    def unregister_worker(self, name: str) -> None:
        """Forget a worker that is shutting down cleanly."""

    @abstractmethod
    def workers(self) -> list[WorkerInfo]:
        """Every registered process whose heartbeat has not expired: workers and schedulers
        (``WorkerInfo.kind``), each as it last published itself."""

    @abstractmethod
    def reap(self, keep: Retention, now: float | None = None) -> list[str]:
        """Settle started jobs whose worker's heartbeat has expired: each is retried (as
        ``fail`` with ``retry_at=now``) when it has retries left, else ``failed`` with "worker
        died". Returns the ids settled. Safe to run from many processes at once: each job is
        settled once, and counted (``failed`` counter, duration) once, as ``fail`` does."""

    @abstractmethod
    def promote_due(self, now: float | None = None) -> int:
        """Queue every ``scheduled`` job whose ``retry_at`` has passed, in ``retry_at`` order,
        at the queue's tail (a delayed job enqueued with ``at_front``: at its head). Reads only
        the due jobs (an index on the due time), so a large backlog of later jobs costs
        nothing. Returns how many moved. Atomic per job."""

    @abstractmethod
    def cleanup(self, now: float | None = None) -> int:
        """Delete final records whose retention has expired. Returns how many."""

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def dependents(self, job_id: str, *, waiting: bool = True) -> list[str]:
        """Ids of the ``deferred`` jobs still waiting for job ``job_id`` (sorted); with
        ``waiting=False``, of every stored job that was enqueued depending on it (those it
        released or canceled too), as long as ``job_id``'s record is kept."""

    @abstractmethod
    def get(self, job_id: str) -> JobRecord | None:
        """The record, or None (also once its retention has expired)."""

    @abstractmethod
    def wait_final(self, job_id: str, timeout: float | None = None) -> JobRecord | None:
        """Block until the job is final, or ``timeout`` seconds (None: no limit) have passed.

        Returns the record as last read: final, or still pending when the time ran out; None
        when there is no such job (never was, deleted, expired). Blocks on the broker, not in
        a sleep loop: it returns within a few milliseconds of the change that made the job
        final (finish, fail without a retry, mark_stopped, a cancel, reap). Any number of
        callers may wait on one job."""

    @abstractmethod
    def find(
        self,
        *,
        site: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        """Records matching every given filter, newest enqueued first."""

    @abstractmethod
    def counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {status: n}}`` over every stored record."""

    @abstractmethod
    def queue_length(self, queue: str) -> int:
        """How many jobs are ``queued`` in ``queue``."""

    @abstractmethod
    def position(self, job_id: str) -> int | None:
        """0-based position of a queued job in its queue, or None if it is not queued."""

    # -- metrics ------------------------------------------------------------------------------
    @abstractmethod
    def counters(self) -> dict[tuple[str, str, str], int]:
        """Running totals ``{(site, queue, kind): n}``, kind in ``COUNTER_KINDS``, since the
        storage was created. Only keys ever incremented appear. Kept apart from the records:
        cleanup, purge and delete never lower them. Each increment happens inside the atomic
        step that makes the change (claim, finish, fail, mark_stopped, reap)."""

    @abstractmethod
    def durations(self) -> dict[str, DurationHistogram]:
        """``{queue: {"buckets": [(le, n)], "sum": s, "count": n}}`` of attempt durations
        (``ended_at - started_at``) recorded by ``finish`` and ``fail`` (reap included); queues
        with no observation are absent. The buckets follow ``DURATION_BUCKETS`` and are
        cumulative, ending with ``(inf, count)``."""

    @abstractmethod
    def timeline(self, since: float) -> dict[tuple[int, str, str], int]:
        """``{(minute, queue, kind): n}``: attempts that ended as ``kind`` (``finished`` or
        ``failed``, reap included) in each minute (epoch seconds // 60) from ``since`` on.
        Counted inside the atomic step of ``finish`` and ``fail``, like ``counters()``, and
        kept ``TIMELINE_KEEP`` seconds whatever happens to the records (a finished record
        may expire after minutes); minutes with no outcome are absent."""

    @abstractmethod
    def set_marker(self, name: str, value: float) -> None:
        """Store ``value`` under ``name`` (e.g. the scheduler's last tick). Last write wins;
        idempotent. Markers never expire."""

    @abstractmethod
    def get_marker(self, name: str) -> float | None:
        """The value last stored under ``name``, or None."""

    # -- leases (the scheduler's leader election) ---------------------------------------------
    @abstractmethod
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew lease ``name`` for ``owner`` for ``ttl`` seconds. True when ``owner``
        holds it afterwards. Atomic: two owners never both hold an unexpired lease."""

    @abstractmethod
    def release_lease(self, name: str, owner: str) -> None:
        """Give up the lease if ``owner`` holds it."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The broker may not be used afterwards."""

    def client(self) -> Any:
        """The broker's own client object, handed to RQ-style job callbacks as their
        ``connection`` argument: a ``redis.Redis`` for the Redis broker; None here (SQLite)."""
        return None
