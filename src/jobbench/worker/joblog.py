"""The one line per job end: what the executor reports, and the line the worker logs.

The executor adds to its end line (``["E", id, detail]``) what only it knows: the monotonic
instant the job ended, and for a failure the exception's type and message and the retry it
scheduled. The parent, which already writes one batch of lines per read, turns that into

    default: app.tasks.send (s1::8f2c) finished in 0.012 s
    default: app.tasks.send (s1::8f2c) failed in 0.301 s: ValueError: no address; retry 2/3 in 4 s

with the same facts as fields for the JSON format (``jobbench.logs``). Success costs one float
on the pipe and one formatted line; the exception is parsed only for a failure.
"""

from __future__ import annotations

import re
import time
from typing import Any

from jobbench.jobs.outcome import Outcome
from jobbench.jobs.record import JobRecord, split_id

MESSAGE_LIMIT = 500  # characters of an exception message carried to the log line
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?:: (.*))?$", re.DOTALL)


def retry_delay(record: JobRecord, outcome: Outcome, backoff: float) -> float | None:
    """Seconds until the retry a failure schedules, or None when it fails for good."""
    retrying = outcome.status == "failed" and outcome.retry and record.retries_left > 0
    return backoff if retrying else None


def end_detail(record: JobRecord, outcome: Outcome, delay: float | None) -> list[Any]:
    """The executor's end report: ``[status, ended]``, and for a failure or stop
    ``[..., exc_type, exc_message, retry, retries, retry_in]``."""
    ended = time.monotonic()
    if outcome.status == "finished":
        return [outcome.status, ended]
    exc_type, message = exception_of(outcome.exc_info)
    if delay is None:
        return [outcome.status, ended, exc_type, message]
    n = record.retry_count + 1  # this retry's number, of all the job may have
    return [
        outcome.status,
        ended,
        exc_type,
        message,
        n,
        record.retry_count + record.retries_left,
        delay,
    ]


def settled_detail(status: str, reason: str, record: JobRecord | None) -> list[Any]:
    """The end of a job the worker settled itself (hard timeout, dead executor): its reason,
    and the retry the settling scheduled (``record``: the job as stored afterwards)."""
    detail: list[Any] = [status, time.monotonic(), None, reason]
    if record is not None and record.status == "scheduled" and record.retry_at is not None:
        n = record.retry_count  # counted already: this retry's number
        delay = float(round(max(0.0, record.retry_at - time.time())))
        detail += [n, n + record.retries_left, delay]
    return detail


def exception_of(exc_info: str | None) -> tuple[str | None, str]:
    """``(type, message)`` from a traceback's last line (``ValueError: no address``); a
    reason that is no traceback (``refused: ...``, ``stopped on request``) has no type."""
    text = (exc_info or "").strip()
    if "Traceback (most recent call last)" not in text:
        return None, text[:MESSAGE_LIMIT]
    last = text.rsplit("\n", 1)[-1].strip()
    match = _EXC_LINE.match(last)
    if match is None:
        return None, last[:MESSAGE_LIMIT]
    return match.group(1).rsplit(".", 1)[-1], (match.group(2) or "")[:MESSAGE_LIMIT]


def job_end(
    job_id: str, method: str, queue: str, started: float | None, detail: Any
) -> tuple[str, dict[str, Any]]:
    """The human line and the JSON fields of one job end (``detail``: ``end_detail``'s list,
    or a bare status from an older executor)."""
    parts = detail if isinstance(detail, list) else [detail]
    status = str(parts[0])
    ended = parts[1] if len(parts) > 1 else None
    duration = None if ended is None or started is None else max(0.0, float(ended) - started)
    took = "" if duration is None else f" in {duration:.3f} s"
    fields: dict[str, Any] = {
        "job_id": job_id,
        "method": method,
        "queue": queue,
        "site": split_id(job_id)[0],
        "duration": None if duration is None else round(duration, 6),
        "outcome": status,
    }
    line = f"{queue}: {method} ({job_id}) {status}{took}"
    if len(parts) > 3:
        exc_type, message = parts[2], str(parts[3])
        fields.update(exc_type=exc_type, exc_message=message)
        line += f": {exc_type}: {message}" if exc_type else f": {message}"
    if len(parts) > 6:
        n, of, delay = int(parts[4]), int(parts[5]), float(parts[6])
        fields.update(retry=n, retries=of, retry_in=delay)
        line += f"; retry {n}/{of} in {delay:g} s"
    return line, fields
