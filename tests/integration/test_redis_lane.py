"""The Redis broker's fast lane (brokers/redis_lane.py) against a real server: one connection
per thread and per process, a lost connection retried once on redis-py's path (the job stored
once, never twice), and the full path kept where the lane cannot serve (WAIT for replicas)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REDIS_SERVER, redis_db, redis_test_broker
from jobbench.brokers.base import Retention
from jobbench.jobs.record import JobRecord

URL = f"{REDIS_SERVER}/{redis_db(7)}"


@pytest.fixture
def broker() -> Iterator[Any]:
    with redis_test_broker(URL) as broker:
        yield broker


def _job(n: int | str) -> JobRecord:
    return JobRecord(id=f"s::{n}", site="s", queue="default", method="m.f", payload=b"{}")


def _lane_client_id(broker: Any) -> int:
    """The server-side id of the calling thread's lane connection."""
    lane = broker._connection()[3]
    assert lane is not None, "a plain Redis URL must get the fast lane"
    conn = lane._connection()
    conn.send_command("CLIENT", "ID")
    return int(conn.read_response())


def test_scripts_run_on_the_calling_threads_own_connection(broker: Any) -> None:
    broker.enqueue(_job(1))
    mine = _lane_client_id(broker)
    theirs: list[int] = []

    def other() -> None:
        broker.enqueue(_job(2))
        theirs.append(_lane_client_id(broker))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert theirs and theirs[0] != mine
    assert _lane_client_id(broker) == mine  # kept between calls, not taken from a pool
    assert broker.queue_length("default") == 2


def test_a_killed_lane_connection_is_retried_once_and_the_job_stored_once(broker: Any) -> None:
    import redis

    broker.enqueue(_job("a"))
    victim = _lane_client_id(broker)
    admin = redis.Redis.from_url(URL)
    try:
        assert admin.client_kill_filter(_id=victim) == 1
        assert broker.enqueue(_job("b"))  # the lane meets a closed socket; the full path runs it
        assert broker.queue_length("default") == 2
        assert sorted(r.id for r in broker.find(status="queued")) == ["s::a", "s::b"]
        assert _lane_client_id(broker) != victim  # the lane reconnected for the next call
        claimed = broker.claim(["default"], "w")
        assert claimed is not None and claimed.id == "s::a"
    finally:
        admin.close()


