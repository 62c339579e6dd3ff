"""Background Task documents for jobs enqueued with ``track_job=True`` (README, "Background
jobs"; the doctype is ``jobbench/doctypes/background_task.py``).

Tracking writes run in a nested site context, which has its own connection and transaction,
committed at once: the task must exist before a worker can pick the job up, must show
"Running" while the job's own transaction is still open, and must record a failure even though
the job's work is rolled back.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from jobbench.context import SiteLocal, site_context
from jobbench.errors import JobbenchError
from jobbench.jobs.record import JobRecord, JobStatus, full_id
from jobbench.model import query

if TYPE_CHECKING:
    from jobbench.bench import Bench
    from jobbench.brokers.base import Broker

RUN_DOC_METHOD = "jobbench.jobs.execute.run_doc_method"
DOCTYPE = "Background Task"


def _plain(value: Any) -> Any:
    """A JSON-safe copy for display (dates and other objects become strings)."""
    return json.loads(json.dumps(value, default=str))


def create_task(local: SiteLocal, record: JobRecord, kwargs: dict[str, Any]) -> None:
    with site_context(local.site, local.bench.path, user=record.user) as ctx:
        doc: Any = ctx.doctypes()[DOCTYPE](
            task_id=record.task_id,
            job_id=record.job_id,
            task_name=record.job_name,
            status="Queued",
            user=record.user,
            method=record.method,
            arguments=_plain(kwargs),
            queue=record.queue,
        )
        if record.method == RUN_DOC_METHOD:
            doc.ref_doctype, doc.ref_docname = kwargs.get("doctype"), kwargs.get("name")
            doc.method = f"{kwargs.get('doctype')}.{kwargs.get('doc_method')}"
        doc.insert()
        ctx.db.commit()


_PENDING = "pending_task_update"


RUNNING = ("Running",)  # a job's own updates after its start
STARTING = ("Queued", "Running")


def update_for(
    local: SiteLocal,
    record: JobRecord,
    stamp: str | None = None,
    *,
    expect: tuple[str, ...] = RUNNING,
    **values: Any,
) -> None:
    """From inside a job's context: update its task, setting field ``stamp`` to now, only
    while the task's status is one of ``expect``. A job's updates are conditional because
    the broker, not the job, decides its outcome: when a worker cut off from the broker was
    given up on (its job failed by a reaper, the task set Failed by ``sync_task``), the job
    that then runs to its end behind the cut must not turn the task Completed.

    Nothing is read through the job's own connection (the time comes from the tracking
    context). On SQLite, while the job's transaction is open, a commit from another connection
    would leave the job on a stale snapshot (its next write fails "database is locked") or wait
    on its write lock; then the values are kept back and written after the job's next commit,
    or once its context is closed (``flush_pending``)."""
    if not record.task_id:
        return
    stamps = [stamp] if stamp else []
    db = local.db
    if db.backend == "sqlite" and db.conn.in_transaction():
        pending = local.flags.setdefault(_PENDING, {"values": {}, "stamps": [], "expect": ()})
        pending["values"].update(values)
        pending["stamps"] += stamps
        pending["expect"] = tuple(dict.fromkeys(pending["expect"] + expect))
        db.after_commit.add(lambda: flush_pending(local, record))
        return
    update_task(
        local.site, local.bench.path, record.task_id, stamps=stamps, expect=expect, **values
    )


def flush_pending(local: SiteLocal, record: JobRecord) -> None:
    """Write the task values ``update_for`` kept back, if any; never raises."""
    pending = local.flags.pop(_PENDING, None)
    if not pending:
        return
    with contextlib.suppress(Exception):  # tracking must never fail (or un-commit) the job
        update_task(
            local.site,
            local.bench.path,
            record.task_id,
            stamps=pending["stamps"],
            expect=pending["expect"],
            **pending["values"],
        )


def update_task(
    site: str,
    bench_path: Any,
    task_id: str | None,
    *,
    stamps: Any = (),
    expect: tuple[str, ...] = (),
    **values: Any,
) -> None:
    """Set fields of the task (``stamps``: fields set to the site's now) and commit at once;
    a task that is gone, or (``expect``) whose status is not one of those, is left as it is:
    one UPDATE with the status in its WHERE, so no other writer slips in between."""
    if not task_id:
        return
    if "result" in values:
        values["result"] = _plain(values["result"])
    with site_context(site, bench_path) as ctx:
        # A read then a write, beside other jobs of the site writing their tasks (threads of
        # one executor, other workers): on SQLite take the write lock up front.
        ctx.db.begin_write()
        for name in stamps:
            values[name] = ctx.now()
        if expect:
            where = {"name": task_id, "status": ["in", list(expect)]}
            query.set_value(ctx.db, DOCTYPE, where, values)
            ctx.db.commit()
        elif query.exists(ctx.db, DOCTYPE, task_id):
            query.set_value(ctx.db, DOCTYPE, task_id, values)
            ctx.db.commit()


REPLACED = "replaced by a new job with the same id"


def end_replaced(local: SiteLocal, record: JobRecord) -> None:
    """End the Background Tasks of the job ``record`` replaced: Cancelled, with the reason.

    A job enqueued under the id of one that has not ended takes its place (a broker keeps one
    record per id), so nothing would ever settle the first job's task: it stayed Queued at 0 %.
    Call this once the broker has taken ``record``; ``record``'s own task is left alone. Never
    raises: the new job is enqueued either way."""
    end_replaced_many(local, [record])


def end_replaced_many(local: SiteLocal, records: list[JobRecord]) -> None:
    """``end_replaced`` for the jobs of a batch (enqueue_many): one context, one query per
    500 ids."""
    last = {r.job_id: r.task_id for r in records}  # a later job of the batch replaced an earlier
    own, ids = set(last.values()), list(last)
    db = local.db
    if db.in_transaction():
        # The caller holds a transaction (the scheduler's tick holds SQLite's write lock): a
        # second connection writing now would wait for it until the lock timeout. Record the
        # replacement once the caller commits.
        db.after_commit.add(lambda: _end_replaced(local.site, local.bench.path, own, ids))
        return
    _end_replaced(local.site, local.bench.path, own, ids)


def _end_replaced(site: str, bench_path: Any, own: set[str | None], ids: list[str]) -> None:
    with contextlib.suppress(JobbenchError), site_context(site, bench_path) as ctx:
        ctx.db.begin_write()
        for i in range(0, len(ids), 500):
            names = ctx.db.get_all(
                DOCTYPE,
                filters={
                    "job_id": ("in", ids[i : i + 500]),
                    "status": ("in", ["Queued", "Running"]),
                },
                pluck="name",
            )
            for name in names:
                if name not in own:
                    values = {"status": "Cancelled", "exception": REPLACED, "ended_at": ctx.now()}
                    query.set_value(ctx.db, DOCTYPE, name, values)
        ctx.db.commit()


def delete_task(local: SiteLocal, task_id: str | None) -> None:
    """Remove a task whose job the broker did not take (duplicate, overloaded, unreachable)."""
    if not task_id:
        return
    with site_context(local.site, local.bench.path) as ctx:
        ctx.db.delete(DOCTYPE, {"name": task_id})
        ctx.db.commit()


# -- settled jobs -------------------------------------------------------------------------------
# Used by Job.stop() (a job canceled before it started) and by the worker's settling of jobs
# whose executor or worker is gone (worker/settle.py): both only know the broker record.
TASK_STATUS = {
    JobStatus.FAILED: "Failed",
    JobStatus.STOPPED: "Cancelled",
    JobStatus.CANCELED: "Cancelled",
    JobStatus.SCHEDULED: "Queued",
    JobStatus.DEFERRED: "Queued",
}


def sync_task(broker: Broker, bench: Bench, job_id: str, reason: str | None) -> None:
    """Bring the job's Background Task (if tracked) in line with the job's settled status,
    and those of the dependents its end canceled (the broker cancels them in that step)."""
    record = broker.get(job_id)
    if record is None:
        return
    if record.task_id:
        _update(bench, record, reason or record.exc_info or "")
    if record.status in _CANCELS_DEPENDENTS:
        sync_canceled_dependents(broker, bench, record.id)


def delete_job_synced(broker: Broker, bench: Bench, job_id: str) -> bool:
    """``broker.delete`` (False: the job is running, or gone), and then the Background Tasks
    of the dependents the deletion canceled. Their registrations go with the deleted record,
    so they are read first."""
    waiting = broker.dependents(job_id)
    if not broker.delete(job_id):
        return False
    for dependent in waiting:
        with contextlib.suppress(Exception):  # tracking never undoes the deletion
            sync_task(broker, bench, dependent, None)
    return True


def sync_canceled_tasks(broker: Broker, bench: Bench, site: str) -> int:
    """The site's Queued Background Tasks whose jobs the broker canceled without their task
    hearing of it (a bulk purge cancels the dependents of the jobs it deletes, and drops the
    registrations that would find them): set Cancelled with the reason. One broker read per
    Queued task; how many were updated."""
    with site_context(site, bench.path) as ctx:
        rows = ctx.db.get_all(DOCTYPE, filters={"status": "Queued"}, fields=["name", "job_id"])
    updated = 0
    for row in rows:
        record = broker.get(full_id(site, str(row["job_id"]))) if row["job_id"] else None
        if (
            record is not None
            and record.status == JobStatus.CANCELED
            and record.task_id == row["name"]
        ):
            _update(bench, record, record.exc_info or "")
            updated += 1
    return updated


_CANCELS_DEPENDENTS = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
DEPENDENCY_CANCEL = "canceled: its dependency "  # how the brokers word such a cancel


def sync_canceled_dependents(broker: Broker, bench: Bench, job_id: str) -> None:
    """The Background Tasks of the jobs canceled because job ``job_id`` (or, transitively, one
    of them) failed, was stopped or canceled: a walk down the broker's registrations."""
    seen, todo = {job_id}, [job_id]
    while todo:
        for dep_id in broker.dependents(todo.pop(), waiting=False):
            record = broker.get(dep_id)
            if dep_id in seen or record is None or record.status != JobStatus.CANCELED:
                continue
            if not (record.exc_info or "").startswith(DEPENDENCY_CANCEL):
                continue
            seen.add(dep_id)
            todo.append(dep_id)
            if record.task_id:
                _update(bench, record, record.exc_info or "")


def _update(bench: Bench, record: JobRecord, reason: str) -> None:
    status = TASK_STATUS.get(JobStatus(record.status))
    if status is None:
        return
    # A job waiting for its retry has not ended; any other settled job ends now (stamped in
    # update_task's own site context, not a second one opened just to read the clock).
    ended: dict[str, Any] = {"ended_at": None} if status == "Queued" else {}
    stamps = [] if status == "Queued" else ["ended_at"]
    with contextlib.suppress(JobbenchError):  # the site may be gone; the job is settled anyway
        update_task(
            record.site,
            bench.path,
            record.task_id,
            stamps=stamps,
            status=status,
            exception=reason,
            **ended,
        )
