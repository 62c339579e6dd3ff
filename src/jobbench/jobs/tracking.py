"""Background Task documents for jobs enqueued with ``track_job=True`` (SPEC section 6).

Tracking writes run in a nested site context, which has its own connection and transaction,
committed at once: the task must exist before a worker can pick the job up, must show
"Running" while the job's own transaction is still open, and must record a failure even though
the job's work is rolled back.
"""

from __future__ import annotations

import json
from typing import Any

from jobbench.context import SiteLocal, site_context
from jobbench.jobs.record import JobRecord
from jobbench.model import query

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


def update_for(
    local: SiteLocal, record: JobRecord, stamp: str | None = None, **values: Any
) -> None:
    """From inside a job's context: update its task, setting field ``stamp`` to now."""
    if not record.task_id:
        return
    if stamp:
        values[stamp] = local.now()
    update_task(local.site, local.bench.path, record.task_id, **values)


def update_task(site: str, bench_path: Any, task_id: str | None, **values: Any) -> None:
    """Set fields of the task and commit at once; a task that is gone is ignored."""
    if not task_id:
        return
    if "result" in values:
        values["result"] = _plain(values["result"])
    with site_context(site, bench_path) as ctx:
        if query.exists(ctx.db, DOCTYPE, task_id):
            query.set_value(ctx.db, DOCTYPE, task_id, values)
            ctx.db.commit()


def delete_task(local: SiteLocal, task_id: str | None) -> None:
    """Remove a task whose job the broker did not take (duplicate, overloaded, unreachable)."""
    if not task_id:
        return
    with site_context(local.site, local.bench.path) as ctx:
        ctx.db.delete(DOCTYPE, {"name": task_id})
        ctx.db.commit()
