"""enqueue, enqueue_in / enqueue_at (delayed jobs), enqueue_doc and the @task decorator (README,
"Background jobs"). enqueue_many (bulk) is in jobs/bulk.py and builds its records here.

Everything a worker would trip over is refused here, before anything is written: an unknown
queue, a method workers cannot import by name, a dotted path that does not resolve, an unknown
doctype, an argument the serializer cannot carry, a bad timeout or retry count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import inspect
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any
from zoneinfo import ZoneInfo

from jobbench.brokers.base import Broker
from jobbench.brokers.factory import get_broker
from jobbench.context import SiteLocal, current, get_controller
from jobbench.errors import JobError, MethodNotFound, PayloadTooLarge, UnimportableMethod
from jobbench.jobs import aio, constraints, otel, serializer, tracking, trust
from jobbench.jobs.job import Job
from jobbench.jobs.queues import validate_queue
from jobbench.jobs.record import JobRecord, JobStatus, full_id
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
MAX_DELAY = float(MAX_TIMEOUT)  # seconds (68 years): a later run time is surely a mistake


@dataclass(frozen=True)
class EnqueueOptions:
    """How a job is enqueued: ``enqueue``'s options, shared with enqueue_in/at and the specs
    of enqueue_many (see ``enqueue`` for each)."""

    queue: str = "default"
    timeout: int | float | None = None
    event: str | None = None
    job_name: str | None = None
    enqueue_after_commit: bool = False
    on_success: str | Callable[..., Any] | None = None
    on_failure: str | Callable[..., Any] | None = None
    at_front: bool = False
    job_id: str | None = None
    deduplicate: bool = False
    at_front_when_starved: bool = False
    track_job: bool = False
    retry: int = 0
    once_key: str | None = None
    depends_on: Any = None  # a Job or job id, or a list of them (jobs/constraints.py)
    allow_dependency_failure: bool = False
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    durable: bool | None = None  # the outbox (jobs/outbox.py); None: durable_enqueue config


OPTION_NAMES = frozenset(f.name for f in dataclass_fields(EnqueueOptions))
# enqueue's options that run the job here and now, with the values that do not
_RUN_LATER: dict[str, bool] = {"now": False, "is_async": True, "async": True}
RUN_NOW_OPTIONS = frozenset(_RUN_LATER)


_ID_POOL = 64
_ids: list[str] = []  # random job ids not handed out yet (new_id)


def _forget_ids() -> None:
    _ids.clear()  # a forked child must never hand out the ids its parent will


os.register_at_fork(after_in_child=_forget_ids)


def new_id() -> str:
    """A random job id (128 bits, 32 hex digits like uuid4().hex), drawn from a pool filled
    64 at a time: one urandom call instead of one per job. Safe across threads (list.pop is
    atomic; a thread that finds the pool empty refills it) and forks (the child's is empty)."""
    while True:
        try:
            return _ids.pop()
        except IndexError:
            pool = os.urandom(16 * _ID_POOL).hex()
            _ids.extend(pool[i : i + 32] for i in range(0, len(pool), 32))


class RecordBuilder:
    """Builds and signs job records for one site, as ``enqueue`` writes them.

    One per site context (``builder_for``), so the site's secret is read once, and each
    method's allowed dotted path and each queue's timeout are found once however many jobs
    name them. The site's config cannot change under a context: it was read when it opened."""

    def __init__(self, local: SiteLocal) -> None:
        self.local = local
        self.secret = trust.secret_of(local.conf, f"site {local.site!r}")
        self._paths: dict[tuple[Any, str], str] = {}
        self._timeouts: dict[str, int] = {}

    new_id = staticmethod(new_id)

    def path(self, method: str | Callable[..., Any], role: str) -> str:
        key = (method, role)
        if key not in self._paths:
            self._paths[key] = _allowed_path(method, self.local, role)
        return self._paths[key]

    def record(
        self, method: str | Callable[..., Any], opts: EnqueueOptions, kwargs: dict[str, Any]
    ) -> JobRecord:
        """The signed record, or the JobError that says why ``enqueue`` would refuse it."""
        local = self.local
        if opts.queue not in self._timeouts:
            self._timeouts[opts.queue] = validate_queue(local.conf, opts.queue)
        if opts.event is not None and not isinstance(opts.event, str):
            raise JobError(f"event must be a string, got {opts.event!r}")
        path = self.path(method, "method")
        record = JobRecord(
            id=full_id(local.site, _job_id(opts.job_id, opts.deduplicate) or self.new_id()),
            site=local.site,
            queue=opts.queue,
            method=path,
            payload=b"",
            user=local.session.user,
            timeout=_timeout(opts.timeout, self._timeouts[opts.queue]),
            job_name=opts.job_name or path,
            retries_left=_retries(opts.retry),
            on_success=self.path(opts.on_success, "on_success") if opts.on_success else None,
            on_failure=self.path(opts.on_failure, "on_failure") if opts.on_failure else None,
            event=opts.event or None,
        )
        constraints.apply(
            record,
            local,
            opts.depends_on,
            opts.allow_dependency_failure,
            opts.concurrency_key,
            opts.concurrency_limit,
        )
        record.payload, record.serializer = _payload(local, kwargs, self.secret)
        trust.sign(record, self.secret)
        otel.enqueue_span(record)  # a no-op unless OpenTelemetry is configured (otel.py)
        return record


def builder_for(local: SiteLocal) -> RecordBuilder:
    """The site context's RecordBuilder, made on first use."""
    builder = local.memo.get("record_builder")
    if builder is None:
        builder = local.memo["record_builder"] = RecordBuilder(local)
    return builder


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
    depends_on: Any = None,
    allow_dependency_failure: bool = False,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
    durable: bool | None = None,
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
      rollback); returns None. The job is written into the site database's outbox in the
      same transaction and relayed to the broker after the commit, so a broker that is down
      at the commit delays it instead of losing it (docs/reliability.md, "The outbox").
    * ``durable=True`` (or the ``durable_enqueue`` config key; ``durable=False`` overrides
      it): the same outbox for a plain enqueue; returns the Job handle at once.
    * ``on_success`` / ``on_failure``: a function or dotted path, called in the worker after
      the job; jobbench's ``(job, result)`` / ``(job, exc)`` or RQ's
      ``(job, connection, result)`` / ``(job, connection, type, value, traceback)``, told
      apart by their signature (jobbench.jobs.execute).
    * ``at_front``: the head of the queue; ``at_front_when_starved``: the head only when the
      queue already holds more than 16 queued jobs (Frappe's starvation threshold).
    * ``job_id`` (namespaced by site), ``deduplicate`` (needs ``job_id``: skip, returning None,
      while a job with that id is queued, started or waiting for a retry or its run time).
    * ``track_job``, ``retry`` (jobbench's): a Background Task document that follows the job;
      up to ``retry`` re-runs with backoff.
    * ``once_key`` (used by the scheduler for slot identities): the broker enqueues at most
      one job per key; a repeat returns None.
    * ``depends_on`` (a Job or job id, or a list of them): the job waits ``deferred`` until
      all of them finished; it is canceled with the reason when one fails, is stopped or
      canceled, unless ``allow_dependency_failure=True``. An unknown id raises
      DependencyNotFound.
    * ``concurrency_key`` / ``concurrency_limit`` (default 1, or the method's entry in
      ``job_concurrency_limits``): at most that many jobs with the key run at once, on all
      workers and hosts; the others wait queued without holding back other jobs.

    To run the job later, use ``enqueue_in`` / ``enqueue_at`` (same options); for many jobs
    in one round trip, ``enqueue_many``.

    Returns the ``Job`` handle, or None when nothing was enqueued (yet)."""
    is_async = kwargs.pop("async", is_async)  # Frappe's legacy spelling
    local = current()
    if now or not is_async:
        fn = method if callable(method) else resolve(method_path(method))
        return aio.settle(call_with_accepted_kwargs(fn, kwargs))  # async def: run to the end
    opts = EnqueueOptions(
        queue, timeout, event, job_name, enqueue_after_commit, on_success, on_failure,
        at_front, job_id, deduplicate, at_front_when_starved, track_job, retry, once_key,
        depends_on, allow_dependency_failure, concurrency_key, concurrency_limit,
    )  # fmt: skip
    if durable is not None:
        opts = dataclasses.replace(opts, durable=durable)
    return _enqueue_one(local, method, opts, kwargs, None)


def enqueue_in(
    delay: float | dt.timedelta, method: str | Callable[..., Any], /, **kwargs: Any
) -> Any:
    """``enqueue`` to run ``delay`` (seconds, or a timedelta) from now.

    Takes ``enqueue``'s options as keywords (queue, timeout, job_id, deduplicate, at_front,
    track_job, enqueue_after_commit, ...); the other keywords go to the method. The job waits
    as ``scheduled`` until its time, then is queued (at the head of its queue with
    ``at_front``). The delay counts from this call, also with ``enqueue_after_commit``."""
    return _delayed(time.time() + delay_seconds(delay), method, kwargs)


def enqueue_at(when: dt.datetime, method: str | Callable[..., Any], /, **kwargs: Any) -> Any:
    """``enqueue`` to run at ``when``: an aware datetime, or a naive one read in the site's
    time zone (as documents store times; in a repeated DST hour, its first occurrence). A
    time already past runs as soon as a worker is free. Options as ``enqueue_in``."""
    local = current()
    return _delayed(run_at_epoch(when, local.time_zone()), method, kwargs)


def run_at_epoch(when: Any, zone: str) -> float:
    """Epoch seconds of a datetime; a naive one is wall time in ``zone``."""
    if not isinstance(when, dt.datetime):
        raise JobError(f"enqueue_at needs a datetime, got {type(when).__name__} {when!r}")
    if when.tzinfo is None or when.utcoffset() is None:
        when = when.replace(tzinfo=ZoneInfo(zone))
    epoch = float(when.timestamp())
    if epoch - time.time() > MAX_DELAY:
        raise JobError(f"run time {when.isoformat()} is more than 68 years away")
    return epoch


def delay_seconds(delay: Any) -> float:
    seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else delay
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise JobError(f"the delay must be seconds (a number) or a timedelta, got {delay!r}")
    if not 0 <= seconds <= MAX_DELAY:  # NaN fails both comparisons
        raise JobError(f"the delay must be between 0 and {MAX_TIMEOUT} seconds, got {delay!r}")
    return float(seconds)


def split_options(kwargs: dict[str, Any], what: str) -> tuple[EnqueueOptions, dict[str, Any]]:
    """``enqueue``'s options out of ``kwargs``; the rest are the method's arguments.
    Options that run the job here and now are refused: ``what`` cannot."""
    asked = sorted(k for k in _RUN_LATER.keys() & kwargs.keys() if bool(kwargs[k]) != _RUN_LATER[k])
    if asked:
        raise JobError(f"{what} cannot run now ({', '.join(asked)}); call enqueue(now=True)")
    options = {k: kwargs[k] for k in kwargs if k in OPTION_NAMES}
    rest = {k: v for k, v in kwargs.items() if k not in OPTION_NAMES and k not in _RUN_LATER}
    return EnqueueOptions(**options), rest


def _delayed(run_at: float, method: str | Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    opts, job_kwargs = split_options(kwargs, "a delayed job")
    return _enqueue_one(current(), method, opts, job_kwargs, run_at)


def _enqueue_one(
    local: SiteLocal,
    method: str | Callable[..., Any],
    opts: EnqueueOptions,
    kwargs: dict[str, Any],
    run_at: float | None,
) -> Job | None:
    record = builder_for(local).record(method, opts, kwargs)
    constraints.refuse_delayed(record, run_at)
    from jobbench.jobs import outbox  # (outbox relays through _push: imported here, not above)

    if outbox.wanted(local.conf, opts.enqueue_after_commit, opts.durable):
        return outbox.add(local, record, opts, kwargs, run_at, str(local.conf.secret_key or ""))
    push = functools.partial(_push, local, record, opts, kwargs, run_at)
    if opts.enqueue_after_commit:
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


def _job_id(job_id: str | None, deduplicate: bool) -> str | None:
    """The caller's job id, checked; None when there is none (a new random one is made)."""
    if job_id is not None and (not isinstance(job_id, str) or not job_id):
        raise JobError(f"job_id must be a non-empty string, got {job_id!r}")
    if deduplicate and not job_id:
        raise JobError("deduplicate=True needs a job_id to recognise the duplicate")
    return job_id


def _retries(retry: Any) -> int:
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise JobError(f"retry must be a whole number >= 0, got {retry!r}")
    return retry


def starved(broker: Broker, queue: str) -> bool:
    return broker.queue_length(queue) > QUEUE_STARVATION_THRESHOLD


def _push(
    local: SiteLocal,
    record: JobRecord,
    opts: EnqueueOptions,
    kwargs: dict[str, Any],
    run_at: float | None,
) -> Job | None:
    """Hand the record to the broker. A tracked job's Background Task is created first (a
    worker may pick the job up at once) and removed again if the broker does not take it."""
    broker = get_broker(local.bench, local.conf)
    if opts.track_job:
        record.task_id = uuid.uuid4().hex
        tracking.create_task(local, record, kwargs)
    at_front = opts.at_front or (opts.at_front_when_starved and starved(broker, record.queue))
    try:
        taken = broker.enqueue(
            record,
            at_front=at_front,
            deduplicate=opts.deduplicate,
            max_queued=max_queued(local),
            once_key=opts.once_key,
            run_at=run_at,
        )
    except BaseException:
        tracking.delete_task(local, record.task_id)
        raise
    if not taken:
        tracking.delete_task(local, record.task_id)
        return None
    if opts.job_id is not None:  # it may have replaced a pending job with that id
        tracking.end_replaced(local, record)
    if record.status == JobStatus.CANCELED:  # a dependency of it had failed already
        tracking.sync_task(broker, local.bench, record.id, None)
    return Job(record, broker, str(local.conf.secret_key or ""))


push = _push  # the outbox relays its rows through it (jobs/outbox.py)


def max_queued(local: SiteLocal) -> int | None:
    value = local.conf.get("max_queued_jobs")
    return int(value) if value else None


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
    "durable",
    "depends_on",
    "allow_dependency_failure",
    "concurrency_key",
    "concurrency_limit",
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
