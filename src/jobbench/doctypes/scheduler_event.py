"""Scheduler Event: a schedule created at run time (README, "The scheduler"; the sample it
follows is in tests/data/seed/background-jobs.zh.md).

A Scheduled Job Type linked to an event runs the event's ``method`` if set, else the hook
``run_scheduled_event`` of the ``scheduled_against`` doctype's controller class.
"""

from __future__ import annotations

from jobbench.model.document import Document
from jobbench.model.fields import Field


class SchedulerEvent(Document):
    doctype = "Scheduler Event"
    naming = "hash"

    scheduled_against: str = Field(max_length=255)
    method: str | None = Field(None, max_length=255)

    def validate(self) -> None:
        if self.method:
            from jobbench.context import current
            from jobbench.jobs.enqueue import method_path
            from jobbench.jobs.trust import check_method

            check_method(self.method, current().conf)  # before importing it
            method_path(self.method)  # MethodNotFound names the path
