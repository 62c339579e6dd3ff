"""Running one job inside a worker's executor (docs/architecture.md, "Job engine").

``execute_job`` opens the job's site context as the job's user and then, as Frappe's
``execute_job`` does:

1. runs the ``before_job`` hooks with ``method`` (the dotted path), ``kwargs`` (the job's
   arguments) and ``transaction_type="job"``;
2. calls the method, then commits; on an error rolls back and writes an Error Log;
3. runs the ``after_job`` hooks with ``method``, ``kwargs`` and ``result`` (None on failure),
   after the commit or rollback, on success and on failure alike, then the job's own
   ``jobbench.job.after_job`` callbacks;
4. then (RQ's part in Frappe) the job's ``on_success`` / ``on_failure`` callback.

Hooks (and callbacks) are called with the keyword arguments they accept, so a hook may take
any subset (``frappe.call`` semantics); what a signature accepts is worked out once per hook
and cached. An error in an ``after_job`` hook or callback is logged, not fatal.

A deadlock (``QueryDeadlockError``), a timeout (``QueryTimeoutError``, which includes
``LockWaitTimeoutError``) or ``RetryBackgroundJobError`` is retried in place up to 5 times,
1, 2, 3, 4, 5 s apart. Each attempt runs the ``before_job`` hooks again, as Frappe's
re-entered ``execute_job`` does; before it, the failed attempt's work is rolled back, the
``jobbench.job.after_job`` callbacks it registered are dropped and the session user is put
back, so the ``after_job`` hooks and callbacks run once, for the attempt that counted. Unlike
Frappe, the site context is not re-opened between attempts (same connection, rolled back;
``jobbench.flags`` kept).

It returns an ``Outcome``; recording it in the broker is the caller's job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, cast

from jobbench import logs
from jobbench.bench import Bench
from jobbench.brokers.base import Broker
from jobbench.context import SiteLocal, site_context
from jobbench.errors import (
    JobError,
    QueryDeadlockError,
    QueryTimeoutError,
    RetryBackgroundJobError,
)
from jobbench.jobs import aio, otel, serializer, tracking, trust
from jobbench.jobs.enqueue import resolve
from jobbench.jobs.outcome import Outcome as Outcome
from jobbench.jobs.record import JobRecord
from jobbench.model.database import CallbackManager

MAX_INPLACE_RETRIES = 5
_LOG = logs.get_logger("job")
# QueryTimeoutError covers LockWaitTimeoutError (its subclass) and statement timeouts.
RETRYABLE = (QueryDeadlockError, QueryTimeoutError, RetryBackgroundJobError)


class StopJob(BaseException):  # noqa: N818 - a control signal, not an error
    """Raised in the executor when the job is stopped on request (cold shutdown, jobs stop).

    A BaseException so ``except Exception`` in job code does not swallow it."""


@dataclass
class JobContext:
    """``jobbench.job`` inside a running job (Frappe's ``frappe.local.job``: ``site``,
    ``method``, ``job_name``, ``kwargs``, ``user``, ``after_job``), and the ``job`` argument of
    ``on_success`` / ``on_failure``. ``id`` is the caller's (un-namespaced) job id."""

    id: str
    site: str
    method: str
    kwargs: dict[str, Any]
    user: str
    queue: str
    record: JobRecord
    broker: Broker | None
    after_job: CallbackManager = field(default_factory=CallbackManager)

    @property
    def job_name(self) -> str:
        return self.record.job_name

    @property
    def event(self) -> str | None:
        return self.record.event


def run_doc_method(doctype: str, name: str, doc_method: str, kwargs: dict[str, Any]) -> Any:
    """The job behind enqueue_doc: load the document fresh and call its method."""
    from jobbench.documents import get_doc

    doc = get_doc(doctype, name)
    fn = getattr(doc, doc_method, None)
    if not callable(fn):
        raise JobError(f"{doctype} has no method '{doc_method}' to run for {name!r}")
    return fn(**(kwargs or {}))


