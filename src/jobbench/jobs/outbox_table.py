"""The job outbox's table and its read side: what ``migrate`` creates, how a row stores a
signed record, and what doctor, metrics, the dashboard and ``jobbench outbox list`` read
(writing and relaying: jobs/outbox.py, which re-exports these names)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from jobbench.bench import Bench
from jobbench.errors import JobbenchError
from jobbench.jobs.record import JobRecord
from jobbench.model.database import get_engine, translate

_LONGTEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
TABLE = sa.Table(
    "__job_outbox",
    sa.MetaData(),
    # INTEGER PRIMARY KEY on SQLite is the rowid (AUTOINCREMENT-free is fine: rows are deleted
    # only from the low end, and a reused top value would still sort last).
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("job_id", _LONGTEXT, nullable=False),  # the stored id, <site>::<job_id>
    sa.Column("created", sa.Double(), nullable=False),  # epoch seconds of the enqueue
    sa.Column("record", _LONGTEXT, nullable=False),  # the signed JobRecord, JSON
    sa.Column("options", _LONGTEXT, nullable=False),  # enqueue options, run_at, task kwargs
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", _LONGTEXT),
    sa.Column("last_attempt", sa.Double()),
)
_BYTES_FIELDS = ("payload", "result")


def dump_record(record: JobRecord) -> str:
    data = record.to_mapping()
    for name in _BYTES_FIELDS:
        if data[name] is not None:
            data[name] = base64.b64encode(data[name]).decode()
    return json.dumps(data)


def load_record(text: str) -> JobRecord:
    data = json.loads(text)
    for name in _BYTES_FIELDS:
        if data.get(name) is not None:
            data[name] = base64.b64decode(data[name])
    return JobRecord.from_mapping(data)


def missing_table(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return TABLE.name in text and any(
        words in text for words in ("no such table", "does not exist", "doesn't exist")
    )


# -- reading (doctor, metrics, the dashboard, outbox list) ------------------------------------
@dataclass
class OutboxStats:
    site: str
    undelivered: int = 0
    oldest_created: float | None = None  # epoch seconds of the oldest row's enqueue
    failing: int = 0  # rows whose last attempt failed
    last_error: str | None = None  # the error of the first such row
    missing: bool = False  # the site's database has no outbox table (migrate)
    unreadable: str | None = None  # why the outbox could not be read (database down)

    def oldest_age(self, now: float | None = None) -> float | None:
        if self.oldest_created is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest_created)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {
            "site": self.site,
            "undelivered": self.undelivered,
            "oldest_age": self.oldest_age(now),
            "failing": self.failing,
            "last_error": self.last_error,
            "missing": self.missing,
            "unreadable": self.unreadable,
        }


def stats(bench: Bench, site: str) -> OutboxStats:
    """The site's undelivered rows: how many, the oldest's enqueue time, failures."""
    engine = get_engine(str(bench.merged_config(site)["db_url"]))
    out = OutboxStats(site)
    c = TABLE.c
    try:
        with engine.connect() as conn:
            count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(c.created))).one()
            out.undelivered, out.oldest_created = int(count or 0), oldest
            if out.undelivered:
                failing = conn.execute(
                    sa.select(sa.func.count()).where(c.last_error.is_not(None))
                ).scalar()
                out.failing = int(failing or 0)
                first = conn.execute(
                    sa.select(c.last_error)
                    .where(c.last_error.is_not(None))
                    .order_by(c.seq)
                    .limit(1)
                ).scalar()
                out.last_error = first
            conn.rollback()
    except DBAPIError as exc:
        if not missing_table(exc):
            raise translate(exc, engine.url) from exc
        out.missing = True
    return out


def stats_or_reason(bench: Bench, site: str) -> OutboxStats:
    """``stats``, or stats that say why the outbox could not be read (doctor, metrics and the
    dashboard show every site, also one whose database is down)."""
    try:
        return stats(bench, site)
    except JobbenchError as exc:
        return OutboxStats(site, unreadable=str(exc))


WARN_AGE = 30.0  # seconds: an outbox row older than this means the relay is not keeping up


def warnings(all_stats: list[OutboxStats], now: float | None = None) -> list[str]:
    """doctor's warnings about undelivered after-commit jobs."""
    out = []
    for st in all_stats:
        age = st.oldest_age(now)
        if st.unreadable:
            out.append(f"site {st.site}: the job outbox cannot be read: {st.unreadable}")
        elif st.missing:
            out.append(
                f"site {st.site}: no job outbox table; after-commit and durable enqueues fail "
                f"until 'jobbench --site {st.site} migrate' creates it"
            )
        elif st.undelivered and age is not None and age >= WARN_AGE:
            why = f"; last error: {st.last_error}" if st.last_error else ""
            out.append(
                f"site {st.site}: {st.undelivered} after-commit job(s) wait in the outbox, the "
                f"oldest for {age:.0f} s (is the broker up, a worker or the scheduler running? "
                f"'jobbench --site {st.site} outbox flush' relays them now){why}"
            )
    return out


def rows(bench: Bench, site: str, limit: int = 100) -> list[dict[str, Any]]:
    """The site's outbox rows, oldest first, as plain data for listings."""
    engine = get_engine(str(bench.merged_config(site)["db_url"]))
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.select(TABLE).order_by(TABLE.c.seq).limit(limit)).all()
            conn.rollback()
    except DBAPIError as exc:
        if missing_table(exc):
            return []
        raise translate(exc, engine.url) from exc
    out = []
    for row in found:
        record = load_record(row.record)
        out.append(
            {
                "seq": int(row.seq),
                "job_id": record.job_id,
                "method": record.method,
                "queue": record.queue,
                "created": float(row.created),
                "attempts": int(row.attempts),
                "last_error": row.last_error,
            }
        )
    return out
