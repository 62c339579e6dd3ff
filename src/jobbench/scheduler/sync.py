"""``migrate`` syncs apps' ``scheduler_events`` hooks into Scheduled Job Type documents.

New (method, frequency, cron) entries are inserted; an entry whose frequency or cron changed
updates the existing document in place (same name, logs and ``stopped`` flag kept); documents
no longer in any hook are deleted unless they belong to a Scheduler Event (created at run
time). A method that does not resolve, or an unknown hook key, is reported as a warning naming
the app, and nothing is inserted for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobbench.apps import load_app_hooks
from jobbench.context import SiteLocal
from jobbench.errors import JobbenchError

HOOK_FREQUENCIES = {
    "all": "All",
    "hourly": "Hourly",
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "yearly": "Yearly",
    "annual": "Annual",
    "hourly_long": "Hourly Long",
    "daily_long": "Daily Long",
    "weekly_long": "Weekly Long",
    "monthly_long": "Monthly Long",
}
CRON_KEYS = {"cron": None, "cron_long": "long"}  # cron_long: cron schedules on the long queue
JOB_TYPE = "Scheduled Job Type"


@dataclass(frozen=True)
class Wanted:
    method: str
    frequency: str
    cron_format: str | None
    queue: str | None


@dataclass
class SyncReport:
    inserted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def wanted_from_hooks(local: SiteLocal, report: SyncReport) -> list[Wanted]:
    """Every schedule the installed apps ask for, in app order, minus the invalid ones."""
    from jobbench.jobs.enqueue import method_path
    from jobbench.scheduler.cron import validate_cron

    wanted: list[Wanted] = []
    for app in local.apps:
        events = getattr(load_app_hooks(app), "scheduler_events", None) or {}
        for key, value in events.items():
            for entry in _entries(app, key, value, report):
                try:
                    method_path(entry.method)
                    if entry.cron_format is not None:
                        validate_cron(entry.cron_format)
                except JobbenchError as exc:
                    report.warnings.append(f"{app}: scheduler_events[{key!r}]: {exc}")
                    continue
                if entry not in wanted:
                    wanted.append(entry)
    return wanted


def _entries(app: str, key: str, value: Any, report: SyncReport) -> list[Wanted]:
    if key in HOOK_FREQUENCIES:
        return [Wanted(m, HOOK_FREQUENCIES[key], None, None) for m in _methods(value)]
    if key in CRON_KEYS and isinstance(value, dict):
        return [
            Wanted(m, "Cron", str(expr), CRON_KEYS[key])
            for expr, methods in value.items()
            for m in _methods(methods)
        ]
    known = ", ".join([*HOOK_FREQUENCIES, *CRON_KEYS])
    report.warnings.append(
        f"{app}: unknown scheduler_events key {key!r} (known: {known}); nothing scheduled for it"
    )
    return []


def _methods(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [str(m) for m in items if isinstance(m, str) and m]


def sync_jobs(local: SiteLocal) -> SyncReport:
    """Bring Scheduled Job Types in line with the hooks (in the current transaction)."""
    from jobbench.documents import delete_doc, get_doc, new_doc

    report = SyncReport()
    wanted = wanted_from_hooks(local, report)
    existing = local.db.get_all(
        JOB_TYPE,
        filters={"scheduler_event": ("is", "not set")},
        fields=["name", "method", "frequency", "cron_format", "queue"],
        order_by="creation asc",
    )
    matched = {
        row.name
        for row in existing
        if Wanted(row.method, row.frequency, row.cron_format, row.queue) in wanted
    }
    have = {Wanted(r.method, r.frequency, r.cron_format, r.queue) for r in existing}
    orphans = [r for r in existing if r.name not in matched]
    for entry in wanted:
        if entry in have:
            continue
        reuse = next((r for r in orphans if r.method == entry.method), None)
        if reuse is not None:
            orphans.remove(reuse)
            doc = get_doc(JOB_TYPE, reuse.name)
            doc.update(
                {
                    "frequency": entry.frequency,
                    "cron_format": entry.cron_format,
                    "queue": entry.queue,
                }
            )
            doc.save()
            report.updated.append(str(doc.name))
            continue
        doc = new_doc(
            JOB_TYPE,
            method=entry.method,
            frequency=entry.frequency,
            cron_format=entry.cron_format,
            queue=entry.queue,
        )
        doc.insert()
        report.inserted.append(str(doc.name))
    for row in orphans:
        delete_doc(JOB_TYPE, row.name)
        report.deleted.append(str(row.name))
    _refresh_next_execution(local)
    return report


def _refresh_next_execution(local: SiteLocal) -> None:
    """Re-derive next_execution of every job type (scheduler_interval or the site's time zone
    may have changed since it was stored)."""
    from jobbench.documents import get_doc

    for name in local.db.get_all(JOB_TYPE, pluck="name"):
        doc = get_doc(JOB_TYPE, name)
        fresh = doc.get_next_execution()
        if fresh != doc.next_execution:
            doc.db_set("next_execution", fresh, update_modified=False)
