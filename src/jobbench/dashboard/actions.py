"""The dashboard's actions, each through the public API in the site's context.

Every function returns a one-line message for the flash banner; a refused action (job
running, unknown job) raises a JobbenchError whose text is shown instead.
"""

from __future__ import annotations

from jobbench.bench import Bench
from jobbench.context import site_context
from jobbench.errors import ValidationError

JOB_ACTIONS = ("stop", "retry", "delete")
JOB_TYPE_ACTIONS = ("stop", "resume", "execute", "skip")


def job_action(bench: Bench, site: str, job_id: str, action: str) -> str:
    from jobbench.jobs.job import delete_job, retry_job, stop_job

    bench.require_site(site)
    with site_context(site, bench.path):
        if action == "stop":
            return f"Job {job_id}: {stop_job(job_id)}"
        if action == "retry":
            done = retry_job(job_id)
            return f"Job {job_id}: {'queued again' if done else 'still pending, not retried'}"
        if action == "delete":
            done = delete_job(job_id)
            return f"Job {job_id}: {'deleted' if done else 'running, not deleted'}"
    raise ValidationError(f"unknown job action {action!r}; expected one of {JOB_ACTIONS}")


def purge_failed(bench: Bench, site: str | None, queue: str | None) -> str:
    """Delete failed jobs of one site (or every site when ``site`` is None)."""
    from jobbench.jobs.job import purge_failed as purge

    sites = bench.list_sites()
    if site:
        bench.require_site(site)
    if not sites:
        return "No sites"
    with site_context(site or sites[0], bench.path):
        n = purge(queue=queue or None, all_sites=site is None)
    return f"Purged {n} failed job{'s' if n != 1 else ''}"


def job_type_action(bench: Bench, site: str, name: str, action: str) -> str:
    """stop / resume / execute (enqueue a run now) / skip (the next slot) a Scheduled Job Type."""
    from jobbench.documents import get_doc

    bench.require_site(site)
    with site_context(site, bench.path) as local:
        doc = get_doc("Scheduled Job Type", name)
        if action in ("stop", "resume"):
            doc.stopped = action == "stop"
            doc.save()
            message = f"{name}: {'stopped' if doc.stopped else 'resumed'}"
        elif action == "execute":
            enqueued = doc.enqueue(force=True)  # never beside a run still queued or running
            message = f"{name}: run enqueued" if enqueued else f"{name}: a run is already pending"
        elif action == "skip":
            doc.skip_next_execution()
            message = f"{name}: next run is now {doc.next_execution}"
        else:
            raise ValidationError(f"unknown action {action!r}; expected one of {JOB_TYPE_ACTIONS}")
        local.db.commit()
    return message
