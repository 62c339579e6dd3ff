"""Scheduled Job Type: one schedule (from hooks or created at run time) of one method."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobbench.errors import DuplicateEntryError, MandatoryError
from jobbench.model.document import Document
from jobbench.model.fields import Field
from jobbench.scheduler import cron

EVENT_METHOD = "scheduler_event"  # shown as method of job types that run a Scheduler Event


class ScheduledJobType(Document):
    doctype = "Scheduled Job Type"
    naming = "autoname"

    method: str | None = Field(None, max_length=255, index=True)
    frequency: str = Field("Daily", options=cron.FREQUENCIES)
    cron_format: str | None = Field(None, max_length=140)
    stopped: bool = False
    create_log: bool = False
    last_execution: dt.datetime | None = None
    next_execution: dt.datetime | None = Field(None, index=True)
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
        cron_expression = cron.cron_for(self.frequency, self.cron_format)
        if self.frequency == "Cron":
            self.cron_format = cron_expression
        if self.frequency not in ("All", "Cron"):
            self.create_log = True
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
        """next_execution is derived from the stored fields on every save (and indexed)."""
        self.next_execution = self.get_next_execution()

    # -- schedule maths -------------------------------------------------------------------
    def get_next_execution(self) -> dt.datetime:
        from jobbench.context import current

        local = current()
        after = self.last_execution or self.creation or local.now()
        interval = int(local.conf.get("scheduler_interval") or cron.DEFAULT_INTERVAL)
        return cron.next_execution(
            self.frequency, self.cron_format, after, local.time_zone(), interval
        )

    def is_event_due(self, current_time: dt.datetime | None = None) -> bool:
        from jobbench.context import current

        now = current_time or current().now()
        return self.get_next_execution() <= now

    @property
    def target_queue(self) -> str:
        if self.queue:
            return self.queue
        return "long" if self.frequency.endswith("Long") else "default"

    # -- actions --------------------------------------------------------------------------
    def execute(self) -> Any:
        """Run now in this process, logged like a scheduled run; returns the method's result."""
        from jobbench.scheduler.run import run_job_type

        return run_job_type(self)

    def skip_next_execution(self) -> None:
        """Pretend the next slot ran: the one after it becomes next."""
        self.last_execution = self.get_next_execution()
        self.save()

    def enqueue(self, force: bool = False) -> bool:
        """Enqueue a run now (the scheduler's path, without the slot identity)."""
        from jobbench.scheduler.run import enqueue_job_type

        return enqueue_job_type(self, slot=None, force=force) == "enqueued"
