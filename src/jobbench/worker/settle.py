"""Settling jobs whose executor or worker is gone, and keeping Background Tasks in step.

Used by the worker parent (executor died, hard timeout, forced stop) and by anyone reaping
jobs of dead workers. Broker calls are conditional, so settling twice is harmless.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, Retention
from jobbench.errors import JobbenchError
from jobbench.jobs import serializer
from jobbench.jobs.record import JobRecord, JobStatus
from jobbench.worker.spec import backoff


def settle_job(
    broker: Broker,
    bench: Bench,
    keep: Retention,
    job_id: str,
    worker: str | None,
    reason: str,
    stopped: bool = False,
) -> bool:
    """Fail (or mark stopped) a started job on behalf of a process that can no longer do it."""
    record = broker.get(job_id)
    if record is None:
        return False
    if stopped:
        changed = broker.mark_stopped(job_id, worker, reason, keep)
    else:
        retry_at = time.time() + backoff(record.retry_count) if record.retries_left else None
        changed = broker.fail(job_id, worker, reason, keep, retry_at=retry_at)
    if changed:
        _sync_task(broker, bench, job_id, reason)
        close_scheduled_log(broker, bench, job_id, reason)
    return changed


def dead_worker_reaper(bench: Bench) -> tuple[Callable[[], list[str]], float]:
    """For processes that are not workers (the scheduler): a function that settles the jobs
    of dead workers, and how often to call it, so a job whose only worker died is settled
    while any jobbench process runs."""
    from jobbench.brokers.factory import get_broker, retention
    from jobbench.brokers.liveness import liveness, reap_interval

    conf = bench.common_config()
    broker, keep = get_broker(bench, conf), retention(conf)
    return (lambda: reap_dead(broker, bench, keep)), reap_interval(liveness(conf)[1])


def reap_dead(broker: Broker, bench: Bench, keep: Retention) -> list[str]:
    """Settle jobs of workers whose heartbeat expired, and update their Background Tasks."""
    ids = broker.reap(keep)
    for job_id in ids:
        _sync_task(broker, bench, job_id, None)
        close_scheduled_log(broker, bench, job_id, None)
    return ids


def close_scheduled_log(broker: Broker, bench: Bench, job_id: str, reason: str | None) -> None:
    """A scheduled run that died leaves its Scheduled Job Log at Start: end it Failed."""
    from jobbench.scheduler.run import RUN_METHOD, fail_open_logs

    record = broker.get(job_id)
    if record is None or record.method != RUN_METHOD:
        return
    if record.status in (JobStatus.SCHEDULED, JobStatus.QUEUED):  # retried, or never ran
        return
    job_type = _job_type(bench, record)
    if job_type is None:
        return
    with contextlib.suppress(JobbenchError):
        fail_open_logs(record.site, bench.path, str(job_type), reason or record.exc_info or "")


def _job_type(bench: Bench, record: JobRecord) -> str | None:
    """The Scheduled Job Type a run was for, read with the record's own serializer (a
    pickle bench's payload is not JSON)."""
    try:
        secret = str(bench.merged_config(record.site).get("secret_key") or "")
        kwargs = serializer.loads(record.payload, record.serializer, secret)
    except JobbenchError:
        return None
    value = kwargs.get("job_type") if isinstance(kwargs, dict) else None
    return str(value) if value else None


def _sync_task(broker: Broker, bench: Bench, job_id: str, reason: str | None) -> None:
    """``tracking.sync_task``, imported when a job is settled: the worker's parent imports
    this module for its housekeeping, and tracking brings the site context (SQLAlchemy)."""
    from jobbench.jobs.tracking import sync_task

    sync_task(broker, bench, job_id, reason)
