"""What ``enqueue(depends_on=..., concurrency_key=..., concurrency_limit=...)`` writes on the
record, checked before anything is written (docs/jobs.md, "Dependencies" and "Concurrency
keys"). The broker enforces both, atomically with claims and outcomes; this only turns the
caller's values into record fields or refuses them with a JobError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobbench.brokers.factory import get_broker
from jobbench.context import SiteLocal
from jobbench.errors import JobError
from jobbench.jobs.job import Job
from jobbench.jobs.record import JobRecord, encode_ids, full_id

MAX_DEPENDENCIES = 1000  # a job waiting for more is surely a mistake (one list per record)
MAX_LIMIT = 2**31 - 1


def apply(
    record: JobRecord,
    local: SiteLocal,
    depends_on: Any,
    allow_failure: Any,
    key: Any,
    limit: Any,
) -> None:
    """Set the record's dependency and concurrency fields, or raise JobError."""
    if not isinstance(allow_failure, bool):
        raise JobError(f"allow_dependency_failure must be True or False, got {allow_failure!r}")
    ids = dependency_ids(depends_on, local)
    if record.id in ids:
        raise JobError(f"job {record.job_id!r} cannot depend on itself")
    if ids:
        record.depends_on = encode_ids(ids)
        record.allow_dependency_failure = int(allow_failure)
    elif allow_failure:
        raise JobError("allow_dependency_failure=True needs depends_on")
    record.concurrency_key, record.concurrency_limit = concurrency(record.method, local, key, limit)


def dependency_ids(depends_on: Any, local: SiteLocal) -> list[str]:
    """Stored ids of the dependencies: a Job handle or a job id (of this site), or a list of
    them. A handle of another site is taken when that site shares this site's broker."""
    if depends_on is None:
        return []
    given: Iterable[Any] = (
        depends_on if isinstance(depends_on, list | tuple | set | frozenset) else [depends_on]
    )
    ids = list(dict.fromkeys(_stored_id(dep, local) for dep in given))
    if len(ids) > MAX_DEPENDENCIES:
        raise JobError(f"depends_on names {len(ids)} jobs; at most {MAX_DEPENDENCIES}")
    return ids


def _stored_id(dep: Any, local: SiteLocal) -> str:
    if isinstance(dep, Job):
        if dep.site != local.site and dep._broker is not get_broker(local.bench, local.conf):
            raise JobError(
                f"depends_on: job {dep.id!r} of site {dep.site!r} is on another broker than "
                f"site {local.site!r}; a dependency must share the dependent's broker"
            )
        return dep.record.id
    if isinstance(dep, str) and dep:
        return full_id(local.site, dep)
    raise JobError(f"depends_on takes Job handles or job ids (non-empty strings), got {dep!r}")


def concurrency(method: str, local: SiteLocal, key: Any, limit: Any) -> tuple[str | None, int]:
    """The (key, limit) of a job: as given, else the method's ``job_concurrency_limits``
    entry (key = the method's dotted path), else none. A key without a limit gets the
    method's configured limit, else 1."""
    configured = (local.conf.get("job_concurrency_limits") or {}).get(method)
    if key is None and limit is None:
        return (method, int(configured)) if configured else (None, 0)
    if key is None:
        raise JobError("concurrency_limit needs a concurrency_key (the jobs it limits)")
    if not isinstance(key, str) or not key:
        raise JobError(f"concurrency_key must be a non-empty string, got {key!r}")
    if limit is None:
        return key, int(configured or 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise JobError(f"concurrency_limit must be a whole number >= 1, got {limit!r}")
    return key, limit


def refuse_delayed(record: JobRecord, run_at: float | None) -> None:
    """A delayed job cannot also wait for dependencies (one waiting status at a time)."""
    if run_at is not None and record.depends_on:
        raise JobError(
            "a job cannot be both delayed and have depends_on; enqueue it with depends_on "
            "alone, or have its dependency enqueue it later"
        )
