"""Database faults (issue 6, scenario 5) on real PostgreSQL and MariaDB servers.

- Deadlock: two jobs lock two rows in opposite order (coordinated by files), so the server
  picks one as the victim. ``execute_job`` rolls the victim back and retries it in place; both
  end finished, the victim's first attempt leaves no trace (rollback) and no Error Log is
  written for a job that was retried and then finished. A job that fails for good is rolled
  back and has exactly one Error Log.
- Unreachable database: while a job runs on a PostgreSQL site, the test terminates every
  connection to that database (``pg_terminate_backend``); the job fails with a reason and the
  same worker goes on to run the next jobs.
"""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest

import jobbench
from jobbench.jobs.record import full_id
from jobbench.sites import new_site

from .helpers import APP, SITE, Chaos, report_figures, wait_until

DB_JOBS = '''
"""Jobs of the database-fault scenario."""

import os
import time
from pathlib import Path

import jobbench


def _wait_for(path, seconds=20.0):
    end = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise RuntimeError(f"gave up waiting for {path}")
        time.sleep(0.02)


def lock_pair(where, me, other, first, second):
    """Lock row ``first``, say so, wait for ``other`` to hold its row, then lock ``second``."""
    calls = Path(where) / "calls.log"
    with calls.open("a") as f:
        f.write(me + "\\n")
    jobbench.db.sql("INSERT INTO chaos_marks (job) VALUES (:job)", {"job": me})
    jobbench.db.sql("UPDATE chaos_rows SET v = v + 1 WHERE id = :id", {"id": first})
    Path(where, me + ".ready").touch()
    _wait_for(os.path.join(where, other + ".ready"))
    time.sleep(0.2)  # the other job is (about to be) waiting for our row
    jobbench.db.sql("UPDATE chaos_rows SET v = v + 1 WHERE id = :id", {"id": second})
    return me


def write_then_fail(where):
    """Write a mark, then fail with an error that is not retried."""
    jobbench.db.sql("INSERT INTO chaos_marks (job) VALUES ('doomed')")
    raise ValueError("doomed on purpose")


def hold(where):
    """Write a mark, then wait (holding the transaction open) until the test says go."""
    jobbench.db.sql("INSERT INTO chaos_marks (job) VALUES ('held')")
    Path(where, "holding").touch()
    _wait_for(os.path.join(where, "go"), 30)
    jobbench.db.sql("SELECT 1")
    return "survived"


def ping():
    return jobbench.db.sql("SELECT 1")[0][0]
'''


def _report(line: dict[str, Any]) -> None:
    report_figures({"scenario": "db_faults", **line})


def _server_site(chaos: Chaos, url: str, name: str) -> str:
    (chaos.bench.path / "apps" / APP / "dbjobs.py").write_text(textwrap.dedent(DB_JOBS))
    new_site(chaos.bench, name, db_url=url, apps=[APP])
    with chaos.ctx(name):
        jobbench.db.sql("CREATE TABLE chaos_rows (id INT PRIMARY KEY, v INT NOT NULL)")
        jobbench.db.sql("CREATE TABLE chaos_marks (job VARCHAR(64) NOT NULL)")
        jobbench.db.sql("INSERT INTO chaos_rows (id, v) VALUES (1, 0), (2, 0)")
        jobbench.db.commit()
    return name


def _enqueue(chaos: Chaos, site: str, method: str, job_id: str, **kwargs: Any) -> str:
    with chaos.ctx(site):
        jobbench.enqueue(f"{APP}.dbjobs.{method}", queue="short", job_id=job_id, **kwargs)
    return full_id(site, job_id)


def _settled(chaos: Chaos, ids: list[str]) -> bool:
    broker = chaos.broker()
    records = [broker.get(i) for i in ids]
    return all(r is not None and r.status in ("finished", "failed") for r in records)


def _query(chaos: Chaos, site: str, sql: str) -> list[Any]:
    with chaos.ctx(site):
        return jobbench.db.sql(sql)


