"""The ``broker`` fixture: every contract test runs against SQLite, against Redis, and against
a 3-master Redis Cluster the session starts (``redis-cluster``: proves every script keeps to
its bench's hash slot).

Redis uses database 15 of the server in $JOBBENCH_TEST_REDIS (default redis://127.0.0.1:6379),
flushed before and after each test, with a random bench id. When Redis does not answer, the
Redis half is skipped with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import redis_db  # tests/conftest.py
from jobbench.brokers.base import Broker

from .helpers import BrokerSpec

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(15)}"


def _require_redis() -> None:
    """Skip (locally) or fail (CI=true) when the Redis server is not listening."""
    parts = urlsplit(REDIS_SERVER)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        pass
    reason = f"Redis is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason}; CI must test against it (.ci/run starts it)")
    pytest.skip(reason)


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """A 3-master Redis Cluster this session starts (tests/redis_servers.py), for the whole
    contract suite on Cluster: every script must keep to its bench's hash slot."""
    from redis_servers import start_cluster, stop_all

    nodes = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield nodes
    finally:
        stop_all(nodes)


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def broker_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerSpec]:
    """What to build: a SQLite file in tmp_path, a flushed Redis db 15 with a new bench id, or
    a new bench id on the test-owned Redis Cluster (flushed after the test)."""
    if request.param == "sqlite":
        yield BrokerSpec("sqlite", str(tmp_path / "queue.sqlite3"))
        return
    if request.param == "redis-cluster":
        nodes = request.getfixturevalue("redis_cluster")
        try:
            yield BrokerSpec("redis", nodes[0].url, bench_id=uuid.uuid4().hex, cluster=True)
        finally:
            for node in nodes:
                node.client().flushall()
        return
    _require_redis()
    _flush_redis()
    try:
        yield BrokerSpec("redis", REDIS_URL, bench_id=uuid.uuid4().hex)
    finally:
        _flush_redis()


@pytest.fixture
def broker(broker_spec: BrokerSpec) -> Iterator[Broker]:
    """A broker on empty storage, closed after the test."""
    made = broker_spec.make()
    try:
        yield made
    finally:
        made.close()
