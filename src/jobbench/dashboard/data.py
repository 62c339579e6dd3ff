"""What the dashboard pages show, read through the Inspector and the public document API.

Nothing here writes. Broker state (queues, jobs, workers, scheduler state) comes from
``jobbench.inspect.Inspector``; a single job from ``jobbench.get_job`` in its site's context;
Scheduled Job Types, their logs and Background Tasks from the document layer (``get_all``).

Anyone who can write to the broker can store a record the dashboard cannot make sense of
(``progress='abc'``). Such a record must not take a page down: each job becomes a row of plain
display values on its own (an error row when that fails), and each section of a page that
cannot be read at all is left empty with a "problems" banner naming why.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from jobbench.context import site_context
from jobbench.dashboard import charts
from jobbench.dashboard.listing import guarded, job_row, number
from jobbench.inspect import STATUSES, Inspector, QueueState
from jobbench.jobs.record import split_id

JOB_TYPE_FIELDS = [
    "name",
    "method",
    "frequency",
    "cron_format",
    "stopped",
    "last_execution",
    "next_execution",
    "queue",
]
LOG_FIELDS = ["name", "scheduled_job_type", "status", "start", "end", "job_id", "details"]
TASK_FIELDS = [
    "name",
    "task_id",
    "job_id",
    "task_name",
    "status",
    "method",
    "queue",
    "progress",
    "stage",
    "started_at",
    "ended_at",
    "exception",
]
RUNNING_SHOWN = 50  # the overview lists this many running jobs
DAY = 24 * 3600
# Record fields the job page shows in their own sections (decoded), not in the field table.
OWN_SECTIONS = {"payload", "result", "exc_info", "depends_on"}


def overview(inspector: Inspector, zone: str) -> dict[str, Any]:
    problems: list[str] = []
    now = time.time()
    queues: list[QueueState] = guarded(problems, "the queue counts", inspector.queues, [])
    timeline = guarded(
        problems, "the outcome counts", lambda: inspector.broker.timeline(now - DAY - 3600), {}
    )
    return {
        "queues": queue_rows(inspector, queues, timeline, now, problems),
        "workers": guarded(problems, "the workers", inspector.workers, []),
        "running": guarded(problems, "the running jobs", lambda: running(inspector, now), []),
        "schedulers": guarded(problems, "the scheduler state", inspector.scheduler, []),
        "liveness": guarded(problems, "the schedulers", lambda: liveness(inspector), None),
        "outbox": guarded(problems, "the outbox", lambda: outbox(inspector), None),
        "statuses": STATUSES,
        "charts": charts.hour_and_day(timeline, zone, now),
        "problems": problems,
    }


def queue_rows(
    inspector: Inspector,
    queues: list[QueueState],
    timeline: dict[tuple[int, str, str], int],
    now: float,
    problems: list[str],
) -> list[dict[str, Any]]:
    """Each queue: counts, depth, latency (age of its oldest queued job), throughput."""
    ages = guarded(problems, "the oldest queued jobs", lambda: inspector.oldest_queued(now), {})
    rates = charts.throughput(timeline, now)
    return [
        {
            "name": q.name,
            "timeout": q.timeout,
            "counts": q.counts,
            "depth": q.queued,
            "latency": ages.get(q.name),
            "throughput": rates.get(q.name, 0.0),
        }
        for q in queues
    ]


def running(inspector: Inspector, now: float) -> list[dict[str, Any]]:
    """Started jobs with their worker and how long they have run, the longest first."""
    rows = []
    for record in inspector.iter_jobs(status="started"):
        rows.append(job_row(record, now))
        if len(rows) >= RUNNING_SHOWN * 4:  # enough to pick the longest from
            break
    rows.sort(key=lambda r: -(r.get("runtime") or 0))
    return rows[:RUNNING_SHOWN]


def liveness(inspector: Inspector) -> dict[str, Any]:
    """The schedulers: which run, the leader, the last tick and the next one due."""
    return inspector.scheduler_liveness().to_dict()


def outbox(inspector: Inspector) -> list[dict[str, Any]]:
    """Each site's transactional outbox: undelivered jobs, the oldest one's age, failing
    deliveries (``Inspector.outbox``)."""
    now = time.time()
    return [dict(box.to_dict(now)) for box in inspector.outbox()]


def job_detail(inspector: Inspector, site: str, job_id: str) -> dict[str, Any] | None:
    """The job as the public API shows it (arguments decoded for display), plus ``fields``:
    every non-empty field of its record, so a field added to the record shows up here."""
    from jobbench.jobs.job import get_job

    inspector.bench.require_site(site)
    with site_context(site, inspector.bench.path):
        job = get_job(job_id)
        if job is None:
            return None
        shown = job.to_dict()
    shown["progress"] = number(shown.get("progress"))
    shown["fields"] = record_fields(job.record)
    record = job.record
    started, ended = number(record.started_at), number(record.ended_at)
    shown["duration"] = ended - started if started is not None and ended is not None else None
    shown["run_at_ts"] = number(record.retry_at) if job.status == "scheduled" else None
    shown["waits_for"] = [split_id(i) for i in record.dependencies]
    shown["waited_on_by"] = [split_id(i) for i in inspector.broker.dependents(record.id)]
    return shown


def _empty(name: str, value: Any) -> bool:
    """Unset: None, '', and a counter or flag at 0 (attempts is shown even at 0)."""
    if value is None or value == "":
        return True
    return isinstance(value, int) and not value and name != "attempts"


def record_fields(record: Any) -> list[dict[str, Any]]:
    """(name, value, is_time) of each set field of a record, in the dataclass's order."""
    out = []
    for f in dataclasses.fields(record):
        value = getattr(record, f.name, None)
        if f.name in OWN_SECTIONS or isinstance(value, bytes) or _empty(f.name, value):
            continue
        is_time = f.name.endswith("_at") and number(value) is not None
        out.append({"name": f.name, "value": value, "is_time": is_time})
    return out


def _per_site(inspector: Inspector, site: str | None, fn: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sites = [site] if site else inspector.bench.list_sites()
    for name in sites:
        with site_context(name, inspector.bench.path) as local:
            rows.extend({"site": name, **row} for row in fn(local))
    return rows


def job_types(inspector: Inspector, site: str | None = None) -> list[dict[str, Any]]:
    return _per_site(
        inspector,
        site,
        lambda local: local.db.get_all(
            "Scheduled Job Type", fields=JOB_TYPE_FIELDS, order_by="next_execution asc"
        ),
    )


def job_logs(inspector: Inspector, site: str | None = None, limit: int = 100) -> list[Any]:
    rows = _per_site(
        inspector,
        site,
        lambda local: local.db.get_all(
            "Scheduled Job Log", fields=LOG_FIELDS, order_by="creation desc", limit=limit
        ),
    )
    return sorted(rows, key=lambda r: str(r.get("start") or ""), reverse=True)[:limit]


def tasks(inspector: Inspector, site: str | None = None, limit: int = 100) -> list[Any]:
    return _per_site(
        inspector,
        site,
        lambda local: local.db.get_all(
            "Background Task", fields=TASK_FIELDS, order_by="creation desc", limit=limit
        ),
    )
