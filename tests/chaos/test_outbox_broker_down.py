"""Scenario 4(c) of issue 11, the transactional outbox: the broker is down at the commit and up
again later; the job runs once.

A test-owned ``redis-server`` (tests/chaos/test_broker_restart.py's RedisServer) is stopped, a
document is saved with an after-commit job and committed (the commit succeeds: the job waits in
the site database's outbox), and the server is started again on the same port after the
outage. The running worker's outbox relay delivers the job; the job's effect (a line in a file)
appears exactly once. On a SQLite, a PostgreSQL and a MariaDB site database. The outage lasts
the specified 10 s with --chaos-long, 2 s otherwise, to keep CI short (~7 s per database).

The relay delivers within about a second of the broker's return; the job then starts when the
worker's executor, which backs off while the broker is unreachable, claims again (a few seconds
more after a 10 s outage).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobbench
from jobbench.bench import Bench
from jobbench.brokers.factory import forget_broker, get_broker
from jobbench.jobs import outbox
from jobbench.jobs.record import full_id

from .helpers import report_figures, wait_until
from .test_broker_restart import RedisServer, redis_server_fixture  # noqa: F401 - the fixture

JOB = "tapp.outbox_jobs.append_line"
JOBS = """
def append_line(path, tag):
    with open(path, "a") as f:
        f.write(tag + "\\n")
"""
SPEC_DOWN = 10.0  # "broker down at commit, up 10 s later"
SHORT_DOWN = 2.0


@pytest.fixture
def outbox_bench(site: str, bench: Bench, redis_server: RedisServer) -> Iterator[Bench]:
    (bench.path / "apps" / "tapp" / "outbox_jobs.py").write_text(textwrap.dedent(JOBS))
    # Earlier tests' benches have their own tapp (without this module) on sys.path: import
    # this bench's, from its apps folder first.
    apps = str(bench.path / "apps")
    sys.path.insert(0, apps)
    for name in [m for m in sys.modules if m == "tapp" or m.startswith("tapp.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    bench.update_common_config({"redis_queue": redis_server.url, "bench_id": "outbox-chaos"})
    outbox._CommitState.skip_until = 0.0
    yield bench
    forget_broker(bench)
    while apps in sys.path:
        sys.path.remove(apps)


def _start_worker(bench: Bench, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBBENCH_")}
    cmd = [sys.executable, "-m", "jobbench", "--bench", str(bench.path), "worker"]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def test_broker_down_at_commit_up_later_the_job_runs_once(
    outbox_bench: Bench, redis_server: RedisServer, db_url: str, long_form: bool, tmp_path: Path
) -> None:
    bench = outbox_bench
    down = SPEC_DOWN if long_form else SHORT_DOWN
    effect = tmp_path / "ran.txt"
    log = tmp_path / "worker.log"
    worker = _start_worker(bench, log)
    try:
        broker = get_broker(bench, bench.common_config())
        wait_until(lambda: broker.workers(), 20, "the worker's first heartbeat")
        redis_server.stop()
        with jobbench.site_context("site1", bench.path) as local:
            jobbench.new_doc("Task", subject="saved while the broker is down").insert()
            jobbench.enqueue(
                JOB, path=str(effect), tag="once", job_id="outbox-c", enqueue_after_commit=True
            )
            started = time.monotonic()
            local.db.commit()  # must not raise: the job waits in the outbox
            committed = time.monotonic()
            assert committed - started < 2.0, "the commit waited on the dead broker"
            assert jobbench.db.count("Task") == 1
        assert outbox.stats(bench, "site1").undelivered == 1
        time.sleep(max(0.0, down - (time.monotonic() - committed)))
        assert not effect.exists()
        redis_server.start()
        back = time.monotonic()
        wait_until(effect.exists, 30, f"the job's effect after the broker came back\n{_log(log)}")
        delivered_after = time.monotonic() - back
        time.sleep(1.5)  # a second delivery would have run by now
        assert effect.read_text() == "once\n", _log(log)
        assert outbox.stats(bench, "site1").undelivered == 0
        record = get_broker(bench, bench.common_config()).get(full_id("site1", "outbox-c"))
        assert record is not None and record.status == "finished" and record.attempts == 1
        report_figures(
            {
                "scenario": "outbox",
                "database": _database(db_url),
                "down_s": down,
                "commit_s": round(committed - started, 3),
                "ran_after_s": round(delivered_after, 2),
                "runs": effect.read_text().count("once"),
            }
        )
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)


def _database(db_url: str) -> str:
    kind = db_url.split(":")[0].split("+")[0]
    return "mariadb" if kind == "mysql" else kind


def _log(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""
