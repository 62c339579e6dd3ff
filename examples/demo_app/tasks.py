"""Functions the demo runs as background jobs."""

from __future__ import annotations

import jobbench as frappe


def long_running_job(param1: str, param2: str) -> str:
    """The example job of Frappe's background-jobs page (README, "Background jobs"): runs in a
    worker as the user who enqueued it."""
    frappe.publish_progress(50, stage="halfway")
    return f"{param1}+{param2} by {frappe.session.user}"


def create_task(subject: str) -> str:
    """Writes a document: committed by the worker when the job succeeds."""
    return str(frappe.new_doc("Task", subject=subject).insert().name)


def fail_loudly() -> None:
    """Fails: the worker rolls back, writes an Error Log and records the traceback."""
    raise ValueError("this job fails on purpose")


def count_open_tasks() -> int:
    """Scheduled every few seconds in the demo (hooks: scheduler_events 'all')."""
    return int(frappe.db.count("Task", {"status": "Open"}))


def daily_summary() -> str:
    """Scheduled daily; gets a Scheduled Job Log for each run."""
    return f"{frappe.db.count('Task')} tasks"
