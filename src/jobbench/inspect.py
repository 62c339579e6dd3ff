"""The read-only Inspector: what the CLI (doctor, show-pending-jobs, metrics) and, later, the
dashboard show about a bench.

It reads only through the Broker contract (``counts``, ``find``, ``workers``,
``queue_length``) and the document layer (System Settings and site config for the scheduler's
state, Scheduled Job Types for the last scheduled run). It never writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, WorkerInfo
from jobbench.brokers.factory import get_broker
from jobbench.jobs.queues import queue_timeouts
from jobbench.jobs.record import JobRecord, JobStatus
from jobbench.scheduler.scheduler import LAST_TICK_MARKER

STATUSES = [s.value for s in JobStatus]
PENDING = ["queued", "started", "scheduled"]
STALE_AFTER = 15.0  # seconds without a heartbeat (3 missed beats) before a worker is "stale"
PAGE = 500
SCHEDULED_JOB_METHOD = "jobbench.scheduler.run.run_scheduled_job"
SCHEDULED_JOB_PREFIX = "scheduled_job::"


@dataclass
class QueueState:
    name: str
    timeout: int
    counts: dict[str, int]  # every status, zeros included

    @property
    def queued(self) -> int:
        return self.counts.get("queued", 0)


@dataclass
class WorkerState:
    name: str
    pid: int
    host: str
    queues: list[str]
    state: str
    current_job: str | None
    successful: int
    failed: int
    working_time: float
    birth: float
    heartbeat: float
    heartbeat_age: float
    utilisation: float  # share of its life spent running jobs, 0..1
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulerState:
    site: str
    active: bool
    reason: str | None
    last_run: str | None = None  # the latest last_execution of the site's Scheduled Job Types
    app_problems: dict[str, str] = field(default_factory=dict)  # installed apps that won't load

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PendingGroup:
    site: str
    queue: str
    method: str
    counts: dict[str, int] = field(default_factory=dict)  # queued / started / scheduled
    next_run: float | None = None  # the earliest run time (epoch) of its scheduled jobs

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


@dataclass
class JobPage:
    jobs: list[JobRecord]
    offset: int
    limit: int
    has_more: bool


class Inspector:
    """Read-only views of one bench: queues, pending jobs, workers, scheduler state, jobs."""

    def __init__(self, bench: Bench, broker: Broker | None = None) -> None:
        self.bench = bench
        self.conf = bench.common_config()
        self.broker = broker or get_broker(bench, self.conf)

    # -- queues -----------------------------------------------------------------------------
    def queue_names(self) -> list[str]:
        return list(queue_timeouts(self.conf))

    def queues(self) -> list[QueueState]:
        """Every configured queue (and any other queue holding records) with counts."""
        counts = self.broker.counts()
        timeouts = queue_timeouts(self.conf)
        names = list(timeouts) + sorted(set(counts) - set(timeouts))
        return [
            QueueState(
                name,
                timeouts.get(name, 0),
                {s: int(counts.get(name, {}).get(s, 0)) for s in STATUSES},
            )
            for name in names
        ]

    # -- jobs -------------------------------------------------------------------------------
    def iter_jobs(
        self, *, site: str | None = None, queue: str | None = None, status: str | None = None
    ) -> Iterator[JobRecord]:
        """Every matching record, read page by page (newest first)."""
        offset = 0
        while True:
            page = self.broker.find(
                site=site, queue=queue, status=status, limit=PAGE, offset=offset
            )
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

    def jobs(
        self,
        *,
        site: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        method: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobPage:
        """One page of jobs, newest first, filtered by site, queue, status and method."""
        if method is None:
            found = self.broker.find(
                site=site, queue=queue, status=status, limit=limit + 1, offset=offset
            )
        else:
            matching = (
                r
                for r in self.iter_jobs(site=site, queue=queue, status=status)
                if r.method == method
            )
            found = [r for i, r in enumerate(matching) if offset <= i <= offset + limit]
        return JobPage(found[:limit], offset, limit, len(found) > limit)

    def pending(self, site: str | None = None, queue: str | None = None) -> list[PendingGroup]:
        """Pending jobs (queued, started, scheduled: delayed or waiting for a retry) grouped by
        site, queue and method, with the earliest run time of the scheduled ones."""
        groups: dict[tuple[str, str, str], PendingGroup] = {}
        for status in PENDING:
            for record in self.iter_jobs(site=site, queue=queue, status=status):
                key = (record.site, record.queue, record.method)
                group = groups.setdefault(key, PendingGroup(*key))
                group.counts[status] = group.counts.get(status, 0) + 1
                if status == "scheduled" and record.retry_at is not None:
                    due = record.retry_at  # a delayed job's run time, or a retry's
                    group.next_run = due if group.next_run is None else min(group.next_run, due)
        return sorted(groups.values(), key=lambda g: (g.site, g.queue, -g.total, g.method))

    def site_pending_counts(self, site: str) -> dict[str, int]:
        """How many of the site's jobs are queued, started and scheduled."""
        return {s: sum(1 for _ in self.iter_jobs(site=site, status=s)) for s in PENDING}

    # -- workers ----------------------------------------------------------------------------
    def workers(self, now: float | None = None) -> list[WorkerState]:
        now = time.time() if now is None else now
        return sorted((_worker_state(w, now) for w in self.broker.workers()), key=lambda w: w.name)

    # -- scheduler --------------------------------------------------------------------------
    def scheduler(self, sites: list[str] | None = None) -> list[SchedulerState]:
        """Whether the scheduler serves each site, and why not."""
        return [self._scheduler_state(site) for site in sites or self.bench.list_sites()]

    def _scheduler_state(self, site: str) -> SchedulerState:
        from jobbench.context import tolerant_site_context
        from jobbench.scheduler.status import inactive_reason

        # A missing or broken app is named, not fatal: the built-in doctypes read here do not
        # need it, and doctor is the command that should say what is wrong.
        with tolerant_site_context(site, self.bench.path) as (local, problems):
            reason = inactive_reason(local)
            last = local.db.get_all(
                "Scheduled Job Type",
                filters={"last_execution": ("is", "set")},
                fields=["last_execution"],
                order_by="last_execution desc",
                limit=1,
            )
        last_run = last[0]["last_execution"] if last else None
        return SchedulerState(
            site, reason is None, reason, str(last_run) if last_run else None, problems
        )

    # -- together ---------------------------------------------------------------------------
    def doctor(self, sites: list[str]) -> dict[str, Any]:
        """Per site: scheduler state and pending jobs; bench-wide: workers, stale workers."""
        workers = self.workers()
        return {
            "sites": [
                {
                    **self._scheduler_state(site).to_dict(),
                    "pending": [g.to_dict() for g in self.pending(site=site)],
                }
                for site in sites
            ],
            "workers": [w.to_dict() for w in workers],
            "stale_workers": [w.name for w in workers if w.stale],
            "queues": {q.name: q.counts for q in self.queues()},
        }


