"""enqueue, enqueue_doc and the @task decorator (README, "Background jobs").

Everything a worker would trip over is refused here, before anything is written: an unknown
queue, a method workers cannot import by name, a dotted path that does not resolve, an unknown
doctype, an argument the serializer cannot carry, a bad timeout or retry count.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobbench.brokers.factory import get_broker
from jobbench.context import SiteLocal, current, get_controller
from jobbench.errors import JobError, MethodNotFound, PayloadTooLarge, UnimportableMethod
from jobbench.jobs import aio, serializer, tracking, trust
from jobbench.jobs.job import Job
from jobbench.jobs.queues import validate_queue
from jobbench.jobs.record import JobRecord, full_id
from jobbench.utils import call_with_accepted_kwargs


def resolve(path: str) -> Any:
    """Import ``package.module.Class.attr``: the longest importable module prefix, then attrs."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise MethodNotFound(f"'{path}': importing {module_name} failed: {exc}") from exc
        except Exception as exc:
            raise MethodNotFound(f"'{path}': importing {module_name} failed: {exc!r}") from exc
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError as exc:
            raise MethodNotFound(f"'{path}' does not resolve: {exc}") from exc
        return obj
    raise MethodNotFound(f"'{path}' does not resolve: no importable module in it")


def method_path(method: str | Callable[..., Any]) -> str:
    """The dotted path workers will import, checked to resolve back to the same callable."""
    if isinstance(method, str):
        target = resolve(method)
        if not callable(target):
            raise MethodNotFound(
                f"'{method}' resolves to a {type(target).__name__}, not a function"
            )
        return method
    if not callable(method):
        raise MethodNotFound(f"{method!r} is not callable; pass a function or a dotted path")
    module = getattr(method, "__module__", None)
    qualname = getattr(method, "__qualname__", None) or getattr(method, "__name__", None)
    why = _unimportable_reason(method, module, qualname)
    if why:
        raise UnimportableMethod(
            f"{getattr(method, '__qualname__', method)!r} cannot be run by a worker: {why}. "
            "Define it at module level in an importable module, or pass its dotted path"
        )
    path = f"{module}.{qualname}"
    target = resolve(path)
    if getattr(target, "__func__", target) is not getattr(method, "__func__", method):
        raise UnimportableMethod(
            f"'{path}' does not import back to the function given; pass its dotted path instead"
        )
    return path


def _unimportable_reason(method: Any, module: str | None, qualname: str | None) -> str | None:
    if not module or not qualname:
        return "it has no module-level name"
    if module == "__main__":
        return "it is defined in __main__ (the script being run), which workers do not import"
    if "<lambda>" in qualname:
        return "it is a lambda"
    if "<locals>" in qualname:
        return "it is defined inside another function"
    if inspect.ismethod(method) and not inspect.isclass(method.__self__):
        return "it is a method bound to an object"
    return None


MAX_TIMEOUT = 2**31 - 1  # seconds (68 years); a broker stores it as a 32-bit integer


def _timeout(timeout: Any, default: int) -> int:
    """Seconds for the job: None or 0 is the queue's default (Frappe's ``if not timeout``),
    -1 is none; anything else must be a positive number (a bool is refused)."""
    if timeout is None:
        return default
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise JobError(f"timeout must be seconds (a number), 0 or -1, got {timeout!r}")
    if timeout == 0:
        return default
    if timeout == -1:
        return -1
    if timeout < 0 or timeout > MAX_TIMEOUT or timeout != timeout:
        raise JobError(
            f"timeout must be > 0 seconds (at most {MAX_TIMEOUT}), 0 for the queue's default "
            f"or -1 for none; got {timeout!r}"
        )
    return int(max(1, round(timeout)))


def _payload(local: SiteLocal, kwargs: dict[str, Any], secret: str) -> tuple[bytes, str]:
    kind = str(local.conf.get("job_serializer") or "json")
    try:
        data = serializer.dumps(kwargs, kind, secret, "argument")
    except serializer.Unserializable as exc:
        name = exc.path.removeprefix("argument")
        from jobbench.errors import ArgumentNotSerializable

        if exc.reason:
            label = f"argument {name}" if name else "the arguments"
            raise ArgumentNotSerializable(
                f"{label} cannot be carried by the {kind} serializer: {exc.reason}"
            ) from None
        hint = "pass plain data (or a saved Document), or set job_serializer to 'pickle'"
        if kind == "pickle":
            hint = "pass something picklable"
        raise ArgumentNotSerializable(
            f"argument {name} of type {type(exc.value).__name__} cannot be carried by the "
            f"{kind} serializer; {hint}"
        ) from None
    limit = trust.max_payload_bytes(local.conf)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the job's arguments are {len(data)} bytes serialised, over max_payload_bytes "
            f"({limit}); pass a reference (a document name, a file path) instead of the data, "
            "or raise max_payload_bytes in the bench's config"
        )
    return data, kind


