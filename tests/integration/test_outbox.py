"""The transactional outbox (issue 11, item 1) on SQLite, PostgreSQL and MariaDB site databases:
an after-commit (or durable) job is a row of the site database in the caller's transaction,
relayed to the broker after the commit; a broker that is down at the commit leaves the row
waiting, in order, for a relay; a redelivered row does not make a second job.

The broker outage here is a Redis URL on a closed loopback port (connection refused at once);
"the broker is back" is the same bench pointed at the test Redis server (database 13, a bench_id
of its own). tests/chaos/test_outbox_broker_down.py stops and starts a real server with a real
worker instead.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import jobbench
from conftest import redis_db, require_service
from jobbench.bench import Bench
from jobbench.brokers.factory import forget_broker, get_broker
from jobbench.errors import JobError, QueueOverloaded
from jobbench.inspect import Inspector, metrics_text
from jobbench.jobs import outbox
from jobbench.jobs.record import full_id
from jobbench.model.database import get_engine
from ports import free_port

from .jobs_helpers import REDIS_SERVER, _drop_redis_keys, wait_until

JOB = "tapp.outbox_jobs.append_line"
JOBS = """
def append_line(path, tag):
    with open(path, "a") as f:
        f.write(tag + "\\n")
"""


def free_port_url() -> str:
    """A Redis URL on a loopback port nothing listens on: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def box(site: str, bench: Bench) -> Iterator[Bench]:
    """``site`` (SQLite, PostgreSQL or MariaDB, with tapp) whose app has ``append_line``."""
    (bench.path / "apps" / "tapp" / "outbox_jobs.py").write_text(textwrap.dedent(JOBS))
    # tapp was imported by install_app a moment ago: the import system's listing of its folder
    # may predate the new file (a directory's mtime moves in coarse ticks), so drop it.
    importlib.invalidate_caches()
    outbox._CommitState.skip_until = 0.0  # an earlier test's outage must not hold back relays
    yield bench
    forget_broker(bench)


def _records(bench: Bench) -> list[Any]:
    return get_broker(bench, bench.common_config()).find(site="site1", limit=1000)


def _claim_order(bench: Bench) -> list[str]:
    """Claim every queued job of 'default' in queue order; their ``tag`` arguments."""
    broker = get_broker(bench, bench.common_config())
    tags = []
    while (record := broker.claim(["default"], "test-claimer")) is not None:
        tags.append(json.loads(record.payload)["tag"])
    return tags


def _rows(bench: Bench) -> list[Any]:
    engine = get_engine(str(bench.merged_config("site1")["db_url"]))
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox.TABLE).order_by(outbox.TABLE.c.seq)))


