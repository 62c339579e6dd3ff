"""The embedded broker: one SQLite file (``sites/queue.sqlite3``), nothing to install.

Every change is one short ``BEGIN IMMEDIATE`` transaction, so writers are serialised by SQLite
itself and a claim (``UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING``) can never hand
the same job to two workers. WAL mode lets readers run beside the writer. Commits use
``synchronous=NORMAL``: durable across process crashes and kills (what the worker model needs);
a power cut may lose the last few transactions.

A waiting ``claim`` watches ``PRAGMA data_version`` (which changes when another connection
commits) every few milliseconds and only runs the claim query when something changed: low
latency without a busy loop.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from jobbench.brokers.base import (
    DURATION_BUCKETS,
    ONCE_TTL,
    Broker,
    DurationHistogram,
    Retention,
    WorkerInfo,
    bucket_index,
    cumulative,
)
from jobbench.errors import BrokerError, BrokerUnavailable, QueueOverloaded
from jobbench.jobs.record import FINAL_STATUSES, JobRecord, JobStatus
from jobbench.utils.files import private_sqlite_file

COLUMNS = [f.name for f in fields(JobRecord)]
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    {", ".join(f"{c} {'TEXT PRIMARY KEY' if c == 'id' else ''}" for c in COLUMNS)},
    pos INTEGER,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_queued ON jobs(queue, pos) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS jobs_started ON jobs(worker) WHERE status = 'started';
CREATE INDEX IF NOT EXISTS jobs_scheduled ON jobs(retry_at) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, queue, ended_at);
CREATE INDEX IF NOT EXISTS jobs_enqueued ON jobs(enqueued_at);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS workers (name TEXT PRIMARY KEY, info TEXT, expires_at REAL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT, expires_at REAL);
CREATE TABLE IF NOT EXISTS once_keys (key TEXT PRIMARY KEY, expires_at REAL);
CREATE TABLE IF NOT EXISTS counters (
    site TEXT, queue TEXT, kind TEXT, n INTEGER NOT NULL, PRIMARY KEY (site, queue, kind)
);
CREATE TABLE IF NOT EXISTS durations (
    queue TEXT, bucket INTEGER, n INTEGER NOT NULL, total REAL NOT NULL,
    PRIMARY KEY (queue, bucket)
);
CREATE TABLE IF NOT EXISTS markers (name TEXT PRIMARY KEY, value REAL);
"""
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_POLL_INTERVAL = 0.001
_POLL_MAX = 0.008
WORKER_DIED = "worker died: its heartbeat expired while the job was running"


