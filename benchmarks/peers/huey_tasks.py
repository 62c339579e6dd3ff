"""Huey's tasks: the job bodies of ``bench_app/jobs.py`` registered on a Huey instance
(``huey_redis_tasks`` and ``huey_sqlite_tasks`` each make one; the consumer loads it)."""

from __future__ import annotations

from typing import Any

from bench_app import jobs


def register(huey: Any) -> dict[str, Any]:
    """The task of each job kind, by kind."""
    return {name: huey.task(name=name)(getattr(jobs, name)) for name in ("noop", "sleep_10ms")}
