"""Scheduled Job Type: one schedule (from hooks or created at run time) of one method.

``last_execution`` is the truth the next run follows, as in Frappe. Beside it the scheduler
keeps three derived columns that make a tick cheap and DST-safe:

- ``next_run_at`` (UTC epoch, indexed): the next slot as an instant. A tick reads only rows
  whose ``next_run_at`` is due or NULL. A database trigger (``scheduler/reschedule.py``) sets
  it NULL whenever ``last_execution``, ``frequency`` or ``cron_format`` change by any route
  that does not also write it (``db_set``, ``db.set_value``, raw SQL), so the next tick
  re-derives it.
- ``last_run_at`` (UTC epoch): the exact instant of the last run, which the naive
  ``last_execution`` cannot say in the hour a fall-back repeats. It is used only while it
  still matches ``last_execution``.
- ``schedule_basis``: the time zone and ``scheduler_interval`` ``next_run_at`` was derived
  with; a tick re-derives rows whose basis differs from the site's current one.

``next_execution`` is the next run as a naive local time. As in Frappe, reading it on a
document computes it from the fields as they are now (``doc.db_set("last_execution", ...)``
then ``doc.next_execution`` is the new next run); the column of that name is a stored copy
for lists and sorting, refreshed with ``next_run_at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobbench.errors import DuplicateEntryError, JobbenchError, MandatoryError
from jobbench.model.document import Document
from jobbench.model.fields import Field
from jobbench.scheduler import cron

EVENT_METHOD = "scheduler_event"  # shown as method of job types that run a Scheduler Event
MATCH = dt.timedelta(seconds=1)  # last_run_at still describes last_execution within this


class ScheduledJobType(Document):
    doctype = "Scheduled Job Type"
    naming = "autoname"

    method: str | None = Field(None, max_length=255, index=True)
    frequency: str = Field("Daily", options=cron.FREQUENCIES)
    cron_format: str | None = Field(None, max_length=140)
    stopped: bool = False
    create_log: bool = False
    last_execution: dt.datetime | None = None
    next_execution: dt.datetime | None = None
    next_run_at: float | None = Field(None, index=True)
    last_run_at: float | None = None
    schedule_basis: str | None = Field(None, max_length=140, index=True)
    scheduler_event: str | None = Field(None, link="Scheduler Event")
    queue: str | None = Field(None, max_length=140)
    timeout: int | None = None

    def autoname(self) -> str:
        """``module.function`` like Frappe; a suffix only when that name is taken."""
        from jobbench.context import current

        base = ".".join((self.method or "").split(".")[-2:]) or f"event-{self.scheduler_event}"
        if self.frequency == "Cron" or self.scheduler_event:
            base = f"{base} ({self.cron_format or self.frequency})"
        name, n = base[:240], 1
        while current().db.exists(self.doctype, name):
            n += 1
            name = f"{base[:235]}-{n}"
        return name

    def validate(self) -> None:
        if self.scheduler_event and not self.method:
            self.method = EVENT_METHOD
        if not self.method:
            raise MandatoryError("Scheduled Job Type: field 'method' is required")
        if self.method != EVENT_METHOD:
            from jobbench.context import current
            from jobbench.jobs.trust import check_method

            check_method(self.method, current().conf)  # a worker would refuse it too
        cron.cron_for(self.frequency, self.cron_format)
        if self.frequency == "Cron":
            self.cron_format = cron.validate_cron(self.cron_format)
        if self.frequency not in ("All", "Cron"):
            self.create_log = True  # Frappe logs every run but the continuous ones
        if self.queue:
            from jobbench.context import current
            from jobbench.jobs.queues import validate_queue

            validate_queue(current().conf, self.queue)
        self._check_unique()

    def _check_unique(self) -> None:
        from jobbench.context import current

        filters: dict[str, Any] = {
            "method": self.method,
            "frequency": self.frequency,
            "cron_format": self.cron_format,
            "scheduler_event": self.scheduler_event,
        }
        if self.name:
            filters["name"] = ("!=", self.name)
        other = current().db.exists(self.doctype, filters)
        if other:
            when = f"{self.frequency} {self.cron_format}" if self.cron_format else self.frequency
            raise DuplicateEntryError(
                f"Scheduled Job Type {other!r} already schedules {self.method} ({when})"
            )

    def before_save(self) -> None:
        """The derived schedule columns follow the stored fields on every save."""
        self.refresh_schedule()

    # -- schedule maths -------------------------------------------------------------------
    def _basis(self) -> tuple[str, int]:
        from jobbench.context import current

        local = current()
        return local.time_zone(), int(local.conf.get("scheduler_interval") or cron.DEFAULT_INTERVAL)

    def last_instant(self) -> dt.datetime:
        """The instant the next run follows: the last run, else creation, else now."""
        from jobbench.utils import get_datetime

        zone, _ = self._basis()
        stored = self.last_execution or self.creation
        if stored is None:
            return dt.datetime.now(cron.UTC)
        exact = self.recorded_run()
        return exact if exact is not None else cron.from_local(get_datetime(stored), zone)

    def recorded_run(self) -> dt.datetime | None:
        """The exact instant of the last run as the scheduler or a worker recorded it, while
        it still describes ``last_execution`` (nobody changed that since); else None."""
        from jobbench.utils import get_datetime

        if self.last_run_at is None or self.last_execution is None:
            return None
        zone, _ = self._basis()
        exact = dt.datetime.fromtimestamp(float(self.last_run_at), cron.UTC)
        if abs(cron.to_local(exact, zone) - get_datetime(self.last_execution)) < MATCH:
            return exact
        return None

    def next_instant(self, after: dt.datetime | None = None) -> dt.datetime:
        """The next slot (aware UTC) after ``after`` (default: the last run)."""
        zone, interval = self._basis()
        start = self.last_instant() if after is None else after
        return cron.next_slot(self.frequency, self.cron_format, start, zone, interval)

    def get_next_execution(self) -> dt.datetime:
        """The next run as a naive local time (Frappe's ``get_next_execution``)."""
        zone, _ = self._basis()
        return cron.to_local(self.next_instant(), zone)

    def refresh_schedule(self, after: dt.datetime | None = None) -> dict[str, Any]:
        """Re-derive next_run_at, next_execution and schedule_basis; return them."""
        zone, interval = self._basis()
        nxt = self.next_instant(after)
        values = {
            "next_run_at": nxt.timestamp(),
            "next_execution": cron.to_local(nxt, zone).replace(fold=0),
            "schedule_basis": cron.schedule_basis(zone, interval),
        }
        for key, value in values.items():
            setattr(self, key, value)
        return values

    def is_event_due(self, current_time: dt.datetime | str | None = None) -> bool:
        from jobbench.context import current
        from jobbench.utils import get_datetime

        now = current().now() if current_time is None else get_datetime(current_time)
        return self.get_next_execution() <= now

    @property
    def target_queue(self) -> str:
        """The job type's own queue, else long for Long and Maintenance, else default."""
        if self.queue:
            return self.queue
        return (
            "long" if ("Long" in self.frequency or "Maintenance" in self.frequency) else "default"
        )

    def get_queue_name(self) -> str:  # Frappe's name
        return self.target_queue

    @property
    def rq_job_id(self) -> str:
        """The id of this job type's run in the queue (Frappe's property name)."""
        from jobbench.scheduler.run import job_id_for

        return job_id_for(str(self.name))

    def is_job_in_queue(self) -> bool:
        from jobbench.jobs.job import is_job_enqueued

        return is_job_enqueued(self.rq_job_id)

    # -- actions --------------------------------------------------------------------------
    def execute(self) -> Any:
        """Run now in this process, logged like a scheduled run; returns the method's result."""
        from jobbench.scheduler.run import run_job_type

        return run_job_type(self)

    def skip_next_execution(self) -> None:
        """Pretend the next slot ran: the one after it becomes next."""
        nxt = self.next_instant()
        zone, _ = self._basis()
        self.last_execution = cron.to_local(nxt, zone).replace(fold=0)
        self.last_run_at = nxt.timestamp()
        self.save()

    def enqueue(self, force: bool = False) -> bool:
        """Enqueue a run if due (or ``force``), never while a run is queued or started.

        True when a run was enqueued (Frappe's contract)."""
        from jobbench.scheduler.run import enqueue_job_type

        if not force and not self.is_event_due():
            return False
        return enqueue_job_type(self, slot=None) == "enqueued"


# ``next_execution`` is a stored column (read above, while the class default is still a plain
# value) but, on a document, a computed attribute like Frappe's virtual field. Writes (loading,
# refresh_schedule) keep the stored copy, which the getter falls back to when the schedule
# cannot be computed (no site context, a corrupt cron).
ScheduledJobType.get_meta()


def _computed_next(doc: ScheduledJobType) -> dt.datetime | None:
    try:
        return doc.get_next_execution()
    except JobbenchError:
        stored: dt.datetime | None = doc.__dict__.get("_stored_next_execution")
        return stored


def _store_next(doc: ScheduledJobType, value: dt.datetime | None) -> None:
    doc.__dict__["_stored_next_execution"] = value


ScheduledJobType.next_execution = property(_computed_next, _store_next)  # type: ignore[assignment]