QUEUE_STARVATION_THRESHOLD = 16  # Frappe's: at_front_when_starved above this many queued jobs


def enqueue(
    method: str | Callable[..., Any],
    queue: str = "default",
    timeout: int | float | None = None,
    event: str | None = None,
    is_async: bool = True,
    job_name: str | None = None,
    now: bool = False,
    enqueue_after_commit: bool = False,
    *,
    on_success: str | Callable[..., Any] | None = None,
    on_failure: str | Callable[..., Any] | None = None,
    at_front: bool = False,
    job_id: str | None = None,
    deduplicate: bool = False,
    at_front_when_starved: bool = False,
    track_job: bool = False,
    retry: int = 0,
    once_key: str | None = None,
    **kwargs: Any,
) -> Any:
    """Put ``method(**kwargs)`` on ``queue`` for a worker; see README, "Background jobs".

    The parameters up to ``enqueue_after_commit`` are positional in Frappe's order, so a
    positional Frappe call ports unchanged; the rest are keyword-only, as in Frappe:

    * ``timeout``: seconds; None or 0 means the queue's default (short/default 300, long 1500,
      custom queues their ``workers`` timeout), -1 means none.
    * ``event``: a label kept on the job record (not passed to the method);
      ``jobbench purge-jobs --event X`` deletes the waiting jobs that carry it.
    * ``is_async=False`` or ``now=True``: run the method here and now (``frappe.call``
      semantics: kwargs it does not accept are dropped) and return its result. The legacy
      ``async=`` keyword is taken as ``is_async``, as Frappe does.
    * ``job_name``: a label (default: the method's dotted path); it does not deduplicate.
    * ``enqueue_after_commit``: enqueue when the current transaction commits (dropped on
      rollback); returns None.
    * ``on_success`` / ``on_failure``: a function or dotted path, called in the worker after
      the job; jobbench's ``(job, result)`` / ``(job, exc)`` or RQ's
      ``(job, connection, result)`` / ``(job, connection, type, value, traceback)``, told
      apart by their signature (jobbench.jobs.execute).
    * ``at_front``: the head of the queue; ``at_front_when_starved``: the head only when the
      queue already holds more than 16 queued jobs (Frappe's starvation threshold).
    * ``job_id`` (namespaced by site), ``deduplicate`` (needs ``job_id``: skip, returning None,
      while a job with that id is queued, started or waiting for a retry).
    * ``track_job``, ``retry`` (jobbench's): a Background Task document that follows the job;
      up to ``retry`` re-runs with backoff.
    * ``once_key`` (used by the scheduler for slot identities): the broker enqueues at most
      one job per key; a repeat returns None.

    Returns the ``Job`` handle, or None when nothing was enqueued (yet)."""
    is_async = kwargs.pop("async", is_async)  # Frappe's legacy spelling
    local = current()
    if now or not is_async:
        fn = method if callable(method) else resolve(method_path(method))
        return aio.settle(call_with_accepted_kwargs(fn, kwargs))  # async def: run to the end
    default_timeout = validate_queue(local.conf, queue)
    if event is not None and not isinstance(event, str):
        raise JobError(f"event must be a string, got {event!r}")
    secret = trust.secret_of(local.conf, f"site {local.site!r}")
    path = _allowed_path(method, local, "method")
    record = JobRecord(
        id=full_id(local.site, _job_id(job_id, deduplicate)),
        site=local.site,
        queue=queue,
        method=path,
        payload=b"",
        user=local.session.user,
        timeout=_timeout(timeout, default_timeout),
        job_name=job_name or path,
        retries_left=_retries(retry),
        on_success=_allowed_path(on_success, local, "on_success") if on_success else None,
        on_failure=_allowed_path(on_failure, local, "on_failure") if on_failure else None,
        event=event or None,
    )
    record.payload, record.serializer = _payload(local, kwargs, secret)
    trust.sign(record, secret)
    opts = _PushOptions(at_front, at_front_when_starved, deduplicate, track_job, once_key)
    push = functools.partial(_push, local, record, opts, kwargs)
    if enqueue_after_commit:
        local.db.after_commit.add(push)
        return None
    return push()


