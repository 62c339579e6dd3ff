"""The ``broker`` fixture: every contract test runs against SQLite and against Redis.

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
from urllib.parse import urlsplit

import pytest

from jobbench.brokers.base import Broker

from .helpers import BrokerSpec

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/15"


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


@pytest.fixture(params=["sqlite", "redis"])
def broker_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerSpec]:
    """What to build: a SQLite file in tmp_path, or a flushed Redis db 15 with a new bench id."""
    if request.param == "sqlite":
        yield BrokerSpec("sqlite", str(tmp_path / "queue.sqlite3"))
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
