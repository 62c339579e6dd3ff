"""Background Task: follows one job enqueued with ``track_job=True`` (README, "Background jobs")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobbench.errors import ValidationError
from jobbench.model.document import Document
from jobbench.model.fields import Field

STATUSES = ("Queued", "Running", "Completed", "Failed", "Cancelled")


class BackgroundTask(Document):
    doctype = "Background Task"
    naming = "field:task_id"

    task_id: str = Field(max_length=255)
    job_id: str | None = Field(None, max_length=255, index=True)
    task_name: str | None = None
    status: str = Field("Queued", options=STATUSES, index=True)
    user: str | None = Field(None, max_length=255)
    method: str | None = Field(None, max_length=255)
    arguments: dict[str, Any] | None = None
    queue: str | None = Field(None, max_length=140)
    progress: float = 0.0
    stage: str | None = None
    result: Any = None
    exception: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    ref_doctype: str | None = Field(None, max_length=255)
    ref_docname: str | None = Field(None, max_length=255)

    def validate(self) -> None:
        if self.progress is not None and not 0 <= float(self.progress) <= 100:
            raise ValidationError(
                f"Background Task: field 'progress' got {self.progress!r}: expected 0 to 100"
            )
