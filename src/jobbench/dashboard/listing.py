"""The Jobs page's list: filters, search by job id or method, counts for the status tabs,
one display row per job, and the failed jobs grouped by error.

Filtering by site, queue and status is the broker's (``find``); search and the error filter
read the matching records page by page and keep those that match, which costs a scan of the
filtered records (failed ones are bounded by ``rq_job_failure_limit`` per queue).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobbench.inspect import STATUSES, Inspector
from jobbench.jobs.record import JobRecord, full_id, split_id

log = logging.getLogger("jobbench.dashboard")
# What decoding a malformed stored value raises (not broker or database failures: those are
# JobbenchErrors and get the error page).
UNREADABLE = (ValueError, TypeError, ArithmeticError, UnicodeError, KeyError, AttributeError)
ERROR_GROUPS = 20  # the failed tab lists this many error groups, the largest first
MESSAGE_CHARS = 200
NO_CLASS = "(no exception)"  # the error filter's value for a reason without a traceback


@dataclass
class JobFilters:
    status: str | None = None
    site: str | None = None
    queue: str | None = None
    method: str | None = None  # exact dotted path
    q: str | None = None  # search: a job id, else part of a method's path
    exc_type: str | None = None  # jobs whose error class is this (NO_CLASS: a bare reason)
    page: int = 1
    per_page: int = 50

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def query(self, default_per_page: int) -> dict[str, Any]:
        """The filters as query parameters (page and a default per_page left out)."""
        query = {k: v for k, v in vars(self).items() if v and k != "page"}
        if self.per_page == default_per_page:
            query.pop("per_page", None)
        return query


@dataclass
class JobRows:
    jobs: list[dict[str, Any]]
    has_more: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # status -> jobs, for the tabs
    groups: list[dict[str, Any]] = field(default_factory=list)  # failed: by error
    exact: bool = False  # the search found a job by its id


def guarded(problems: list[str], what: str, fn: Callable[[], Any], fallback: Any) -> Any:
    """``fn()``, or ``fallback`` with a line in ``problems`` when stored data is unreadable."""
    try:
        return fn()
    except UNREADABLE as exc:
        log.warning("dashboard: cannot read %s", what, exc_info=True)
        problems.append(f"Could not read {what}: {type(exc).__name__}: {str(exc)[:200]}")
        return fallback


def number(value: Any) -> float | None:
    """A stored timestamp or progress as a finite float, else None."""
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def error_of(record: JobRecord) -> tuple[str, str]:
    """(error class, message) of a job that ended badly: the exception its traceback ends
    with, else ('', the reason's first line), as ``Job.wait`` reports it."""
    from jobbench.jobs.job import job_failure

    failure = job_failure(record)
    if failure.exc_type:
        return failure.exc_type, (failure.exc_message or "")[:MESSAGE_CHARS]
    text = (record.exc_info or "").strip()
    return "", (text.splitlines()[0] if text else "")[:MESSAGE_CHARS]


def job_row(record: JobRecord, now: float) -> dict[str, Any]:
    """One job of the list as plain display values; an error row when the record is odd."""
    try:
        started, ended = number(record.started_at), number(record.ended_at)
        status = str(record.status)
        bad = status in ("failed", "stopped") or (status == "scheduled" and record.exc_info)
        error = error_of(record) if bad else ("", "")
        runtime = None
        if started is not None:
            runtime = max(0.0, (ended if ended is not None else now) - started)
        return {
            "job_id": str(record.job_id),
            "site": str(record.site),
            "queue": str(record.queue),
            "method": str(record.method),
            "status": status,
            "progress": number(record.progress),
            "enqueued_at": number(record.enqueued_at),
            "started_at": started,
            "ended_at": ended,
            "run_at": number(record.retry_at) if status == "scheduled" else None,
            "worker": record.worker or "",
            "runtime": runtime,
            "attempts": int(record.attempts or 0),
            "waits_for": [split_id(i) for i in record.dependencies] if status == "deferred" else [],
            "exc_type": error[0],
            "exc_message": error[1],
            "error": None,
        }
    except UNREADABLE as exc:
        shown = getattr(record, "id", None)
        return {"job_id": str(shown or "?"), "error": f"{type(exc).__name__}: {exc}"}


def status_counts(inspector: Inspector, queue: str | None) -> dict[str, int]:
    """Jobs per status over every site (of ``queue`` when given): the broker's counts."""
    totals = dict.fromkeys(STATUSES, 0)
    for name, by_status in inspector.broker.counts().items():
        if queue is None or name == queue:
            for status, n in by_status.items():
                if status in totals:
                    totals[status] += int(n)
    return totals


def _matches(filters: JobFilters) -> Callable[[JobRecord], bool]:
    needle = (filters.q or "").lower()

    def match(record: JobRecord) -> bool:
        if filters.method and record.method != filters.method:
            return False
        if needle and needle not in str(record.method).lower():
            return False
        return not filters.exc_type or (error_of(record)[0] or NO_CLASS) == filters.exc_type

    return match


def _by_id(inspector: Inspector, filters: JobFilters) -> list[JobRecord]:
    """The jobs whose id is the search text, on the filtered site or any site."""
    q = (filters.q or "").strip()
    if not q:
        return []
    sites = [filters.site] if filters.site else inspector.bench.list_sites()
    found = [inspector.broker.get(full_id(site, q)) for site in sites]
    return [
        r for r in found if r is not None and (not filters.status or r.status == filters.status)
    ]


def _page(records: Iterator[JobRecord], offset: int, limit: int) -> tuple[list[JobRecord], bool]:
    kept: list[JobRecord] = []
    for i, record in enumerate(records):
        if i >= offset + limit:
            return kept, True
        if i >= offset:
            kept.append(record)
    return kept, False


def find_jobs(inspector: Inspector, filters: JobFilters) -> tuple[list[JobRecord], bool, bool]:
    """(one page of records, whether more follow, whether the search matched a job id)."""
    exact = _by_id(inspector, filters)
    if exact:
        return exact, False, True
    if not (filters.method or filters.q or filters.exc_type):
        page = inspector.jobs(
            site=filters.site, queue=filters.queue, status=filters.status,
            limit=filters.per_page, offset=filters.offset,
        )  # fmt: skip
        return page.jobs, page.has_more, False
    match = _matches(filters)
    records = inspector.iter_jobs(site=filters.site, queue=filters.queue, status=filters.status)
    found, more = _page((r for r in records if match(r)), filters.offset, filters.per_page)
    return found, more, False


def failed_matching(inspector: Inspector, filters: JobFilters) -> list[tuple[str, str]]:
    """(site, job id) of every failed job of the filtered site, queue and error class."""
    match = _matches(JobFilters(exc_type=filters.exc_type))
    records = inspector.iter_jobs(site=filters.site, queue=filters.queue, status="failed")
    return [(r.site, r.job_id) for r in records if match(r)]


def error_groups(inspector: Inspector, filters: JobFilters) -> list[dict[str, Any]]:
    """Failed jobs (of the filtered site and queue) by error class and message, with counts."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in inspector.iter_jobs(site=filters.site, queue=filters.queue, status="failed"):
        exc_type, message = error_of(record)
        group = groups.setdefault(
            (exc_type, message),
            {"exc_type": exc_type, "message": message, "count": 0, "last": None},
        )
        group["count"] += 1
        ended = number(record.ended_at)
        if ended is not None and (group["last"] is None or ended > group["last"]):
            group["last"] = ended
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], -(g["last"] or 0)))
    return ordered[:ERROR_GROUPS]


def jobs(inspector: Inspector, filters: JobFilters) -> JobRows:
    problems: list[str] = []
    found = guarded(
        problems, "the job records", lambda: find_jobs(inspector, filters), ([], False, False)
    )
    records, has_more, exact = found
    now = time.time()
    rows = JobRows([job_row(r, now) for r in records], has_more, problems, exact=exact)
    rows.counts = guarded(
        problems, "the job counts", lambda: status_counts(inspector, filters.queue), {}
    )
    if filters.status == "failed":
        rows.groups = guarded(
            problems, "the failed jobs' errors", lambda: error_groups(inspector, filters), []
        )
    return rows
