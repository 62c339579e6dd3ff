"""The demo app's Task doctype."""

from __future__ import annotations

import datetime

from jobbench.model import Document, Field


class Task(Document):
    doctype = "Task"
    naming = "TASK-.####"

    subject: str
    status: str = Field("Open", options=["Open", "Working", "Closed"], index=True)
    due: datetime.date | None = None

    def validate(self) -> None:
        self.subject = self.subject.strip()

    def do_something(self, param: str | None = None) -> str:
        """Meant to be run in the background: ``enqueue_doc("Task", name, "do_something")``."""
        self.db_set("status", "Closed")
        return f"{self.name} done with {param}"
