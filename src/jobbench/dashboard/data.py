"""What the dashboard pages show, read through the Inspector and the public document API.

Nothing here writes. Broker state (queues, jobs, workers, scheduler state) comes from
``jobbench.inspect.Inspector``; a single job from ``jobbench.get_job`` in its site's context;
Scheduled Job Types, their logs and Background Tasks from the document layer (``get_all``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from jobbench.context import site_context
from jobbench.inspect import STATUSES, Inspector, JobPage

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


def overview(inspector: Inspector) -> dict[str, Any]:
    return {
        "queues": inspector.queues(),
        "workers": inspector.workers(),
        "schedulers": inspector.scheduler(),
        "statuses": STATUSES,
        "chart": chart(inspector),
    }


def jobs(inspector: Inspector, filters: JobFilters) -> JobPage:
    return inspector.jobs(
        site=filters.site,
        queue=filters.queue,
        status=filters.status,
        method=filters.method,
        limit=filters.per_page,
        offset=filters.offset,
    )


def job_detail(inspector: Inspector, site: str, job_id: str) -> dict[str, Any] | None:
    """The job as the public API shows it (arguments decoded for display), or None."""
    from jobbench.jobs.job import get_job

    inspector.bench.require_site(site)
    with site_context(site, inspector.bench.path):
        job = get_job(job_id)
        return None if job is None else job.to_dict()


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
            ended = record.ended_at
            if ended is not None and start <= ended <= now:
                bars[min(n - 1, int((ended - start) // BUCKET))] += 1
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
