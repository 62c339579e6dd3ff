"""The embedded broker: one SQLite file (``sites/queue.sqlite3``), nothing to install.

Every change is one short ``BEGIN IMMEDIATE`` transaction, so writers are serialised by SQLite
itself and a claim (``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING``) can never hand
the same job to two workers. WAL mode lets readers run beside the writer. Commits use
``synchronous=NORMAL``: durable across process crashes and kills (what the worker model needs);
a power cut may lose the last few transactions.

A waiting ``claim`` watches ``PRAGMA data_version`` (which changes when another connection
commits) every few milliseconds and only runs the claim query when something changed: low
latency without a busy loop. A claim also queues the scheduled jobs that are due, and a waiting
claim wakes at the earliest due time as well, so a delayed job starts within milliseconds of
its time when a worker is free.

The module is split in three: ``sqlite_store.py`` (schema, connections, shared SQL steps),
``sqlite_reads.py`` (reading, waiting, metrics, markers, leases) and this one (the job
lifecycle: enqueue, claim, outcomes, control, liveness).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from jobbench.brokers.base import (
    HELD_REQUEUED,
    TIMELINE_KEEP,
    Broker,
    EnqueueItem,
    Retention,
    WorkerInfo,
)
from jobbench.brokers.sqlite_limits import admit_or_park, deleted, forget, resolve, unpark
from jobbench.brokers.sqlite_reads import SQLiteReads
from jobbench.brokers.sqlite_store import (
    CLAIM_PROMOTE_LIMIT,
    COLUMNS,
    SCHEMA,
    count,
    finish_in,
    insert_jobs,
    next_due,
    promote,
    promote_one,
    settled,
)
from jobbench.jobs.record import FINAL_STATUSES, JobRecord, JobStatus

__all__ = ["COLUMNS", "SCHEMA", "WORKER_DIED", "SQLiteBroker"]

_POLL_INTERVAL = 0.001
_POLL_MAX = 0.008
_POLL_IDLE = 0.05  # once no job was claimed for _QUIET_AFTER seconds
_QUIET_AFTER = 1.0
WORKER_DIED = "worker died: its heartbeat expired while the job was running"


class SQLiteBroker(SQLiteReads, Broker):
    """Broker on one SQLite file; one connection per thread and per process."""

    _last_claimed = 0.0  # time.monotonic() a claim of this broker last took a job
    _seen_version: int | None = None  # PRAGMA data_version as claim last read it
    _seen_due = math.inf  # and when the earliest delayed job fell due then

    # -- producing ----------------------------------------------------------------------------
    def enqueue(
        self,
        record: JobRecord,
        *,
        at_front: bool = False,
        deduplicate: bool = False,
        max_queued: int | None = None,
        once_key: str | None = None,
        run_at: float | None = None,
    ) -> bool:
        item = EnqueueItem(record, at_front, deduplicate, once_key, run_at)
        with self._tx() as conn:
            return insert_jobs(conn, [item], max_queued)[0]

    def enqueue_many(
        self, items: Sequence[EnqueueItem], *, max_queued: int | None = None
    ) -> list[bool]:
        if not items:
            return []
        with self._tx() as conn:  # a refusal raises inside: ROLLBACK, nothing written
            return insert_jobs(conn, items, max_queued)

    # -- consuming ----------------------------------------------------------------------------
    def claim(self, queues: Sequence[str], worker: str, timeout: float = 0.0) -> JobRecord | None:
        deadline = time.monotonic() + timeout
        # The file's version when this broker last found nothing to claim, kept across calls
        # (a worker's claims wait 1 s each): unchanged since means still nothing to claim.
        version = self._seen_version if timeout > 0 else None
        # when the earliest scheduled job falls due: claim again then
        due_at = self._seen_due if version is not None else math.inf
        idle = 0.0
        while True:
            now_version = self._data_version()
            if now_version != version or time.time() >= due_at:
                version = now_version
                record, due = self._claim_once(queues, worker, timeout > 0)
                # Only "found nothing at this version" carries over: after a claim that took
                # a job, more may be waiting at the same version.
                self._seen_version = now_version if record is None else None
                if record is not None:
                    self._last_claimed = time.monotonic()
                if record is not None or timeout <= 0:
                    return record
                due_at = self._seen_due = math.inf if due is None else due
                idle = 0.0
            if time.monotonic() >= deadline:
                return None
            # Poll fast right after activity, slower while idle: ~1 ms latency when busy, at
            # most 8 ms in the first second after the last job was claimed, 50 ms after that
            # (~20 wake-ups a second for an idle worker; heartbeats do not count as activity).
            quiet = time.monotonic() - self._last_claimed > _QUIET_AFTER
            idle = min(_POLL_IDLE if quiet else _POLL_MAX, idle * 2) if idle else _POLL_INTERVAL
            time.sleep(idle)

    def _claim_once(
        self, queues: Sequence[str], worker: str, want_due: bool
    ) -> tuple[JobRecord | None, float | None]:
        """One claim; when it found nothing and ``want_due``, also when to try again."""
        with self._tx() as conn:
            record = self._claim_in(conn, queues, worker)
            return record, next_due(conn) if record is None and want_due else None

    def _claim_in(
        self, conn: sqlite3.Connection, queues: Sequence[str], worker: str, now: float = 0.0
    ) -> JobRecord | None:
        now = now or time.time()  # (a batch claims at one instant, as one atomic step)
        promote(conn, now, CLAIM_PROMOTE_LIMIT)  # due jobs first: they may be what we take
        for queue in queues:
            while True:
                row = conn.execute(
                    f"UPDATE jobs SET status = 'started', worker = ?, started_at = ?, "
                    f"attempts = attempts + 1, pos = NULL, stop_requested = 0, held = 0 WHERE id = "
                    f"(SELECT id FROM jobs WHERE queue = ? AND status = 'queued' AND pos IS NOT "
                    f"NULL ORDER BY pos LIMIT 1) RETURNING {', '.join(COLUMNS)}",
                    (worker, now, queue),
                ).fetchone()
                if row is None:
                    break
                record = self._record(row)
                key, limit = record.concurrency_key, record.concurrency_limit
                if key is not None and not admit_or_park(conn, record.id, key, limit):
                    continue  # parked: its key is at its limit; the next job may run
                count(conn, record.site, record.queue, "started")
                return record
        return None

    def finish(self, job_id: str, worker: str, result: bytes | None, keep: Retention) -> bool:
        with self._tx() as conn:
            return finish_in(conn, job_id, worker, result, keep)

    def finish_and_claim(
        self,
        job_id: str,
        worker: str,
        result: bytes | None,
        keep: Retention,
        queues: Sequence[str],
    ) -> JobRecord | None:
        """Both in one transaction: one BEGIN/COMMIT (one fsync) per job instead of two."""
        with self._tx() as conn:
            finish_in(conn, job_id, worker, result, keep)
            return self._claim_in(conn, queues, worker)

    def settle_and_claim(
        self,
        finished: Sequence[tuple[str, bytes | None]],
        worker: str,
        keep: Retention,
        queues: Sequence[str],
        limit: int,
        hold: Collection[str] | None = None,
    ) -> list[JobRecord]:
        """All of it in one transaction."""
        claimed: list[JobRecord] = []
        if not finished and (not queues or limit <= 0):
            return claimed
        with self._tx() as conn:
            for job_id, result in finished:
                finish_in(conn, job_id, worker, result, keep)
            now, inline_taken = time.time(), False
            while queues and len(claimed) < limit:
                record = self._claim_in(conn, queues, worker, now)
                if record is None:
                    break
                if hold is not None and record.method not in hold:
                    if inline_taken:  # it waits behind the one taken before
                        conn.execute("UPDATE jobs SET held = 1 WHERE id = ?", (record.id,))
                        record.held = 1
                    inline_taken = True
                claimed.append(record)
        if claimed:  # (as claim: more may wait at the version it last found nothing at)
            self._last_claimed, self._seen_version = time.monotonic(), None
        return claimed

    def fail(
        self,
        job_id: str,
        worker: str | None,
        exc_info: str,
        keep: Retention,
        retry_at: float | None = None,
    ) -> bool:
        with self._tx() as conn:
            return self._fail(conn, job_id, worker, exc_info, keep, retry_at)

    def _fail(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        worker: str | None,
        exc_info: str,
        keep: Retention,
        retry_at: float | None,
    ) -> bool:
        match = "id = ? AND status = 'started'" + (" AND worker = ?" if worker else "")
        args: tuple[Any, ...] = (job_id, worker) if worker else (job_id,)
        now = time.time()
        if retry_at is not None:
            cur = conn.execute(
                "UPDATE jobs SET status = 'scheduled', retry_at = ?, exc_info = ?, "
                f"retries_left = retries_left - 1, retry_count = retry_count + 1, ended_at = ? "
                f"WHERE {match} AND retries_left > 0 "
                "RETURNING site, queue, started_at, concurrency_key",
                (retry_at, exc_info, now, *args),
            )
            row = cur.fetchone()
            if row is not None:
                settled(conn, row, "failed", now)
                unpark(conn, row[3])
                return True
        cur = conn.execute(
            f"UPDATE jobs SET status = 'failed', ended_at = ?, exc_info = ?, expires_at = ? "
            f"WHERE {match} RETURNING site, queue, started_at, concurrency_key",
            (now, exc_info, now + keep.failure_ttl, *args),
        )
        row = cur.fetchone()
        if row is None:
            return False
        settled(conn, row, "failed", now)
        unpark(conn, row[3])
        resolve(conn, job_id, JobStatus.FAILED, now + keep.failure_ttl)
        conn.execute(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE queue = ? AND "
            "status = 'failed' ORDER BY ended_at DESC LIMIT -1 OFFSET ?)",
            (row[1], keep.failed_limit),
        )
        return True

    def mark_stopped(self, job_id: str, worker: str | None, reason: str, keep: Retention) -> bool:
        match = "id = ? AND status = 'started'" + (" AND worker = ?" if worker else "")
        args: tuple[Any, ...] = (job_id, worker) if worker else (job_id,)
        now = time.time()
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE jobs SET status = 'stopped', ended_at = ?, exc_info = ?, expires_at = ? "
                f"WHERE {match} RETURNING site, queue, concurrency_key",
                (now, reason, now + keep.failure_ttl, *args),
            )
            row = cur.fetchone()
            if row is None:
                return False
            count(conn, row[0], row[1], "stopped")
            unpark(conn, row[2])
            resolve(conn, job_id, JobStatus.STOPPED, now + keep.failure_ttl)
            return True

    def begin(self, job_id: str, worker: str) -> str:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT stop_requested FROM jobs WHERE id = ? AND status = 'started' AND "
                "worker = ?",
                (job_id, worker),
            ).fetchone()
            if row is None:
                return "gone"
            if row[0]:
                return "stop"
            conn.execute(
                "UPDATE jobs SET held = 0, started_at = ? WHERE id = ?", (time.time(), job_id)
            )
            return "run"

    def interrupt(self, job_id: str, worker: str | None, reason: str) -> bool:
        with self._tx() as conn:
            return _interrupt_in(conn, job_id, worker, reason)

    # -- control ------------------------------------------------------------------------------
    def request_stop(self, job_id: str, keep: Retention) -> str | None:
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, concurrency_key FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return None
            if row[0] in ("queued", "scheduled", "deferred"):
                conn.execute(
                    "UPDATE jobs SET status = 'canceled', pos = NULL, front = NULL, "
                    "parked = NULL, ended_at = ?, expires_at = ? WHERE id = ?",
                    (now, now + keep.failure_ttl, job_id),
                )
                if row[0] == "queued":
                    unpark(conn, row[1])  # it may have held a place unparked for a slot
                resolve(conn, job_id, JobStatus.CANCELED, now + keep.failure_ttl)
                return str(JobStatus.CANCELED)
            if row[0] == "started":
                conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
            return str(row[0])

    def run_now(self, job_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT queue, front FROM jobs WHERE id = ? AND status = 'scheduled'", (job_id,)
            ).fetchone()
            if row is None:
                return False
            promote_one(conn, job_id, row[0], bool(row[1]))
            return True

    def requeue(self, job_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT status, queue FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in FINAL_STATUSES:
                return False
            conn.execute(
                "UPDATE jobs SET status = 'queued', result = NULL, exc_info = NULL, "
                "stop_requested = 0, ended_at = NULL, started_at = NULL, worker = NULL, "
                "expires_at = NULL, progress = NULL, stage = NULL, front = NULL, "
                "enqueued_at = ?, pos = "
                "(SELECT COALESCE(MAX(pos) + 1, 0) FROM jobs WHERE queue = ? AND "
                "status = 'queued') WHERE id = ?",
                (time.time(), row[1], job_id),
            )
            return True

    def delete(self, job_id: str) -> bool:
        with self._tx() as conn:
            rows = conn.execute(
                "DELETE FROM jobs WHERE id = ? AND status != 'started' "
                "RETURNING id, status, concurrency_key",
                (job_id,),
            ).fetchall()
            deleted(conn, rows)
            return bool(rows)

    def purge(
        self, statuses: Sequence[str], queue: str | None = None, site: str | None = None
    ) -> int:
        wanted = [s for s in statuses if s != JobStatus.STARTED]
        if not wanted:
            return 0
        sql = f"DELETE FROM jobs WHERE status IN ({', '.join('?' * len(wanted))})"
        params: list[Any] = list(wanted)
        for column, value in (("queue", queue), ("site", site)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self._tx() as conn:
            rows = conn.execute(f"{sql} RETURNING id, status, concurrency_key", params).fetchall()
            deleted(conn, rows)
            return len(rows)

    def set_progress(self, job_id: str, progress: float | None, stage: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE jobs SET progress = ?, stage = ? WHERE id = ?", (progress, stage, job_id)
            )

    # -- liveness -----------------------------------------------------------------------------
    def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        info.heartbeat = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers (name, info, expires_at) VALUES (?, ?, ?)",
                (info.name, json.dumps(info.to_mapping()), info.heartbeat + ttl),
            )

    def unregister_worker(self, name: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM workers WHERE name = ?", (name,))

    def workers(self) -> list[WorkerInfo]:
        rows = self._read(
            "SELECT info FROM workers WHERE expires_at > ? ORDER BY name", (time.time(),)
        )
        return [WorkerInfo(**json.loads(r[0])) for r in rows]

    def reap(self, keep: Retention, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, worker, held FROM jobs WHERE status = 'started' AND (worker IS NULL OR "
                "worker NOT IN (SELECT name FROM workers WHERE expires_at > ?))",
                (now,),
            ).fetchall()
            for job_id, worker, held in rows:
                if held:  # it never ran: back to its queue
                    _interrupt_in(conn, job_id, worker, HELD_REQUEUED)
                else:
                    self._fail(conn, job_id, worker, WORKER_DIED, keep, retry_at=now)
            conn.execute("DELETE FROM workers WHERE expires_at <= ?", (now,))
        return [r[0] for r in rows]

    def promote_due(self, now: float | None = None) -> int:
        with self._tx() as conn:
            return promote(conn, time.time() if now is None else now)

    def cleanup(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx() as conn:
            conn.execute("DELETE FROM once_keys WHERE expires_at <= ?", (now,))
            conn.execute("DELETE FROM timeline WHERE minute < ?", ((now - TIMELINE_KEEP) // 60,))
            forget(conn, now)
            return conn.execute("DELETE FROM jobs WHERE expires_at <= ?", (now,)).rowcount


def _interrupt_in(conn: sqlite3.Connection, job_id: str, worker: str | None, reason: str) -> bool:
    """``interrupt`` in the caller's transaction."""
    match = "id = ? AND status = 'started'" + (" AND worker = ?" if worker else "")
    args: tuple[Any, ...] = (job_id, worker) if worker else (job_id,)
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', worker = NULL, started_at = NULL, held = 0, "
        "exc_info = ?, stop_requested = 0, pos = (SELECT COALESCE(MIN(q.pos) - 1, 0) "
        f"FROM jobs AS q WHERE q.queue = jobs.queue AND q.status = 'queued') WHERE {match} "
        "RETURNING concurrency_key",
        (reason, *args),
    )
    row = cur.fetchone()
    if row is None:
        return False
    unpark(conn, row[0])
    return True
