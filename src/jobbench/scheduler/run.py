"""Running a Scheduled Job Type: enqueueing a run, executing it, and its Scheduled Job Log.

A run is the job ``run_scheduled_job(job_type=...)`` with id ``scheduled_job::<name>``, so a
previous run that is still queued or started blocks the next one. Logs are written in a
nested site context (their own connection, committed at once): "Start" must be visible while
the run's transaction is open, and "Failed" must survive the run's rollback.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from typing import Any

import sqlalchemy as sa

from jobbench.context import current, get_controller, site_context
from jobbench.errors import JobbenchError, JobError
from jobbench.jobs.enqueue import resolve
from jobbench.jobs.trust import check_method
from jobbench.scheduler import cron

_LOG = logging.getLogger("jobbench.scheduler")  # in the executor: the run's own warnings

RUN_METHOD = "jobbench.scheduler.run.run_scheduled_job"
LOG = "Scheduled Job Log"
JOB_TYPE = "Scheduled Job Type"


def job_id_for(job_type: str) -> str:
    return f"scheduled_job::{job_type}"


def run_scheduled_job(job_type: str, slot: int | None = None) -> Any:
    """The job a scheduled run executes in a worker (as Administrator); ``slot`` is the UTC
    epoch of the slot the scheduler enqueued it for."""
    from jobbench.documents import get_doc

    return run_job_type(get_doc(JOB_TYPE, job_type), slot)


def _target(doc: Any) -> tuple[Any, dict[str, Any]]:
    """The callable to run: the method, or the linked Scheduler Event's method or hook."""
    if not doc.scheduler_event:
        return _allowed(doc.method), {}
    from jobbench.documents import get_doc

    event = get_doc("Scheduler Event", doc.scheduler_event)
    if event.method:
        return _allowed(event.method), {}
    hook = getattr(get_controller(event.scheduled_against), "run_scheduled_event", None)
    if not callable(hook):
        raise JobError(
            f"Scheduler Event {event.name}: doctype {event.scheduled_against!r} has no "
            "run_scheduled_event hook and the event has no method; set one of them"
        )
    return hook, {"event": event}


def _allowed(path: str) -> Any:
    """A schedule's method, imported only when it lies under the site's apps: anyone who can
    write a Scheduled Job Type row must not reach code outside them (docs/security.md)."""
    check_method(path, current().conf)
    return resolve(path)


def run_job_type(doc: Any, slot: int | None = None) -> Any:
    """Execute a job type here and now, with a log when it has ``create_log``.

    As in Frappe, ``last_execution`` is set (and committed) at Start, so the next run follows
    the time this one really began. A log that cannot be written is reported on stderr and
    never keeps the method from running."""
    local = current()
    # End the caller's transaction first (Frappe commits at Start too): on SQLite a read
    # snapshot older than the log's commit would make every write of the run fail.
    local.db.commit()
    _mark_start(doc, slot)
    log = _start_log(doc) if doc.create_log else None
    try:
        fn, kwargs = _target(doc)
        result = fn(**kwargs)
        local.db.commit()
    except BaseException:  # a stop on request (StopJob) must not leave the log at Start
        local.db.rollback()
        if log:
            _finish_log(log, "Failed", traceback.format_exc())
        raise
    if log:
        _finish_log(log, "Complete", None)
    return result


def _mark_start(doc: Any, slot: int | None) -> None:
    """last_execution = now, with the exact instant and the next slot derived from it.

    A run never starts before its own slot, nor before the run its scheduler recorded for it
    (when this machine's clock is behind the scheduler's): otherwise the next slot could come
    out as one already past, and run twice. The row is read again under a write lock, since
    the scheduler may have recorded the run after this job loaded the document."""
    local = current()
    zone = local.time_zone()
    try:
        local.db.begin_write()
        _read_last_run(local, doc)
        start = max(_floors(doc, slot))
        doc.last_execution = cron.to_local(start, zone).replace(fold=0)
        doc.last_run_at = start.timestamp()
        values = {"last_execution": doc.last_execution, "last_run_at": doc.last_run_at}
        values.update(doc.refresh_schedule())
        local.db.set_value(JOB_TYPE, doc.name, values, update_modified=False)
        local.db.commit()
    except JobbenchError as exc:
        local.db.rollback()
        _report(doc, "could not record last_execution", exc)