@dataclass(frozen=True)
class _Pause:
    """A step asking its driver to wait (between in-place retries) without holding up the
    other jobs of a shared event loop."""

    seconds: float


# A job's steps: a generator that yields what must be waited for (the awaitable an async def
# job returned, or a _Pause), is sent back its result (or has its exception thrown in), and
# returns the Outcome. One flow for both drivers: execute_job and execute_job_async.
Steps = Generator[Any, Any, Outcome]


def execute_job(record: JobRecord, bench: Bench, broker: Broker | None) -> Outcome:
    """Run the job in its site context and return what happened (never raises, but StopJob).
    With OpenTelemetry configured, inside a span continuing the enqueue's trace (otel.py).
    An ``async def`` job is awaited on this thread's own event loop (jobbench.jobs.aio)."""
    return _drive(_job_steps(record, bench, broker))


async def execute_job_async(record: JobRecord, bench: Bench, broker: Broker | None) -> Outcome:
    """``execute_job`` as a coroutine, for a task of a running event loop that runs several
    jobs at once (the executor's shared loop, jobbench.worker.aloop): an ``async def`` job is
    awaited in that loop, and the pause between in-place retries is an ``asyncio.sleep``. The
    rest of the flow (site context, hooks, commit) runs in the loop's thread between awaits.
    A cancellation of the task that ``aio.cancel_with`` asked for arrives as its exception."""
    return await _drive_async(_job_steps(record, bench, broker))


def _job_steps(record: JobRecord, bench: Bench, broker: Broker | None) -> Steps:
    with otel.execution_span(record) as note:
        outcome = yield from _execute_job(record, bench, broker)
        note(outcome)
        return outcome


def _advance(steps: Steps, value: Any, error: BaseException | None) -> Any:
    """Run the steps to their next request (send ``value`` or throw ``error`` in); once they
    return, their Outcome (never a request: those are awaitables and pauses)."""
    try:
        return steps.send(value) if error is None else steps.throw(error)
    except StopIteration as stop:
        return cast(Outcome, stop.value)


def _drive(steps: Steps) -> Outcome:
    request = _advance(steps, None, None)
    while not isinstance(request, Outcome):
        value, error = None, None
        try:
            if isinstance(request, _Pause):
                time.sleep(request.seconds)
            else:
                value = aio.run(request)
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps, to the job's handlers
            error = exc
        request = _advance(steps, value, error)
    return request


async def _drive_async(steps: Steps) -> Outcome:
    request = _advance(steps, None, None)
    while not isinstance(request, Outcome):
        value, error = None, None
        try:
            if isinstance(request, _Pause):
                await asyncio.sleep(request.seconds)
            else:
                value = await request
        except BaseException as exc:  # noqa: BLE001 - thrown into the steps, to the job's handlers
            error = aio.instead_of(exc)
        request = _advance(steps, value, error)
    return request


def _execute_job(record: JobRecord, bench: Bench, broker: Broker | None) -> Steps:
    local: SiteLocal | None = None
    try:
        with site_context(record.site, bench, user=record.user) as local:
            return (yield from _run_in_site(local, record, broker))
    except StopJob:
        raise
    except Exception:  # noqa: BLE001 - the site itself could not be opened: the job fails
        return Outcome("failed", exc_info=traceback.format_exc())
    finally:
        if local is not None:  # task values kept back while the job's transaction was open
            tracking.flush_pending(local, record)


def _refused(local: SiteLocal, record: JobRecord, reason: str) -> Outcome:
    """A record the worker will not run (jobbench.jobs.trust): nothing of it was imported or
    decoded, no hook or callback runs; an Error Log says why and it is not retried."""
    _log(local, f"job refused: {record.method}", reason)
    return Outcome("failed", exc_info=f"refused: {reason}", retry=False)


