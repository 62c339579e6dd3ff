"""Claim + finish per job (a finish_and_claim loop, as a worker's executor runs it) on one
broker, no-op jobs, with or without a concurrency key (docs/jobs.md, "Concurrency keys").

    python benchmarks/claim_limits.py sqlite|redis [N=5000] [keyed]

Redis: database 12 of 127.0.0.1:6379, under a random bench id (its keys are left for the
retention to expire: flush database 12 after a run if you like)."""

import statistics
import sys
import tempfile
import time
import uuid

from jobbench.brokers.base import Broker, EnqueueItem, Retention
from jobbench.jobs.record import JobRecord

N = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
KEYED = len(sys.argv) > 3 and sys.argv[3] == "keyed"


def make(kind: str) -> Broker:
    if kind == "sqlite":
        from jobbench.brokers.sqlite import SQLiteBroker

        return SQLiteBroker(tempfile.mktemp(suffix=".sqlite3"))
    from jobbench.brokers.redis import RedisBroker

    return RedisBroker("redis://127.0.0.1:6379/12", f"bench{uuid.uuid4().hex[:8]}")


def run(kind: str) -> float:
    """Microseconds per claim + finish over N jobs."""
    b = make(kind)
    extra = {"concurrency_key": "k", "concurrency_limit": 4} if KEYED else {}
    items = [
        EnqueueItem(
            JobRecord(
                id=f"s::{i}", site="s", queue="default", method="m.f", payload=b"{}", **extra
            ),
            new_id=True,
        )
        for i in range(N)
    ]
    for i in range(0, N, 1000):
        b.enqueue_many(items[i : i + 1000])
    keep = Retention()
    t = time.perf_counter()
    job = b.claim(["default"], "w")
    n = 0
    while job is not None:
        job = b.finish_and_claim(job.id, "w", b"1", keep, ["default"])
        n += 1
    dt = time.perf_counter() - t
    b.close()
    return dt / n * 1e6


def main() -> None:
    kind = sys.argv[1]
    runs = [run(kind) for _ in range(3)]
    each = ", ".join(f"{r:.1f}" for r in runs)
    label = f"{kind}{' keyed' if KEYED else ''}"
    print(f"{label}: median {statistics.median(runs):.1f} us per claim+finish ({each})")


if __name__ == "__main__":
    main()
