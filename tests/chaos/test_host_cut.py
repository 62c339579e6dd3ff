"""Several hosts, one bench: two worker hosts in network namespaces share a Redis broker and a
PostgreSQL site database that the test starts on the bridge between them. Host 0 runs the
`default` queue, host 1 only `short` (so every job here goes to host 0, and host 1 is there to
notice). In each round host 0's link is cut while it runs a job: host 1 settles that job once
host 0's heartbeat expires; the link comes back, host 0 runs the job to its end behind the cut
and reports it, and that late outcome must not overwrite the settled one, in the broker or in
the job's Background Task. Then the next round (CI: 1 round; --chaos-long: 5)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jobbench
from conftest import release_bench
from integration.jobs_helpers import APP, WorkerProc, forget_app, jobs_path, write_jobs_app
from jobbench.bench import init_bench
from jobbench.brokers.base import Broker
from jobbench.brokers.factory import get_broker
from jobbench.jobs.record import JobRecord, full_id
from jobbench.sites import new_site

from .helpers import report_figures, wait_until
from .netns import Hosts, hosts, postgres_server, redis_server

INTERVAL, TTL = 0.5, 2.0


def test_a_cut_off_host_is_settled_by_the_other_and_cannot_overwrite_it(
    tmp_path: Path, long_form: bool
) -> None:
    rounds = 5 if long_form else 1
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(hosts(2))
        redis_url = stack.enter_context(redis_server(net.bridge_ip))
        pg = stack.enter_context(postgres_server(net.bridge_ip))
        bench = init_bench(tmp_path / "jb")
        write_jobs_app(bench.path / "apps")
        forget_app()
        bench.update_common_config(
            {
                "redis_queue": redis_url,
                "bench_id": f"hosts-{uuid.uuid4().hex[:8]}",
                "worker_heartbeat_interval": INTERVAL,
                "worker_heartbeat_ttl": TTL,
            }
        )
        new_site(bench, "site1", db_url=f"{pg}/site1", apps=[APP])
        broker = get_broker(bench, bench.common_config())
        workers = [_start(net, 0, bench.path, tmp_path, "default")]
        workers.append(_start(net, 1, bench.path, tmp_path, "short"))
        try:
            wait_until(lambda: len(broker.workers()) == 2, 20, "both hosts' workers")
            detected = [_round(broker, bench.path, net, tmp_path / f"r{i}") for i in range(rounds)]
        finally:
            for worker in workers:
                worker.kill()
            release_bench(bench)
            forget_app()
    assert all(w <= TTL + TTL / 2 + 1.0 for w in detected), detected  # TTL + one reap period
    report_figures(
        {
            "scenario": "host_cut",
            "broker": "redis",
            "site_db": "postgresql",
            "cuts": rounds,
            "settled_by_other_host": rounds,  # each round asserts it
            "overwritten_after_mend": 0,  # each round asserts it
            "ttl": TTL,
            "max_detection": round(max(detected), 2),
        }
    )


def _round(broker: Broker, path: Path, net: Hosts, tmp: Path) -> float:
    """One job cut off on host 0; how long after the cut host 1 settled it."""
    tmp.mkdir()
    go, done = tmp / "go", tmp / "done"
    with jobbench.site_context("site1", path) as local:
        job = jobbench.enqueue(
            jobs_path("wait_then_touch"), go=str(go), done=str(done), timeout=120, track_job=True
        )
        local.db.commit()
    stored = full_id("site1", job.id)
    started = wait_until(lambda: _status(broker, stored, "started"), 20, "host 0 to start it")
    net.cut(0)
    cut_at = time.monotonic()
    try:
        failed = wait_until(lambda: _status(broker, stored, "failed"), 30, "host 1 to settle it")
        detected = time.monotonic() - cut_at
        assert "worker died" in str(failed.exc_info), failed.exc_info
        assert started.worker and failed.worker == started.worker
        go.write_text("go")  # host 0's job now runs to its end, behind the cut
    finally:
        net.mend(0)
    wait_until(done.exists, 30, "host 0's job to run to its end")
    wait_until(lambda: _heard_again(broker, started.worker), 60, "host 0 to come back")
    time.sleep(2 * INTERVAL)  # past host 0's next beats: a late outcome would have landed
    after = broker.get(stored)
    assert after is not None and after.status == "failed", after
    assert after.exc_info == failed.exc_info
    with jobbench.site_context("site1", path):
        tasks = jobbench.get_all(
            "Background Task", filters={"task_id": started.task_id}, fields=["status"]
        )
    assert [t.status for t in tasks] == ["Failed"], tasks
    return detected


def _start(net: Hosts, i: int, path: Path, tmp: Path, queue: str) -> WorkerProc:
    argv = [sys.executable, "-m", "jobbench", "--bench", str(path), "worker", "--queue", queue]
    log = tmp / f"host{i}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(net.command(i, argv), stdout=out, stderr=subprocess.STDOUT)
    return WorkerProc(proc, log)


def _status(broker: Broker, job_id: str, status: str) -> JobRecord | None:
    record = broker.get(job_id)
    return record if record is not None and record.status == status else None


def _heard_again(broker: Broker, worker: str) -> bool:
    return any(w.name == worker for w in broker.workers())