def _read_last_run(local: Any, doc: Any) -> None:
    """Refresh last_execution/last_run_at from the row, locked (FOR UPDATE on servers)."""
    table = doc.get_meta().table
    stmt = sa.select(table.c.last_execution, table.c.last_run_at).where(table.c.name == doc.name)
    row = local.db.execute(stmt.with_for_update()).first()
    if row is not None:
        doc.last_execution, doc.last_run_at = row[0], row[1]


def _floors(doc: Any, slot: int | None) -> list[dt.datetime]:
    floors = [dt.datetime.now(dt.UTC)]
    if slot is not None:
        floors.append(dt.datetime.fromtimestamp(slot, dt.UTC))
    recorded = doc.recorded_run()  # the scheduler's own record of this run, not a user's edit
    if recorded is not None:
        floors.append(recorded)
    return floors


def _report(doc: Any, what: str, exc: BaseException) -> None:
    _LOG.warning(
        "scheduled job %s on %s: %s (%s); running anyway", doc.name, current().site, what, exc
    )


def _start_log(doc: Any) -> str | None:
    local = current()
    job = local.job
    try:
        with site_context(local.site, local.bench.path) as ctx:
            entry = ctx.doctypes()[LOG](
                scheduled_job_type=doc.name,
                status="Start",
                start=ctx.now(),
                job_id=getattr(job, "id", None),
            )
            entry.insert()
            ctx.db.commit()
            return str(entry.name)
    except Exception as exc:  # noqa: BLE001 - a log must never stop the run
        _report(doc, "could not write its Scheduled Job Log", exc)
        return None


def _finish_log(name: str, status: str, details: str | None) -> None:
    local = current()
    try:
        with site_context(local.site, local.bench.path) as ctx:
            ctx.db.set_value(LOG, name, {"status": status, "details": details, "end": ctx.now()})
            ctx.db.commit()
    except Exception as exc:  # noqa: BLE001 - the run's own outcome stands
        _LOG.warning(
            "Scheduled Job Log %s on %s: could not record %s (%s); the settle step ends logs "
            "left at Start",
            *(name, local.site, status, exc),
        )


def fail_open_logs(site: str, bench_path: Any, job_type: str, reason: str) -> int:
    """A run that died (worker killed, hard timeout) leaves its log at Start: end it Failed."""
    with site_context(site, bench_path) as ctx:
        names = ctx.db.get_all(
            LOG, filters={"scheduled_job_type": job_type, "status": "Start"}, pluck="name"
        )
        for name in names:
            ctx.db.set_value(LOG, name, {"status": "Failed", "details": reason, "end": ctx.now()})
        ctx.db.commit()
        return len(names)


def enqueue_job_type(doc: Any, slot: int | None) -> str:
    """Enqueue a run of ``doc`` unless its previous run is still queued or started.

    ``slot`` is the slot's identity (UTC epoch); the broker refuses the same slot twice, so
    several schedulers can try the same slot and only one run is enqueued. Returns
    "enqueued", "pending" (previous run still queued or running) or "duplicate" (this slot
    was enqueued already, by this or another scheduler)."""
    from jobbench.jobs.enqueue import enqueue
    from jobbench.jobs.job import is_job_enqueued

    local = current()
    job_id = job_id_for(doc.name)
    if is_job_enqueued(job_id):
        return "pending"
    once = f"{local.site}|{doc.name}|{slot}" if slot is not None else None
    user = local.session.user
    local.session.user = "Administrator"  # scheduled jobs run as Administrator
    try:
        job = enqueue(
            RUN_METHOD,
            queue=doc.target_queue,
            timeout=doc.timeout or None,
            job_name=doc.method if doc.method != "scheduler_event" else doc.name,
            job_id=job_id,
            once_key=once,
            durable=False,  # the tick needs the broker's answer; an outage retries next tick
            job_type=doc.name,
            slot=slot,
        )
    finally:
        local.session.user = user
    return "enqueued" if job is not None else "duplicate"
