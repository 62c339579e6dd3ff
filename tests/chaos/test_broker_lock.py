"""SQLite broker file locked by another process for seconds: an enqueue waits for the lock
(busy timeout) or fails with BrokerUnavailable; the file is never corrupted."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

import jobbench
from jobbench.brokers.sqlite import SQLiteBroker
from jobbench.errors import BrokerUnavailable
from jobbench.jobs.record import JobRecord, full_id

from .helpers import APP, SITE, Chaos, wait_until

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def _hold(path: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_enqueue_waits_for_a_locked_sqlite_broker(chaos_sqlite: Chaos) -> None:
    path = str(chaos_sqlite.bench.sites_path / "queue.sqlite3")
    chaos_sqlite.broker()  # the file exists with its schema
    holder = _hold(path, 2.5)
    try:
        started = time.monotonic()
        with chaos_sqlite.ctx():
            jobbench.enqueue(f"{APP}.jobs.effect", job_id="waited", path="x")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(10)
    assert waited >= 1.5, f"enqueue did not wait for the lock ({waited:.2f} s)"
    record = chaos_sqlite.broker().get(full_id(SITE, "waited"))
    assert record is not None and record.status == "queued"
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_locked_sqlite_broker_raises_broker_unavailable(chaos_sqlite: Chaos) -> None:
    path = str(chaos_sqlite.bench.sites_path / "queue.sqlite3")
    chaos_sqlite.broker()
    holder = _hold(path, 4)
    broker = SQLiteBroker(path, busy_timeout=0.5)
    record = JobRecord(
        id=full_id(SITE, "refused"), site=SITE, queue="short", method="m", payload=b"{}"
    )
    try:
        with pytest.raises(BrokerUnavailable, match="locked"):
            broker.enqueue(record)
    finally:
        holder.kill()
        holder.wait(10)
    wait_until(lambda: holder.poll() is not None, 10, "the lock holder to exit")
    assert broker.get(record.id) is None, "a refused enqueue left a partial write"
    assert broker.enqueue(record), "the broker did not recover once the lock was gone"
    broker.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
