"""Celery's tasks: the job bodies of ``bench_app/jobs.py`` on a Redis broker (the benchmark
DB), no result backend: ``celery -A peers.celery_tasks worker``."""

from __future__ import annotations

from bench_app import jobs
from celery import Celery

app = Celery("jobbench_benchmarks", broker=jobs.URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue="default",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
tasks = {name: app.task(name=name)(getattr(jobs, name)) for name in ("noop", "sleep_10ms")}
