"""Running one job inside a worker's executor (SPEC section 3, "Inside the worker").

``execute_job`` opens the job's site context as the job's user, runs ``before_job`` hooks,
calls the method, commits on success or rolls back and writes an Error Log on failure, runs
``after_job`` hooks and the job's own ``after_job`` callbacks, and closes the context. A
deadlock, lock-wait timeout or ``RetryBackgroundJobError`` is retried in place up to 5 times
(1..5 s apart). It returns an ``Outcome``; recording it in the broker is the caller's job.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from jobbench.bench import Bench
from jobbench.brokers.base import Broker
from jobbench.context import SiteLocal, site_context
from jobbench.errors import (
    JobError,
    LockWaitTimeoutError,
    QueryDeadlockError,
    RetryBackgroundJobError,
)
from jobbench.jobs import serializer, tracking
from jobbench.jobs.enqueue import resolve
from jobbench.jobs.record import JobRecord
from jobbench.model.database import CallbackManager
from jobbench.utils import call_with_accepted_kwargs

MAX_INPLACE_RETRIES = 5
RETRYABLE = (QueryDeadlockError, LockWaitTimeoutError, RetryBackgroundJobError)


class StopJob(BaseException):  # noqa: N818 - a control signal, not an error
    """Raised in the executor when the job is stopped on request (cold shutdown, jobs stop).

    A BaseException so ``except Exception`` in job code does not swallow it."""


@dataclass
class Outcome:
    status: str  # finished | failed | stopped
    result: bytes | None = None
    exc_info: str | None = None


@dataclass
class JobContext:
    """``jobbench.job`` inside a running job."""

    id: str
    site: str
    method: str
    kwargs: dict[str, Any]
    user: str
    queue: str
    record: JobRecord
    broker: Broker | None
    after_job: CallbackManager = field(default_factory=CallbackManager)


def run_doc_method(doctype: str, name: str, doc_method: str, kwargs: dict[str, Any]) -> Any:
    """The job behind enqueue_doc: load the document fresh and call its method."""
    from jobbench.documents import get_doc

    doc = get_doc(doctype, name)
    fn = getattr(doc, doc_method, None)
    if not callable(fn):
        raise JobError(f"{doctype} has no method '{doc_method}' to run for {name!r}")
    return fn(**(kwargs or {}))


def execute_job(record: JobRecord, bench: Bench, broker: Broker | None) -> Outcome:
    """Run the job in its site context and return what happened (never raises, but StopJob)."""
    local: SiteLocal | None = None
    try:
        with site_context(record.site, bench.path, user=record.user) as local:
            return _run_in_site(local, record, broker)
    except StopJob:
        raise
    except Exception:  # noqa: BLE001 - the site itself could not be opened: the job fails
        return Outcome("failed", exc_info=traceback.format_exc())
    finally:
        if local is not None:  # task values kept back while the job's transaction was open
            tracking.flush_pending(local, record)


def _run_in_site(local: SiteLocal, record: JobRecord, broker: Broker | None) -> Outcome:
    secret = str(local.conf.secret_key or "")
    tracking.update_for(local, record, "started_at", status="Running")
    try:
        kwargs = serializer.loads(record.payload, record.serializer, secret)
        fn = resolve(record.method)
    except Exception as exc:  # noqa: BLE001 - a bad payload or method fails it unexecuted
        return _failed(local, record, traceback.format_exc(), exc)
    local.job = JobContext(
        record.job_id, local.site, record.method, kwargs, record.user, record.queue, record, broker
    )
    try:
        result = _call_with_retries(local, fn, kwargs)
    except StopJob:
        local.db.rollback()
        tracking.update_for(local, record, "ended_at", status="Cancelled")
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the job, timeouts included
        return _failed(local, record, traceback.format_exc(), exc)
    finally:
        _after_job(local)
    return _finished(local, record, result)


def _call_with_retries(local: SiteLocal, fn: Any, kwargs: dict[str, Any]) -> Any:
    for hook in local.hooks().get("before_job", []):
        call_with_accepted_kwargs(resolve(hook), {"method": local.job.method, "kwargs": kwargs})
    user = local.session.user
    for attempt in range(MAX_INPLACE_RETRIES + 1):
        try:
            result = fn(**kwargs)
            local.db.commit()
            return result
        except RETRYABLE:
            if attempt == MAX_INPLACE_RETRIES:
                raise
            local.db.rollback()
            local.session.user = user  # the retry runs as the same user
            time.sleep(attempt + 1)
    raise AssertionError("unreachable")


def _after_job(local: SiteLocal) -> None:
    """after_job hooks, then the job's own callbacks; their errors are logged, not fatal."""
    for hook in local.hooks().get("after_job", []):
        try:
            call_with_accepted_kwargs(resolve(hook), {"method": local.job.method})
        except Exception:  # noqa: BLE001
            _log(local, f"after_job hook {hook} failed")
    try:
        local.job.after_job.run()
    except Exception:  # noqa: BLE001
        _log(local, "an after_job callback failed")


def _finished(local: SiteLocal, record: JobRecord, result: Any) -> Outcome:
    try:
        data = serializer.dumps(result, "json", "", "result")
    except serializer.Unserializable:
        data = serializer.dumps(repr(result), "json", "", "result")
    tracking.update_for(
        local, record, "ended_at", status="Completed", progress=100.0, result=result
    )
    _callback(local, record.on_success, result)
    return Outcome("finished", result=data)


def _failed(local: SiteLocal, record: JobRecord, exc_text: str, exc: Exception) -> Outcome:
    local.db.rollback()
    _log(local, record.method, exc_text)
    retrying = record.retries_left > 0
    tracking.update_for(
        local,
        record,
        None if retrying else "ended_at",
        status="Queued" if retrying else "Failed",
        exception=exc_text,
    )
    if not retrying:
        _callback(local, record.on_failure, exc)
    return Outcome("failed", exc_info=exc_text)


def _log(local: SiteLocal, title: str, message: str | None = None) -> None:
    from jobbench.documents import log_error

    try:
        log_error(title=title, message=message or traceback.format_exc())
        local.db.commit()
    except Exception:  # noqa: BLE001 - never let logging hide the job's own outcome
        local.db.rollback()


def _callback(local: SiteLocal, path: str | None, value: Any) -> None:
    if not path:
        return
    try:
        resolve(path)(local.job, value)  # on_success(job, result) / on_failure(job, exc)
        local.db.commit()
    except Exception:  # noqa: BLE001
        local.db.rollback()
        _log(local, f"callback {path} failed")


def publish_progress(percent: float, stage: str | None = None) -> None:
    """Inside a job: record progress (0..100) on the job and its Background Task."""
    from jobbench.context import current

    local = current()
    job = local.job
    if not isinstance(job, JobContext):
        raise JobError("publish_progress() works only inside a running job")
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise JobError(f"progress must be a number from 0 to 100, got {percent!r}")
    if job.broker is not None:
        job.broker.set_progress(job.record.id, float(percent), stage)
    tracking.update_for(local, job.record, progress=float(percent), stage=stage)
