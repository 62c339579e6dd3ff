"""``migrate`` syncs apps' ``scheduler_events`` hooks into Scheduled Job Type documents.

As in Frappe, a hooked method has one Scheduled Job Type: a method listed under two keys gets
the later one (apps in install order, keys in hook order), with a warning naming both. A new
method is inserted; a method whose frequency, cron or queue changed updates its document in
place (same name, logs and ``stopped`` flag kept); documents no longer in any hook are deleted
unless they belong to a Scheduler Event (created at run time). Cron strings are stored and
compared normalized (outer and repeated spaces dropped), so a padded string causes no update
on each migrate. A method that does not resolve, an invalid cron or an unknown hook key is
reported as a warning naming the app, and nothing is inserted for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobbench.apps import load_app_hooks
from jobbench.context import SiteLocal
from jobbench.errors import JobbenchError
from jobbench.scheduler.cron import normalize_cron

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
    "hourly_maintenance": "Hourly Maintenance",
    "daily_maintenance": "Daily Maintenance",
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
    """The schedule of each hooked method, in app order, minus the invalid entries."""
    from jobbench.jobs.enqueue import method_path
    from jobbench.scheduler.cron import validate_cron

    wanted: dict[str, tuple[str, Wanted]] = {}
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
                where = _where(key, entry)
                earlier = wanted.get(entry.method)
                if earlier is not None and earlier[1] != entry:
                    report.warnings.append(
                        f"{app}: {entry.method} is listed under {earlier[0]} and {where}; "
                        f"one Scheduled Job Type per method, as in Frappe: {where} is used"
                    )
                wanted[entry.method] = (where, entry)
    return [entry for _, entry in wanted.values()]


def _where(key: str, entry: Wanted) -> str:
    if entry.cron_format is None:
        return f"scheduler_events[{key!r}]"
    return f"scheduler_events[{key!r}][{entry.cron_format!r}]"


def _entries(app: str, key: str, value: Any, report: SyncReport) -> list[Wanted]:
    if key in HOOK_FREQUENCIES:
        return [Wanted(m, HOOK_FREQUENCIES[key], None, None) for m in _methods(value)]
    if key in CRON_KEYS and isinstance(value, dict):
        return [
            Wanted(m, "Cron", normalize_cron(str(expr)), CRON_KEYS[key])
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
    existing = local.db.get_all(
        JOB_TYPE,
        filters={"scheduler_event": ("is", "not set")},
        fields=["name", "method", "frequency", "cron_format", "queue"],
        order_by="creation asc",
    )
    by_method: dict[str, list[Any]] = {}
    for row in existing:
        by_method.setdefault(row.method, []).append(row)
    for entry in wanted_from_hooks(local, report):
        rows = by_method.pop(entry.method, [])
        same = next((r for r in rows if _wanted(r) == entry), None)
        keep = same or (rows[0] if rows else None)
        for row in rows:
            if row is not keep:
                delete_doc(JOB_TYPE, row.name)
                report.deleted.append(str(row.name))
        if same is not None:
            continue
        values = {"frequency": entry.frequency, "cron_format": entry.cron_format}
        if keep is not None:
            doc = get_doc(JOB_TYPE, keep.name)
            doc.update({**values, "queue": entry.queue})
            doc.save()
            report.updated.append(str(doc.name))
            continue
        doc = new_doc(JOB_TYPE, method=entry.method, queue=entry.queue, **values)
        doc.insert()
        report.inserted.append(str(doc.name))
    for rows in by_method.values():
        for row in rows:
            delete_doc(JOB_TYPE, row.name)
            report.deleted.append(str(row.name))
    _refresh_schedules(local)
    return report


def _wanted(row: Any) -> Wanted:
    return Wanted(row.method, row.frequency, row.cron_format, row.queue)


def _refresh_schedules(local: SiteLocal) -> None:
    """Re-derive the next run of every job type (scheduler_interval or the site's time zone
    may have changed since it was stored; the scheduler would also do it at its next tick)."""
    from jobbench.documents import get_doc

    for name in local.db.get_all(JOB_TYPE, pluck="name"):
        doc = get_doc(JOB_TYPE, name)
        before = (doc.next_run_at, doc.next_execution, doc.schedule_basis)
        values = doc.refresh_schedule()
        if tuple(values.values()) != before:
            local.db.set_value(JOB_TYPE, name, values, update_modified=False)
