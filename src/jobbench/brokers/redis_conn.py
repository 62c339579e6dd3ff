"""How the Redis broker connects: one server, a Sentinel-watched master, or a Cluster; ACL
credentials, TLS, socket timeouts and keepalive; and the optional WAIT for replicas.

The settings come from the bench config under Frappe's names where Frappe has them
(``use_rq_auth``/``rq_username``/``rq_password``, the ``redis_queue_sentinel*`` and
``redis_queue_master_*`` keys, read as ``frappe.utils.redis_queue.RedisQueue.get_connection``
reads them) and under ``redis_queue_*`` names for what Frappe has no key for (docs/
configuration.md, "Redis connection"). The clients are redis-py's own: ``Redis.from_url``,
``redis.sentinel.Sentinel.master_for`` (its pool asks the sentinels for the master on every new
connection, so a failover is followed without a restart) and ``redis.cluster.RedisCluster``
(routes each script by its one key). Nothing here is hand-written connection machinery.

Every key of a bench carries the hash tag ``{<bench_id>}`` (``key_prefix``), so all of them
live in one Cluster slot and every script, which touches only keys built from its KEYS[1]
prefix, runs on one node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.sentinel import Sentinel

from jobbench.brokers.redis_codec import hide_password
from jobbench.errors import ConfigError, ReplicationTimeout

Client = redis.Redis | RedisCluster

# The config keys that shape the connection (besides redis_queue and bench_id); a change of
# any of them makes a new broker (factory.broker_key).
CONNECTION_KEYS = (
    "use_rq_auth",
    "rq_username",
    "rq_password",
    "redis_queue_sentinel_enabled",
    "redis_queue_sentinels",
    "redis_queue_master_service",
    "redis_queue_sentinel_username",
    "redis_queue_sentinel_password",
    "redis_queue_master_username",
    "redis_queue_master_password",
    "redis_queue_cluster",
    "redis_queue_ssl_ca_certs",
    "redis_queue_ssl_certfile",
    "redis_queue_ssl_keyfile",
    "redis_queue_ssl_cert_reqs",
    "redis_queue_socket_timeout",
    "redis_queue_socket_keepalive",
    "redis_queue_wait_replicas",
    "redis_queue_wait_timeout",
)
_KEYSET = frozenset(CONNECTION_KEYS)
_TLS_KEYS = {
    "redis_queue_ssl_ca_certs": "ssl_ca_certs",
    "redis_queue_ssl_certfile": "ssl_certfile",
    "redis_queue_ssl_keyfile": "ssl_keyfile",
    "redis_queue_ssl_cert_reqs": "ssl_cert_reqs",
}


def key_prefix(bench_id: str) -> str:
    """``jb:{<bench_id>}:``, the start of every key of the bench. The braces are a Cluster hash
    tag: only the part inside them is hashed, so all the bench's keys share one slot. A
    ``bench_id`` with a brace would end (or empty) the tag early, so it is refused."""
    if "{" in bench_id or "}" in bench_id:
        raise ConfigError(
            f"bench_id {bench_id!r} must not contain '{{' or '}}' with the Redis broker (its "
            "keys are 'jb:{<bench_id>}:...', a Redis Cluster hash tag); choose another bench_id"
        )
    return f"jb:{{{bench_id}}}:"


def settings_key(conf: dict[str, Any]) -> str:
    """The connection keys set in ``conf``, as text ('' when none is): part of the broker's
    cache key, so a process whose config changes gets a broker for the new settings."""
    present = _KEYSET.intersection(conf)  # get_broker runs per enqueue: keep this cheap
    if not present:
        return ""
    shown = {key: conf[key] for key in present if conf[key] is not None}
    return json.dumps(shown, sort_keys=True) if shown else ""


def _host_port(node: str) -> tuple[str, int]:
    host, _, port = node.rpartition(":")
    return host.strip("[]"), int(port)  # config.py checked the shape


@dataclass(frozen=True)
class RedisSettings:
    """Everything the broker needs to connect; ``from_conf`` reads it from a bench config."""

    url: str
    username: str | None = None
    password: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_service: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    cluster: bool = False
    socket_timeout: float = 5.0
    socket_keepalive: bool = True
    tls: tuple[tuple[str, str], ...] = ()  # redis-py ssl_* keyword arguments
    wait_replicas: int = 0
    wait_timeout: float = 1.0

    def __post_init__(self) -> None:
        self.check()  # also when made directly, not through from_conf

    @classmethod
    def from_conf(cls, conf: dict[str, Any]) -> RedisSettings:
        """Read the settings, checking what config.py cannot check key by key (combinations).

        Credentials follow Frappe's ``get_redis_conn``: with ``use_rq_auth`` the user is
        ``rq_username`` (default: the bench_id) with ``rq_password``; through Sentinel the
        master's ``redis_queue_master_username``/``_password`` win over those."""
        url = str(conf["redis_queue"])
        user = password = None
        if conf.get("use_rq_auth"):
            user = conf.get("rq_username") or str(conf.get("bench_id") or "default")
            password = conf.get("rq_password")
        sentinel = bool(conf.get("redis_queue_sentinel_enabled"))
        if sentinel:
            user = conf.get("redis_queue_master_username", user)
            password = conf.get("redis_queue_master_password", password)
        settings = cls(
            url=url,
            username=user,
            password=password,
            sentinels=tuple(map(_host_port, conf.get("redis_queue_sentinels") or ()))
            if sentinel
            else (),
            master_service=conf.get("redis_queue_master_service"),
            sentinel_username=conf.get("redis_queue_sentinel_username"),
            sentinel_password=conf.get("redis_queue_sentinel_password"),
            cluster=bool(conf.get("redis_queue_cluster")),
            socket_timeout=float(conf.get("redis_queue_socket_timeout", 5.0)),
            socket_keepalive=bool(conf.get("redis_queue_socket_keepalive", 1)),
            tls=tuple((arg, str(conf[key])) for key, arg in _TLS_KEYS.items() if key in conf),
            wait_replicas=int(conf.get("redis_queue_wait_replicas", 0)),
            wait_timeout=float(conf.get("redis_queue_wait_timeout", 1.0)),
        )
        settings.check(sentinel)
        return settings

    def check(self, sentinel: bool = False) -> None:
        """Refuse combinations that cannot work; ``sentinel``: redis_queue_sentinel_enabled."""
        if sentinel and not (self.sentinels and self.master_service):
            raise ConfigError(
                "redis_queue_sentinel_enabled needs redis_queue_sentinels "
                '(["host:port", ...]) and redis_queue_master_service; set both'
            )
        if self.sentinels and self.cluster:
            raise ConfigError(
                "redis_queue_cluster and redis_queue_sentinel_enabled exclude each other "
                "(a Cluster fails over by itself); set only one"
            )
        if self.cluster and self.wait_replicas:
            raise ConfigError(
                "redis_queue_wait_replicas is not supported with redis_queue_cluster; "
                "set it to 0 or use one master (with Sentinel)"
            )

    def describe(self) -> str:
        """Where the broker is, for error messages (no password)."""
        if self.sentinels:
            nodes = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"the master '{self.master_service}' of the sentinels {nodes}"
        kind = "the Redis Cluster at " if self.cluster else ""
        return kind + hide_password(self.url)

    @property
    def hint(self) -> str:
        """What to check when the broker cannot be reached."""
        if self.sentinels:
            return (
                "check that the sentinels run and know a master named "
                f"'{self.master_service}' (SENTINEL GET-MASTER-ADDR-BY-NAME)"
            )
        return (
            "check that redis-server is running there and that redis_queue in the bench config "
            "points at it"
        )

    @property
    def waits(self) -> tuple[int, int] | None:
        """(replicas, timeout in ms) for WAIT after each write, or None."""
        if not self.wait_replicas:
            return None
        return self.wait_replicas, max(1, round(self.wait_timeout * 1000))

    def connect(self) -> Client:
        """A new client (with its own pool) for these settings."""
        common: dict[str, Any] = {
            "decode_responses": False,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            "socket_keepalive": self.socket_keepalive,
        }
        if self.username is not None:
            common["username"] = self.username
        if self.password is not None:
            common["password"] = self.password
        tls: dict[str, Any] = dict(self.tls)
        if self.sentinels:
            return self._master(common, tls)
        if self.cluster:
            return RedisCluster.from_url(self.url, **common, **tls)
        return redis.Redis.from_url(self.url, health_check_interval=30, **common, **tls)

    def _master(self, common: dict[str, Any], tls: dict[str, Any]) -> redis.Redis:
        """The Sentinel-managed master. ``redis_queue`` still gives the database number and,
        with ``rediss://``, TLS to the master; its host and port are not used."""
        parts = urlsplit(self.url)
        db = int(parts.path.strip("/") or 0) if parts.scheme != "unix" else 0
        if parts.scheme == "rediss":
            tls = {"ssl": True, **tls}
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
        }
        if self.sentinel_username:
            sentinel_kwargs["username"] = self.sentinel_username
        if self.sentinel_password:
            sentinel_kwargs["password"] = self.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
            list(self.sentinels), sentinel_kwargs=sentinel_kwargs, db=db, **common, **tls
        )
        master: redis.Redis = sentinel.master_for(str(self.master_service))  # type: ignore[no-untyped-call,unused-ignore]
        return master


