"""The read-only Inspector: what the CLI (doctor, show-pending-jobs, metrics, scheduler
status) and the dashboard show about a bench.

It reads only through the Broker contract (``counts``, ``find``, ``workers``,
``queue_length``) and the document layer (System Settings and site config for the scheduler's
state, Scheduled Job Types for the last scheduled runs and what is due). Schedulers heartbeat in
the workers' registry (``WorkerInfo.kind``): ``workers()`` shows workers, ``schedulers()`` and
``scheduler_liveness()`` the schedulers. It never writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, WorkerInfo
from jobbench.brokers.factory import get_broker
from jobbench.jobs import outbox as job_outbox
from jobbench.jobs.queues import queue_timeouts
from jobbench.jobs.record import JobRecord, JobStatus
from jobbench.scheduler.scheduler import LAST_TICK_MARKER

STATUSES = [s.value for s in JobStatus]
PENDING = ["queued", "started", "scheduled", "deferred"]  # deferred: waiting for depends_on
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
    due_job_types: int = 0  # job types not stopped whose next run has come (a tick is owed)
    next_due: str | None = None  # the earliest next_execution of the job types not stopped
    last_runs: list[dict[str, Any]] = field(default_factory=list)  # latest runs, newest first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulerProcess:
    """One running scheduler, as its last heartbeat published it."""

    name: str
    pid: int
    host: str
    leader: bool  # holds the lease: the one that ticks
    state: str  # leader | standby | stopping
    tick_interval: float | None
    last_tick: float | None  # epoch of its own last tick (a standby one never ticked)
    next_tick: float | None  # epoch of the next aligned tick it wakes for
    birth: float
    heartbeat: float
    heartbeat_age: float
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulerLiveness:
    """Whether any scheduler runs for the bench, which one leads, and when it ticks.

    ``last_tick`` is the broker's marker (the last tick of whichever scheduler led);
    ``next_tick_due`` is ``last_tick + tick_interval``; ``late`` says it is more than one
    interval past that (a leader that stopped ticking, or none at all)."""

    alive: bool
    processes: list[SchedulerProcess]
    leader: str | None
    tick_interval: float
    last_tick: float | None
    next_tick_due: float | None
    late: bool

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
        """Pending jobs (queued, started, scheduled: delayed or waiting for a retry, deferred:
        waiting for its dependencies) grouped by
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
        infos = [w for w in self.broker.workers() if w.kind == "worker"]
        return sorted((_worker_state(w, now) for w in infos), key=lambda w: w.name)

    def schedulers(self, now: float | None = None) -> list[SchedulerProcess]:
        """Every scheduler whose heartbeat is alive (any host), the leader first."""
        now = time.time() if now is None else now
        found = [_scheduler_process(i, now) for i in self.broker.workers() if i.kind == "scheduler"]
        return sorted(found, key=lambda p: (not p.leader, p.name))

    def scheduler_liveness(self, now: float | None = None) -> SchedulerLiveness:
        """The bench's schedulers: alive or not, the leader, last tick and next one due."""
        now = time.time() if now is None else now
        processes = self.schedulers(now)
        interval = float(self.conf.get("scheduler_tick_interval") or 60)
        last = self.broker.get_marker(LAST_TICK_MARKER)
        due = None if last is None else float(last) + interval
        leader = next((p.name for p in processes if p.leader), None)
        late = due is not None and now > due + interval
        return SchedulerLiveness(bool(processes), processes, leader, interval, last, due, late)

    def oldest_queued(self, now: float | None = None) -> dict[str, float]:
        """Per queue holding queued jobs: seconds since the oldest of them was enqueued."""
        now = time.time() if now is None else now
        ages: dict[str, float] = {}
        for queue in self.queues():
            if not queue.queued:
                continue
            n = self.broker.queue_length(queue.name)  # find() is newest first: the last one
            page = self.broker.find(queue=queue.name, status="queued", limit=1, offset=n - 1)
            if page:
                ages[queue.name] = round(max(0.0, now - page[0].enqueued_at), 3)
        return ages

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
            types = local.db.get_all(
                "Scheduled Job Type",
                fields=["name", "stopped", "next_run_at", "last_execution", "next_execution"],
            )
        state = SchedulerState(site, reason is None, reason, app_problems=problems)
        _add_runs(state, types, time.time())
        return state

    # -- together ---------------------------------------------------------------------------
    def outbox(self, sites: list[str] | None = None) -> list[job_outbox.OutboxStats]:
        """Per site: after-commit jobs waiting in the site database's outbox (how many, the
        oldest's age via ``oldest_age()``, failures, the last error; jobs/outbox.py)."""
        return [job_outbox.stats_or_reason(self.bench, s) for s in sites or self.bench.list_sites()]

    def outbox_undelivered(self, sites: list[str] | None = None) -> int:
        """All sites' undelivered outbox rows (the dashboard's overview figure)."""
        return sum(st.undelivered for st in self.outbox(sites))

    def doctor(self, sites: list[str]) -> dict[str, Any]:
        """Per site: scheduler state and pending jobs; bench-wide: workers, stale workers."""
        workers = self.workers()
        states = [self._scheduler_state(site) for site in sites]
        liveness = self.scheduler_liveness()
        queues = self.queues()
        boxes = self.outbox(sites)
        return {
            "sites": [
                {
                    **state.to_dict(),
                    "scheduler_alive": liveness.alive,  # a process serves the bench's sites
                    "pending": [g.to_dict() for g in self.pending(site=state.site)],
                }
                for state in states
            ],
            "workers": [w.to_dict() for w in workers],
            "stale_workers": [w.name for w in workers if w.stale],
            "queues": {q.name: q.counts for q in queues},
            "oldest_queued": self.oldest_queued(),
            "scheduler": liveness.to_dict(),
            "outbox": [st.to_dict() for st in boxes],
            "warnings": warnings(liveness, states, workers, queues) + job_outbox.warnings(boxes),
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


def _scheduler_process(info: WorkerInfo, now: float) -> SchedulerProcess:
    age = max(0.0, now - info.heartbeat)
    return SchedulerProcess(
        name=info.name,
        pid=info.pid,
        host=info.host,
        leader=info.leader,
        state=info.state,
        tick_interval=info.tick_interval,
        last_tick=info.last_tick,
        next_tick=info.next_tick,
        birth=info.birth,
        heartbeat=info.heartbeat,
        heartbeat_age=round(age, 3),
        stale=age > STALE_AFTER,
    )


LAST_RUNS = 5  # how many of a site's latest scheduled runs doctor shows


def _add_runs(state: SchedulerState, types: list[dict[str, Any]], now: float) -> None:
    """Due job types, the next one due and the latest runs, from the site's job types."""
    running = [t for t in types if not t["stopped"]]
    state.due_job_types = sum(1 for t in running if (t["next_run_at"] or now + 1) <= now)
    nexts = [t["next_execution"] for t in running if t["next_execution"]]
    state.next_due = str(min(nexts)) if nexts else None
    ran = sorted((t for t in types if t["last_execution"]), key=lambda t: t["last_execution"])
    state.last_runs = [
        {
            "job_type": t["name"],
            "last_execution": str(t["last_execution"]),
            "next_execution": str(t["next_execution"]) if t["next_execution"] else None,
        }
        for t in reversed(ran[-LAST_RUNS:])
    ]
    state.last_run = state.last_runs[0]["last_execution"] if state.last_runs else None


def warnings(
    liveness: SchedulerLiveness,
    states: list[SchedulerState],
    workers: list[WorkerState],
    queues: list[QueueState],
) -> list[str]:
    """What doctor warns about: no scheduler while scheduled jobs are due, a scheduler that
    stopped ticking, queued jobs and no worker."""
    out: list[str] = []
    due = {s.site: s.due_job_types for s in states if s.active and s.due_job_types}
    if not liveness.alive and due:
        where = ", ".join(f"{site}: {n}" for site, n in due.items())
        out.append(
            f"no scheduler is running and {sum(due.values())} scheduled job type(s) are due "
            f"({where}); start one: jobbench schedule (or jobbench start)"
        )
    elif liveness.alive and liveness.late and liveness.last_tick is not None:
        ago = time.time() - liveness.last_tick
        out.append(
            f"the scheduler's last tick was {ago:.0f} s ago (it ticks every "
            f"{liveness.tick_interval:g} s); see the log of {liveness.leader or 'the schedulers'}"
        )
    queued = sum(q.queued for q in queues)
    if queued and not workers:
        out.append(f"{queued} job(s) are queued and no worker is running: start jobbench worker")
    return out


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
    _outbox_metrics(out, inspector.outbox(sites))
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


def _outbox_metrics(out: _Exposition, boxes: list[job_outbox.OutboxStats]) -> None:
    now = time.time()
    out.family("jobbench_outbox_undelivered", "gauge", "After-commit jobs waiting in the outbox.")
    for st in boxes:
        out.sample("jobbench_outbox_undelivered", {"site": st.site}, st.undelivered)
    out.family(
        "jobbench_outbox_oldest_age_seconds", "gauge", "Age of the oldest outbox row (0: none)."
    )
    for st in boxes:
        age = st.oldest_age(now) or 0.0
        out.sample("jobbench_outbox_oldest_age_seconds", {"site": st.site}, round(age, 3))


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
    out.family("jobbench_schedulers_alive", "gauge", "Schedulers with an unexpired heartbeat.")
    out.sample(
        "jobbench_schedulers_alive", {}, sum(w.kind == "scheduler" for w in broker.workers())
    )


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
