"""The Job handle returned by enqueue, and job lookup by the caller's id.

Ids given to and shown by these functions are the caller's (un-namespaced) ids; the current
site supplies the namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from jobbench.brokers.base import Broker
from jobbench.errors import JobFailed, JobWaitTimeout, NoSuchJobError
from jobbench.jobs import serializer
from jobbench.jobs.record import PENDING_STATUSES, JobRecord, JobStatus, full_id, split_id


def _when(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.UTC)


class Job:
    """A job as last read from the broker; ``refresh()`` reads it again."""

    def __init__(self, record: JobRecord, broker: Broker, secret: str = "") -> None:
        self._record = record
        self._broker = broker
        self._secret = secret

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.method} {self.status}>"

    @property
    def record(self) -> JobRecord:
        return self._record

    @property
    def id(self) -> str:
        return split_id(self._record.id)[1]

    @property
    def site(self) -> str:
        return self._record.site

    @property
    def status(self) -> str:
        return str(self._record.status)

    def get_status(self, refresh: bool = True) -> str:
        if refresh:
            self.refresh()
        return self.status

    @property
    def queue(self) -> str:
        return self._record.queue

    @property
    def method(self) -> str:
        return self._record.method

    @property
    def timeout(self) -> int:
        return self._record.timeout

    @property
    def job_name(self) -> str:
        return self._record.job_name

    @property
    def event(self) -> str | None:
        return self._record.event

    @property
    def user(self) -> str:
        return self._record.user

    @property
    def worker(self) -> str | None:
        return self._record.worker

    @property
    def attempts(self) -> int:
        return self._record.attempts

    @property
    def progress(self) -> float | None:
        return self._record.progress

    @property
    def stage(self) -> str | None:
        return self._record.stage

    @property
    def task_id(self) -> str | None:
        return self._record.task_id

    @property
    def kwargs(self) -> Any:
        """The arguments, decoded without touching the database (documents stay references)."""
        return display_payload(self._record.payload, self._record.serializer, self._secret)

    @property
    def result(self) -> Any:
        data = self._record.result
        if data is None:
            return None
        return serializer.loads(data, "json", self._secret)

    @property
    def exc_info(self) -> str | None:
        return self._record.exc_info

    @property
    def enqueued_at(self) -> dt.datetime | None:
        return _when(self._record.enqueued_at)

    @property
    def started_at(self) -> dt.datetime | None:
        return _when(self._record.started_at)

    @property
    def ended_at(self) -> dt.datetime | None:
        return _when(self._record.ended_at)

    @property
    def run_at(self) -> dt.datetime | None:
        """When a ``scheduled`` job is due: a delayed job's run time, or a retry's; else None."""
        if self._record.status != JobStatus.SCHEDULED:
            return None
        return _when(self._record.retry_at)

    @property
    def is_scheduled(self) -> bool:
        return self.status == "scheduled"

    @property
    def is_deferred(self) -> bool:
        """Waiting for its dependencies (``depends_on``) to finish."""
        return self.status == "deferred"

    @property
    def depends_on(self) -> list[str]:
        """The job ids this job depends on (ids of another site as ``<site>::<id>``)."""
        prefix = self.site + "::"
        return [
            i.removeprefix(prefix) if i.startswith(prefix) else i for i in self._record.dependencies
        ]

    @property
    def concurrency_key(self) -> str | None:
        return self._record.concurrency_key

    @property
    def is_finished(self) -> bool:
        return self.status == "finished"

    @property
    def is_failed(self) -> bool:
        return self.status == "failed"

    @property
    def is_queued(self) -> bool:
        return self.status == "queued"

    @property
    def is_started(self) -> bool:
        return self.status == "started"

    def refresh(self) -> Job:
        record = self._broker.get(self._record.id)
        if record is not None:
            self._record = record
        return self

    def get_position(self) -> int | None:
        return self._broker.position(self._record.id)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job ends and return its result (through retries, and a delayed
        job's wait for its run time); ``timeout`` in seconds, None for no limit.

        Raises ``JobFailed`` when it failed, was stopped or canceled (type, message and
        remote traceback of its exception attached), ``JobWaitTimeout`` (a TimeoutError) when
        ``timeout`` passes first, ``NoSuchJobError`` when its record is gone (deleted, or its
        result expired). Blocks on the broker, not in a sleep loop: it returns within a few
        milliseconds of the job's end. Waiting inside a job on a job of the same queue can
        wait forever when no other worker is free to run it."""
        record = self._broker.wait_final(self._record.id, timeout)
        if record is None:
            raise NoSuchJobError(
                f"job {self.id!r} is gone: deleted, or its record expired (rq_results_ttl, "
                "rq_job_failure_ttl)"
            )
        self._record = record
        if record.status == JobStatus.FINISHED:
            return self.result
        if record.status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            raise job_failure(record)
        raise JobWaitTimeout(f"job {self.id!r} is still {record.status} after {timeout} s")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "queue": self.queue,
            "method": self.method,
            "job_name": self.job_name,
            "event": self.event,
            "status": self.status,
            "user": self.user,
            "timeout": self.timeout,
            "attempts": self.attempts,
            "worker": self.worker,
            "progress": self.progress,
            "stage": self.stage,
            "enqueued_at": self.enqueued_at,
            "run_at": self.run_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "kwargs": self.kwargs,
            "result": _safe(lambda: self.result),
            "depends_on": self.depends_on,
            "concurrency_key": self.concurrency_key,
            "concurrency_limit": self._record.concurrency_limit or None,
            "exc_info": self.exc_info,
        }

    def dependents(self) -> list[str]:
        """Ids of the deferred jobs still waiting for this one (another site's: with it)."""
        prefix = self.site + "::"
        ids = self._broker.dependents(self._record.id)
        return [i.removeprefix(prefix) if i.startswith(prefix) else i for i in ids]


