"""The read-only Inspector against real brokers (SQLite, and Redis database 8 with a unique
bench_id whose ``jb:<bench_id>:*`` keys are deleted afterwards): queue counts, pending jobs
grouped by method, job paging with filters, workers with utilisation and staleness, scheduler
state per site with its reason, and the Prometheus text."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import redis_db  # tests/conftest.py
from jobbench.bench import Bench, init_bench
from jobbench.brokers.base import Retention, WorkerInfo
from jobbench.brokers.factory import close_brokers
from jobbench.inspect import Inspector, metrics_text
from jobbench.jobs.record import JobRecord, full_id
from jobbench.sites import new_site

from .jobs_helpers import require_service

REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(8)}"


@pytest.fixture(params=["sqlite", "redis"])
def inspector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inspector]:
    bench = init_bench(tmp_path / "bench")
    bench_id = f"insp-{uuid.uuid4().hex[:10]}"
    if request.param == "redis":
        parts = urlsplit(REDIS_SERVER)
        require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
        bench.update_common_config({"redis_queue": REDIS_URL, "bench_id": bench_id})
    new_site(bench, "s1")
    new_site(bench, "s2")
    bench = Bench(bench.path)
    yield Inspector(bench)
    close_brokers()
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"jb:{{{bench_id}}}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def put(inspector: Inspector, site: str, queue: str, method: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        job_id = full_id(site, uuid.uuid4().hex)
        record = JobRecord(id=job_id, site=site, queue=queue, method=method, payload=b"{}")
        assert inspector.broker.enqueue(record)
        ids.append(job_id)
    return ids


def test_queues_pending_and_paging(inspector: Inspector) -> None:
    put(inspector, "s1", "default", "app.a", 3)
    put(inspector, "s1", "short", "app.b", 2)
    put(inspector, "s2", "default", "app.a", 1)
    broker = inspector.broker
    claimed = broker.claim(["short"], "w1")
    assert claimed is not None
    done = broker.claim(["short"], "w1")
    assert done is not None and broker.finish(done.id, "w1", None, Retention())

    queues = {q.name: q for q in inspector.queues()}
    assert list(queues)[:3] == ["short", "default", "long"]
    assert queues["default"].counts["queued"] == 4
    nonzero = {k: v for k, v in queues["short"].counts.items() if v}
    assert nonzero == {"started": 1, "finished": 1}

    groups = {(g.site, g.queue, g.method): g.counts for g in inspector.pending()}
    assert groups == {
        ("s1", "default", "app.a"): {"queued": 3},
        ("s1", "short", "app.b"): {"started": 1},
        ("s2", "default", "app.a"): {"queued": 1},
    }
    assert [g.site for g in inspector.pending(site="s2")] == ["s2"]
    assert inspector.site_pending_counts("s1") == {
        "queued": 3,
        "started": 1,
        "scheduled": 0,
        "deferred": 0,
    }

    first = inspector.jobs(site="s1", limit=2)
    second = inspector.jobs(site="s1", limit=2, offset=2)
    assert first.has_more and len(first.jobs) == 2
    assert {j.id for j in first.jobs}.isdisjoint({j.id for j in second.jobs})
    by_method = inspector.jobs(method="app.a", limit=3)
    assert len(by_method.jobs) == 3 and by_method.has_more
    assert all(j.method == "app.a" for j in by_method.jobs)
    assert not inspector.jobs(method="app.a", limit=3, offset=3).has_more


def test_workers_utilisation_and_staleness(inspector: Inspector) -> None:
    now = time.time()
    info = WorkerInfo(name="w1", pid=1, host="h", queues=["short"], state="busy")
    info.birth, info.working_time = now - 100, 25.0
    inspector.broker.heartbeat(info, ttl=60)
    (worker,) = inspector.workers()
    assert worker.state == "busy" and worker.queues == ["short"]
    assert worker.utilisation == pytest.approx(0.25, abs=0.01)
    assert not worker.stale
    (later,) = inspector.workers(now=time.time() + 20)  # three heartbeats missed
    assert later.stale


def test_scheduler_state_doctor_and_metrics(inspector: Inspector) -> None:
    inspector.bench.update_site_config("s2", {"pause_scheduler": 1})
    states = {s.site: s for s in inspector.scheduler()}
    assert states["s1"].active and states["s1"].reason is None
    assert not states["s2"].active and "paused" in (states["s2"].reason or "")

    put(inspector, "s1", "long", "app.c", 2)
    report = inspector.doctor(["s1"])
    assert [s["site"] for s in report["sites"]] == ["s1"]
    assert report["sites"][0]["pending"][0]["total"] == 2

    lines = metrics_text(inspector).splitlines()
    assert 'jobbench_queue_depth{queue="long"} 2' in lines
    assert 'jobbench_jobs{site="s1",queue="long",status="queued"} 2' in lines
    assert 'jobbench_scheduler_active{site="s2"} 0' in lines
    assert "jobbench_workers_alive 0" in lines
    assert "jobbench_scheduler_last_tick_timestamp_seconds" not in "".join(
        line for line in lines if not line.startswith("#")
    )

    inspector.broker.set_marker("scheduler_last_tick", 1700000000.5)
    lines = metrics_text(inspector).splitlines()
    assert "# TYPE jobbench_scheduler_last_tick_timestamp_seconds gauge" in lines
    assert "jobbench_scheduler_last_tick_timestamp_seconds 1700000000.5" in lines
