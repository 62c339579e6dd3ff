"""Dramatiq's actors: the job bodies of ``bench_app/jobs.py`` on a Redis broker (the benchmark
DB): ``dramatiq peers.dramatiq_tasks:broker``."""

from __future__ import annotations

import dramatiq
from bench_app import jobs
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=jobs.URL)
dramatiq.set_broker(broker)
actors = {
    name: dramatiq.actor(getattr(jobs, name), actor_name=name, broker=broker, max_retries=0)
    for name in ("noop", "sleep_10ms")
}
