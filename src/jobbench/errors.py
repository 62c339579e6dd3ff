"""Every exception jobbench raises on purpose.

All of them derive from one root, so ``except jobbench.JobbenchError`` catches anything the
library raises deliberately, and the CLI turns any of them into a one-line reason and a non-zero
exit. Backend errors (SQLAlchemy, drivers) are translated at the boundary with ``raise ... from``.

::

    JobbenchError
    ├── ConfigError                  malformed JSON, a known key with a wrong type or value
    │   ├── BenchNotFoundError       no bench at --bench / $JOBBENCH_BENCH / any parent folder
    │   └── InsecureConfigError      secret_key (or a token) missing or too short
    ├── SiteError
    │   ├── SiteNotFoundError        unknown site name
    │   ├── SiteExistsError          new-site on a name already taken
    │   └── SiteNotInitializedError  a site-bound call with no current site (call init/site_context)
    ├── AppError                     app not importable, or without a hooks module, or bad hooks
    ├── DocTypeNotFoundError         a doctype no installed app defines
    ├── DoesNotExistError            a document that is not in the database
    ├── ValidationError              a bad field value; names doctype, field and value
    │   ├── MandatoryError           a required field left empty
    │   ├── DuplicateEntryError      a name (or unique field) already taken
    │   └── LinkValidationError      a link field pointing at a missing document
    ├── DatabaseError                the site database failed or refused
    │   ├── DatabaseUnavailableError cannot connect (names the URL, password hidden)
    │   ├── QueryDeadlockError       the database chose this transaction as a deadlock victim
    │   └── QueryTimeoutError        a statement ran past its time limit (statement_timeout,
    │       │                        max_statement_time) or was canceled
    │       └── LockWaitTimeoutError a lock wait timed out (MariaDB 1205, PostgreSQL
    │                                lock_timeout, SQLite "database is locked")
    ├── BrokerError                  the queue broker failed or refused
    │   ├── BrokerUnavailable        cannot reach Redis / the SQLite queue file (names it)
    │   │   └── ReplicationTimeout   fewer replicas than redis_queue_wait_replicas confirmed a write
    │   └── QueueOverloaded          the queue already holds max_queued_jobs
    ├── JobError                     a job cannot be enqueued as asked
    │   ├── InvalidQueue             unknown queue name (lists the valid ones)
    │   ├── MethodNotFound           a dotted path that does not resolve
    │   ├── MethodNotAllowed         a method outside the site's apps and allowed_job_modules
    │   ├── UnimportableMethod       a lambda, nested function or __main__ function
    │   ├── NoSuchJobError           no job with that id
    │   │   └── DependencyNotFound   enqueue(depends_on=...) names a job that is not stored
    │   ├── ArgumentNotSerializable  an argument the serializer cannot carry (also a TypeError)
    │   ├── PayloadTooLarge          serialised arguments over max_payload_bytes
    │   ├── PayloadError             a job payload that is corrupt, forged or unsigned
    │   ├── JobFailed                job.wait() / get_result(): the job failed, was stopped
    │   │                            or canceled (its exception type, message, traceback)
    │   └── JobWaitTimeout           job.wait() ran out of time (also a TimeoutError)
    ├── JobTimeoutException          raised inside a job that ran past its timeout
    └── RetryBackgroundJobError      raise it in a job to have it retried in place
"""

from __future__ import annotations


class JobbenchError(Exception):
    """Root of every error jobbench raises on purpose."""


class ConfigError(JobbenchError):
    """A configuration file is malformed or holds a value of the wrong type."""


class InsecureConfigError(ConfigError):
    """A setting security depends on is missing or too weak (``secret_key``, a token)."""


class BenchNotFoundError(ConfigError):
    """No bench directory could be found."""


class SiteError(JobbenchError):
    """Something is wrong with a site name or its state."""


class SiteNotFoundError(SiteError):
    """The named site does not exist on this bench."""


class SiteExistsError(SiteError):
    """A site with that name already exists."""


class SiteNotInitializedError(SiteError, RuntimeError):
    """A call needs a current site but none is set up in this context."""


class AppError(JobbenchError):
    """An app cannot be imported, has no hooks module, or declares something invalid."""


class DocTypeNotFoundError(JobbenchError):
    """No installed app defines this doctype."""


class DoesNotExistError(JobbenchError):
    """The requested document is not in the database."""


class ValidationError(JobbenchError):
    """A value does not fit its field; nothing was written."""


class MandatoryError(ValidationError):
    """A required field has no value."""


class DuplicateEntryError(ValidationError):
    """A document with this name (or unique value) already exists."""


class LinkValidationError(ValidationError):
    """A link field names a document that does not exist."""


class DatabaseError(JobbenchError):
    """The site database failed or refused an operation."""


class DatabaseUnavailableError(DatabaseError):
    """The site database cannot be reached."""


class QueryDeadlockError(DatabaseError):
    """The transaction was rolled back by the database to break a deadlock."""


