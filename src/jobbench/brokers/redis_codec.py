"""What the Redis broker sends and reads: script sources, arguments, and records from replies.

Kept apart from ``brokers/redis.py`` (the operations) so each stays readable. The enqueue
script's arguments are built here (``enqueue_args``): a bulk enqueue of thousands of jobs
spends most of its time packing them, so fields every record of a batch shares (site, method,
user, serializer, timeout, ...) are sent once for the batch, not once per job.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Collection, Sequence
from dataclasses import fields
from functools import cache
from importlib import resources
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jobbench.brokers.base import ONCE_TTL, EnqueueItem, Retention, unknown_dependency
from jobbench.errors import DependencyNotFound, QueueOverloaded
from jobbench.jobs.record import JobRecord, JobStatus

# Counters a new record starts at 0: left out of its hash (a missing field reads as 0, and the
# scripts HINCRBY them from nothing).
_ZERO_DEFAULTS = frozenset(
    {
        "attempts",
        "retries_left",
        "retry_count",
        "stop_requested",
        "allow_dependency_failure",
        "concurrency_limit",
    }
)
# What the enqueue script writes from an item's header itself (lua/enqueue.lua).
_HEADER_FIELDS = frozenset({"id", "queue", "enqueued_at", "status", "retry_at"})
_SENT_FIELDS = tuple(f.name for f in fields(JobRecord) if f.name not in _HEADER_FIELDS)


@cache
def _lua_files() -> tuple[str, dict[str, str]]:
    """``common.lua``, ``common_limits.lua`` (dependencies and concurrency keys) and
    ``common_claim.lua`` (the worker's finish and claim) joined, and ``{name: text}`` of every
    other script in ``lua/``: read once per process, for both ways of sending them."""
    folder = resources.files("jobbench.brokers") / "lua"
    common = "\n".join(
        (folder / name).read_text(encoding="utf-8")
        for name in ("common.lua", "common_limits.lua", "common_claim.lua")
    )
    bodies = {
        entry.name.removesuffix(".lua"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".lua") and not entry.name.startswith("common")
    }
    return common, bodies


@cache
def lua_sources() -> dict[str, str]:
    """``{name: text}`` of every script in ``lua/``, each prefixed with the common files
    (``_lua_files``); the broker registers them (``register_script``) per connection."""
    common, bodies = _lua_files()
    return {name: common + "\n" + body for name, body in bodies.items()}


@cache
def lua_library() -> tuple[str, str]:
    """``(function prefix, source)`` of every script as one Redis Functions library (Redis 7+):
    loaded once per server (``FUNCTION LOAD``), each script is then an ``FCALL`` that no longer
    has the server compile and run the ~20 kB of ``common*.lua`` per call (about 21 µs of
    server CPU each, measured on Redis 7.0). The library's name carries a hash of its source,
    so benches of different jobbench versions on one server each call their own.

    KEYS, ARGV and P become the library's locals, set at the start of each call: a function
    gets its keys and arguments as parameters, and the scripts read them as before."""
    common, bodies = _lua_files()
    common = common.replace("local P = KEYS[1]\n", "local KEYS, ARGV, P = {}, {}, ''\n", 1)
    digest = hashlib.sha1(common.encode(), usedforsecurity=False)
    for name in sorted(bodies):
        digest.update(f"{name}\0{bodies[name]}".encode())
    name = f"jb_{digest.hexdigest()[:12]}"
    parts = [f"#!lua name={name}", common]
    for script, body in sorted(bodies.items()):
        parts.append(
            f"redis.register_function('{name}_{script}', function(keys, args)\n"
            f"KEYS, ARGV, P = keys, args, keys[1]\n{body}\nend)"
        )
    return f"{name}_", "\n".join(parts)


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def ms(seconds: float) -> str:
    """Whole milliseconds, rounded up, as Redis' PX/PEXPIREAT want them."""
    return str(max(1, math.ceil(seconds * 1000)))


def opt(value: str | None) -> str:
    return "" if value is None else value


def opt_num(value: float | None) -> float | str:
    return "" if value is None else value


def le(bound: float) -> str:
    """A bucket bound as lua/common.lua's BUCKETS spells it: 1.0 -> "1", 0.5 -> "0.5"."""
    return f"{bound:g}"


def finish_args(job_id: str, worker: str, result: bytes | None, keep: Retention) -> tuple[Any, ...]:
    now = time.time()
    expires = now + keep.results_ttl
    payload = b"" if result is None else result
    return (job_id, worker, now, int(result is not None), payload, expires, ms(expires))


def finish_claim_args(
    finished: Sequence[tuple[str, bytes | None]],
    worker: str,
    keep: Retention,
    queues: Sequence[str],
    limit: int,
    hold: Collection[str] | None = None,
) -> tuple[Any, ...]:
    """ARGV (after the prefix) of lua/finish_claim.lua."""
    now = time.time()
    expires = now + keep.results_ttl
    args: list[Any] = [worker, now, expires, ms(expires), limit, len(finished)]
    for job_id, result in finished:
        args += [job_id, int(result is not None), b"" if result is None else result]
    held: list[Any] = [""] if hold is None else [len(hold), *hold]
    return (*args, *held, *queues)


# -- records from replies -----------------------------------------------------------------------
def live_record(flat: Sequence[bytes]) -> JobRecord | None:
    """A record from HGETALL's flat list; None for no hash, or a final one past its retention
    (Redis may not have evicted the hash yet), as get() sees it."""
    for i in range(0, len(flat), 2):
        if flat[i] == b"expires_at" and float(flat[i + 1]) <= time.time():
            return None
    return JobRecord.from_flat_bytes(flat) if flat else None


# -- enqueue ------------------------------------------------------------------------------------
def _stored(name: str, value: Any) -> bool:
    """Whether a record field goes into the hash: None fields and zero counters do not."""
    return value is not None and not (value == 0 and name in _ZERO_DEFAULTS)


def _split_fields(records: Sequence[JobRecord]) -> tuple[list[Any], list[str]]:
    """``[name, value, ...]`` of the stored fields every record has alike, and the names of
    those that vary. One record (``enqueue``'s case, the common one) shares all of its own:
    a single pass over its fields instead of a column per field."""
    if len(records) == 1:
        fields_ = records[0].__dict__
        pairs = [(name, fields_[name]) for name in _SENT_FIELDS]
        return [x for pair in pairs if _stored(*pair) for x in pair], []
    shared: list[Any] = []
    varying: list[str] = []
    for name in _SENT_FIELDS:
        values = list(map(attrgetter(name), records))  # C loops: cheap per record
        if values.count(values[0]) == len(values):
            if _stored(name, values[0]):
                shared += (name, values[0])
        elif any(_stored(name, v) for v in values):
            varying.append(name)
    return shared, varying


def enqueue_args(items: Sequence[EnqueueItem], now: float, max_queued: int | None) -> list[Any]:
    """ARGV (after the prefix) of lua/enqueue.lua for ``items``: the batch's shared fields
    once, then per item its header and the fields of its own."""
    records = [item.record for item in items]
    shared, varying = _split_fields(records)
    deps = any(r.depends_on for r in records)
    args: list[Any] = [now, now + ONCE_TTL, "" if max_queued is None else max_queued]
    args += (now + Retention().failure_ttl if deps else "", len(shared) // 2, *shared)
    for item in items:
        record = item.record.__dict__
        own = [(n, record[n]) for n in varying if _stored(n, record[n])]
        delayed = item.run_at is not None and item.run_at > now
        flags = (
            f"{int(item.at_front)}{int(item.deduplicate)}{int(item.once_key is not None)}"
            f"{int(item.new_id and not item.deduplicate)}{int(bool(record['depends_on']))}"
        )
        args += (record["id"], record["queue"], flags, opt(item.once_key))
        args += (item.run_at if delayed else "", record["enqueued_at"], len(own))
        for pair in own:
            args += pair
    return args


# What lua/enqueue.lua answers per item: 1 taken (queued, or scheduled when delayed), 0 not,
# 3 deferred for its dependencies, 4 canceled for one of them.
_TAKEN_AS = {3: JobStatus.DEFERRED, 4: JobStatus.CANCELED}


def enqueue_results(
    items: Sequence[EnqueueItem], done: list[Any], now: float, max_queued: int | None
) -> list[bool]:
    """Whether each item was taken, with its record's status set as stored; a refusal of the
    batch (``{-1, queue}`` or ``{-2, dependency}``) raises ``QueueOverloaded`` or
    ``DependencyNotFound``."""
    if done and done[0] == -1:
        raise QueueOverloaded(
            f"queue '{done[1].decode()}' already holds {max_queued} jobs (max_queued_jobs); "
            "wait for workers to catch up or add workers"
        )
    if done and done[0] == -2:
        raise DependencyNotFound(unknown_dependency(done[1].decode()))
    for item, taken in zip(items, done, strict=True):
        if taken in _TAKEN_AS:
            item.record.status = _TAKEN_AS[taken]
        elif taken == 1:
            delayed = item.run_at is not None and item.run_at > now
            item.record.status = JobStatus.SCHEDULED if delayed else JobStatus.QUEUED
            if delayed:
                item.record.retry_at = item.run_at
    return [taken != 0 for taken in done]
