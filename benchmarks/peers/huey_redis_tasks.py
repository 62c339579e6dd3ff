"""Huey on Redis (the benchmark DB): ``huey_consumer peers.huey_redis_tasks.huey``."""

from __future__ import annotations

from bench_app import jobs
from huey import RedisHuey

from peers.huey_tasks import register

huey = RedisHuey("jobbench-benchmarks", url=jobs.URL)  # blocking BRPOP, as by default
tasks = register(huey)