def test_a_forked_child_uses_a_connection_of_its_own(broker: Any) -> None:
    parent = _lane_client_id(broker)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: enqueue through the inherited broker, report its connection
        code = 1
        try:
            broker.enqueue(_job("child"))
            os.write(write, str(_lane_client_id(broker)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    child = int(os.read(read, 64) or b"0")
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child not in (0, parent)
    assert _lane_client_id(broker) == parent  # the parent's socket was left alone
    assert broker.get("s::child") is not None


def test_a_script_the_server_lost_is_loaded_again_on_the_lane(broker: Any) -> None:
    import redis

    broker.enqueue(_job(1))
    admin = redis.Redis.from_url(URL)
    try:
        admin.script_flush()
    finally:
        admin.close()
    lane_id = _lane_client_id(broker)
    assert broker.enqueue(_job(2))
    assert _lane_client_id(broker) == lane_id  # NOSCRIPT handled on the lane, not by reconnecting
    assert broker.queue_length("default") == 2
    done = broker.claim(["default"], "w")
    assert done is not None and broker.finish(done.id, "w", b"1", Retention())


def test_wait_for_replicas_keeps_redis_pys_full_path() -> None:
    from jobbench.brokers.redis import RedisBroker
    from jobbench.brokers.redis_conn import RedisSettings

    settings = RedisSettings(URL, socket_timeout=5.0)
    waiting = RedisSettings(URL, socket_timeout=5.0, wait_replicas=1)
    assert RedisBroker(URL, "x", settings=settings)._connection()[3] is not None
    assert RedisBroker(URL, "x", settings=waiting)._connection()[3] is None


def _claim_in_thread(broker: Any, timeout: float) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(broker.claim(["default"], "w", timeout)))
    thread.start()
    return thread, got


def test_a_waiting_claim_runs_behind_its_blpop_and_dates_the_job_when_it_woke(
    broker: Any,
) -> None:
    """The claim written behind the BLPOP was built before the wait: the job's started_at must
    still be the moment it was claimed (the waiter's clock), not when the wait began."""
    import time

    assert broker._connection()[3] is not None  # the lane: the one-write wait and claim
    thread, got = _claim_in_thread(broker, 5.0)
    time.sleep(0.6)  # the claimer is blocked on the wake list by now
    enqueued = time.time()
    broker.enqueue(_job("late"))
    thread.join(5)
    assert got and got[0] is not None and got[0].id == "s::late"
    started = broker.get("s::late").started_at
    assert enqueued - 0.05 <= started <= time.time()  # not ~0.6 s early
    assert got[0].started_at == started


def test_a_script_the_server_lost_while_a_claimer_waited_is_loaded_and_the_job_claimed(
    broker: Any,
) -> None:
    """The claim behind the BLPOP meets NOSCRIPT once the BLPOP returns: loaded, then run."""
    import time

    import redis

    broker.claim(["default"], "w")  # the scripts are known to the server...
    thread, got = _claim_in_thread(broker, 5.0)
    time.sleep(0.3)
    admin = redis.Redis.from_url(URL)
    try:
        admin.script_flush()  # ...and forgotten while the claimer waits
    finally:
        admin.close()
    broker.enqueue(_job("after-flush"))  # loads only the enqueue script, and wakes the claimer
    thread.join(5)
    assert got and got[0] is not None and got[0].id == "s::after-flush"
    assert broker.get("s::after-flush").status == "started"


def test_a_claimer_whose_link_is_cut_while_waiting_reports_the_broker_unavailable(
    broker: Any,
) -> None:
    import time

    import redis

    from jobbench.errors import BrokerUnavailable

    broker.claim(["default"], "w")
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            broker.claim(["default"], "w", 5.0)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    admin = redis.Redis.from_url(URL)
    try:
        db = URL.rsplit("/", 1)[1]  # (other tests' claimers may wait on other databases)
        victims = [c for c in admin.client_list() if c["cmd"] == "blpop" and c["db"] == db]
        assert len(victims) == 1
        admin.client_kill_filter(_id=victims[0]["id"])
    finally:
        admin.close()
    thread.join(5)
    assert errors and isinstance(errors[0], BrokerUnavailable)


def _library() -> str:
    from jobbench.brokers.redis_codec import lua_library

    return lua_library()[0].removesuffix("_")


def _libraries(client: Any) -> list[str]:
    return [dict(zip(e[::2], e[1::2], strict=True))["library_name"] for e in client.function_list()]


def test_the_lane_calls_the_scripts_as_functions_and_reloads_a_lost_library(broker: Any) -> None:
    """On Redis 7 the lane sends FCALLs of one library (the ~20 kB common prelude compiled once,
    not per call). A server that lost the library (FUNCTION DELETE, a restart without
    persistence) gets it loaded again by the next call, which then succeeds."""
    import redis

    admin = redis.Redis.from_url(URL, decode_responses=True)
    try:
        if int(admin.info("server")["redis_version"].split(".")[0]) < 7:
            pytest.skip("Redis Functions need Redis 7; older servers are served by EVALSHA")
        broker.enqueue(_job(1))
        assert _library() in _libraries(admin)
        admin.function_delete(_library())
        assert broker.enqueue(_job(2))  # "function not found": loaded, called again
        assert _library() in _libraries(admin)
        claimed = broker.claim(["default"], "w")
        assert claimed is not None and claimed.id == "s::1"
        assert broker.queue_length("default") == 1
    finally:
        admin.close()


def test_a_user_who_may_not_fcall_is_served_by_evalsha(broker: Any) -> None:
    import redis

    from jobbench.brokers.redis import RedisBroker

    user, password = f"nofcall-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = redis.Redis.from_url(URL)
    rules = ["on", f">{password}", f"~{broker.prefix}*", "+@all", "-fcall", "-function"]
    admin.execute_command("ACL", "SETUSER", user, "reset", *rules)
    host = URL.split("//", 1)[1]
    limited = RedisBroker(f"redis://{user}:{password}@{host}", broker.bench_id)
    try:
        assert limited.enqueue(_job("a"))
        claimed = limited.claim(["default"], "w")
        assert claimed is not None and limited.finish(claimed.id, "w", b"1", Retention())
        assert broker.get("s::a").status == "finished"
        assert limited._connection()[3]._library is None  # it fell back, once
    finally:
        limited.close()
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()
