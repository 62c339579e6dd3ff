"""The Redis broker after the server lost its scripts (restart, SCRIPT FLUSH): the script is
loaded again and run once (on the fast lane, brokers/redis_lane.py, and on redis-py's path), so
no claimed job is ever dropped and none is claimed twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import REDIS_SERVER, redis_db, redis_test_broker
from jobbench.brokers.base import Retention, WorkerInfo
from jobbench.jobs.record import JobRecord

URL = f"{REDIS_SERVER}/{redis_db(7)}"


@pytest.fixture
def broker() -> Iterator[object]:
    with redis_test_broker(URL) as broker:
        yield broker


def _job(n: int) -> JobRecord:
    return JobRecord(id=f"s::{n}", site="s", queue="default", method="m.f", payload=b"{}")


@pytest.mark.parametrize("reload_first", ["none", "claim", "finish_claim"])
def test_finish_and_claim_survives_lost_scripts(broker: object, reload_first: str) -> None:
    import redis

    from jobbench.brokers.redis import RedisBroker

    assert isinstance(broker, RedisBroker)
    keep = Retention()
    broker.heartbeat(WorkerInfo("w", 1, "h", ["default"]), 60)
    for n in range(3):
        broker.enqueue(_job(n))
    first = broker.claim(["default"], "w")
    assert first is not None
    # Given the server forgot every script, and another process already reloaded one of them
    client = redis.Redis.from_url(URL)
    client.script_flush()
    if reload_first != "none":
        _, _, scripts, _ = broker._connection()
        client.script_load(scripts[reload_first].script)
    client.close()
    # When the worker finishes its job and claims the next in one round trip
    second = broker.finish_and_claim(first.id, "w", b"1", keep, ["default"])
    # Then the first is finished, exactly one new job is started, and it is the one returned
    assert broker.get(first.id).status == "finished"
    assert second is not None and second.status == "started"
    started = broker.find(status="started")
    assert [r.id for r in started] == [second.id]
    assert broker.queue_length("default") == 1