def _error_logs(chaos: Chaos, site: str) -> list[str]:
    with chaos.ctx(site):
        return list(jobbench.db.get_all("Error Log", pluck="method"))


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_deadlock_victim_is_retried_or_fails_cleanly(
    chaos_sqlite: Chaos, fresh_server_db: Any, kind: str
) -> None:
    chaos = chaos_sqlite
    site = _server_site(chaos, fresh_server_db(kind), "dbsite")
    where = chaos.tmp / "dl"
    where.mkdir()
    for i in range(2):
        chaos.start_worker(f"db-w{i}-{kind}")
    started = time.monotonic()
    pair = [
        _enqueue(
            chaos, site, "lock_pair", "a", where=str(where), me="a", other="b", first=1, second=2
        ),
        _enqueue(
            chaos, site, "lock_pair", "b", where=str(where), me="b", other="a", first=2, second=1
        ),
    ]
    doomed = _enqueue(chaos, site, "write_then_fail", "doomed", where=str(where))
    wait_until(lambda: _settled(chaos, [*pair, doomed]), 60, "the deadlocked jobs to settle")
    seconds = time.monotonic() - started
    broker = chaos.broker()
    records = {i: broker.get(i) for i in pair}
    calls = (where / "calls.log").read_text().split()
    marks = sorted(r[0] for r in _query(chaos, site, "SELECT job FROM chaos_marks"))
    rows = sorted(_query(chaos, site, "SELECT id, v FROM chaos_rows"))
    logs = _error_logs(chaos, site)
    _report(
        {
            "database": kind,
            "jobs": 3,
            "deadlock_calls": len(calls),
            "deadlock_finished": sum(r.status == "finished" for r in records.values()),
            "error_logs": len(logs),
            "seconds": round(seconds, 1),
        }
    )
    assert len(calls) >= 3, f"no deadlock happened (calls: {calls})"
    finished = [i for i, r in records.items() if r.status == "finished"]
    for record in records.values():
        if record.status == "failed":  # gave up after the in-place retries: cleanly
            assert "QueryDeadlockError" in (record.exc_info or ""), record.exc_info
    # What committed is exactly the finished jobs' work: the victim's rolled-back attempts
    # and the doomed job's mark left nothing behind.
    assert marks == sorted(i[len(full_id(site, "")) :] for i in finished), marks
    assert rows == [(1, len(finished)), (2, len(finished))], rows
    assert finished == pair, {i: (r.status, r.exc_info) for i, r in records.items()}
    doomed_record = broker.get(doomed)
    assert doomed_record is not None and doomed_record.status == "failed"
    assert "doomed on purpose" in (doomed_record.exc_info or "")
    # One Error Log for the failed job, none for the retried-then-finished one.
    assert logs == [f"{APP}.dbjobs.write_then_fail"], logs


def test_site_database_unreachable_mid_job(chaos_sqlite: Chaos, fresh_server_db: Any) -> None:
    import sqlalchemy as sa

    chaos = chaos_sqlite
    url = fresh_server_db("postgres")
    site = _server_site(chaos, url, "pgsite")
    where = chaos.tmp / "down"
    where.mkdir()
    worker = chaos.start_worker("db-down-w")
    held = _enqueue(chaos, site, "hold", "held", where=str(where))
    wait_until(lambda: (where / "holding").exists(), 30, "the job to hold its transaction")
    started = time.monotonic()
    dbname = sa.engine.make_url(url).database
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM"
                    " pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()) t"
                ),
                {"db": dbname},
            ).scalar()
    finally:
        admin.dispose()
    (where / "go").touch()
    wait_until(lambda: _settled(chaos, [held]), 30, "the cut-off job to settle")
    detection = time.monotonic() - started
    record = chaos.broker().get(held)
    assert record is not None and record.status == "failed", record
    assert "DatabaseUnavailableError" in (record.exc_info or ""), record.exc_info
    # The worker goes on: the same supervisor runs a job on that site and on another.
    after = [_enqueue(chaos, site, "ping", "after"), _enqueue(chaos, SITE, "ping", "other")]
    wait_until(lambda: _settled(chaos, after), 30, "the jobs after the outage")
    statuses = [chaos.broker().get(i).status for i in after]  # type: ignore[union-attr]
    logs = _error_logs(chaos, site)
    marks = _query(chaos, site, "SELECT job FROM chaos_marks")
    _report(
        {
            "database": "postgres (connections terminated)",
            "jobs": 3,
            "connections_killed": int(killed or 0),
            "error_logs": len(logs),
            "seconds": round(detection, 1),
        }
    )
    assert killed and killed >= 1
    assert statuses == ["finished", "finished"], statuses
    assert worker.alive(), worker.log.read_text()[-2000:]
    assert marks == [], "the cut-off job's write survived"
    assert len(logs) <= 1, logs
