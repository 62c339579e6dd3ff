"""jobbench: Frappe-style background jobs for any Python application.

Use it the way Frappe code uses ``frappe``::

    import jobbench as frappe

    with frappe.site_context("site1"):
        doc = frappe.new_doc("Background Task", task_id="t1")
        doc.save()
        frappe.db.commit()

Importing this package does no I/O and loads submodules only when a name is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jobbench.errors import (
    AppError,
    ArgumentNotSerializable,
    BenchNotFoundError,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    DatabaseError,
    DatabaseUnavailableError,
    DependencyNotFound,
    DocTypeNotFoundError,
    DoesNotExistError,
    DuplicateEntryError,
    InsecureConfigError,
    InvalidQueue,
    JobbenchError,
    JobError,
    JobFailed,
    JobTimeoutException,
    JobWaitTimeout,
    LinkValidationError,
    LockWaitTimeoutError,
    MandatoryError,
    MethodNotAllowed,
    MethodNotFound,
    NoSuchJobError,
    PayloadError,
    PayloadTooLarge,
    QueryDeadlockError,
    QueryTimeoutError,
    QueueOverloaded,
    RetryBackgroundJobError,
    SiteError,
    SiteExistsError,
    SiteNotFoundError,
    SiteNotInitializedError,
    UnimportableMethod,
    ValidationError,
)
from jobbench.utils import _dict

if TYPE_CHECKING:
    from jobbench.context import (
        conf,
        connect,
        current,
        db,
        destroy,
        flags,
        get_hooks,
        get_meta,
        init,
        local,
        session,
        set_user,
        site_context,
    )
    from jobbench.documents import (
        call,
        delete_doc,
        get_all,
        get_doc,
        get_list,
        get_single,
        log_error,
        new_doc,
    )
    from jobbench.jobs.bulk import enqueue_many
    from jobbench.jobs.enqueue import enqueue, enqueue_at, enqueue_doc, enqueue_in, task
    from jobbench.jobs.execute import publish_progress
    from jobbench.jobs.job import (
        Job,
        delete_job,
        get_job,
        get_job_status,
        get_jobs,
        get_result,
        is_job_enqueued,
        list_jobs,
        retry_job,
        run_job_now,
        stop_job,
    )
    from jobbench.model.document import Document

__version__ = "0.1.0"

# name -> module that defines it; resolved on first use (PEP 562) so `import jobbench` is cheap.
_LAZY = {
    # site context
    "init": "jobbench.context",
    "connect": "jobbench.context",
    "destroy": "jobbench.context",
    "site_context": "jobbench.context",
    "current": "jobbench.context",
    "local": "jobbench.context",
    "db": "jobbench.context",
    "conf": "jobbench.context",
    "session": "jobbench.context",
    "flags": "jobbench.context",
    "set_user": "jobbench.context",
    "get_hooks": "jobbench.context",
    "get_meta": "jobbench.context",
    # documents
    "new_doc": "jobbench.documents",
    "get_doc": "jobbench.documents",
    "get_single": "jobbench.documents",
    "get_all": "jobbench.documents",
    "get_list": "jobbench.documents",
    "delete_doc": "jobbench.documents",
    "log_error": "jobbench.documents",
    "call": "jobbench.documents",
    "Document": "jobbench.model.document",
    # jobs
    "enqueue": "jobbench.jobs.enqueue",
    "enqueue_in": "jobbench.jobs.enqueue",
    "enqueue_at": "jobbench.jobs.enqueue",
    "enqueue_many": "jobbench.jobs.bulk",
    "enqueue_doc": "jobbench.jobs.enqueue",
    "task": "jobbench.jobs.enqueue",
    "get_job": "jobbench.jobs.job",
    "get_job_status": "jobbench.jobs.job",
    "is_job_enqueued": "jobbench.jobs.job",
    "get_jobs": "jobbench.jobs.job",
    "list_jobs": "jobbench.jobs.job",
    "stop_job": "jobbench.jobs.job",
    "retry_job": "jobbench.jobs.job",
    "run_job_now": "jobbench.jobs.job",
    "get_result": "jobbench.jobs.job",
    "delete_job": "jobbench.jobs.job",
    "Job": "jobbench.jobs.job",
    "publish_progress": "jobbench.jobs.execute",
}

__all__ = [
    # site context
    "init",
    "connect",
    "destroy",
    "site_context",
    "current",
    "local",
    "db",
    "conf",
    "session",
    "flags",
    "set_user",
    "get_hooks",
    "get_meta",
    # documents
    "new_doc",
    "get_doc",
    "get_single",
    "get_all",
    "get_list",
    "delete_doc",
    "log_error",
    "call",
    "Document",
    "_dict",
    # jobs
    "enqueue",
    "enqueue_in",
    "enqueue_at",
    "enqueue_many",
    "enqueue_doc",
    "task",
    "get_job",
    "get_job_status",
    "is_job_enqueued",
    "get_jobs",
    "list_jobs",
    "stop_job",
    "retry_job",
    "run_job_now",
    "get_result",
    "delete_job",
    "Job",
    "publish_progress",
    "job",
    # errors
    "JobbenchError",
    "ConfigError",
    "BenchNotFoundError",
    "SiteError",
    "SiteNotFoundError",
    "SiteExistsError",
    "SiteNotInitializedError",
    "AppError",
    "DocTypeNotFoundError",
    "DoesNotExistError",
    "ValidationError",
    "MandatoryError",
    "DuplicateEntryError",
    "LinkValidationError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "QueryDeadlockError",
    "QueryTimeoutError",
    "LockWaitTimeoutError",
    "BrokerError",
    "BrokerUnavailable",
    "QueueOverloaded",
    "JobError",
    "JobFailed",
    "JobWaitTimeout",
    "InsecureConfigError",
    "InvalidQueue",
    "MethodNotAllowed",
    "MethodNotFound",
    "UnimportableMethod",
    "NoSuchJobError",
    "DependencyNotFound",
    "PayloadError",
    "PayloadTooLarge",
    "ArgumentNotSerializable",
    "JobTimeoutException",
    "RetryBackgroundJobError",
]


def __getattr__(name: str) -> Any:
    if name == "job":  # inside a running job: its JobContext; None elsewhere
        from jobbench.context import _current

        local = _current.get()
        return None if local is None else local.job
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
