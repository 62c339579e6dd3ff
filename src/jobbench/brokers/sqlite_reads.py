"""The SQLite broker's reading side: records, listings, counts, waiting for an outcome, metrics,
markers and leases. Everything here but markers and leases only reads.

Waiting (``wait_final``) polls ``PRAGMA data_version`` (which changes only when another
connection commits, and reads no table) every 1 to 4 ms, and reads the job's row only after a
change: a waiter learns of the outcome within ~5 ms at the cost of a few thousand cheap
pragma calls a second.
"""

from __future__ import annotations

import time
from typing import Any

from jobbench.brokers import sqlite_limits as limits
from jobbench.brokers.base import DURATION_BUCKETS, DurationHistogram, cumulative
from jobbench.brokers.sqlite_store import LIVE, SELECT, SQLiteStore, queued_count
from jobbench.jobs.record import FINAL_STATUSES, JobRecord

_WAIT_POLL_MIN = 0.001
_WAIT_POLL_MAX = 0.004  # keeps a waiter within 5 ms of the job's end


class SQLiteReads(SQLiteStore):
    """Reads, metrics, markers and leases of ``SQLiteBroker``."""

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"{SELECT} WHERE id = ? AND {LIVE}", (job_id, time.time()))
        return self._record(rows[0]) if rows else None

    def wait_final(self, job_id: str, timeout: float | None = None) -> JobRecord | None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        version: int | None = None
        record: JobRecord | None = None
        pause = _WAIT_POLL_MIN
        while True:
            now_version = self._data_version()  # before the read: no commit slips between
            if now_version != version:
                version, pause = now_version, _WAIT_POLL_MIN
                record = self.get(job_id)
                if record is None or record.status in FINAL_STATUSES:
                    return record
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return record
            time.sleep(pause if left is None else min(pause, left))
            pause = min(_WAIT_POLL_MAX, pause * 2)

    def find(
        self,
        *,
        site: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        sql = f"{SELECT} WHERE {LIVE}"
        params: list[Any] = [time.time()]
        for column, value in (("site", site), ("queue", queue), ("status", status)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY enqueued_at DESC LIMIT ? OFFSET ?"
        return [self._record(r) for r in self._read(sql, [*params, limit, offset])]

    def counts(self) -> dict[str, dict[str, int]]:
        rows = self._read(
            f"SELECT queue, status, COUNT(*) FROM jobs WHERE {LIVE} GROUP BY queue, status",
            (time.time(),),
        )
        result: dict[str, dict[str, int]] = {}
        for queue, status, n in rows:
            result.setdefault(queue, {})[status] = n
        return result

    def queue_length(self, queue: str) -> int:
        return queued_count(self._conn(), queue)

    def position(self, job_id: str) -> int | None:
        rows = self._read(
            "SELECT (SELECT COUNT(*) FROM jobs o WHERE o.queue = j.queue AND "
            "o.status = 'queued' AND o.pos < j.pos) FROM jobs j WHERE j.id = ? AND "
            "j.status = 'queued' AND j.pos IS NOT NULL",
            (job_id,),
        )
        return int(rows[0][0]) if rows else None

    def dependents(self, job_id: str, *, waiting: bool = True) -> list[str]:
        return limits.dependents(self._conn(), job_id, waiting)

    # -- metrics ------------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str, str], int]:
        rows = self._read("SELECT site, queue, kind, n FROM counters")
        return {(site, queue, kind): int(n) for site, queue, kind, n in rows}

    def durations(self) -> dict[str, DurationHistogram]:
        per: dict[str, tuple[list[int], list[float]]] = {}
        for queue, bucket, n, total in self._read("SELECT queue, bucket, n, total FROM durations"):
            counts, sums = per.setdefault(queue, ([0] * (len(DURATION_BUCKETS) + 1), [0.0]))
            counts[int(bucket)] += int(n)
            sums[0] += float(total)
        return {queue: cumulative(counts, sums[0]) for queue, (counts, sums) in per.items()}

    def timeline(self, since: float) -> dict[tuple[int, str, str], int]:
        rows = self._read(
            "SELECT minute, queue, kind, n FROM timeline WHERE minute >= ?", (int(since // 60),)
        )
        return {(int(minute), queue, kind): int(n) for minute, queue, kind, n in rows}

    def set_marker(self, name: str, value: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO markers (name, value) VALUES (?, ?)", (name, value)
            )

    def get_marker(self, name: str) -> float | None:
        rows = self._read("SELECT value FROM markers WHERE name = ?", (name,))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    # -- leases -------------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at "
                "WHERE leases.owner = excluded.owner OR leases.expires_at <= ?",
                (name, owner, now + ttl, now),
            )
            row = conn.execute("SELECT owner FROM leases WHERE name = ?", (name,)).fetchone()
            return bool(row and row[0] == owner)

    def release_lease(self, name: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