def _worker_state(info: WorkerInfo, now: float) -> WorkerState:
    age = max(0.0, now - info.heartbeat)
    alive_for = max(now - info.birth, 1e-9)
    return WorkerState(
        name=info.name,
        pid=info.pid,
        host=info.host,
        queues=list(info.queues),
        state=info.state,
        current_job=info.current_job,
        successful=info.successful,
        failed=info.failed,
        working_time=info.working_time,
        birth=info.birth,
        heartbeat=info.heartbeat,
        heartbeat_age=round(age, 3),
        utilisation=round(min(1.0, info.working_time / alive_for), 4),
        stale=age > STALE_AFTER,
    )


def scheduled_job_type(record: JobRecord) -> str | None:
    """The Scheduled Job Type a scheduled run's job belongs to (its id names it)."""
    if record.method != SCHEDULED_JOB_METHOD:
        return None
    job_id = record.job_id
    return job_id[len(SCHEDULED_JOB_PREFIX) :] if job_id.startswith(SCHEDULED_JOB_PREFIX) else None


# -- Prometheus -----------------------------------------------------------------------------
def metrics_text(inspector: Inspector, sites: list[str] | None = None) -> str:
    """Prometheus text exposition (format 0.0.4) of the bench's current state."""
    out = _Exposition()
    out.family("jobbench_queue_depth", "gauge", "Jobs waiting (queued) in a queue.")
    for q in inspector.queues():
        out.sample("jobbench_queue_depth", {"queue": q.name}, q.queued)
    out.family("jobbench_jobs", "gauge", "Stored job records by site, queue and status.")
    for (site, queue, status), n in sorted(_jobs_by_site(inspector).items()):
        out.sample("jobbench_jobs", {"site": site, "queue": queue, "status": status}, n)
    workers = inspector.workers()
    out.family("jobbench_workers_alive", "gauge", "Workers with an unexpired heartbeat.")
    out.sample("jobbench_workers_alive", {}, len(workers))
    out.family("jobbench_workers_busy", "gauge", "Workers running a job.")
    out.sample("jobbench_workers_busy", {}, sum(w.state == "busy" for w in workers))
    out.family("jobbench_workers_stale", "gauge", "Workers that missed heartbeats.")
    out.sample("jobbench_workers_stale", {}, sum(w.stale for w in workers))
    _outcome_metrics(out, inspector.broker)
    _scheduler_metrics(out, inspector.scheduler(sites), inspector.broker)
    return out.text()


