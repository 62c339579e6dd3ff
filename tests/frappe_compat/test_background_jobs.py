"""Port of frappe/tests/test_background_jobs.py (newest text, after merged PR #42986).

Frappe calls ``execute_job`` in the test process, with the database and ``time.sleep`` mocked,
to see the retry's rollback, commit and backoff. Here the same jobs run for real in a
``jobbench worker --burst`` process on each broker, and leave their traces (each attempt, its
time and user) in files and in the site database.
"""

# The first docstring line of each test names its Frappe case in full (file::Class::test),
# which may run past 100 characters.
# ruff: noqa: E501

from __future__ import annotations

import json
from typing import Any

import pytest

import jobbench as frappe

from .conftest import Compat


def _attempts(fc: Compat, counter: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in fc.lines(counter)]


def _outcome(fc: Compat, job_id: str) -> tuple[str, Any]:
    with fc.ctx():
        job = frappe.get_job(job_id)
        assert job is not None, job_id
        return job.status, job.result


def test_remove_failed_jobs(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_remove_failed_jobs.

    A job that failed on the short queue is counted there, and removing the site's failed
    jobs (``jobbench jobs purge-failed``) empties that count."""
    with fc.ctx():
        frappe.enqueue(method="compat.jobs.divide_by_zero", queue="short")
    fc.run_worker("short")  # Frappe waits for its worker instead

    assert fc.queue_counts("short")["failed"] > 0
    done = fc.cli("jobs", "purge-failed")
    assert done.returncode == 0, done.stderr
    assert fc.queue_counts("short")["failed"] == 0


def test_get_queues_timeout_tolerates_invalid_workers_config(fc_sqlite: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_get_queues_timeout_tolerates_invalid_workers_config.

    A ``workers`` value that is not a dict, or an entry in it that is not one, is ignored:
    the built-in queues keep their timeouts and valid custom queues get theirs."""
    from jobbench.utils.background_jobs import get_queues_timeout

    builtin = {"short", "default", "long"}

    def timeouts(workers: Any) -> dict[str, int]:
        # Frappe patches get_conf(); the config files refuse such values, so the site's
        # config is replaced in code here, for this context only
        with fc_sqlite.ctx() as local:
            local.conf = frappe._dict({**local.conf, "workers": workers})
            return dict(get_queues_timeout())

    assert set(timeouts(8)) == builtin

    found = timeouts({"long": 999, "custom": {"timeout": 5000}})
    assert found["custom"] == 5000
    assert found["long"] == 1500
    assert builtin <= set(found)


def test_enqueue_at_front(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_enqueue_at_front.

    A job enqueued with at_front=True is ahead of one enqueued normally before it."""
    kwargs: dict[str, Any] = {"method": "compat.jobs.ping", "queue": "short"}
    with fc.ctx():
        frappe.enqueue(**kwargs)  # something ahead of both, so positions are never None
        low_priority_job = frappe.enqueue(**kwargs)
        high_priority_job = frappe.enqueue(**kwargs, at_front=True)
        # lesser is earlier
        assert high_priority_job.get_position() < low_priority_job.get_position()


def test_job_translation_resolves_user_language() -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_job_translation_resolves_user_language.

    Skipped: jobbench has no translations."""
    pytest.skip(
        "translations: frappe._() inside a job resolves the job user's language; jobbench "
        "has no translation layer and no user language to resolve"
    )


def test_job_hooks(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_job_hooks.

    An app's before_job and after_job hooks both run around a job, before_job first, and the
    job's return value is its result."""
    fc.set_compat_hooks(
        'before_job = ["compat.jobs.before_job"]\nafter_job = ["compat.jobs.after_job"]\n'
    )
    hooks_log = fc.bench.path / "hooks.log"
    assert fc.lines(hooks_log) == []
    with fc.ctx():
        job = frappe.enqueue("compat.jobs.ping", queue="short")
    fc.run_worker("short")

    assert _outcome(fc, job.id) == ("finished", "pong")
    calls = {entry["hook"]: entry for entry in map(json.loads, fc.lines(hooks_log))}
    assert sorted(calls) == ["after_job", "before_job"]
    assert calls["before_job"]["at"] < calls["after_job"]["at"]


def test_job_retries_framework_deadlock_errors(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_job_retries_framework_deadlock_errors.

    A job that hits ``QueryDeadlockError`` once is retried in place after 1 s and completes:
    two attempts, the failed attempt's write rolled back, the successful one's committed."""
    counter = fc.file("attempts.log")
    with fc.ctx():
        job = frappe.enqueue("compat.jobs.locked_once", counter=counter)
    fc.run_worker()

    assert _outcome(fc, job.id) == ("finished", "completed")
    attempts = _attempts(fc, counter)
    assert [a["n"] for a in attempts] == [1, 2]
    backoff = attempts[1]["at"] - attempts[0]["at"]
    assert 1.0 <= backoff < 1.9, f"the retry came {backoff:.2f} s after the deadlock"
    with fc.ctx():
        assert frappe.get_all("Note", pluck="title") == ["attempt 2"]


def test_async_job_retry_keeps_cleanup_context(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_async_job_retry_keeps_cleanup_context.

    After a deadlock and a successful retry, an after_job callback the successful attempt
    registered runs exactly once, and the job completes."""
    counter, cleanup_log = fc.file("attempts.log"), fc.file("cleanup.log")
    with fc.ctx():
        job = frappe.enqueue(
            "compat.jobs.locked_once_then_cleanup", counter=counter, cleanup_log=cleanup_log
        )
    fc.run_worker()

    assert _outcome(fc, job.id) == ("finished", "completed")
    assert len(_attempts(fc, counter)) == 2
    assert fc.lines(cleanup_log) == ["attempt 2"]


def test_job_retry_preserves_user(fc: Compat) -> None:
    """Frappe: frappe/tests/test_background_jobs.py::TestBackgroundJobs::test_job_retry_preserves_user.

    A job enqueued by test@example.com that is retried after a deadlock runs its retry as
    test@example.com too, and its result is the retry's."""
    counter = fc.file("attempts.log")
    with fc.ctx():
        frappe.set_user("test@example.com")
        job = frappe.enqueue("compat.jobs.locked_once_as_user", counter=counter)
    fc.run_worker()

    assert _outcome(fc, job.id) == ("finished", "completed")
    assert [a["user"] for a in _attempts(fc, counter)] == ["test@example.com"] * 2
