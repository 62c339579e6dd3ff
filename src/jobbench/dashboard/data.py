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

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobbench.context import site_context
from jobbench.inspect import STATUSES, Inspector, QueueState, SchedulerState, WorkerState
from jobbench.jobs.record import JobRecord

T = TypeVar("T")
log = logging.getLogger("jobbench.dashboard")
# What decoding a malformed stored value raises (not broker or database failures: those are
# JobbenchErrors and get the error page).
UNREADABLE = (ValueError, TypeError, ArithmeticError, UnicodeError, KeyError, AttributeError)

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
BUCKET = 300  # seconds per chart bar
WINDOW = 3600


@dataclass
class JobFilters:
    status: str | None = None
    site: str | None = None
    queue: str | None = None
    method: str | None = None
    page: int = 1
    per_page: int = 50

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass
class JobRows:
    jobs: list[dict[str, Any]]
    has_more: bool
    problems: list[str] = field(default_factory=list)


def guarded(problems: list[str], what: str, fn: Callable[[], T], fallback: T) -> T:
    """``fn()``, or ``fallback`` with a line in ``problems`` when stored data is unreadable."""
    try:
        return fn()
    except UNREADABLE as exc:
        log.warning("dashboard: cannot read %s", what, exc_info=True)
        problems.append(f"Could not read {what}: {type(exc).__name__}: {str(exc)[:200]}")
        return fallback


def overview(inspector: Inspector) -> dict[str, Any]:
    problems: list[str] = []
    queues: list[QueueState] = []
    workers: list[WorkerState] = []
    schedulers: list[SchedulerState] = []
    return {
        "queues": guarded(problems, "the queue counts", inspector.queues, queues),
        "workers": guarded(problems, "the workers", inspector.workers, workers),
        "schedulers": guarded(problems, "the scheduler state", inspector.scheduler, schedulers),
        "statuses": STATUSES,
        "chart": guarded(problems, "the job records", lambda: chart(inspector), chart_of({})),
        "problems": problems,
    }


def jobs(inspector: Inspector, filters: JobFilters) -> JobRows:
    problems: list[str] = []
    page = guarded(
        problems,
        "the job records",
        lambda: inspector.jobs(
            site=filters.site,
            queue=filters.queue,
            status=filters.status,
            method=filters.method,
            limit=filters.per_page,
            offset=filters.offset,
        ),
        None,
    )
    if page is None:
        return JobRows([], False, problems)
    return JobRows([job_row(r) for r in page.jobs], page.has_more, problems)


def number(value: Any) -> float | None:
    """A stored timestamp or progress as a finite float, else None."""
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def job_row(record: JobRecord) -> dict[str, Any]:
    """One job of the list as plain display values; an error row when the record is odd."""
    try:
        return {
            "job_id": str(record.job_id),
            "site": str(record.site),
            "queue": str(record.queue),
            "method": str(record.method),
            "status": str(record.status),
            "progress": number(record.progress),
            "enqueued_at": number(record.enqueued_at),
            "ended_at": number(record.ended_at),
            "error": None,
        }
    except UNREADABLE as exc:
        shown = getattr(record, "id", None)
        return {"job_id": str(shown or "?"), "error": f"{type(exc).__name__}: {exc}"}


def job_detail(inspector: Inspector, site: str, job_id: str) -> dict[str, Any] | None:
    """The job as the public API shows it (arguments decoded for display), or None."""
    from jobbench.jobs.job import get_job

    inspector.bench.require_site(site)
    with site_context(site, inspector.bench.path):
        job = get_job(job_id)
        if job is None:
            return None
        shown = job.to_dict()
    shown["progress"] = number(shown.get("progress"))
    started, ended = shown.get("started_at"), shown.get("ended_at")
    try:
        shown["duration"] = (ended - started).total_seconds() if started and ended else None
    except UNREADABLE:
        shown["duration"] = None
    return shown


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


def chart(inspector: Inspector, now: float | None = None) -> dict[str, Any]:
    """Finished and failed jobs per 5-minute bucket over the last hour, as SVG-ready bars."""
    now = time.time() if now is None else now
    start = now - WINDOW
    n = WINDOW // BUCKET
    counts = {"finished": [0] * n, "failed": [0] * n}
    for status, bars in counts.items():
        for record in inspector.iter_jobs(status=status):
            ended = number(record.ended_at)
            if ended is not None and start <= ended <= now:
                bars[min(n - 1, int((ended - start) // BUCKET))] += 1
    return chart_of(counts, start)


def chart_of(counts: dict[str, list[int]], start: float | None = None) -> dict[str, Any]:
    """The chart's template values from per-bucket counts (empty bars when none)."""
    n = WINDOW // BUCKET
    start = time.time() - WINDOW if start is None else start
    counts = {"finished": [0] * n, "failed": [0] * n, **counts}
    peak = max([1, *counts["finished"], *counts["failed"]])
    labels = [
        dt.datetime.fromtimestamp(start + i * BUCKET).strftime("%H:%M") for i in range(0, n, 3)
    ]
    return {
        "finished": counts["finished"],
        "failed": counts["failed"],
        "peak": peak,
        "labels": labels,
        "total_finished": sum(counts["finished"]),
        "total_failed": sum(counts["failed"]),
    }
