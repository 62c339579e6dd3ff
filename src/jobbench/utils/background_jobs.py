"""What Frappe's ``frappe.utils.background_jobs`` offers to apps, for one import change::

    from frappe.utils.background_jobs import enqueue, get_jobs, is_job_enqueued
    # becomes
    from jobbench.utils.background_jobs import enqueue, get_jobs, is_job_enqueued

Importing this module is cheap (no database, broker or SQLAlchemy import): the job functions
are the same objects as ``jobbench.enqueue``, ``jobbench.get_jobs``, ... and are loaded on
first use, like the ``jobbench`` facade's names.

Offered: ``enqueue``, ``enqueue_doc``, ``run_doc_method``, ``get_jobs``, ``get_job``,
``get_job_status``, ``is_job_enqueued``, ``create_job_id``, ``get_queues_timeout``,
``get_queue_list``, ``validate_queue``, ``JobStatus`` and the constants ``RQ_JOB_FAILURE_TTL``,
``RQ_RESULTS_TTL``, ``RQ_FAILED_JOBS_LIMIT`` and ``QUEUE_STARVATION_THRESHOLD`` (jobbench's
defaults, which are Frappe's values).

Not offered, because they are RQ's machinery rather than the job API: ``get_redis_conn``,
``get_queue`` / ``get_queues`` (RQ ``Queue`` objects), ``generate_qname``,
``is_queue_accessible``, ``get_workers``, ``get_running_jobs_in_queue``, ``start_worker``,
``start_worker_pool``, ``FrappeWorker``, ``FrappeWorkerNoFork``, ``get_worker_name``,
``set_niceness``, ``truncate_failed_registry`` (the broker trims failed jobs itself),
``execute_job`` (the worker's entry point; jobbench's takes a stored job record, see
``jobbench.jobs.execute``), ``enqueue_test_job`` / ``test_job``, and ``MAX_QUEUED_JOBS`` (a
queue has no size limit unless ``max_queued_jobs`` is set).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobbench.jobs.enqueue import enqueue, enqueue_doc
    from jobbench.jobs.job import Job, get_job, get_job_status, get_jobs, is_job_enqueued
    from jobbench.jobs.record import JobStatus

# The retention defaults (rq_job_failure_ttl, rq_results_ttl, rq_failed_jobs_limit in
# common_site_config.json override them), equal to Frappe's constants of the same names.
RQ_JOB_FAILURE_TTL = 7 * 24 * 60 * 60
RQ_RESULTS_TTL = 10 * 60
RQ_FAILED_JOBS_LIMIT = 1000
QUEUE_STARVATION_THRESHOLD = 16  # enqueue(at_front_when_starved=True) above this many

_LAZY = {
    "enqueue": "jobbench.jobs.enqueue",
    "enqueue_doc": "jobbench.jobs.enqueue",
    "get_jobs": "jobbench.jobs.job",
    "get_job": "jobbench.jobs.job",
    "get_job_status": "jobbench.jobs.job",
    "is_job_enqueued": "jobbench.jobs.job",
    "Job": "jobbench.jobs.job",
    "JobStatus": "jobbench.jobs.record",
}

__all__ = [
    "enqueue",
    "enqueue_doc",
    "run_doc_method",
    "get_jobs",
    "get_job",
    "get_job_status",
    "is_job_enqueued",
    "create_job_id",
    "get_queues_timeout",
    "get_queue_list",
    "validate_queue",
    "Job",
    "JobStatus",
    "RQ_JOB_FAILURE_TTL",
    "RQ_RESULTS_TTL",
    "RQ_FAILED_JOBS_LIMIT",
    "QUEUE_STARVATION_THRESHOLD",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobbench.utils.background_jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _conf() -> dict[str, Any]:
    """The current site's config; outside a site context, the common config of the bench
    found as the CLI finds it (like Frappe's ``get_conf()`` without a site)."""
    from jobbench.context import _current

    local = _current.get()
    if local is not None:
        return local.conf
    from jobbench.bench import find_bench

    return find_bench().common_config()


def get_queues_timeout() -> dict[str, int]:
    """``{queue: default timeout}``: short 300, default 300, long 1500, then the custom queues
    of ``workers`` (their ``timeout``, else 300), in this order, which is the order workers
    serve them in. As in Frappe's newest code, a ``workers`` value that is not a mapping, and
    an entry of it that is not one, are ignored (jobbench's config check refuses both in the
    files, so this only matters for a config built in code). Unlike Frappe's, it is not
    cached: it reflects the config as it is now."""
    from jobbench.jobs.queues import queue_timeouts

    return queue_timeouts(_conf())


def validate_queue(queue: str, default_queue_list: list[str] | None = None) -> None:
    """Raise ``InvalidQueue`` (a ``JobError`` and ``ValueError``, listing the valid names)
    unless ``queue`` is one of ``default_queue_list`` (default: every configured queue).
    Frappe raises a ``ValidationError`` "Queue should be one of ..." here."""
    from jobbench.errors import InvalidQueue

    names = list(default_queue_list) if default_queue_list else list(get_queues_timeout())
    if queue not in names:
        raise InvalidQueue(f"queue {queue!r} is not valid; use one of: {', '.join(names)}")


def get_queue_list(queue_list: str | list[str] | None = None) -> list[str]:
    """Every queue name (in priority order) when ``queue_list`` is empty; otherwise the given
    name (or names), each validated. Frappe's ``build_queue_name`` (RQ's bench-prefixed
    names) has no meaning here and is not accepted."""
    default = list(get_queues_timeout())
    if not queue_list:
        return default
    names = [queue_list] if isinstance(queue_list, str) else list(queue_list)
    for name in names:
        validate_queue(name, default)
    return names


def create_job_id(job_id: str | None = None) -> str:
    """The stored, site-namespaced form of ``job_id`` (a new random id when None):
    ``"<site>::<job_id>"``. Frappe's is ``"<site>||<job_id>"`` with ``:`` replaced by ``|``;
    ours keeps the id as given (any non-empty string). As in Frappe, ``get_job``,
    ``get_job_status`` and ``is_job_enqueued`` take the id *without* the namespace."""
    import uuid

    from jobbench.context import current
    from jobbench.jobs.record import full_id

    return full_id(current().site, job_id or uuid.uuid4().hex)


def run_doc_method(doctype: str, name: str, doc_method: str, **kwargs: Any) -> Any:
    """Frappe's job body for documents: load ``doctype``/``name`` fresh and call
    ``doc_method(**kwargs)``. (``enqueue_doc`` enqueues ``jobbench.jobs.execute.run_doc_method``,
    which takes the method's arguments as one ``kwargs`` mapping; this one takes them flat, as
    Frappe's does, for code that enqueues ``...background_jobs.run_doc_method`` itself.)"""
    from jobbench.jobs.execute import run_doc_method as run

    return run(doctype, name, doc_method, kwargs)
