"""The rows of the table, in order, and whether each can run here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import redis

from harness.common import REDIS_URL, System

KEYS = (
    "jobbench-redis",
    "jobbench-sqlite",
    "huey-redis",
    "huey-sqlite",
    "dramatiq",
    "rq",
    "celery",
)
GROUPS = {"jobbench": KEYS[:2], "huey": KEYS[2:4]}  # --only jobbench = both of its brokers
NEEDS = {  # what each row imports
    "jobbench-redis": "jobbench.brokers.redis",
    "jobbench-sqlite": "jobbench.brokers.sqlite",
    "huey-redis": "huey",
    "huey-sqlite": "huey",
    "dramatiq": "dramatiq.brokers.redis",
    "rq": "rq",
    "celery": "celery",
}


def expand(only: list[str] | None) -> list[str]:
    """The row keys that ``--only`` names (all of them when it is not given)."""
    if not only:
        return list(KEYS)
    wanted = {k for name in only for k in GROUPS.get(name, (name,))}
    return [k for k in KEYS if k in wanted]


def redis_problem() -> str | None:
    """Why the Redis server cannot be used, or None. Every row needs it: the job bodies INCR
    their counter there."""
    try:
        with redis.Redis.from_url(REDIS_URL, socket_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc})"
    return None


def problem(key: str) -> str | None:
    """Why the row ``key`` cannot run here, or None."""
    module = NEEDS[key]
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - not installed or broken: say so, go on
        return f"{module} is not importable ({exc!r}; pip install -e '.[bench]')"
    return None


def make(key: str, root: Path) -> System:
    from peers.celery_bench import CelerySystem
    from peers.dramatiq_bench import DramatiqSystem
    from peers.huey_bench import HueySystem
    from peers.jobbench_bench import JobbenchSystem
    from peers.rq_bench import RQSystem

    makers: dict[str, Callable[[], System]] = {
        "jobbench-redis": lambda: JobbenchSystem("redis", root),
        "jobbench-sqlite": lambda: JobbenchSystem("sqlite", root),
        "huey-redis": lambda: HueySystem("redis", root),
        "huey-sqlite": lambda: HueySystem("sqlite", root),
        "dramatiq": DramatiqSystem,
        "rq": RQSystem,
        "celery": CelerySystem,
    }
    return makers[key]()


def versions() -> dict[str, str]:
    """Name -> version of every package measured or used by the measurement."""
    import importlib.metadata

    found = {}
    for package in ("jobbench", "huey", "dramatiq", "rq", "celery", "kombu", "redis", "hiredis"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
