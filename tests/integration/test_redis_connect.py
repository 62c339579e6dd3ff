"""How the Redis broker connects (brokers/redis_conn.py), against servers the test starts on
free loopback ports (tests/redis_servers.py): ACL users and ``requirepass`` (Frappe's
``use_rq_auth``/``rq_username``/``rq_password`` and a URL with user and password), TLS only
(certificates made by the test), a master watched by sentinels (Frappe's Sentinel keys) with
the WAIT setting; and the config combinations refused with a one-line ConfigError."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobbench.bench import Bench, init_bench
from jobbench.brokers.base import Retention
from jobbench.brokers.factory import close_brokers, get_broker
from jobbench.brokers.redis_conn import RedisSettings, key_prefix
from jobbench.config import validate
from jobbench.errors import BrokerError, BrokerUnavailable, ConfigError, ReplicationTimeout
from jobbench.jobs.record import JobRecord, full_id
from redis_servers import (
    MASTER_SERVICE,
    Server,
    make_certs,
    require_tools,
    start_sentinels,
    stop_all,
    tls_server,
)

KEEP = Retention()
ADMIN_PASSWORD = "admin-secret-1"
JB_PASSWORD = "jb-secret-2"


def _record(job_id: str) -> JobRecord:
    return JobRecord(id=full_id("s1", job_id), site="s1", queue="short", method="m", payload=b"")


def _round_trip(conf: dict[str, Any], bench: Bench) -> Any:
    """Enqueue, claim and finish one job through the factory's broker for ``conf``."""
    broker = get_broker(bench, conf)
    record = _record(uuid.uuid4().hex)
    assert broker.enqueue(record)
    claimed = broker.claim(["short"], "w1")
    assert claimed is not None and claimed.id == record.id
    assert broker.finish(record.id, "w1", b"ok", KEEP)
    got = broker.get(record.id)
    assert got is not None and got.status == "finished"
    return broker


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    yield init_bench(tmp_path / "bench")
    close_brokers()


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``requirepass`` for the default user, plus ACL users ``jb`` (this bench's keys only)
    and one named like the bench_id (Frappe's default rq_username)."""
    require_tools("redis-server")
    server = Server(tmp_path_factory.mktemp("acl"), ["--requirepass", ADMIN_PASSWORD])
    server.start(ping_kwargs={"password": ADMIN_PASSWORD})
    admin = server.client(password=ADMIN_PASSWORD)
    rules = ["on", f">{JB_PASSWORD}", "~jb:{acl-bench}:*", "+@all"]
    admin.execute_command("ACL", "SETUSER", "jb", "reset", *rules)
    admin.execute_command("ACL", "SETUSER", "acl-bench", "reset", *rules)
    try:
        yield server
    finally:
        stop_all([server])


def test_use_rq_auth_logs_in_as_rq_username(acl_server: Server, bench: Bench) -> None:
    conf = {"redis_queue": acl_server.url, "bench_id": "acl-bench", "use_rq_auth": 1,
            "rq_username": "jb", "rq_password": JB_PASSWORD}  # fmt: skip
    broker = _round_trip(conf, bench)
    assert broker.client().acl_whoami() == "jb"


def test_use_rq_auth_without_username_is_the_bench_id_as_in_frappe(
    acl_server: Server, bench: Bench
) -> None:
    conf = {"redis_queue": acl_server.url, "bench_id": "acl-bench", "use_rq_auth": 1,
            "rq_password": JB_PASSWORD}  # fmt: skip
    assert _round_trip(conf, bench).client().acl_whoami() == "acl-bench"


def test_user_and_password_in_the_url(acl_server: Server, bench: Bench) -> None:
    url = f"redis://jb:{JB_PASSWORD}@127.0.0.1:{acl_server.port}/0"
    assert _round_trip({"redis_queue": url, "bench_id": "acl-bench"}, bench)
    url = f"redis://:{ADMIN_PASSWORD}@127.0.0.1:{acl_server.port}/0"  # requirepass only
    assert _round_trip({"redis_queue": url, "bench_id": "acl-bench"}, bench)


def test_the_acl_keeps_a_user_to_its_bench_keys(acl_server: Server, bench: Bench) -> None:
    """The hash-tagged prefix is what an ACL key pattern names: another bench is refused."""
    conf = {"redis_queue": acl_server.url, "bench_id": "other", "use_rq_auth": 1,
            "rq_username": "jb", "rq_password": JB_PASSWORD}  # fmt: skip
    with pytest.raises(BrokerError, match=r"refused: .*jb:\{other\}:\*"):
        get_broker(bench, conf).enqueue(_record("x"))


def test_a_wrong_password_is_broker_unavailable_without_the_password(
    acl_server: Server, bench: Bench
) -> None:
    url = f"redis://jb:wrong-pass-3@127.0.0.1:{acl_server.port}/0"
    record = _record("x")
    with pytest.raises(BrokerUnavailable) as err:
        get_broker(bench, {"redis_queue": url, "bench_id": "acl-bench"}).enqueue(record)
    assert "wrong-pass-3" not in str(err.value) and "***" in str(err.value)


def test_tls_with_a_ca_and_a_client_certificate(tmp_path: Path, bench: Bench) -> None:
    require_tools("redis-server")
    certs = make_certs(tmp_path / "certs")
    server = tls_server(tmp_path / "tls", certs)
    try:
        url = f"rediss://127.0.0.1:{server.port}/0"
        conf = {"redis_queue": url, "bench_id": "tls-bench",
                "redis_queue_ssl_ca_certs": certs["ca.crt"],
                "redis_queue_ssl_certfile": certs["client.crt"],
                "redis_queue_ssl_keyfile": certs["client.key"]}  # fmt: skip
        validate(conf, "test")
        assert _round_trip(conf, bench)
        close_brokers()
        # Without our CA the server's certificate is not trusted: refused, named.
        untrusted = {"redis_queue": url, "bench_id": "tls-bench"}
        record = _record("y")
        with pytest.raises(BrokerUnavailable, match="certificate verify failed"):
            get_broker(bench, untrusted).enqueue(record)
        # A plain redis:// client is not answered by a TLS-only port.
        plain = {"redis_queue": f"redis://127.0.0.1:{server.port}/0", "bench_id": "tls-bench",
                 "redis_queue_socket_timeout": 1}  # fmt: skip
        with pytest.raises(BrokerUnavailable):
            get_broker(bench, plain).enqueue(record)
    finally:
        stop_all([server])


def test_sentinel_finds_the_master_and_wait_confirms_the_replica(
    tmp_path: Path, bench: Bench
) -> None:
    master, replica, sentinels = start_sentinels(tmp_path / "sentinel")
    try:
        conf = {"redis_queue": "redis://unused-host:1/0", "bench_id": "s-bench",
                "redis_queue_sentinel_enabled": 1,
                "redis_queue_sentinels": [f"127.0.0.1:{s.port}" for s in sentinels],
                "redis_queue_master_service": MASTER_SERVICE,
                "redis_queue_wait_replicas": 1}  # fmt: skip
        validate(conf, "test")
        broker = _round_trip(conf, bench)
        assert broker.client().connection_pool.get_master_address() == ("127.0.0.1", master.port)
        # WAIT returned: the replica already has the finished record.
        keys = replica.client().keys(f"{key_prefix('s-bench')}job:*")
        assert len(keys) == 1
        # More replicas than exist: the write lands on the master, and the caller is told.
        close_brokers()
        record = _record("z")
        many = {**conf, "redis_queue_wait_replicas": 2, "redis_queue_wait_timeout": 0.2}
        with pytest.raises(ReplicationTimeout, match="only 1 of 2 replicas"):
            get_broker(bench, many).enqueue(record)
        assert get_broker(bench, many).get(record.id) is not None
    finally:
        stop_all([master, replica, *sentinels])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"redis_queue_sentinel_enabled": 1}, "needs redis_queue_sentinels"),
        ({"redis_queue_cluster": 1, "redis_queue_wait_replicas": 1}, "not supported with"),
        ({"redis_queue_cluster": 1, "redis_queue_sentinel_enabled": 1,
          "redis_queue_sentinels": ["h:1"], "redis_queue_master_service": "m"}, "exclude"),
        ({"bench_id": "a}b"}, "must not contain"),
    ],
)  # fmt: skip
def test_combinations_that_cannot_work_are_config_errors(
    extra: dict[str, Any], message: str, bench: Bench
) -> None:
    conf = {"redis_queue": "redis://127.0.0.1:1/0", "bench_id": "b", **extra}
    with pytest.raises(ConfigError, match=message):
        get_broker(bench, conf)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("redis_queue_sentinels", ["no-port"]),
        ("redis_queue_sentinels", "h:1"),
        ("redis_queue_sentinels", ["h:99999"]),
        ("redis_queue_wait_replicas", -1),
        ("redis_queue_ssl_cert_reqs", "maybe"),
        ("use_rq_auth", "yes"),
        ("redis_queue_socket_timeout", 0),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}' must be"):
        validate({key: value}, "common_site_config.json")


def test_settings_from_frappe_keys() -> None:
    conf = {"redis_queue": "rediss://h:6380/2", "bench_id": "b1", "use_rq_auth": 1,
            "rq_password": "p", "redis_queue_sentinel_enabled": 1,
            "redis_queue_sentinels": ["10.0.0.1:26379", "[::1]:26380"],
            "redis_queue_master_service": "mymaster", "redis_queue_master_password": "mp",
            "redis_queue_sentinel_password": "sp"}  # fmt: skip
    s = RedisSettings.from_conf(conf)
    assert s.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    # Frappe: the master's own keys win over rq_*; the user defaults to the bench_id.
    assert (s.username, s.password, s.sentinel_password) == ("b1", "mp", "sp")
    assert "p" not in s.describe() and "mymaster" in s.describe()
    assert key_prefix("b1") == "jb:{b1}:"
    cluster = RedisSettings.from_conf(
        {"redis_queue": "redis://node1:7000", "redis_queue_cluster": 1}
    )
    assert cluster.cluster and not cluster.sentinels and "Cluster" in cluster.describe()
