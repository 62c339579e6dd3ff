"""The dashboard's actions, each through the public API in the site's context.

Every function returns a one-line message for the flash banner; a refused action (job
running, unknown job) raises a JobbenchError whose text is shown instead.
"""

from __future__ import annotations

from jobbench.bench import Bench
from jobbench.context import site_context
from jobbench.errors import ValidationError

JOB_ACTIONS = ("stop", "cancel", "retry", "delete", "run_now")
BULK_ACTIONS = ("retry", "delete")
JOB_TYPE_ACTIONS = ("stop", "resume", "execute", "skip")
BULK_LIMIT = 1000  # jobs one bulk form may name


def job_action(bench: Bench, site: str, job_id: str, action: str) -> str:
    """stop (a running job) / cancel (a queued or scheduled one) / retry / delete / run_now
    (a scheduled job, at once) one job, through the public job API."""
    if action not in JOB_ACTIONS:
        raise ValidationError(f"unknown job action {action!r}; expected one of {JOB_ACTIONS}")
    bench.require_site(site)
    with site_context(site, bench.path):
        return f"Job {job_id}: {_one(job_id, action)}"


def _one(job_id: str, action: str) -> str:
    from jobbench.jobs.job import delete_job, retry_job, run_job_now, stop_job

    if action in ("stop", "cancel"):  # the same call: a pending job is canceled at once
        return stop_job(job_id)
    if action == "retry":
        return "queued again" if retry_job(job_id) else "still pending, not retried"
    if action == "run_now":
        return "queued to run now" if run_job_now(job_id) else "not scheduled, left as it is"
    return "deleted" if delete_job(job_id) else "running, not deleted"


def bulk_action(bench: Bench, action: str, jobs: list[tuple[str, str]]) -> str:
    """retry or delete each of ``jobs`` ((site, job id) pairs); one line saying how it went.
    A job that is gone or in a state the action does not apply to is counted, not fatal."""
    if action not in BULK_ACTIONS:
        raise ValidationError(f"unknown bulk action {action!r}; expected one of {BULK_ACTIONS}")
    if not jobs:
        raise ValidationError("no job selected")
    if len(jobs) > BULK_LIMIT:
        raise ValidationError(f"{len(jobs)} jobs selected; at most {BULK_LIMIT} at once")
    return apply_to_jobs(bench, action, jobs)


def retry_all(bench: Bench, jobs: list[tuple[str, str]]) -> str:
    """Retry every one of ``jobs`` (a filtered failed list, found again at confirmation)."""
    if not jobs:
        return "No failed job matches"
    return apply_to_jobs(bench, "retry", jobs)


def apply_to_jobs(bench: Bench, action: str, jobs: list[tuple[str, str]]) -> str:
    """``bulk_action`` without its limits: one site context per site."""
    from jobbench.errors import NoSuchJobError

    for site in {site for site, _ in jobs}:
        bench.require_site(site)  # before any change: nothing half done for a bad site
    done = skipped = missing = 0
    for site in sorted({site for site, _ in jobs}):
        with site_context(site, bench.path):
            for job_site, job_id in jobs:
                if job_site != site:
                    continue
                try:
                    changed = _one(job_id, action) in ("queued again", "deleted")
                except NoSuchJobError:
                    missing += 1
                    continue
                done, skipped = done + changed, skipped + (not changed)
    verb = "queued again" if action == "retry" else "deleted"
    parts = [f"{done} job{'s' if done != 1 else ''} {verb}"]
    if skipped:
        parts.append(
            f"{skipped} skipped (" + ("still pending" if action == "retry" else "running") + ")"
        )
    if missing:
        parts.append(f"{missing} no longer there")
    return ", ".join(parts)


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