class SQLiteBroker(Broker):
    """Broker on one SQLite file; one connection per thread and per process."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._closed = False
        try:
            self._conn().executescript(SCHEMA)  # idempotent DDL; executescript commits itself
            self._add_missing_columns()
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"cannot set up the SQLite broker {self.path}: {exc}") from exc

    def _add_missing_columns(self) -> None:
        """A queue file made by an older version lacks the record fields added since (such as
        ``event``): add them (NULL for the stored jobs). Two processes may race here; the
        loser's "duplicate column" is harmless."""
        conn = self._conn()
        have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        for column in COLUMNS:
            if column in have:
                continue
            try:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # The queue holds every job's arguments, results and tracebacks: 0600, not
                # SQLite's 0644 (see jobbench.utils.files).
                private_sqlite_file(self.path)
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except (sqlite3.Error, OSError) as exc:
                raise BrokerUnavailable(
                    f"cannot open the SQLite broker {self.path}: {exc}"
                ) from exc
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; translate 'locked' into BrokerUnavailable."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise BrokerUnavailable(
                f"the SQLite broker {self.path} stayed locked for {self.busy_timeout:.0f} s "
                f"({exc}); is another process holding it?"
            ) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise BrokerError(f"SQLite broker {self.path}: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise BrokerUnavailable(f"SQLite broker {self.path}: commit failed: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise BrokerUnavailable(f"SQLite broker {self.path}: {exc}") from exc

    @staticmethod
    def _record(row: Sequence[Any]) -> JobRecord:
        return JobRecord.from_mapping(dict(zip(COLUMNS, row, strict=False)))

    # -- producing ----------------------------------------------------------------------------
    def enqueue(
        self,
        record: JobRecord,
        *,
        at_front: bool = False,
        deduplicate: bool = False,
        max_queued: int | None = None,
        once_key: str | None = None,
    ) -> bool:
        with self._tx() as conn:
            if deduplicate:
                row = conn.execute("SELECT status FROM jobs WHERE id = ?", (record.id,)).fetchone()
                if row and row[0] in ("queued", "started", "scheduled"):
                    return False
            if max_queued is not None and _queued(conn, record.queue) >= max_queued:
                raise QueueOverloaded(
                    f"queue '{record.queue}' already holds {max_queued} jobs (max_queued_jobs); "
                    "wait for workers to catch up or add workers"
                )
            if once_key is not None and not _take_once(conn, once_key):
                return False
            agg = "MIN(pos) - 1" if at_front else "MAX(pos) + 1"
            pos = conn.execute(
                f"SELECT COALESCE({agg}, 0) FROM jobs WHERE queue = ? AND status = 'queued'",
                (record.queue,),
            ).fetchone()[0]
            record.status = JobStatus.QUEUED
            values = record.to_mapping()
            conn.execute(
                f"INSERT OR REPLACE INTO jobs ({', '.join(COLUMNS)}, pos, expires_at) "
                f"VALUES ({', '.join('?' * len(COLUMNS))}, ?, NULL)",
                [values[c] for c in COLUMNS] + [pos],
            )
        return True

    # -- consuming ----------------------------------------------------------------------------
    def claim(self, queues: Sequence[str], worker: str, timeout: float = 0.0) -> JobRecord | None:
        deadline = time.monotonic() + timeout
        conn = self._conn()
        version = None
        idle = 0.0
        while True:
            now_version = conn.execute("PRAGMA data_version").fetchone()[0]
            if now_version != version:
                version = now_version
                record = self._claim_once(queues, worker)
                if record is not None or timeout <= 0:
                    return record
                idle = 0.0
            if time.monotonic() >= deadline:
                return None
            # Poll fast right after activity, slower while idle: ~1 ms latency when busy,
            # ~100 wake-ups a second (well under 1 % CPU) when idle.
            idle = min(_POLL_MAX, idle * 2) if idle else _POLL_INTERVAL
            time.sleep(idle)

    def _claim_once(self, queues: Sequence[str], worker: str) -> JobRecord | None:
        with self._tx() as conn:
            return self._claim_in(conn, queues, worker)

    def _claim_in(
        self, conn: sqlite3.Connection, queues: Sequence[str], worker: str
    ) -> JobRecord | None:
        for queue in queues:
            row = conn.execute(
                f"UPDATE jobs SET status = 'started', worker = ?, started_at = ?, "
                f"attempts = attempts + 1, pos = NULL, stop_requested = 0 "
                f"WHERE id = (SELECT id FROM jobs WHERE queue = ? AND status = 'queued' "
                f"ORDER BY pos LIMIT 1) RETURNING {', '.join(COLUMNS)}",
                (worker, time.time(), queue),
            ).fetchone()
            if row is not None:
                record = self._record(row)
                _count(conn, record.site, record.queue, "started")
                return record
        return None

    def finish(self, job_id: str, worker: str, result: bytes | None, keep: Retention) -> bool:
        with self._tx() as conn:
            return _finish(conn, job_id, worker, result, keep)

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
            _finish(conn, job_id, worker, result, keep)
            return self._claim_in(conn, queues, worker)

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
                f"WHERE {match} AND retries_left > 0 RETURNING site, queue, started_at",
                (retry_at, exc_info, now, *args),
            )
            row = cur.fetchone()
            if row is not None:
                _settled(conn, row, "failed", now)
                return True
        cur = conn.execute(
            f"UPDATE jobs SET status = 'failed', ended_at = ?, exc_info = ?, expires_at = ? "
            f"WHERE {match} RETURNING site, queue, started_at",
            (now, exc_info, now + keep.failure_ttl, *args),
        )
        row = cur.fetchone()
        if row is None:
            return False
        _settled(conn, row, "failed", now)
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
                f"WHERE {match} RETURNING site, queue",
                (now, reason, now + keep.failure_ttl, *args),
            )
            row = cur.fetchone()
            if row is None:
                return False
            _count(conn, row[0], row[1], "stopped")
            return True

    def interrupt(self, job_id: str, worker: str | None, reason: str) -> bool:
        match = "id = ? AND status = 'started'" + (" AND worker = ?" if worker else "")
        args: tuple[Any, ...] = (job_id, worker) if worker else (job_id,)
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, started_at = NULL, "
                "exc_info = ?, stop_requested = 0, pos = (SELECT COALESCE(MIN(q.pos) - 1, 0) "
                f"FROM jobs AS q WHERE q.queue = jobs.queue AND q.status = 'queued') WHERE {match}",
                (reason, *args),
            )
            return cur.rowcount > 0

    # -- control ------------------------------------------------------------------------------
    def request_stop(self, job_id: str, keep: Retention) -> str | None:
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row[0] in ("queued", "scheduled"):
                conn.execute(
                    "UPDATE jobs SET status = 'canceled', pos = NULL, ended_at = ?, "
                    "expires_at = ? WHERE id = ?",
                    (now, now + keep.failure_ttl, job_id),
                )
                return str(JobStatus.CANCELED)
            if row[0] == "started":
                conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
            return str(row[0])

    def requeue(self, job_id: str) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT status, queue FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] not in FINAL_STATUSES:
                return False
            conn.execute(
                "UPDATE jobs SET status = 'queued', result = NULL, exc_info = NULL, "
                "stop_requested = 0, ended_at = NULL, started_at = NULL, worker = NULL, "
                "expires_at = NULL, progress = NULL, stage = NULL, enqueued_at = ?, pos = "
                "(SELECT COALESCE(MAX(pos) + 1, 0) FROM jobs WHERE queue = ? AND "
                "status = 'queued') WHERE id = ?",
                (time.time(), row[1], job_id),
            )
            return True

    def delete(self, job_id: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM jobs WHERE id = ? AND status != 'started'", (job_id,))
            return cur.rowcount > 0

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
            return conn.execute(sql, params).rowcount

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
                "SELECT id, worker FROM jobs WHERE status = 'started' AND (worker IS NULL OR "
                "worker NOT IN (SELECT name FROM workers WHERE expires_at > ?))",
                (now,),
            ).fetchall()
            for job_id, worker in rows:
                self._fail(conn, job_id, worker, WORKER_DIED, keep, retry_at=now)
            conn.execute("DELETE FROM workers WHERE expires_at <= ?", (now,))
        return [r[0] for r in rows]

    def promote_due(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx() as conn:
            due = conn.execute(
                "SELECT id, queue FROM jobs WHERE status = 'scheduled' AND retry_at <= ? "
                "ORDER BY retry_at",
                (now,),
            ).fetchall()
            for job_id, queue in due:
                conn.execute(
                    "UPDATE jobs SET status = 'queued', retry_at = NULL, pos = (SELECT "
                    "COALESCE(MAX(pos) + 1, 0) FROM jobs WHERE queue = ? AND status = 'queued') "
                    "WHERE id = ?",
                    (queue, job_id),
                )
        return len(due)

    def cleanup(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._tx() as conn:
            conn.execute("DELETE FROM once_keys WHERE expires_at <= ?", (now,))
            return conn.execute("DELETE FROM jobs WHERE expires_at <= ?", (now,)).rowcount

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"{_SELECT} WHERE id = ? AND {_LIVE}", (job_id, time.time()))
        return self._record(rows[0]) if rows else None

    def find(
        self,
        *,
        site: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        sql = f"{_SELECT} WHERE {_LIVE}"
        params: list[Any] = [time.time()]
        for column, value in (("site", site), ("queue", queue), ("status", status)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY enqueued_at DESC LIMIT ? OFFSET ?"
        return [self._record(r) for r in self._read(sql, [*params, limit, offset])]

    def counts(self) -> dict[str, dict[str, int]]:
        rows = self._read(
            f"SELECT queue, status, COUNT(*) FROM jobs WHERE {_LIVE} GROUP BY queue, status",
            (time.time(),),
        )
        result: dict[str, dict[str, int]] = {}
        for queue, status, n in rows:
            result.setdefault(queue, {})[status] = n
        return result

    def queue_length(self, queue: str) -> int:
        return _queued(self._conn(), queue)

    def position(self, job_id: str) -> int | None:
        rows = self._read(
            "SELECT (SELECT COUNT(*) FROM jobs o WHERE o.queue = j.queue AND "
            "o.status = 'queued' AND o.pos < j.pos) FROM jobs j WHERE j.id = ? AND "
            "j.status = 'queued'",
            (job_id,),
        )
        return int(rows[0][0]) if rows else None

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

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()


def _finish(
    conn: sqlite3.Connection, job_id: str, worker: str, result: bytes | None, keep: Retention
) -> bool:
    now = time.time()
    cur = conn.execute(
        "UPDATE jobs SET status = 'finished', ended_at = ?, result = ?, expires_at = ?, "
        "progress = CASE WHEN progress IS NULL THEN NULL ELSE 100 END "
        "WHERE id = ? AND status = 'started' AND worker = ? RETURNING site, queue, started_at",
        (now, result, now + keep.results_ttl, job_id, worker),
    )
    row = cur.fetchone()
    if row is None:
        return False
    _settled(conn, row, "finished", now)
    return True


def _count(conn: sqlite3.Connection, site: str, queue: str, kind: str) -> None:
    """Add 1 to a running counter, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO counters (site, queue, kind, n) VALUES (?, ?, ?, 1) "
        "ON CONFLICT(site, queue, kind) DO UPDATE SET n = n + 1",
        (site, queue, kind),
    )


def _settled(conn: sqlite3.Connection, row: Sequence[Any], kind: str, now: float) -> None:
    """Count an attempt that ended (``row`` = site, queue, started_at) and record how long
    it ran in its queue's histogram, inside the caller's transaction."""
    site, queue, started_at = row[0], row[1], row[2]
    _count(conn, site, queue, kind)
    seconds = max(0.0, now - float(started_at if started_at is not None else now))
    conn.execute(
        "INSERT INTO durations (queue, bucket, n, total) VALUES (?, ?, 1, ?) "
        "ON CONFLICT(queue, bucket) DO UPDATE SET n = n + 1, total = total + excluded.total",
        (queue, bucket_index(seconds), seconds),
    )


def _take_once(conn: sqlite3.Connection, key: str) -> bool:
    """Take a once-key inside the caller's transaction (rolled back if the enqueue fails)."""
    now = time.time()
    conn.execute("DELETE FROM once_keys WHERE key = ? AND expires_at <= ?", (key, now))
    cur = conn.execute(
        "INSERT OR IGNORE INTO once_keys (key, expires_at) VALUES (?, ?)", (key, now + ONCE_TTL)
    )
    return cur.rowcount > 0


def _queued(conn: sqlite3.Connection, queue: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE queue = ? AND status = 'queued'", (queue,)
    ).fetchone()
    return int(row[0])
