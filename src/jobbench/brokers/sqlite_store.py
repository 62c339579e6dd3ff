"""The SQLite broker's storage: schema, connections, transactions, and the SQL steps that
several broker operations share (run inside the caller's transaction).

``brokers/sqlite.py`` (the job lifecycle) and ``brokers/sqlite_reads.py`` (reading, metrics,
markers, leases) build on ``SQLiteStore``; the split only keeps each module readable.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from jobbench.brokers import sqlite_limits as limits
from jobbench.brokers.base import (
    ONCE_TTL,
    TIMELINE_KINDS,
    EnqueueItem,
    Retention,
    bucket_index,
)
from jobbench.errors import BrokerError, BrokerUnavailable, QueueOverloaded
from jobbench.jobs.record import PENDING_STATUSES, JobRecord, JobStatus
from jobbench.utils.files import private_sqlite_file

COLUMNS = [f.name for f in fields(JobRecord)]
# Columns of the broker's own beside the record's: ``pos`` orders a queue, ``expires_at`` ends
# a final record's retention, ``front`` marks a delayed job that goes to the head of its queue
# when it falls due (or a deferred one when its dependencies are done), ``parked`` orders the
# queued jobs a claim set aside for their concurrency key (brokers/sqlite_limits.py).
EXTRA_COLUMNS = {"pos": "INTEGER", "expires_at": "REAL", "front": "INTEGER", "parked": "INTEGER"}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    {", ".join(f"{c} {'TEXT PRIMARY KEY' if c == 'id' else ''}" for c in COLUMNS)},
    {", ".join(f"{c} {kind}" for c, kind in EXTRA_COLUMNS.items())}
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
CREATE TABLE IF NOT EXISTS timeline (
    minute INTEGER, queue TEXT, kind TEXT, n INTEGER NOT NULL, PRIMARY KEY (minute, queue, kind)
);
"""
SELECT = f"SELECT {', '.join(COLUMNS)} FROM jobs"
LIVE = "(expires_at IS NULL OR expires_at > ?)"
_INSERT = (
    f"INSERT OR REPLACE INTO jobs ({', '.join(COLUMNS)}, pos, expires_at, front) "
    f"VALUES ({', '.join('?' * len(COLUMNS))}, ?, NULL, ?)"
)
_LOOKUP_CHUNK = 500  # ids per "WHERE id IN (...)": well under SQLite's parameter limit
CLAIM_PROMOTE_LIMIT = 1000  # due jobs a claim queues before taking one: bounds its time


class SQLiteStore:
    """One SQLite file; one connection per thread and per process."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        try:
            self._conn().executescript(SCHEMA)  # idempotent DDL; executescript commits itself
            self._add_missing_columns()
            self._conn().executescript(limits.SCHEMA)  # indexes on columns added just now
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"cannot set up the SQLite broker {self.path}: {exc}") from exc

    def _add_missing_columns(self) -> None:
        """A queue file made by an older version lacks the columns added since (such as
        ``event`` or ``front``): add them (NULL for the stored jobs). Two processes may race
        here; the loser's "duplicate column" is harmless."""
        conn = self._conn()
        have = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        wanted = [(c, "") for c in COLUMNS] + list(EXTRA_COLUMNS.items())
        for column, kind in wanted:
            if column in have:
                continue
            try:
                conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise

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

    def _data_version(self) -> int:
        """Changes whenever another connection commits, or this one changes rows (cheap: no
        table is read). ``PRAGMA data_version`` alone misses this connection's own writes: a
        thread that enqueues and then waits to claim (or for the job's end) must see them."""
        conn = self._conn()
        others = int(conn.execute("PRAGMA data_version").fetchone()[0])
        return (others << 64) + conn.total_changes

    @staticmethod
    def _record(row: Sequence[Any]) -> JobRecord:
        return JobRecord.from_mapping(dict(zip(COLUMNS, row, strict=False)))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()


