"""Choosing and caching the broker a bench uses: Redis when ``redis_queue`` is set, else SQLite."""

from __future__ import annotations

import os
import threading
from typing import Any

from jobbench.bench import Bench
from jobbench.brokers.base import Broker, Retention

_brokers: dict[tuple[str, str, int], Broker] = {}
_lock = threading.Lock()


def broker_key(bench: Bench, conf: dict[str, Any]) -> tuple[str, str]:
    url = conf.get("redis_queue")
    if url:
        from jobbench.brokers.redis_conn import settings_key

        where = f"{url}|{conf.get('bench_id') or 'default'}"
        extra = settings_key(conf)  # '' without Sentinel, Cluster, ACL, TLS or WAIT keys
        return ("redis", f"{where}|{extra}" if extra else where)
    return ("sqlite", str(bench.sites_path / "queue.sqlite3"))


def get_broker(bench: Bench, conf: dict[str, Any]) -> Broker:
    """The broker for this bench's config; one instance per process (re-made after fork)."""
    kind, where = broker_key(bench, conf)
    key = (kind, where, os.getpid())
    with _lock:
        broker = _brokers.get(key)
        if broker is None:
            broker = _make(kind, where, conf)
            _brokers[key] = broker
        return broker


def _make(kind: str, where: str, conf: dict[str, Any]) -> Broker:
    if kind == "redis":
        from jobbench.brokers.redis import RedisBroker
        from jobbench.brokers.redis_conn import RedisSettings

        settings = RedisSettings.from_conf(conf)
        bench_id = str(conf.get("bench_id") or "default")
        return RedisBroker(settings.url, bench_id, settings=settings)
    from jobbench.brokers.sqlite import SQLiteBroker

    return SQLiteBroker(where)


def retention(conf: dict[str, Any]) -> Retention:
    return Retention(
        results_ttl=float(conf.get("rq_results_ttl", 600)),
        failure_ttl=float(conf.get("rq_job_failure_ttl", 7 * 24 * 3600)),
        failed_limit=int(conf.get("rq_failed_jobs_limit", 1000)),
    )


def close_brokers() -> None:
    with _lock:
        for broker in _brokers.values():
            broker.close()
        _brokers.clear()


def forget_broker(bench: Bench) -> None:
    """Close and drop this bench's cached broker in this process (tests and tools that
    delete a bench; a later get_broker makes a fresh one)."""
    kind, where = broker_key(bench, bench.common_config())
    with _lock:
        for key in [k for k in _brokers if k[:2] == (kind, where)]:
            _brokers.pop(key).close()
