"""Jobs the benchmarks enqueue. Their twins for RQ are in ``benchmarks/rq_jobs.py``.

They run through jobbench's full path all the same: site context, user, before/after hooks,
commit, result recorded in the broker.
"""

from __future__ import annotations

import time


def noop() -> None:
    """Does nothing: what is measured is the engine around it."""


def sleep_10ms() -> None:
    """A job with 10 ms of "work", to see the overhead per job beyond the work itself."""
    time.sleep(0.01)
