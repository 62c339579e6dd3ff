"""Huey on its SQLite storage: ``huey_consumer peers.huey_sqlite_tasks.huey``; the file is
named by JOBBENCH_BENCHMARK_HUEY_DB (a temporary file of the run)."""

from __future__ import annotations

import os

from huey import SqliteHuey

from peers.huey_tasks import register

huey = SqliteHuey("jobbench-benchmarks", filename=os.environ["JOBBENCH_BENCHMARK_HUEY_DB"])
tasks = register(huey)
