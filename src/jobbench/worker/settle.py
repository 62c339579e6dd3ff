"""Settling jobs whose executor or worker is gone, and keeping Background Tasks in step.

Used by the worker parent (executor died, hard timeout, forced stop) and by anyone reaping
jobs of dead workers. Broker calls are conditional, so settling twice is harmless.
"""

from __future__ import annotations

import contextlib
import json
import time

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, Retention
from jobbench.errors import JobbenchError
from jobbench.jobs.record import JobStatus
from jobbench.jobs.tracking import sync_task
from jobbench.worker.executor import backoff


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
        sync_task(broker, bench, job_id, reason)
        close_scheduled_log(broker, bench, job_id, reason)
    return changed


def reap_dead(broker: Broker, bench: Bench, keep: Retention) -> list[str]:
    """Settle jobs of workers whose heartbeat expired, and update their Background Tasks."""
    ids = broker.reap(keep)
    for job_id in ids:
        sync_task(broker, bench, job_id, None)
        close_scheduled_log(broker, bench, job_id, None)
    return ids


def close_scheduled_log(broker: Broker, bench: Bench, job_id: str, reason: str | None) -> None:
    """A scheduled run that died leaves its Scheduled Job Log at Start: end it Failed."""
    from jobbench.scheduler.run import RUN_METHOD, fail_open_logs

    record = broker.get(job_id)
    if record is None or record.method != RUN_METHOD or record.status == JobStatus.SCHEDULED:
        return
    try:
        job_type = json.loads(record.payload).get("job_type")
    except (ValueError, AttributeError):
        return
    with contextlib.suppress(JobbenchError):
        fail_open_logs(record.site, bench.path, str(job_type), reason or record.exc_info or "")