_ENDED = {"failed": "failed", "stopped": "was stopped", "canceled": "was canceled"}
# The last line of a Python traceback: "ValueError: boom", "pkg.mod.MyError", "KeyError: 'x'"
_LAST_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?:: (?P<message>.*))?$", re.DOTALL)


def job_failure(record: JobRecord) -> JobFailed:
    """The JobFailed a waiter gets for a job that ended without a result."""
    text = record.exc_info or ""
    exc_type, exc_message = _last_exception(text)
    what = f"job {record.job_id!r} {_ENDED.get(record.status, record.status)}"
    if exc_type is not None:
        message = f"{what}: {exc_type}" + (f": {exc_message}" if exc_message else "")
    elif text.strip():
        message = f"{what}: {text.strip().splitlines()[0]}"
    else:
        message = what
    return JobFailed(
        message,
        job_id=record.job_id,
        status=str(record.status),
        exc_type=exc_type,
        exc_message=exc_message,
        remote_traceback=record.exc_info,
    )


def _last_exception(text: str) -> tuple[str | None, str | None]:
    """(type, message) of the exception a traceback ends with: the lines after its last
    (indented) frame line; (None, None) for a reason that is not a traceback ("stopped on
    request", "worker died: ...")."""
    if "Traceback (most recent call last):" not in text:
        return None, None
    lines = text.rstrip().splitlines()
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=0)
    match = _LAST_LINE.match("\n".join(lines[last_frame + 1 :]).strip())
    if match is None:
        return None, None
    return match["type"], match["message"]


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - display only
        return f"<unreadable: {exc}>"


def display_payload(payload: bytes, kind: str, secret: str) -> Any:
    """Arguments for display: JSON as stored (tags kept), pickle only when the signature holds."""
    if kind == "pickle":
        return _safe(lambda: serializer.loads(payload, "pickle", secret))
    return _safe(lambda: json.loads(payload))


# -- lookup by the caller's id, in the current site ---------------------------------------------
def _site_broker() -> tuple[str, Broker, str]:
    from jobbench.brokers.factory import get_broker
    from jobbench.context import current

    local = current()
    return local.site, get_broker(local.bench, local.conf), str(local.conf.secret_key or "")


def get_job(job_id: str) -> Job | None:
    site, broker, secret = _site_broker()
    record = broker.get(full_id(site, job_id))
    return None if record is None else Job(record, broker, secret)


def get_result(job_id: str, timeout: float | None = None) -> Any:
    """Wait for the job ``job_id`` of the current site to end and return its result; see
    ``Job.wait`` (JobFailed, JobWaitTimeout). NoSuchJobError when there is no such job."""
    job = get_job(job_id)
    if job is None:
        site, _, _ = _site_broker()
        raise NoSuchJobError(f"no job {job_id!r} on site '{site}'")
    return job.wait(timeout)


def get_job_status(job_id: str) -> str | None:
    job = get_job(job_id)
    return None if job is None else job.status


def is_job_enqueued(job_id: str) -> bool:
    """True while the job is queued, started or waiting for a retry (Frappe's meaning)."""
    status = get_job_status(job_id)
    return status is not None and status in PENDING_STATUSES


def list_jobs(
    site: str | None = None,
    queue: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Job]:
    """Job handles of ``site`` (default: the current site; ``"all"``: every site), newest
    first, optionally of one queue and status. (Frappe has no such function; its
    ``get_jobs`` is below.)"""
    current_site, broker, secret = _site_broker()
    wanted = None if site == "all" else (site or current_site)
    records = broker.find(site=wanted, queue=queue, status=status, limit=limit, offset=offset)
    return [Job(r, broker, secret) for r in records]


_PAGE = 500
# key -> the record attribute get_jobs reads for it; any other key is looked up in the kwargs.
_JOB_KEYS = {
    "method": "method",
    "job_name": "job_name",
    "queue": "queue",
    "user": "user",
    "site": "site",
    "event": "event",
    "status": "status",
    "timeout": "timeout",
}


