"""Dependencies and concurrency keys on the SQLite broker: SQL steps run inside the caller's
transaction, so each is atomic with the claim, outcome or cancel that calls it (docs/jobs.md).

- **Dependencies**: a job enqueued ``deferred`` gets one ``dependencies`` row per dependency
  then pending, kept until that dependency's record goes (so its settled dependents can be
  found: their Background Tasks follow). When a job becomes final (or a pending one is
  deleted), ``resolve`` reads its rows (the primary key's prefix: one index lookup, none
  for a job nobody depends on), queues the
  dependents whose dependencies are all done and cancels, with the reason, those whose
  dependency failed, was stopped, canceled or deleted; cancels cascade through a work list.
- **Concurrency keys**: the started jobs of a key are counted, not tracked (an index on
  ``concurrency_key`` over started rows), so nothing can leak when a worker dies: the reaper's
  ``fail`` takes the row out of ``started`` and the count follows. A claim that took a job of a
  key already at its limit puts it back as ``queued`` with ``pos`` NULL and a ``parked``
  sequence number (out of its queue's order, so the claim goes on with the next job); a job
  leaving ``started`` puts parked jobs of its key back at the head of their queues.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from jobbench.brokers.base import Retention, unknown_dependency
from jobbench.errors import DependencyNotFound
from jobbench.jobs.record import FINAL_STATUSES, JobStatus, decode_ids, split_id

# Run after the jobs table has every column (parked, concurrency_key): see SQLiteStore.
SCHEMA = """
CREATE TABLE IF NOT EXISTS dependencies (
    depends_on TEXT NOT NULL, dependent TEXT NOT NULL, PRIMARY KEY (depends_on, dependent)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_key_started ON jobs(concurrency_key)
    WHERE status = 'started' AND concurrency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_parked ON jobs(concurrency_key, parked)
    WHERE status = 'queued' AND parked IS NOT NULL;
"""
DEFAULT_CANCEL_TTL = Retention().failure_ttl  # a cancel by delete, purge or enqueue
_WORDS = {
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "was stopped",
    JobStatus.CANCELED: "was canceled",
    "deleted": "was deleted",
    "missing": "was not enqueued",
}
_HEAD = "(SELECT COALESCE(MIN(pos) - 1, 0) FROM jobs WHERE queue = ? AND status = 'queued')"
_TAIL = "(SELECT COALESCE(MAX(pos) + 1, 0) FROM jobs WHERE queue = ? AND status = 'queued')"


def dependency_reason(dep: str, status: str) -> str:
    return f"canceled: its dependency {split_id(dep)[1]!r} {_WORDS.get(status, status)}"


# -- concurrency keys ---------------------------------------------------------------------------
def running(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE status = 'started' AND concurrency_key = ?", (key,)
    ).fetchone()
    return int(row[0])


def admit_or_park(conn: sqlite3.Connection, job_id: str, key: str, limit: int) -> bool:
    """A claim just made ``job_id`` started: keep it when its key is within ``limit`` (the
    count includes it), else undo the claim and park it. Returns whether it was kept."""
    if running(conn, key) <= max(1, limit):
        return True
    conn.execute(
        "UPDATE jobs SET status = 'queued', worker = NULL, started_at = NULL, "
        "attempts = attempts - 1, pos = NULL, parked = (SELECT COALESCE(MAX(parked), 0) + 1 "
        "FROM jobs WHERE status = 'queued' AND parked IS NOT NULL AND concurrency_key = ?) "
        "WHERE id = ?",
        (key, job_id),
    )
    return False


def unpark(conn: sqlite3.Connection, key: str | None) -> None:
    """Put parked jobs of ``key`` back at the head of their queues, one per free slot."""
    if key is None:
        return
    parked = conn.execute(
        "SELECT id, queue, concurrency_limit FROM jobs WHERE status = 'queued' AND "
        "parked IS NOT NULL AND concurrency_key = ? ORDER BY parked LIMIT ?",
        (key, 1000),
    )
    first = parked.fetchone()
    if first is None:
        return
    room = max(1, int(first[2] or 1)) - running(conn, key)
    rows = [first, *parked.fetchmany(max(0, room - 1))] if room > 0 else []
    parked.close()
    for job_id, queue, _ in reversed(rows):  # the last first, so they keep their order
        conn.execute(f"UPDATE jobs SET parked = NULL, pos = {_HEAD} WHERE id = ?", (queue, job_id))


# -- dependencies -------------------------------------------------------------------------------
def dependency_state(
    conn: sqlite3.Connection,
    deps: list[str],
    allow: bool,
    known: dict[str, tuple[str, str]],
    earlier: set[str],
) -> tuple[list[str], str | None]:
    """A new job's dependencies as they stand: the pending ones, or why it is canceled.
    ``known`` has the status of ids the batch wrote, ``earlier`` every id of an earlier item.
    Raises DependencyNotFound (the caller's transaction rolls back) for an unknown one."""
    waiting: list[str] = []
    for dep in deps:
        status = known[dep][0] if dep in known else _status(conn, dep)
        if status is None and dep not in earlier:
            raise DependencyNotFound(unknown_dependency(dep))
        status = status or "missing"
        if status not in FINAL_STATUSES and status != "missing":
            waiting.append(dep)
        elif status != JobStatus.FINISHED and not allow:
            return [], dependency_reason(dep, status)
    return waiting, None


def _status(conn: sqlite3.Connection, job_id: str) -> str | None:
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else str(row[0])


def register(conn: sqlite3.Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """(dependency, dependent) rows of newly deferred jobs."""
    conn.executemany(
        "INSERT OR IGNORE INTO dependencies (depends_on, dependent) VALUES (?, ?)", pairs
    )


def resolve(
    conn: sqlite3.Connection, job_id: str, status: str, expires_at: float | None = None
) -> None:
    """Job ``job_id`` ended as ``status`` (or was deleted pending: ``"deleted"``): queue its
    deferred dependents whose dependencies are all done, cancel (with the reason, kept until
    ``expires_at``) those it fails, and so on down the chain."""
    work = [(job_id, status)]
    while work:
        dep, outcome = work.pop()
        rows = conn.execute(  # kept until the dependency's row goes (forget, below)
            "SELECT dependent FROM dependencies WHERE depends_on = ?", (dep,)
        ).fetchall()
        for (dependent,) in rows:
            if _settle_dependent(conn, dependent, dep, outcome, expires_at):
                work.append((dependent, JobStatus.CANCELED))


def _settle_dependent(
    conn: sqlite3.Connection, job_id: str, dep: str, outcome: str, expires_at: float | None
) -> bool:
    """Queue or cancel one dependent of ``dep``; True when it was canceled."""
    row = conn.execute(
        "SELECT depends_on, allow_dependency_failure, queue, front FROM jobs WHERE id = ? "
        "AND status = 'deferred'",
        (job_id,),
    ).fetchone()
    if row is None or dep not in (deps := decode_ids(row[0])):
        return False  # a stale row: the dependent was replaced, canceled or deleted
    allow = bool(row[1])
    if outcome != JobStatus.FINISHED and not allow:
        now = time.time()
        conn.execute(
            "UPDATE jobs SET status = 'canceled', ended_at = ?, exc_info = ?, expires_at = ?, "
            "front = NULL WHERE id = ?",
            (now, dependency_reason(dep, outcome), expires_at or now + DEFAULT_CANCEL_TTL, job_id),
        )
        return True
    if all(_done(conn, d, allow) for d in deps):
        end = _HEAD if row[3] else _TAIL
        conn.execute(
            f"UPDATE jobs SET status = 'queued', front = NULL, pos = {end} WHERE id = ?",
            (row[2], job_id),
        )
    return False


def _done(conn: sqlite3.Connection, dep: str, allow: bool) -> bool:
    status = _status(conn, dep)
    return status is None or status == JobStatus.FINISHED or (allow and status in FINAL_STATUSES)


def dependents(conn: sqlite3.Connection, job_id: str, waiting: bool = True) -> list[str]:
    rows = conn.execute(
        "SELECT j.id, j.depends_on, j.status FROM dependencies d JOIN jobs j "
        "ON j.id = d.dependent WHERE d.depends_on = ? ORDER BY j.id",
        (job_id,),
    ).fetchall()
    if not waiting:
        return [r[0] for r in rows]
    return [r[0] for r in rows if r[2] == JobStatus.DEFERRED and job_id in decode_ids(r[1])]


def forget(conn: sqlite3.Connection, before: float) -> None:
    """Cleanup: drop the registrations of dependencies whose records expire by ``before``,
    and of those already gone (trimmed past rq_failed_jobs_limit)."""
    conn.execute(
        "DELETE FROM dependencies WHERE depends_on IN (SELECT id FROM jobs WHERE expires_at <= ?)",
        (before,),
    )
    conn.execute(
        "DELETE FROM dependencies WHERE NOT EXISTS "
        "(SELECT 1 FROM jobs WHERE jobs.id = dependencies.depends_on)"
    )


def deleted(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str | None]]) -> None:
    """After a delete or purge (rows of id, status, concurrency_key): the dependents of a
    deleted pending job are canceled; a deleted queued job's place goes to a parked one."""
    for job_id, status, key in rows:
        if status == JobStatus.QUEUED:
            unpark(conn, key)
        if status not in FINAL_STATUSES:
            resolve(conn, job_id, "deleted")
        conn.execute("DELETE FROM dependencies WHERE depends_on = ?", (job_id,))