def _run_in_site(local: SiteLocal, record: JobRecord, broker: Broker | None) -> Steps:
    reason = trust.refusal(record, local.conf)
    if reason is not None:  # checked before the method's module is imported
        return _refused(local, record, reason)
    secret = str(local.conf.secret_key)
    tracking.update_for(local, record, "started_at", expect=tracking.STARTING, status="Running")
    job = local.job = JobContext(
        record.job_id, local.site, record.method, {}, record.user, record.queue, record, broker
    )
    try:
        kwargs = serializer.loads(record.payload, record.serializer, secret)
        fn = resolve(record.method)
    except Exception as exc:  # noqa: BLE001 - a bad payload or method fails it unexecuted
        outcome = _failed(local, record, traceback.format_exc())
        _failure_callback(local, record, exc)  # no hooks: the job never started
        return outcome
    job.kwargs = kwargs
    try:
        result = yield from _call_with_retries(local, fn, kwargs)
    except StopJob:
        local.db.rollback()
        tracking.update_for(local, record, "ended_at", status="Cancelled")
        _after_job(local, kwargs, None)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the job, timeouts included
        outcome = _failed(local, record, traceback.format_exc())
        _after_job(local, kwargs, None)
        _failure_callback(local, record, exc)
        return outcome
    _after_job(local, kwargs, result)
    return _finished(local, record, result)


def _call_with_retries(
    local: SiteLocal, fn: Any, kwargs: dict[str, Any]
) -> Generator[Any, Any, Any]:
    """The attempts: before_job hooks, the method, the commit (see the module docstring)."""
    job: JobContext = local.job
    user = local.session.user
    before = {"method": job.method, "kwargs": kwargs, "transaction_type": "job"}
    for attempt in range(MAX_INPLACE_RETRIES + 1):
        try:
            for hook in local.hooks().get("before_job", []):
                call_hook(hook, before)
            result = fn(**kwargs)
            if inspect.isawaitable(result):  # an async def job: awaited by the driver
                result = yield result
            local.db.commit()
            return result
        except RETRYABLE as exc:
            if attempt == MAX_INPLACE_RETRIES:
                raise
            local.db.rollback()
            job.after_job.reset()  # only the attempt that counts has its callbacks run
            local.session.user = user  # the retry runs as the same user
            _log_retry(job.record, exc, attempt + 1)
            yield _Pause(attempt + 1)
    raise AssertionError("unreachable")


def _log_retry(record: JobRecord, exc: BaseException, n: int) -> None:
    """``retry 2/5 in 2 s`` on the jobbench.job logger (in the executor, which writes it)."""
    where = f"{record.queue}: {record.method} ({record.id})"
    fields: dict[str, Any] = {"job_id": record.id, "method": record.method, "queue": record.queue}
    fields.update(site=record.site, exc_type=type(exc).__name__, exc_message=str(exc))
    fields.update(retry=n, retries=MAX_INPLACE_RETRIES, retry_in=float(n), in_place=True)
    line = f"{where} {type(exc).__name__}: {exc}; retry {n}/{MAX_INPLACE_RETRIES} in {n} s"
    logs.emit(_LOG, line, logging.WARNING, "job_retry", fields)


def _after_job(local: SiteLocal, kwargs: dict[str, Any], result: Any) -> None:
    """after_job hooks, then the job's own callbacks; their errors are logged, not fatal."""
    after = {"method": local.job.method, "kwargs": kwargs, "result": result}
    for hook in local.hooks().get("after_job", []):
        try:
            call_hook(hook, after)
        except Exception:  # noqa: BLE001
            _log(local, f"after_job hook {hook} failed")
    try:
        local.job.after_job.run()
    except Exception:  # noqa: BLE001
        _log(local, "an after_job callback failed")


# -- calling hooks and callbacks with what their signature takes, worked out once per path ----
@dataclass(frozen=True)
class _Shape:
    """What a hook or callback's signature takes (cached per dotted path)."""

    fn: Any  # the function it was worked out for (a reloaded module gives a new one)
    names: frozenset[str] | None  # keyword names it accepts; None: anything (**kwargs)
    rq_style: bool  # a callback written for RQ (see _is_rq_style)


_shapes: dict[str, _Shape] = {}


