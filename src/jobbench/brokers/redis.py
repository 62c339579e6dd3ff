"""The Redis broker: every change one Lua script, so each operation is atomic and one round trip.

Key layout (``P`` = ``jb:{<bench_id>}:``, a Cluster hash tag: every key of a bench is in one
slot; a stored job id is ``<site>::<job_id>``)::

    P job:<id>              hash   one JobRecord; None fields are not stored. Extra field
                                   ``expires_at`` once final; the hash PEXPIREATs then too
    P queue:<queue>         list   ids ``queued`` in <queue>, head first (claim LPOPs)
    P idx:<queue>:<status>  zset   id -> enqueued_at: every record sits in exactly one of these
                                   (its queue and status); find() and counts() read them
    P queues                set    every queue name ever used
    P started               zset   id -> started_at of ``started`` jobs (reap reads it)
    P scheduled             zset   id -> retry_at of ``scheduled`` jobs, retries and delayed
                                   jobs alike (promote_due and claims read the due ones)
    P expiring              zset   "<status>|<len(queue)>|<queue><id>" -> expires_at of final
                                   records; cleanup() deletes the due ones with their entries
                                   even when Redis already expired the hash
    P failed:<queue>        zset   id -> ended_at of ``failed`` jobs, for failed_limit trimming
    P wake:<queue>          list   wake tokens for idle claimers (at most one per queued job)
    P workers               zset   worker name -> heartbeat expiry (reap compares with ``now``)
    P worker:<name>         string WorkerInfo as JSON, with a TTL of the heartbeat
    P lease:<name>          string owner of the lease, with a TTL
    P once                  zset   once_key -> when it may be used again (enqueue takes keys;
                                   cleanup() forgets the expired ones)
    P counters              hash   "<kind>|<len(site)>|<site><queue>" -> running total (HINCRBY
                                   in the claim/finish/fail/mark_stopped/reap scripts)
    P durations             hash   "<le>|<queue>" -> jobs in that (non-cumulative) bucket, and
                                   "sum|<queue>", "count|<queue>"; updated by finish/fail/reap
    P markers               hash   name -> float (set_marker/get_marker)
    P timeline:<hour>       hash   "<minute>|<kind>|<queue>" -> attempts that ended finished/
                                   failed in that minute (finish/fail/reap); EXPIREAT 25 h
                                   after the hour (timeline())
    P waiting:<id>          string set (short TTL) while someone waits for the job's end
    P done:<id>             list   one token once a waited-on job ended; waiters BLMOVE it onto
                                   itself, so all of them wake (expires after 10 s)
    P claimwait:<worker>    string "<worker's now> <server's now>" of the worker's last claim
                                   that found nothing (a claim deferred behind a BLPOP dates
                                   its jobs from it: lua/claim.lua); expires after 10 min

A delayed job's hash carries one field beyond the record, ``front`` = "1", when it was
enqueued ``at_front``: promotion then pushes it at the head of its queue and drops the field.

The status is a field of the hash; the indexes follow it inside the same script. The scripts
(``lua/*.lua``, each prefixed with ``lua/common.lua``) get the prefix as their one key, KEYS[1]
(and again as ARGV[1]), and derive every key from it: all in the prefix's slot, so they run on a
Redis Cluster too (routed by KEYS[1]). How the client connects (one server, Sentinel, Cluster,
credentials, TLS, WAIT for replicas) is ``brokers/redis_conn.py``. Times come from this
process' clock. On the fast lane (a plain server) the scripts are FCALLs of one Redis Functions
library (Redis 7+, ``redis_codec.lua_library``), else EVALSHAs of the scripts themselves.

Retention: a final record expires at ``expires_at`` (the hash is PEXPIREAT'd then, and get()/
find()/counts() stop showing it at that moment); cleanup() removes due records together with
their index entries. Reads never delete.

Waiting claims do not poll: the claim script deletes the wake lists of the queues it found empty,
in the same atomic step, and the claimer then BLPOPs those lists; any later enqueue, requeue or
promotion pushes a token and wakes it. On the fast lane the next claim is written behind the
BLPOP, so the server runs it as soon as the BLPOP returns: one round trip from wake to job.
BLPOP blocks in slices shorter than the socket timeout, and no longer than until the earliest
scheduled job falls due (the claim script says when), so an idle worker queues and takes a
delayed job within milliseconds of its time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

import redis
from redis.commands.core import Script

from jobbench.brokers.base import (
    DURATION_BUCKETS,
    HELD_REQUEUED,
    TIMELINE_KEEP,
    Broker,
    DurationHistogram,
    EnqueueItem,
    Retention,
    WorkerInfo,
    cumulative,
)
from jobbench.brokers.redis_codec import (
    enqueue_args,
    enqueue_results,
    finish_args,
    finish_claim_args,
    hide_password,
    le,
    live_record,
    lua_library,
    lua_sources,
    ms,
    opt,
    opt_num,
)
from jobbench.brokers.redis_conn import Client, RedisSettings, key_prefix, run_waiting
from jobbench.brokers.redis_lane import Lane
from jobbench.errors import BrokerError, BrokerUnavailable
from jobbench.jobs.record import FINAL_STATUSES, JobRecord, JobStatus

__all__ = ["WORKER_DIED", "RedisBroker", "hide_password", "lua_sources"]

WORKER_DIED = "worker died: its heartbeat expired while the job was running"
_CLEANUP_BATCH = 1000
_MIN_BLOCK = 0.001
# Redis ends a blocking call's timeout on its own timer (hz 10: up to 100 ms late), so a
# claimer waiting for a due job blocks until this long before it, then sleeps the rest here.
_TIMER_SLACK = 0.1
# What makes the broker unreachable for now: connection errors (Sentinel's "no master found"
# among them), and a Cluster between owners of a slot (CLUSTERDOWN, TRYAGAIN, slot not covered).
_REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)
# Scripts that change no job: not followed by WAIT when redis_queue_wait_replicas is set.
_READS = frozenset({"find", "counts", "workers", "position", "wait_check"})


class RedisBroker(Broker):
    """Broker on one Redis server; a connection pool per process, shared by its threads."""

    def __init__(
        self,
        url: str,
        bench_id: str,
        *,
        socket_timeout: float = 5.0,
        settings: RedisSettings | None = None,
    ) -> None:
        self.url = url
        self.bench_id = bench_id
        self.settings = settings or RedisSettings(url, socket_timeout=socket_timeout)
        self.socket_timeout = self.settings.socket_timeout
        self.prefix = key_prefix(bench_id)
        self._keys = (self.prefix,)
        self._waits = self.settings.waits
        self._safe_url = self.settings.describe()
        # (pid, client, scripts, lane), replaced as a whole: no lock a fork could inherit held
        self._conn: tuple[int, Client, dict[str, Script], Lane | None] | None = None
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise BrokerUnavailable(
                f"the Redis broker URL {self._safe_url!r} is not valid; "
                "use redis://[:password@]host[:port][/db] (or rediss://, unix://)"
            )

    # -- connections --------------------------------------------------------------------------
    def _connection(self) -> tuple[int, Client, dict[str, Script], Lane | None]:
        """This process' client, scripts and fast lane (brokers/redis_lane.py: for a plain
        server without WAIT); a new pool after a fork (sockets never shared).

        Two threads racing here may each build one; the loser's pool is simply dropped."""
        conn = self._conn
        if conn is not None and conn[0] == os.getpid():
            return conn
        client = self.settings.connect()
        scripts = {name: client.register_script(src) for name, src in lua_sources().items()}
        plain = not (self.settings.sentinels or self.settings.cluster or self._waits)
        lane = Lane(client, lua_library()) if plain and Lane.usable(client) else None
        self._conn = conn = (os.getpid(), client, scripts, lane)
        return conn

    def _client(self) -> Client:
        return self._connection()[1]

    def client(self) -> Client:
        """This process' Redis client (RQ-style callbacks get it as ``connection``)."""
        return self._client()

    def _unavailable(self, exc: Exception) -> NoReturn:
        raise BrokerUnavailable(
            f"cannot reach the Redis broker at {self._safe_url}: {exc}; {self.settings.hint}"
        ) from exc

    def _run(self, name: str, *args: Any) -> Any:
        """Run script ``name`` with KEYS ``[prefix]``, ARGV ``[prefix, *args]``: one round trip
        (with WAIT for the replicas in the same one, when configured and the script writes)."""
        _, client, scripts, lane = self._connection()
        if lane is not None:
            try:
                return lane.run(name, scripts[name], self._keys, (self.prefix, *args))
            except _REDIS_ERRORS:
                pass  # the full path below tries again, with redis-py's retries (redis_lane.py)
            except redis.exceptions.NoPermissionError as exc:
                self._refused(exc)
        try:
            if self._waits is not None and name not in _READS:
                script, argv = scripts[name], (self.prefix, *args)
                return run_waiting(client, script, self._keys, argv, self._waits)
            return scripts[name](keys=self._keys, args=(self.prefix, *args), client=client)
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        except redis.exceptions.NoPermissionError as exc:
            self._refused(exc)

    def _refused(self, exc: Exception) -> NoReturn:  # an ACL user without our keys
        raise BrokerError(
            f"the Redis broker at {self._safe_url} refused: {exc}; the Redis user needs "
            f"every command on the keys '{self.prefix}*' (ACL SETUSER ... ~{self.prefix}*)"
        ) from exc

    # -- producing ----------------------------------------------------------------------------
    def enqueue(
        self,
        record: JobRecord,
        *,
        at_front: bool = False,
        deduplicate: bool = False,
        max_queued: int | None = None,
        once_key: str | None = None,
        run_at: float | None = None,
    ) -> bool:
        item = EnqueueItem(record, at_front, deduplicate, once_key, run_at)
        return self.enqueue_many([item], max_queued=max_queued)[0]

    def enqueue_many(
        self, items: Sequence[EnqueueItem], *, max_queued: int | None = None
    ) -> list[bool]:
        """One script call for the whole batch: one round trip, one atomic step."""
        if not items:
            return []
        now = time.time()
        done = self._run("enqueue", *enqueue_args(items, now, max_queued))
        return enqueue_results(items, done, now, max_queued)

    # -- consuming ----------------------------------------------------------------------------
    def settle_and_claim(
        self,
        finished: Sequence[tuple[str, bytes | None]],
        worker: str,
        keep: Retention,
        queues: Sequence[str],
        limit: int,
        hold: Collection[str] | None = None,
    ) -> list[JobRecord]:
        """One script (lua/finish_claim.lua): one round trip, one atomic step. A server that
        lost its scripts gets it loaded again by the call (it never ran half of it)."""
        limit = limit if queues else 0
        if not finished and limit <= 0:
            return []
        args = finish_claim_args(finished, worker, keep, queues, limit, hold)
        reply = self._run("finish_claim", *args)
        return (
            [JobRecord.from_flat_bytes(flat) for flat in reply] if isinstance(reply, list) else []
        )

    def claim(self, queues: Sequence[str], worker: str, timeout: float = 0.0) -> JobRecord | None:
        if not queues:
            return None
        deadline = time.monotonic() + timeout
        reply = self._claim_now(queues, worker)
        while True:
            if isinstance(reply, list) and reply:
                return JobRecord.from_flat_bytes(reply[0])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if isinstance(reply, bytes):  # nothing queued; a scheduled job falls due then
                until_due = float(reply) - time.time()
                if until_due <= _TIMER_SLACK and until_due < remaining:
                    time.sleep(max(0.0, until_due))  # then claim: it queues the due job
                    reply = self._claim_now(queues, worker)
                    continue
                remaining = min(remaining, until_due - _TIMER_SLACK)
            reply = self._wait_and_claim(queues, remaining, worker)

    def _claim_now(self, queues: Sequence[str], worker: str) -> Any:
        """One claim script call for one job, dated now (lua/claim.lua's raw reply)."""
        return self._run("claim", worker, time.time(), 1, "", *queues)

    def _wait_and_claim(self, queues: Sequence[str], remaining: float, worker: str) -> Any:
        """Block on the queues' wake lists, then claim: on the fast lane in one round trip (the
        claim written behind the BLPOP, deferred: lua/claim.lua), else in two.

        A lane failure here is not retried on the full path: the claim behind the BLPOP may
        have run without its reply reaching us, so it is reported as an outage, after which
        the executor takes back jobs started under its name that it never ran."""
        _, _, scripts, lane = self._connection()
        if lane is None:
            self._wait(queues, remaining)
            return self._claim_now(queues, worker)
        block = max(_MIN_BLOCK, min(remaining, self._block_limit()))
        wake = tuple(f"{self.prefix}wake:{q}" for q in queues)
        args = (self.prefix, worker, time.time(), 1, "1", *queues)
        try:
            return lane.after_blpop(wake, block, "claim", scripts["claim"], self._keys, args)
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        except redis.exceptions.NoPermissionError as exc:
            self._refused(exc)

    def _block_limit(self) -> float:
        """The longest blocking call: well under the socket timeout (Redis may answer a
        blocking call up to 100 ms late); should the read still time out, the next round trip
        tells whether the server is really gone."""
        return max(self.socket_timeout - 0.25, self.socket_timeout / 2)

    def _wait(self, queues: Sequence[str], remaining: float) -> None:
        """Block until a wake token arrives on one of ``queues`` or ``remaining`` runs out."""
        block = max(_MIN_BLOCK, min(remaining, self._block_limit()))
        keys = [f"{self.prefix}wake:{q}" for q in queues]
        try:
            self._client().blpop(keys, timeout=block)
        except redis.exceptions.TimeoutError:
            return
        except redis.exceptions.ConnectionError as exc:
            self._unavailable(exc)

    def finish(self, job_id: str, worker: str, result: bytes | None, keep: Retention) -> bool:
        done = self._run("finish", *finish_args(job_id, worker, result, keep))
        return bool(done)

    def fail(
        self,
        job_id: str,
        worker: str | None,
        exc_info: str,
        keep: Retention,
        retry_at: float | None = None,
    ) -> bool:
        now = time.time()
        expires = now + keep.failure_ttl
        done = self._run(
            "fail",
            job_id,
            opt(worker),
            exc_info,
            now,
            "" if retry_at is None else retry_at,
            expires,
            ms(expires),
            keep.failed_limit,
        )
        return bool(done)

    def mark_stopped(self, job_id: str, worker: str | None, reason: str, keep: Retention) -> bool:
        now = time.time()
        expires = now + keep.failure_ttl
        done = self._run("mark_stopped", job_id, opt(worker), reason, now, expires, ms(expires))
        return bool(done)

    # -- control ------------------------------------------------------------------------------
    def request_stop(self, job_id: str, keep: Retention) -> str | None:
        now = time.time()
        expires = now + keep.failure_ttl
        status = self._run("request_stop", job_id, now, expires, ms(expires))
        return None if status is None else str(JobStatus(status.decode()))

    def run_now(self, job_id: str) -> bool:
        return bool(self._run("run_now", job_id))

    def begin(self, job_id: str, worker: str) -> str:
        return str(self._run("begin", job_id, worker, time.time()).decode())

    def interrupt(self, job_id: str, worker: str | None, reason: str) -> bool:
        return bool(self._run("interrupt", job_id, worker or "", reason))

    def requeue(self, job_id: str) -> bool:
        return bool(self._run("requeue", job_id, time.time()))

    def delete(self, job_id: str) -> bool:
        return bool(self._run("delete", job_id))

    def purge(
        self, statuses: Sequence[str], queue: str | None = None, site: str | None = None
    ) -> int:
        wanted = [str(s) for s in statuses if s != JobStatus.STARTED]
        if not wanted:
            return 0
        return int(self._run("purge", opt(queue), opt(site), *wanted))

    def set_progress(self, job_id: str, progress: float | None, stage: str | None) -> None:
        self._run(
            "set_progress",
            job_id,
            int(progress is not None),
            opt_num(progress),
            int(stage is not None),
            opt(stage),
        )

    # -- liveness -----------------------------------------------------------------------------
    def heartbeat(self, info: WorkerInfo, ttl: float) -> None:
        info.heartbeat = time.time()
        self._run(
            "heartbeat", info.name, json.dumps(info.to_mapping()), info.heartbeat + ttl, ms(ttl)
        )

    def unregister_worker(self, name: str) -> None:
        self._run("unregister_worker", name)

    def workers(self) -> list[WorkerInfo]:
        infos = [WorkerInfo(**json.loads(raw)) for raw in self._run("workers", time.time())]
        return sorted(infos, key=lambda info: info.name)

    def reap(self, keep: Retention, now: float | None = None) -> list[str]:
        at = time.time() if now is None else now
        real_now = time.time()
        expires = real_now + keep.failure_ttl
        settled = self._run(
            "reap",
            at,
            WORKER_DIED,
            real_now,
            expires,
            ms(expires),
            keep.failed_limit,
            HELD_REQUEUED,
        )
        return [job_id.decode() for job_id in settled]

    def promote_due(self, now: float | None = None) -> int:
        return int(self._run("promote_due", time.time() if now is None else now))

    def cleanup(self, now: float | None = None) -> int:
        at = time.time() if now is None else now
        deleted = 0
        while True:
            examined, n = self._run("cleanup", at, _CLEANUP_BATCH)
            deleted += int(n)
            if int(examined) < _CLEANUP_BATCH:
                return deleted

    # -- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        try:
            data: dict[Any, Any] = self._client().hgetall(f"{self.prefix}job:{job_id}")
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        if not data:
            return None
        expires = data.get(b"expires_at")
        if expires is not None and float(expires) <= time.time():
            return None
        return JobRecord.from_flat_bytes([item for pair in data.items() for item in pair])

    def wait_final(self, job_id: str, timeout: float | None = None) -> JobRecord | None:
        """Check (raising the waiter's flag while pending), then block on ``done:<id>``; a
        token is rotated back, not taken, so every waiter of the job wakes."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        done = f"{self.prefix}done:{job_id}"
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            block = self._block_limit() if left is None else min(left, self._block_limit())
            flat = self._run("wait_check", job_id, ms(block + 2.0))
            record = live_record(flat)
            if record is None or record.status in FINAL_STATUSES:
                return record
            if block <= 0:
                return record
            try:
                # A fractional timeout (Redis >= 6 takes one; redis-py types it as whole seconds)
                wait = max(_MIN_BLOCK, block)
                self._client().blmove(done, done, wait, "LEFT", "RIGHT")  # type: ignore[arg-type]
            except redis.exceptions.TimeoutError:
                continue
            except redis.exceptions.ConnectionError as exc:
                self._unavailable(exc)

    def find(
        self,
        *,
        site: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        rows = self._run(
            "find", time.time(), opt(queue), opt(status), opt(site), limit, max(0, offset)
        )
        return [JobRecord.from_flat_bytes(flat) for flat in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        flat = self._run("counts", time.time())
        result: dict[str, dict[str, int]] = {}
        for i in range(0, len(flat), 3):
            result.setdefault(flat[i].decode(), {})[flat[i + 1].decode()] = int(flat[i + 2])
        return result

    def queue_length(self, queue: str) -> int:
        try:
            return int(self._client().llen(f"{self.prefix}queue:{queue}"))
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)

    def dependents(self, job_id: str, *, waiting: bool = True) -> list[str]:
        """Members of ``dependents:<id>``: the deferred ones still naming it, or all stored."""
        return sorted(raw.decode() for raw in self._run("dependents", job_id, int(not waiting)))

    def position(self, job_id: str) -> int | None:
        pos = self._run("position", job_id)
        return None if pos is None else int(pos)

    # -- metrics ------------------------------------------------------------------------------
    def _hgetall(self, name: str) -> dict[bytes, bytes]:
        """HGETALL of key ``P<name>`` (bytes, the client does not decode)."""
        try:
            data: dict[Any, Any] = self._client().hgetall(f"{self.prefix}{name}")
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        return data

    def counters(self) -> dict[tuple[str, str, str], int]:
        result: dict[tuple[str, str, str], int] = {}
        for raw, n in self._hgetall("counters").items():
            kind, length, rest = raw.decode().split("|", 2)
            size = int(length)
            result[(rest[:size], rest[size:], kind)] = int(n)
        return result

    def durations(self) -> dict[str, DurationHistogram]:
        bounds = {le(b): i for i, b in enumerate(DURATION_BUCKETS)}
        bounds["+Inf"] = len(DURATION_BUCKETS)
        per: dict[str, tuple[list[int], list[float]]] = {}
        for raw, value in self._hgetall("durations").items():
            field, queue = raw.decode().split("|", 1)
            counts, sums = per.setdefault(queue, ([0] * (len(DURATION_BUCKETS) + 1), [0.0]))
            if field == "sum":
                sums[0] = float(value)
            elif field in bounds:
                counts[bounds[field]] = int(value)
        return {queue: cumulative(counts, sums[0]) for queue, (counts, sums) in per.items()}

    def timeline(self, since: float) -> dict[tuple[int, str, str], int]:
        now = time.time()
        first = int(max(since, now - TIMELINE_KEEP) // 60)  # older hours have expired
        hours = range(first // 60, int(now // 3600) + 1)
        try:
            pipe = self._client().pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(f"{self.prefix}timeline:{hour}")
            found: list[dict[bytes, bytes]] = pipe.execute()
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        result: dict[tuple[int, str, str], int] = {}
        for data in found:
            for raw, n in data.items():
                minute, kind, queue = raw.decode().split("|", 2)
                if int(minute) >= first:
                    result[(int(minute), queue, kind)] = int(n)
        return result

    def set_marker(self, name: str, value: float) -> None:
        try:
            self._client().hset(f"{self.prefix}markers", name, repr(float(value)))
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)

    def get_marker(self, name: str) -> float | None:
        try:
            raw = self._client().hget(f"{self.prefix}markers", name)
        except _REDIS_ERRORS as exc:
            self._unavailable(exc)
        return None if raw is None else float(raw)

    # -- leases -------------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self._run("acquire_lease", name, owner, ms(ttl)))

    def release_lease(self, name: str, owner: str) -> None:
        self._run("release_lease", name, owner)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn[0] == os.getpid():
            conn[1].close()
            if conn[3] is not None:
                conn[3].close()
