"""Error Log: a traceback kept in the site database, written by log_error() and failed jobs."""

from __future__ import annotations

from jobbench.model.document import Document
from jobbench.model.fields import Field


class ErrorLog(Document):
    doctype = "Error Log"
    naming = "hash"

    method: str | None = Field(None, max_length=255, index=True)  # the title, as in Frappe
    error: str | None = None
    reference_doctype: str | None = Field(None, max_length=255)
    reference_name: str | None = Field(None, max_length=255)
    seen: bool = False
