"""How often jobbench processes heartbeat, and how long a heartbeat counts.

Workers and schedulers register in the broker's one registry (``Broker.heartbeat``, a
``WorkerInfo`` whose ``kind`` says which it is) with the same settings,
``worker_heartbeat_interval`` / ``worker_heartbeat_ttl``: one mechanism, so ``doctor`` and the
dashboard judge both alike, on either broker and across hosts. Kept here, below the worker and
the scheduler, because both use it.
"""

from __future__ import annotations

from typing import Any

HEARTBEAT_INTERVAL = 3.0  # defaults of worker_heartbeat_interval / worker_heartbeat_ttl:
HEARTBEAT_TTL = 10.0  # a dead worker's jobs are settled within TTL + TTL/2 (15 s)


def liveness(
    conf: dict[str, Any], interval: float | None = None, ttl: float | None = None
) -> tuple[float, float]:
    """Heartbeat interval and TTL: the arguments, else worker_heartbeat_interval /
    worker_heartbeat_ttl from the config, else 3 s / 10 s. The TTL is kept above the interval
    (a process must beat before its heartbeat lapses)."""
    interval = interval or float(conf.get("worker_heartbeat_interval") or HEARTBEAT_INTERVAL)
    ttl = ttl or float(conf.get("worker_heartbeat_ttl") or HEARTBEAT_TTL)
    return interval, max(ttl, interval * 2)


def reap_interval(ttl: float) -> float:
    """How often live processes look for dead workers: half the TTL, so a dead worker's jobs
    are settled within 1.5 x TTL of its last heartbeat (at most every 10 s)."""
    return min(10.0, max(0.2, ttl / 2))
