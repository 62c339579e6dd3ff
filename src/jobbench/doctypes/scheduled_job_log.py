"""Scheduled Job Log: one per run of a job type with ``create_log`` (docs/architecture.md,
"Scheduler")."""

from __future__ import annotations

import datetime as dt

from jobbench.model.document import Document
from jobbench.model.fields import Field

STATUSES = ("Scheduled", "Start", "Complete", "Failed")


class ScheduledJobLog(Document):
    doctype = "Scheduled Job Log"
    naming = "hash"

    scheduled_job_type: str = Field(max_length=255, index=True)
    status: str = Field("Scheduled", options=STATUSES, index=True)
    details: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    job_id: str | None = Field(None, max_length=255)