def _allowed_path(method: str | Callable[..., Any], local: SiteLocal, role: str) -> str:
    """The method's dotted path, refused (MethodNotAllowed) before it is imported when it lies
    outside the site's apps: a worker would refuse it too (jobbench.jobs.trust)."""
    if isinstance(method, str):
        trust.check_method(method, local.conf, role)
        return method_path(method)
    path = method_path(method)
    trust.check_method(path, local.conf, role)
    return path


def _job_id(job_id: str | None, deduplicate: bool) -> str:
    if job_id is not None and (not isinstance(job_id, str) or not job_id):
        raise JobError(f"job_id must be a non-empty string, got {job_id!r}")
    if deduplicate and not job_id:
        raise JobError("deduplicate=True needs a job_id to recognise the duplicate")
    return job_id or uuid.uuid4().hex


def _retries(retry: Any) -> int:
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise JobError(f"retry must be a whole number >= 0, got {retry!r}")
    return retry


@dataclass(frozen=True)
class _PushOptions:
    at_front: bool
    at_front_when_starved: bool
    deduplicate: bool
    track_job: bool
    once_key: str | None


def _push(
    local: SiteLocal, record: JobRecord, opts: _PushOptions, kwargs: dict[str, Any]
) -> Job | None:
    """Hand the record to the broker. A tracked job's Background Task is created first (a
    worker may pick the job up at once) and removed again if the broker does not take it."""
    broker = get_broker(local.bench, local.conf)
    if opts.track_job:
        record.task_id = uuid.uuid4().hex
        tracking.create_task(local, record, kwargs)
    max_queued = local.conf.get("max_queued_jobs")
    at_front = opts.at_front or (
        opts.at_front_when_starved
        and broker.queue_length(record.queue) > QUEUE_STARVATION_THRESHOLD
    )
    try:
        taken = broker.enqueue(
            record,
            at_front=at_front,
            deduplicate=opts.deduplicate,
            max_queued=int(max_queued) if max_queued else None,
            once_key=opts.once_key,
        )
    except BaseException:
        tracking.delete_task(local, record.task_id)
        raise
    if not taken:
        tracking.delete_task(local, record.task_id)
        return None
    return Job(record, broker, str(local.conf.secret_key or ""))


def enqueue_doc(
    doctype: str,
    name: str | None = None,
    method: str | None = None,
    queue: str = "long",
    timeout: int | float | None = 4000,
    now: bool = False,
    **kwargs: Any,
) -> Any:
    """Enqueue ``doc.<method>(**kwargs)``; the worker loads the document fresh.

    Frappe's defaults are ``queue="default", timeout=300``; ours are ``queue="long",
    timeout=4000``, as in Frappe's docs (tests/data/seed/). Keyword arguments that are
    enqueue options (``job_id``, ``enqueue_after_commit``, ``event``, ...) go to ``enqueue``;
    the others go to the method. The job runs ``jobbench.jobs.execute.run_doc_method``."""
    get_controller(doctype)  # an unknown doctype is refused here (DocTypeNotFoundError)
    if not name or not method:
        raise JobError("enqueue_doc needs a document name and a method name")
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k in _ENQUEUE_OPTIONS}
    extra.setdefault("job_name", f"{doctype} {name}: {method}")
    return enqueue(
        "jobbench.jobs.execute.run_doc_method",
        queue=queue,
        timeout=timeout,
        now=now,
        doctype=doctype,
        name=name,
        doc_method=method,
        kwargs=kwargs,
        **extra,
    )


_ENQUEUE_OPTIONS = {
    "event",
    "is_async",
    "async",
    "job_name",
    "enqueue_after_commit",
    "at_front",
    "track_job",
    "job_id",
    "deduplicate",
    "on_success",
    "on_failure",
    "at_front_when_starved",
    "retry",
}


def task(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@task(queue="long")`` gives the function an ``.enqueue(**kwargs)`` with those options."""
    unknown = set(options) - _ENQUEUE_OPTIONS - {"queue", "timeout", "now"}
    if unknown:
        raise JobError(f"task() got unknown options: {', '.join(sorted(unknown))}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        def enqueue_it(**kwargs: Any) -> Any:
            return enqueue(fn, **{**options, **kwargs})

        fn.enqueue = enqueue_it  # type: ignore[attr-defined]
        return fn

    return decorate
