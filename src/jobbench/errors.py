"""Every exception jobbench raises on purpose.

All of them derive from one root, so ``except jobbench.JobbenchError`` catches anything the
library raises deliberately, and the CLI turns any of them into a one-line reason and a non-zero
exit. Backend errors (SQLAlchemy, drivers) are translated at the boundary with ``raise ... from``.

::

    JobbenchError
    ├── ConfigError                  malformed JSON, a known key with a wrong type or value
    │   └── BenchNotFoundError       no bench at --bench / $JOBBENCH_BENCH / any parent folder
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
    └── DatabaseError                the site database failed or refused
        ├── DatabaseUnavailableError cannot connect (names the URL, password hidden)
        ├── QueryDeadlockError       the database chose this transaction as a deadlock victim
        └── LockWaitTimeoutError     a lock wait timed out
"""

from __future__ import annotations


class JobbenchError(Exception):
    """Root of every error jobbench raises on purpose."""


class ConfigError(JobbenchError):
    """A configuration file is malformed or holds a value of the wrong type."""


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


class LockWaitTimeoutError(DatabaseError):
    """The transaction waited too long for a lock."""


__all__ = [
    "AppError",
    "BenchNotFoundError",
    "ConfigError",
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
    "SiteError",
    "SiteExistsError",
    "SiteNotFoundError",
    "SiteNotInitializedError",
    "ValidationError",
]