# -- producing ----------------------------------------------------------------------------------
class _Batch:
    """What an enqueue batch has seen so far inside its transaction: the state of the ids it
    touched, the two ends of each queue and (with ``max_queued``) each queue's length, so
    each item costs one row of one INSERT and no query of its own."""

    def __init__(
        self, conn: sqlite3.Connection, items: Sequence[EnqueueItem], max_queued: int | None
    ) -> None:
        self.conn = conn
        self.max_queued = max_queued
        self.status: dict[str, tuple[str, str]] = {}  # id -> (status, queue)
        self.ends: dict[str, list[int | None]] = {}  # queue -> [min pos, max pos]
        self.queued: dict[str, int] = {}  # queue -> queued jobs, the batch's included
        if max_queued is not None or any(item.deduplicate for item in items):
            self._look_up([item.record.id for item in items])

    def _look_up(self, ids: list[str]) -> None:
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[i : i + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                f"SELECT id, status, queue FROM jobs WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            self.status.update({r[0]: (r[1], r[2]) for r in rows})

    def pending(self, job_id: str) -> bool:
        return self.status.get(job_id, ("", ""))[0] in PENDING_STATUSES

    def pos(self, queue: str, at_front: bool) -> int:
        ends = self.ends.get(queue)
        if ends is None:
            # Two subqueries, not MIN(pos), MAX(pos) in one: SQLite answers a lone MIN or MAX
            # from the jobs_queued index in O(log n), but both at once with a scan of the queue.
            ends = list(
                self.conn.execute(
                    "SELECT (SELECT MIN(pos) FROM jobs WHERE queue = ?1 AND status = 'queued'), "
                    "(SELECT MAX(pos) FROM jobs WHERE queue = ?1 AND status = 'queued')",
                    (queue,),
                ).fetchone()
            )
            self.ends[queue] = ends
        low, high = ends
        if low is None or high is None:
            ends[0] = ends[1] = 0
            return 0
        pos = low - 1 if at_front else high + 1
        ends[0 if at_front else 1] = pos
        return pos

    def _length(self, queue: str) -> int:
        if queue not in self.queued:  # the rows the batch replaced are still in the table
            self.queued[queue] = queued_count(self.conn, queue)
        return self.queued[queue]

    def admit(self, queue: str) -> None:
        """One more queued job in ``queue``; past ``max_queued`` the whole batch is refused."""
        if self.max_queued is None:
            return
        if self._length(queue) >= self.max_queued:
            raise QueueOverloaded(
                f"queue '{queue}' already holds {self.max_queued} jobs (max_queued_jobs); "
                "wait for workers to catch up or add workers"
            )
        self.queued[queue] += 1

    def replace(self, record: JobRecord) -> None:
        """``record`` replaces whatever had its id: the old one leaves its queue's count."""
        old = self.status.get(record.id)
        if self.max_queued is not None and old is not None and old[0] == JobStatus.QUEUED:
            self.queued[old[1]] = self._length(old[1]) - 1
        self.status[record.id] = (record.status, record.queue)


def insert_jobs(
    conn: sqlite3.Connection, items: Sequence[EnqueueItem], max_queued: int | None
) -> list[bool]:
    """Enqueue ``items`` in order inside the caller's transaction (see Broker.enqueue_many).

    A refusal raises before COMMIT, so the caller's ROLLBACK undoes the earlier items too."""
    batch = _Batch(conn, items, max_queued)
    deps = _Dependents(conn)
    now = time.time()
    rows: list[list[Any]] = []
    taken: list[bool] = []
    for item in items:
        record = item.record
        if item.deduplicate and batch.pending(record.id):
            taken.append(False)
            deps.earlier.add(record.id)
            continue
        held = deps.hold(record, batch.status) if record.depends_on else None
        delayed = item.run_at is not None and item.run_at > now
        immediate = not delayed and held is None
        if immediate:
            batch.admit(record.queue)
        deps.earlier.add(record.id)
        if item.once_key is not None and not take_once(conn, item.once_key):
            if immediate and max_queued is not None:
                batch.queued[record.queue] -= 1
            taken.append(False)
            continue
        if held is not None:
            deps.store(record, held, now)
            pos, front = None, 1 if item.at_front and held else None
        elif delayed:
            record.status, record.retry_at = JobStatus.SCHEDULED, item.run_at
            pos, front = None, 1 if item.at_front else None
        else:
            record.status, front = JobStatus.QUEUED, None
            pos = batch.pos(record.queue, item.at_front)
        batch.replace(record)
        values = record.__dict__
        rows.append([values[c] for c in COLUMNS] + [pos, front])
        taken.append(True)
    conn.executemany(_INSERT, rows)
    deps.written()
    return taken


class _Dependents:
    """The items of an enqueue batch that have ``depends_on``: deferred or canceled ones."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.earlier: set[str] = set()  # ids of the batch's earlier items, taken or not
        self.pairs: list[tuple[str, str]] = []  # (dependency, deferred dependent)
        self.canceled: list[str] = []

    def hold(self, record: JobRecord, known: dict[str, tuple[str, str]]) -> list[str] | None:
        """The pending dependencies that hold ``record`` back ([] when one failed: it is
        canceled), or None when all are done and it is queued as without them."""
        allow = bool(record.allow_dependency_failure)
        waiting, reason = limits.dependency_state(
            self.conn, record.dependencies, allow, known, self.earlier
        )
        if reason is not None:
            record.exc_info = reason
            return []
        return waiting or None

    def store(self, record: JobRecord, waiting: list[str], now: float) -> None:
        if waiting:
            record.status = JobStatus.DEFERRED
            self.pairs += [(dep, record.id) for dep in waiting]
        else:
            record.status, record.ended_at = JobStatus.CANCELED, now
            self.canceled.append(record.id)

    def written(self) -> None:
        """After the batch's INSERT: register the deferred, settle the canceled."""
        limits.register(self.conn, self.pairs)
        expires = time.time() + limits.DEFAULT_CANCEL_TTL
        for job_id in self.canceled:
            self.conn.execute("UPDATE jobs SET expires_at = ? WHERE id = ?", (expires, job_id))
            limits.resolve(self.conn, job_id, JobStatus.CANCELED, expires)


def take_once(conn: sqlite3.Connection, key: str) -> bool:
    """Take a once-key inside the caller's transaction (rolled back if the enqueue fails)."""
    now = time.time()
    conn.execute("DELETE FROM once_keys WHERE key = ? AND expires_at <= ?", (key, now))
    cur = conn.execute(
        "INSERT OR IGNORE INTO once_keys (key, expires_at) VALUES (?, ?)", (key, now + ONCE_TTL)
    )
    return cur.rowcount > 0


def queued_count(conn: sqlite3.Connection, queue: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE queue = ? AND status = 'queued' AND pos IS NOT NULL",
        (queue,),
    ).fetchone()
    return int(row[0])


# -- scheduled jobs -----------------------------------------------------------------------------
def promote(conn: sqlite3.Connection, now: float, limit: int = -1) -> int:
    """Queue the scheduled jobs due by ``now`` (at most ``limit``; -1: all), in due order.
    Reads only due rows: the partial index ``jobs_scheduled`` on ``retry_at``."""
    due = conn.execute(
        "SELECT id, queue, front FROM jobs WHERE status = 'scheduled' AND retry_at <= ? "
        "ORDER BY retry_at LIMIT ?",
        (now, limit),
    ).fetchall()
    for job_id, queue, front in due:
        promote_one(conn, job_id, queue, bool(front))
    return len(due)


def promote_one(conn: sqlite3.Connection, job_id: str, queue: str, front: bool) -> None:
    """A scheduled job to its queue: the head for a delayed at_front job, else the tail."""
    agg = "MIN(pos) - 1" if front else "MAX(pos) + 1"
    conn.execute(
        "UPDATE jobs SET status = 'queued', retry_at = NULL, front = NULL, pos = (SELECT "
        f"COALESCE({agg}, 0) FROM jobs WHERE queue = ? AND status = 'queued') WHERE id = ?",
        (queue, job_id),
    )


def next_due(conn: sqlite3.Connection) -> float | None:
    """When the earliest scheduled job falls due (an index lookup), or None."""
    row = conn.execute(
        "SELECT retry_at FROM jobs WHERE status = 'scheduled' AND retry_at IS NOT NULL "
        "ORDER BY retry_at LIMIT 1"
    ).fetchone()
    return None if row is None else float(row[0])


# -- outcomes -----------------------------------------------------------------------------------
def finish_in(
    conn: sqlite3.Connection, job_id: str, worker: str, result: bytes | None, keep: Retention
) -> bool:
    now = time.time()
    cur = conn.execute(
        "UPDATE jobs SET status = 'finished', ended_at = ?, result = ?, expires_at = ?, "
        "progress = CASE WHEN progress IS NULL THEN NULL ELSE 100 END "
        "WHERE id = ? AND status = 'started' AND worker = ? "
        "RETURNING site, queue, started_at, concurrency_key",
        (now, result, now + keep.results_ttl, job_id, worker),
    )
    row = cur.fetchone()
    if row is None:
        return False
    settled(conn, row, "finished", now)
    limits.unpark(conn, row[3])
    limits.resolve(conn, job_id, JobStatus.FINISHED, now + keep.failure_ttl)
    return True


def count(conn: sqlite3.Connection, site: str, queue: str, kind: str) -> None:
    """Add 1 to a running counter, inside the caller's transaction."""
    conn.execute(
        "INSERT INTO counters (site, queue, kind, n) VALUES (?, ?, ?, 1) "
        "ON CONFLICT(site, queue, kind) DO UPDATE SET n = n + 1",
        (site, queue, kind),
    )


def settled(conn: sqlite3.Connection, row: Sequence[Any], kind: str, now: float) -> None:
    """Count an attempt that ended (``row`` = site, queue, started_at) and record how long
    it ran in its queue's histogram, inside the caller's transaction."""
    site, queue, started_at = row[0], row[1], row[2]
    count(conn, site, queue, kind)
    seconds = max(0.0, now - float(started_at if started_at is not None else now))
    conn.execute(
        "INSERT INTO durations (queue, bucket, n, total) VALUES (?, ?, 1, ?) "
        "ON CONFLICT(queue, bucket) DO UPDATE SET n = n + 1, total = total + excluded.total",
        (queue, bucket_index(seconds), seconds),
    )
    if kind in TIMELINE_KINDS:  # one small upsert beside the counter's: the dashboard's charts
        conn.execute(
            "INSERT INTO timeline (minute, queue, kind, n) VALUES (?, ?, ?, 1) "
            "ON CONFLICT(minute, queue, kind) DO UPDATE SET n = n + 1",
            (int(now // 60), queue, kind),
        )