class QueryTimeoutError(DatabaseError):
    """A statement took longer than the database allows, or waited too long for a lock.

    Frappe's name for what its database layer raises on a lock-wait timeout (MariaDB 1205) and
    on PostgreSQL's query cancellation. Here it is raised for statement timeouts (PostgreSQL
    ``statement_timeout`` / SQLSTATE 57014, MariaDB ``max_statement_time`` / 1969, MySQL
    ``max_execution_time`` / 3024), and it is the parent of ``LockWaitTimeoutError``, so
    ``except QueryTimeoutError`` written for Frappe also catches lock-wait timeouts. Workers
    retry a job that raises it in place, like a deadlock."""


class LockWaitTimeoutError(QueryTimeoutError):
    """The transaction waited too long for a lock (a ``QueryTimeoutError``, as in Frappe)."""


class BrokerError(JobbenchError):
    """The queue broker failed or refused an operation."""


class BrokerUnavailable(BrokerError):  # noqa: N818 - its documented name (docs/configuration.md)
    """The broker (Redis, or the SQLite queue file) cannot be reached or is locked too long."""


class ReplicationTimeout(BrokerUnavailable):  # noqa: N818 - pairs with BrokerUnavailable
    """Redis applied a write, but fewer replicas than ``redis_queue_wait_replicas`` confirmed
    it in time, so a failover could still lose it. A BrokerUnavailable: callers (the worker's
    outage paths, a producer) treat the write as not acknowledged."""


class QueueOverloaded(BrokerError):  # noqa: N818 - its documented name (docs/configuration.md)
    """The queue already holds ``max_queued_jobs`` jobs."""


class JobError(JobbenchError):
    """A job cannot be enqueued, found or run as asked."""


class InvalidQueue(JobError, ValueError):  # noqa: N818 - Frappe's name
    """The queue name is not one of short, default, long or a configured custom queue."""


class MethodNotFound(JobError):  # noqa: N818 - its documented name (docs/porting.md)
    """A dotted method path does not resolve to a callable."""


class MethodNotAllowed(JobError):  # noqa: N818 - pairs with MethodNotFound
    """A method outside the site's installed apps and ``allowed_job_modules``."""


class PayloadTooLarge(JobError, ValueError):  # noqa: N818 - pairs with PayloadError
    """A job's serialised arguments are larger than ``max_payload_bytes``."""


class UnimportableMethod(JobError, ValueError):  # noqa: N818 - pairs with MethodNotFound
    """A callable that workers could not import by name (lambda, nested, __main__)."""


class ArgumentNotSerializable(JobError, TypeError):  # noqa: N818 - a TypeError too
    """An enqueue argument the configured serializer cannot carry."""


class NoSuchJobError(JobError):
    """There is no job with this id on the site."""


class DependencyNotFound(NoSuchJobError):  # noqa: N818 - like NoSuchJobError
    """``enqueue(depends_on=...)`` names a job with no stored record (never enqueued, deleted,
    or past its retention); nothing was enqueued."""


class PayloadError(JobError):
    """A job payload is corrupt, or a pickle payload is unsigned or its signature is wrong."""


class JobFailed(JobError):  # noqa: N818 - the name issue 12 gives it
    """The job waited on ended without a result: failed, stopped or canceled.

    The message carries the job's exception type and message (the last line of its remote
    traceback); the attributes keep the parts: ``job_id``, ``status``, ``exc_type`` (e.g.
    ``"ValueError"``, None when the job did not end in an exception, such as a cancel),
    ``exc_message`` and ``remote_traceback`` (the worker's traceback text, the job's
    ``exc_info``)."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str = "",
        status: str = "failed",
        exc_type: str | None = None,
        exc_message: str | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.remote_traceback = remote_traceback


class JobWaitTimeout(JobError, TimeoutError):  # noqa: N818 - pairs with JobTimeoutException
    """``job.wait(timeout)`` / ``get_result(job_id, timeout)``: the job had not ended in time.
    A ``TimeoutError`` too, so ``except TimeoutError`` catches it."""


class JobTimeoutException(JobbenchError):  # noqa: N818 - Frappe/RQ's name
    """Raised inside a job that ran past its timeout (the soft stop)."""


class RetryBackgroundJobError(JobbenchError):
    """Raise inside a job to have the worker retry it in place (up to 5 times)."""


__all__ = [
    "ArgumentNotSerializable",
    "BrokerError",
    "BrokerUnavailable",
    "InvalidQueue",
    "JobError",
    "JobFailed",
    "JobTimeoutException",
    "JobWaitTimeout",
    "MethodNotAllowed",
    "MethodNotFound",
    "NoSuchJobError",
    "DependencyNotFound",
    "PayloadError",
    "PayloadTooLarge",
    "QueueOverloaded",
    "ReplicationTimeout",
    "RetryBackgroundJobError",
    "UnimportableMethod",
    "AppError",
    "BenchNotFoundError",
    "ConfigError",
    "InsecureConfigError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DocTypeNotFoundError",
    "DoesNotExistError",
    "DuplicateEntryError",
    "JobbenchError",
    "LinkValidationError",
    "LockWaitTimeoutError",
    "MandatoryError",
    "QueryDeadlockError",
    "QueryTimeoutError",
    "SiteError",
    "SiteExistsError",
    "SiteNotFoundError",
    "SiteNotInitializedError",
    "ValidationError",
]
