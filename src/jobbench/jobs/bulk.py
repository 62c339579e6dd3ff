"""enqueue_many: many jobs in one broker round trip (one Redis script call, one SQLite
transaction), all or nothing.

Every spec is checked and its record built and signed exactly as ``enqueue`` would (the same
``RecordBuilder``) before anything is written, so a refusal (an unknown queue, a method outside
the site's apps, an argument the serializer cannot carry, a payload over max_payload_bytes,
...) names its spec and leaves the broker untouched. The broker then takes the whole batch in
one atomic step, or none of it (``QueueOverloaded``, an outage).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobbench.brokers.base import EnqueueItem
from jobbench.brokers.factory import get_broker
from jobbench.context import SiteLocal, current
from jobbench.errors import JobError
from jobbench.jobs import constraints, tracking
from jobbench.jobs.enqueue import (
    OPTION_NAMES,
    RUN_NOW_OPTIONS,
    EnqueueOptions,
    RecordBuilder,
    builder_for,
    delay_seconds,
    max_queued,
    run_at_epoch,
    split_options,
    starved,
)
from jobbench.jobs.job import Job
from jobbench.jobs.record import JobRecord, JobStatus

_SPEC_KEYS = frozenset({"method", "kwargs", "in", "at"})


@dataclass
class _Prepared:
    record: JobRecord
    opts: EnqueueOptions
    kwargs: dict[str, Any]
    run_at: float | None


def enqueue_many(
    specs: Iterable[Mapping[str, Any]], *, enqueue_after_commit: bool = False
) -> list[Job | None]:
    """Enqueue one job per spec in one round trip; returns their ``Job`` handles in order
    (None where ``deduplicate`` found the job pending, or a ``once_key`` was taken).

    A spec is ``{"method": ..., "kwargs": {...}, **options}``: ``method`` as ``enqueue``
    takes it, ``kwargs`` its arguments (default none), and any of ``enqueue``'s options
    (``queue``, ``timeout``, ``job_id``, ``deduplicate``, ``at_front``,
    ``at_front_when_starved``, ``track_job``, ``retry``, ``on_success``, ``on_failure``,
    ``job_name``, ``event``, ``once_key``, ``depends_on``, ``allow_dependency_failure``,
    ``concurrency_key``, ``concurrency_limit``), plus ``"in"`` (seconds or a timedelta) or
    ``"at"`` (a datetime) to delay it as ``enqueue_in`` / ``enqueue_at`` do.

    All or nothing: every spec is checked first (a refusal raises the JobError ``enqueue``
    would, its message prefixed with ``specs[i]``), then the broker writes the batch in one
    atomic step. ``enqueue_after_commit=True`` writes the batch into the site database's
    outbox in the current transaction (nothing on rollback), relayed after the commit job by
    job, in order (a broker down at the commit delays it instead of losing it); it returns
    ``[None] * len(specs)`` and is not an option of a single spec."""
    local = current()
    builder = builder_for(local)
    prepared = [_prepare(builder, local, i, spec) for i, spec in enumerate(specs)]
    if not enqueue_after_commit:
        return _push_many(local, builder.secret, prepared)
    from jobbench.jobs import outbox  # the batch waits in the site database (jobs/outbox.py)

    outbox.add_many(local, [(p.record, p.opts, p.kwargs, p.run_at) for p in prepared])
    return [None] * len(prepared)


def _prepare(builder: RecordBuilder, local: SiteLocal, i: int, spec: Any) -> _Prepared:
    try:
        if not isinstance(spec, Mapping):
            raise JobError(
                f"a spec must be a dict like {{'method': ..., 'kwargs': {{}}}}, got {spec!r}"
            )
        if "method" not in spec:
            raise JobError("the spec has no 'method'")
        given = spec.get("kwargs") or {}
        if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
            raise JobError(f"'kwargs' must be a dict of argument names to values, got {given!r}")
        kwargs, opts = dict(given), _options(spec)
        run_at = _run_at(spec, local)
        record = builder.record(spec["method"], opts, kwargs)
        constraints.refuse_delayed(record, run_at)
        return _Prepared(record, opts, kwargs, run_at)
    except JobError as exc:
        raise _named(exc, i) from exc


_DEFAULTS = EnqueueOptions()


def _options(spec: Mapping[str, Any]) -> EnqueueOptions:
    """The spec's enqueue options; most specs have none or few, so this stays cheap."""
    options = {k: v for k, v in spec.items() if k not in _SPEC_KEYS}
    if not options:
        return _DEFAULTS
    if not options.keys() <= OPTION_NAMES:
        unknown = options.keys() - OPTION_NAMES - RUN_NOW_OPTIONS
        if unknown:
            raise JobError(
                f"unknown option(s) {', '.join(map(repr, sorted(unknown)))}; arguments of "
                "the method go in 'kwargs'"
            )
        opts = split_options(options, "a job of enqueue_many")[0]
    else:
        opts = EnqueueOptions(**options)
    if opts.enqueue_after_commit:
        raise JobError("enqueue_after_commit applies to the whole batch: pass it to enqueue_many")
    return opts


def _run_at(spec: Mapping[str, Any], local: SiteLocal) -> float | None:
    delay, when = spec.get("in"), spec.get("at")
    if delay is not None and when is not None:
        raise JobError("give 'in' or 'at', not both")
    if delay is not None:
        return time.time() + delay_seconds(delay)
    if when is not None:
        return run_at_epoch(when, local.time_zone())
    return None


def _named(exc: JobError, i: int) -> JobError:
    """The same kind of error, its message saying which spec it is about."""
    try:
        return type(exc)(f"specs[{i}]: {exc}")
    except TypeError:  # an error class with a constructor of its own
        return JobError(f"specs[{i}]: {exc}")


def _push_many(local: SiteLocal, secret: str, prepared: list[_Prepared]) -> list[Job | None]:
    """One broker call for every record. Background Tasks of tracked jobs are created first
    (a worker may take a job at once) and removed again for jobs the broker did not take."""
    broker = get_broker(local.bench, local.conf)
    starving = {
        queue: starved(broker, queue)
        for queue in {p.record.queue for p in prepared if p.opts.at_front_when_starved}
    }
    items = [
        EnqueueItem(
            p.record,
            p.opts.at_front or (p.opts.at_front_when_starved and starving[p.record.queue]),
            p.opts.deduplicate,
            p.opts.once_key,
            p.run_at,
            new_id=p.opts.job_id is None,  # RecordBuilder made a random one
        )
        for p in prepared
    ]
    tracked = [p for p in prepared if p.opts.track_job]
    for p in tracked:
        p.record.task_id = uuid.uuid4().hex
        tracking.create_task(local, p.record, p.kwargs)
    try:
        taken = broker.enqueue_many(items, max_queued=max_queued(local))
    except BaseException:
        for p in tracked:
            tracking.delete_task(local, p.record.task_id)
        raise
    for p, ok in zip(prepared, taken, strict=True):
        if not ok and p.opts.track_job:
            tracking.delete_task(local, p.record.task_id)
        elif ok and p.record.status == JobStatus.CANCELED:  # a dependency had failed already
            tracking.sync_task(broker, local.bench, p.record.id, None)
    named = [p.record for p, ok in zip(prepared, taken, strict=True) if ok and p.opts.job_id]
    if named:  # as enqueue does: they may have replaced pending jobs with those ids
        tracking.end_replaced_many(local, named)
    return [
        Job(p.record, broker, secret) if ok else None for p, ok in zip(prepared, taken, strict=True)
    ]