def test_after_commit_job_is_written_with_the_transaction_and_relayed_after_it(
    box: Bench, tmp_path: Path
) -> None:
    """The row shares the caller's transaction: invisible to others before the commit, gone
    with a rollback (also a savepoint's); after the commit the broker has the job and the row
    is gone; a burst worker runs each committed job once (a tracked one's Background Task,
    made by the relay, ends Completed)."""
    out = tmp_path / "ran.txt"
    with jobbench.site_context("site1", box.path) as local:
        jobbench.new_doc("Task", subject="kept").insert()
        assert jobbench.enqueue(JOB, path=str(out), tag="a", enqueue_after_commit=True) is None
        with pytest.raises(RuntimeError), local.db.atomic():
            jobbench.enqueue(JOB, path=str(out), tag="undone", enqueue_after_commit=True)
            raise RuntimeError("undo the block")
        assert outbox.stats(box, "site1").undelivered == 0  # another connection: uncommitted
        local.db.commit()
        assert _rows(box) == [] and [json.loads(r.payload)["tag"] for r in _records(box)] == ["a"]

        jobbench.enqueue(JOB, path=str(out), tag="rolled back", enqueue_after_commit=True)
        local.db.rollback()
        assert _rows(box) == [] and len(_records(box)) == 1

        outbox._tables.clear()  # the process' first outbox write checks for the table
        handle = jobbench.enqueue(JOB, path=str(out), tag="durable", durable=True)
        assert handle is not None and handle.id  # outside a transaction: relayed at once
        assert not local.db.in_transaction()
        assert handle.refresh().status == "queued"
        tracked = {"job_id": "t1", "track_job": True, "enqueue_after_commit": True}
        jobbench.enqueue(JOB, path=str(out), tag="tracked", **tracked)
        local.db.commit()
    done = subprocess.run(
        [sys.executable, "-m", "jobbench", "--bench", str(box.path), "worker", "--burst"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_text().split("\n") == ["a", "durable", "tracked", ""]
    with jobbench.site_context("site1", box.path):  # the relay made the job's Background Task
        tasks = jobbench.get_all("Background Task", fields=["job_id", "status"])
    assert [(t.job_id, t.status) for t in tasks] == [("t1", "Completed")]


def test_broker_down_at_commit_keeps_jobs_in_order_until_a_relay_delivers_them(
    box: Bench, tmp_path: Path
) -> None:
    """Commit succeeds with the broker down (no exception; enqueue, enqueue_many and durable
    jobs alike; doctor, metrics and the Inspector count the rows and their age); the poller
    delivers them in order once the broker is back; the rows are gone and each job is in the
    broker once."""
    require_service("Redis", "127.0.0.1", 6379)
    bench_id = f"outbox-{uuid.uuid4().hex[:8]}"
    box.update_common_config({"redis_queue": free_port_url(), "bench_id": bench_id})
    try:
        with jobbench.site_context("site1", box.path) as local:
            for tag in ("first", "second"):
                jobbench.enqueue(JOB, path="x", tag=tag, enqueue_after_commit=True)
            local.db.commit()  # the broker is down: no exception
            jobbench.enqueue(JOB, path="x", tag="third", durable=True)  # no transaction open
            with local.db.atomic():
                jobbench.new_doc("Task", subject="with a durable job").insert()
                jobbench.enqueue(JOB, path="x", tag="fourth", durable=True)
            batch = [{"method": JOB, "kwargs": {"path": "x", "tag": t}} for t in ("5th", "6th")]
            jobbench.enqueue_many(batch, enqueue_after_commit=True)
            local.db.commit()
        time.sleep(0.05)
        (stats,) = Inspector(box).outbox(["site1"])  # reads the site database only
        assert stats.undelivered == 6 and (stats.oldest_age() or 0) > 0
        relay = outbox.OutboxRelay(box, say=lambda _message: None)
        assert relay.poll() == 0  # broker still down: nothing delivered, nothing raised
        assert [r.tag for r in _tags(box)] == [*ORDER]

        box.update_common_config(
            {"redis_queue": f"{REDIS_SERVER}/{redis_db(13)}"}
        )  # the broker is back
        metrics = metrics_text(Inspector(box))
        assert 'jobbench_outbox_undelivered{site="site1"} 6' in metrics
        age = re.search(r'jobbench_outbox_oldest_age_seconds\{site="site1"\} ([0-9.]+)', metrics)
        assert age is not None and float(age.group(1)) > 0
        doctor = Inspector(box).doctor(["site1"])
        assert doctor["outbox"][0]["undelivered"] == 6
        relay._next = 0.0
        relay._skip.clear()
        assert relay.poll() == 6
        assert _rows(box) == [] and Inspector(box).outbox(["site1"])[0].undelivered == 0
        assert _claim_order(box) == [*ORDER]
    finally:
        _drop_redis_keys(bench_id)


AFTER_COMMIT = {"enqueue_after_commit": True}
ORDER = ("first", "second", "third", "fourth", "5th", "6th")


def _tags(bench: Bench) -> list[Any]:
    class Row:
        def __init__(self, row: Any) -> None:
            self.tag = json.loads(outbox.load_record(row.record).payload)["tag"]

    return [Row(r) for r in _rows(bench)]


def test_a_row_that_may_have_reached_the_broker_is_not_delivered_twice(box: Bench) -> None:
    """A relay that died between the broker's answer and the DELETE leaves its row: the next
    relay finds that very record in the broker and only deletes the row. A row whose job the
    broker does not have is delivered (never lost)."""
    _redelivery(box)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_redelivery_is_a_no_op_on_redis_too(box: Bench) -> None:
    """The same on the Redis broker (the record's enqueue time survives its encoding)."""
    require_service("Redis", "127.0.0.1", 6379)
    bench_id = f"outbox-{uuid.uuid4().hex[:8]}"
    box.update_common_config(
        {"redis_queue": f"{REDIS_SERVER}/{redis_db(13)}", "bench_id": bench_id}
    )
    try:
        _redelivery(box)
    finally:
        _drop_redis_keys(bench_id)


def _redelivery(box: Bench) -> None:
    with jobbench.site_context("site1", box.path) as local:
        jobbench.enqueue(JOB, path="x", tag="once", job_id="j1", enqueue_after_commit=True)
        jobbench.enqueue(JOB, path="x", tag="lost", job_id="j2", enqueue_after_commit=True)
        (delivered, lost) = _rows_in_transaction(local)
        local.db.commit()
        engine = local.db.engine
    broker = get_broker(box, box.common_config())
    assert broker.delete(full_id("site1", "j2"))  # as if the first attempt never got there
    with engine.begin() as conn:  # both rows back, marked as attempted
        for row in (delivered, lost):
            conn.execute(sa.insert(outbox.TABLE).values(**{**row, "attempts": 1}))
    assert outbox.flush(box, "site1").delivered == 2
    assert _rows(box) == []
    assert sorted(_claim_order(box)) == ["lost", "once"]  # one job each


def _rows_in_transaction(local: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in local.db.execute(sa.select(outbox.TABLE))]


def test_durable_enqueue_config_key_and_refusals(box: Bench) -> None:
    """``durable_enqueue`` sends plain enqueues through the outbox (rolled back with the
    caller), ``durable=False`` opts out; a database without the table is refused up front."""
    box.update_common_config({"durable_enqueue": True})
    with jobbench.site_context("site1", box.path) as local:
        jobbench.new_doc("Task", subject="t").insert()
        jobbench.enqueue(JOB, path="x", tag="gone")
        local.db.rollback()
        assert _records(box) == []
        jobbench.enqueue(JOB, path="x", tag="plain", durable=False)
        assert len(_records(box)) == 1  # at once, transaction or not
        local.db.rollback()
        local.db.sql(f"DROP TABLE {outbox.TABLE.name}")
        local.db.commit()
    outbox._tables.clear()
    with jobbench.site_context("site1", box.path):
        with pytest.raises(outbox.OutboxMissing, match="migrate"):
            jobbench.enqueue(JOB, path="x", tag="refused", enqueue_after_commit=True)
        assert isinstance(outbox.OutboxMissing("x"), JobError)
    assert outbox.stats(box, "site1").missing
    outbox._tables.clear()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the same reads on every database
def test_outbox_commands(box: Bench) -> None:
    """``outbox list`` shows the waiting jobs; ``outbox flush`` with the broker down is one
    line and exit 1, then relays once it is up; doctor names the waiting jobs."""
    require_service("Redis", "127.0.0.1", 6379)
    bench_id = f"outbox-{uuid.uuid4().hex[:8]}"
    box.update_common_config({"redis_queue": free_port_url(), "bench_id": bench_id})
    try:
        with jobbench.site_context("site1", box.path) as local:
            jobbench.enqueue(JOB, path="x", tag="cli", job_id="cli-job", enqueue_after_commit=True)
            local.db.commit()
        listed = _cli(box, "outbox", "list")
        assert listed.returncode == 0 and "cli-job" in listed.stdout and JOB in listed.stdout
        down = _cli(box, "outbox", "flush")
        assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1
        assert "site1" in down.stderr and "cannot reach the Redis broker" in down.stderr
        box.update_common_config({"redis_queue": f"{REDIS_SERVER}/{redis_db(13)}"})
        doctor = _cli(box, "doctor")
        assert "site1: outbox: 1 job(s) waiting, the oldest for" in doctor.stdout, doctor
        up = _cli(box, "outbox", "flush")
        assert up.returncode == 0 and up.stdout.strip() == "site1: relayed 1 job(s), 0 waiting"
        assert _claim_order(box) == ["cli"]
    finally:
        _drop_redis_keys(bench_id)


def _cli(bench: Bench, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "--site", "site1"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the relay is tested above
def test_the_scheduler_process_relays_the_outbox(box: Bench) -> None:
    """A ``jobbench schedule`` process (no worker running) delivers a job the broker missed."""
    require_service("Redis", "127.0.0.1", 6379)
    bench_id = f"outbox-{uuid.uuid4().hex[:8]}"
    box.update_common_config({"redis_queue": free_port_url(), "bench_id": bench_id})
    scheduler = None
    try:
        with jobbench.site_context("site1", box.path) as local:
            jobbench.enqueue(JOB, path="x", tag="s", job_id="by-scheduler", **AFTER_COMMIT)
            local.db.commit()
        assert len(_rows(box)) == 1
        box.update_common_config({"redis_queue": f"{REDIS_SERVER}/{redis_db(13)}"})
        cmd = [sys.executable, "-m", "jobbench", "--bench", str(box.path), "schedule"]
        scheduler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker = get_broker(box, box.common_config())
        wait_until(lambda: broker.get(full_id("site1", "by-scheduler")), 20, "the relayed job")
        wait_until(lambda: _rows(box) == [], 5, "the relayed row to be deleted")
        assert _claim_order(box) == ["s"]
    finally:
        if scheduler is not None:
            scheduler.terminate()
            scheduler.wait(20)
        _drop_redis_keys(bench_id)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_relays_at_once_deliver_each_job_once_and_in_order(box: Bench) -> None:
    """Four relays (threads, each its own lease owner, as the threads of a web server or
    several workers) drain one site's 120 waiting jobs together: every job reaches the broker
    once, in insertion order."""
    outbox._CommitState.skip_until = time.monotonic() + 60  # the commit leaves them waiting
    tags = [f"j{i:03}" for i in range(120)]
    with jobbench.site_context("site1", box.path) as local:
        jobbench.enqueue_many(
            [{"method": JOB, "kwargs": {"path": "x", "tag": t}} for t in tags],
            enqueue_after_commit=True,
        )
        local.db.commit()
    assert len(_rows(box)) == 120
    delivered: list[int] = []

    def relay() -> None:
        with jobbench.site_context("site1", box.path) as local:
            for _ in range(50):
                delivered.append(outbox.relay_site(local, limit=7).delivered)
                if not _rows(box):
                    return

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(delivered) == 120 and _rows(box) == []
    assert _claim_order(box) == tags


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the relay is the same on all
def test_a_row_the_broker_refuses_stops_the_pass_and_keeps_its_reason(box: Bench) -> None:
    """``max_queued_jobs`` full at the relay: the refused job stays with its error (doctor
    shows it), the jobs behind it wait too (order), and all go once the queue has room."""
    box.update_common_config({"max_queued_jobs": 1})
    with jobbench.site_context("site1", box.path) as local:
        for tag in ("in", "refused", "behind"):
            jobbench.enqueue(JOB, path="x", tag=tag, **AFTER_COMMIT)
        local.db.commit()  # no exception: the commit stands
    stats = outbox.stats(box, "site1")
    assert stats.undelivered == 2 and stats.failing == 1
    assert stats.last_error is not None and stats.last_error.startswith("QueueOverloaded")
    assert [r.tag for r in _tags(box)] == ["refused", "behind"]
    assert _claim_order(box) == ["in"]  # room again
    with pytest.raises(QueueOverloaded):  # "refused" goes in, "behind" meets a full queue
        outbox.flush(box, "site1")
    assert _claim_order(box) == ["refused"]
    assert outbox.flush(box, "site1").delivered == 1 and _claim_order(box) == ["behind"]