def check_acks(acks: Any, waits: tuple[int, int]) -> None:
    """Raise ReplicationTimeout unless WAIT's reply says enough replicas have the write."""
    if isinstance(acks, Exception):
        raise acks
    if int(acks) < waits[0]:
        raise ReplicationTimeout(
            f"only {int(acks)} of {waits[0]} replicas confirmed the write within {waits[1]} ms "
            "(redis_queue_wait_replicas): it is on the master but a failover could lose it; "
            "check the replicas (INFO replication)"
        )


def run_waiting(
    client: Client,
    script: Script,
    keys: tuple[str, ...],
    args: tuple[Any, ...],
    waits: tuple[int, int],
) -> Any:
    """Run ``script`` and WAIT for the replicas in one pipelined round trip on one connection
    (WAIT counts the writes of its own connection). A server without the script (restart,
    failover to a replica that never saw SCRIPT LOAD) gets it loaded, and the pair is sent
    again: a script that did not run changed nothing."""
    for _ in range(2):
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.execute_command("WAIT", *waits)
        reply, acks = pipe.execute(raise_on_error=False)
        if isinstance(reply, redis.exceptions.NoScriptError):
            client.script_load(script.script)
            continue
        if isinstance(reply, Exception):
            raise reply
        check_acks(acks, waits)
        return reply
    raise redis.exceptions.ConnectionError("the server keeps losing the broker's scripts")