def _outcome_metrics(out: _Exposition, broker: Broker) -> None:
    counters = broker.counters()
    for kind, help_text in (
        ("started", "Jobs claimed by a worker (every attempt counts)."),
        ("finished", "Attempts that finished successfully."),
        ("failed", "Attempts that failed (retried or not; reaped jobs included)."),
        ("stopped", "Attempts stopped on request."),
    ):
        name = f"jobbench_jobs_{kind}_total"
        out.family(name, "counter", help_text)
        for (site, queue, k), n in sorted(counters.items()):
            if k == kind:
                out.sample(name, {"site": site, "queue": queue}, n)
    name = "jobbench_job_duration_seconds"
    out.family(name, "histogram", "How long finished and failed attempts ran, by queue.")
    for queue, hist in sorted(broker.durations().items()):
        for le, n in hist["buckets"]:
            out.sample(f"{name}_bucket", {"queue": queue, "le": _le(le)}, n)
        out.sample(f"{name}_sum", {"queue": queue}, float(hist["sum"]))
        out.sample(f"{name}_count", {"queue": queue}, hist["count"])


def _le(bound: float) -> str:
    """A bucket bound as Prometheus clients write it: 0.005, 1.0, +Inf."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _scheduler_metrics(out: _Exposition, states: list[SchedulerState], broker: Broker) -> None:
    out.family("jobbench_scheduler_active", "gauge", "1 when the scheduler serves the site.")
    for s in states:
        out.sample("jobbench_scheduler_active", {"site": s.site}, int(s.active))
    name = "jobbench_scheduler_last_tick_timestamp_seconds"
    out.family(name, "gauge", "When the leading scheduler last ticked (epoch seconds).")
    last_tick = broker.get_marker(LAST_TICK_MARKER)
    if last_tick is not None:
        out.sample(name, {}, float(last_tick))


def _jobs_by_site(inspector: Inspector) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for status in STATUSES:
        for record in inspector.iter_jobs(status=status):
            key = (record.site, record.queue, status)
            counts[key] = counts.get(key, 0) + 1
    return counts


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        shown = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{{{text}}} {shown}" if text else f"{name} {shown}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
