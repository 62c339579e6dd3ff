"""The benchmark jobs for RQ: the same functions as ``bench_app/jobs.py``.

RQ imports them as ``rq_jobs.noop`` and ``rq_jobs.sleep_10ms``; ``run.py`` starts ``rq worker``
with this folder on its import path.
"""

from __future__ import annotations

import time


def noop() -> None:
    """Does nothing: what is measured is the queue and the worker around it."""


def sleep_10ms() -> None:
    """A job with 10 ms of "work", to see the overhead per job beyond the work itself."""
    time.sleep(0.01)