def _shape(path: str, fn: Any) -> _Shape:
    key_fn = getattr(fn, "__func__", fn)  # a classmethod resolves to a new bound method each time
    shape = _shapes.get(path)
    if shape is None or shape.fn is not key_fn:
        shape = _inspect_shape(key_fn, fn)
        _shapes[path] = shape
    return shape


def _inspect_shape(key_fn: Any, fn: Any) -> _Shape:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return _Shape(key_fn, None, False)
    kinds = {p.kind for p in params}
    names = None
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        names = frozenset(
            p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)
        )
    return _Shape(key_fn, names, _is_rq_style(params))


def _is_rq_style(params: list[inspect.Parameter]) -> bool:
    """RQ's callbacks are ``on_success(job, connection, result, *args, **kwargs)`` and
    ``on_failure(job, connection, type, value, traceback)``; ours ``(job, result)`` and
    ``(job, exc)``. A callback that takes ``*args`` or needs three or more positional
    arguments is called RQ's way; any other our way."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    required = [p for p in params if p.kind in positional and p.default is p.empty]
    return len(required) >= 3


def call_hook(path: str, kwargs: dict[str, Any]) -> Any:
    """Call the hook at ``path`` with the keyword arguments it accepts (any subset)."""
    fn = resolve(path)
    names = _shape(path, fn).names
    if names is None:
        return aio.settle(fn(**kwargs))
    return aio.settle(fn(**{k: v for k, v in kwargs.items() if k in names}))


def _rq_connection(job: JobContext) -> Any:
    """RQ's ``connection`` argument: the Redis client of the Redis broker; None on SQLite."""
    return None if job.broker is None else job.broker.client()


def _success_callback(local: SiteLocal, record: JobRecord, result: Any) -> None:
    def call(fn: Callable[..., Any], rq_style: bool) -> None:
        if rq_style:
            aio.settle(fn(local.job, _rq_connection(local.job), result))
        else:
            aio.settle(fn(local.job, result))

    _callback(local, record.on_success, call)


def _failure_callback(local: SiteLocal, record: JobRecord, exc: BaseException) -> None:
    """on_failure, once the job has failed for good (not while broker retries are left)."""
    if record.retries_left > 0:
        return

    def call(fn: Callable[..., Any], rq_style: bool) -> None:
        if rq_style:
            aio.settle(fn(local.job, _rq_connection(local.job), type(exc), exc, exc.__traceback__))
        else:
            aio.settle(fn(local.job, exc))

    _callback(local, record.on_failure, call)


def _callback(
    local: SiteLocal, path: str | None, call: Callable[[Callable[..., Any], bool], None]
) -> None:
    if not path:
        return
    try:
        fn = resolve(path)
        call(fn, _shape(path, fn).rq_style)
        local.db.commit()
    except Exception:  # noqa: BLE001
        local.db.rollback()
        _log(local, f"callback {path} failed")


def _finished(local: SiteLocal, record: JobRecord, result: Any) -> Outcome:
    try:
        data = serializer.dumps(result, "json", "", "result")
    except serializer.Unserializable:
        data = serializer.dumps(_repr(result), "json", "", "result")
    tracking.update_for(
        local, record, "ended_at", status="Completed", progress=100.0, result=result
    )
    _success_callback(local, record, result)
    return Outcome("finished", result=data)


def _repr(value: Any) -> str:
    """What is kept of a result JSON cannot carry: its repr, or its type if even that fails
    (a result nested too deeply for repr)."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - RecursionError, or a __repr__ that raises
        return f"<{type(value).__name__} that cannot be shown>"


def _failed(local: SiteLocal, record: JobRecord, exc_text: str) -> Outcome:
    """Roll back, log the error and update the task; the caller runs after_job and the
    on_failure callback."""
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
    return Outcome("failed", exc_info=exc_text)


def _log(local: SiteLocal, title: str, message: str | None = None) -> None:
    from jobbench.documents import log_error

    try:
        log_error(title=title, message=message or traceback.format_exc())
        local.db.commit()
    except Exception:  # noqa: BLE001 - never let logging hide the job's own outcome
        local.db.rollback()


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