def get_jobs(
    site: str | None = None, queue: str | None = None, key: str = "method"
) -> dict[str, list[Any]]:
    """Frappe's ``get_jobs``: ``{site: [value, ...]}`` over the jobs waiting or running.

    ``site=None`` means every site of the bench (as in Frappe); ``queue=None`` every queue.
    A job counts when it is queued, started, or (jobbench's) waiting for a retry, the same
    set ``is_job_enqueued`` calls pending; jobs of each site come queue by queue (in queue
    order), queued before started before waiting, oldest first. ``value`` is the job's
    ``key``: ``method``, ``job_name``, ``queue``, ``user``, ``site``, ``event``, ``status``,
    ``timeout``, ``job_id`` (the caller's id) or ``kwargs`` (all the arguments); any other key
    is looked up in the job's arguments, and a job without that argument is left out (e.g.
    ``key="job_type"`` lists the Scheduled Job Types of pending scheduled runs). Documents in
    the arguments come back as ``{"doctype": ..., "name": ...}``, not loaded. Needs a site
    context (for the bench's broker)."""
    from jobbench.context import current
    from jobbench.jobs.queues import queue_timeouts, validate_queue

    _, broker, secret = _site_broker()
    conf = current().conf
    if queue is not None:
        validate_queue(conf, queue)
    order = {name: i for i, name in enumerate(queue_timeouts(conf))}
    statuses: list[str] = [
        JobStatus.QUEUED,
        JobStatus.STARTED,
        JobStatus.SCHEDULED,
        JobStatus.DEFERRED,
    ]
    unique = {r.id: r for status in statuses for r in _all_records(broker, site, queue, status)}
    records = list(unique.values())  # a job that moved on while we read appears once
    records.sort(
        key=lambda r: (
            order.get(r.queue, len(order)),
            r.queue,
            statuses.index(r.status),
            r.enqueued_at,
        )
    )
    out: dict[str, list[Any]] = {}
    for record in records:
        found, value = _job_value(record, key, secret)
        if found:
            out.setdefault(record.site, []).append(value)
    return out


def _all_records(
    broker: Broker, site: str | None, queue: str | None, status: str
) -> list[JobRecord]:
    records: list[JobRecord] = []
    while True:
        page = broker.find(site=site, queue=queue, status=status, limit=_PAGE, offset=len(records))
        records.extend(page)
        if len(page) < _PAGE:
            return records


def _job_value(record: JobRecord, key: str, secret: str) -> tuple[bool, Any]:
    attribute = _JOB_KEYS.get(key)
    if attribute is not None:
        return True, getattr(record, attribute)
    if key == "job_id":
        return True, record.job_id
    kwargs = _peek_kwargs(record, secret)
    if key == "kwargs":
        return True, kwargs
    if isinstance(kwargs, dict) and key in kwargs:
        return True, kwargs[key]
    return False, None


def _peek_kwargs(record: JobRecord, secret: str) -> Any:
    """The job's arguments decoded, documents left as references (no database read)."""
    if record.serializer == "pickle":
        return display_payload(record.payload, "pickle", secret)
    try:
        return serializer.decode_value(_doc_refs(json.loads(record.payload)))
    except (ValueError, TypeError, KeyError, IndexError):  # a corrupt payload: no arguments
        return None


def _doc_refs(value: Any) -> Any:
    if isinstance(value, list):
        return [_doc_refs(v) for v in value]
    if isinstance(value, dict):
        if value.get(serializer.TAG) == "doc" and set(value) == {serializer.TAG, "v"}:
            doctype, name = value["v"]
            return {"doctype": doctype, "name": name}
        return {k: _doc_refs(v) for k, v in value.items()}
    return value


# -- control ------------------------------------------------------------------------------------
def _require(job_id: str) -> tuple[str, Broker, JobRecord]:
    site, broker, _ = _site_broker()
    record = broker.get(full_id(site, job_id))
    if record is None:
        raise NoSuchJobError(f"no job {job_id!r} on site '{site}'")
    return site, broker, record


def stop_job(job_id: str) -> str:
    """Cancel a queued job, or ask the worker running it to stop it. Returns the status."""
    from jobbench.brokers.factory import retention
    from jobbench.context import current

    _, broker, record = _require(job_id)
    status = broker.request_stop(record.id, retention(current().conf))
    if status == "canceled":  # its Background Task, and those of dependents it canceled
        from jobbench.jobs.tracking import sync_task

        sync_task(broker, current().bench, record.id, "canceled before it started")
    return str(status)


def run_job_now(job_id: str) -> bool:
    """Queue a scheduled job (delayed, or waiting for a retry) now instead of at its time.
    False if it is not scheduled."""
    _, broker, record = _require(job_id)
    return broker.run_now(record.id)


def retry_job(job_id: str) -> bool:
    """Queue a failed, stopped or canceled job again. False if it is still pending."""
    _, broker, record = _require(job_id)
    return broker.requeue(record.id)


def delete_job(job_id: str) -> bool:
    """Delete a job that is not running. False if it is running. A tracked dependent that
    the deletion canceled has its Background Task say so."""
    from jobbench.context import current
    from jobbench.jobs.tracking import delete_job_synced

    _, broker, record = _require(job_id)
    return delete_job_synced(broker, current().bench, record.id)


def purge_failed(queue: str | None = None, all_sites: bool = False) -> int:
    site, broker, _ = _site_broker()
    return broker.purge(["failed"], queue=queue, site=None if all_sites else site)
