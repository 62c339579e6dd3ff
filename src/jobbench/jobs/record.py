"""The job record: what a broker stores for one job, and the status enum.

A record is plain data (str, int, float, bytes): brokers store and return it without knowing
what the payload means. Serialisation of arguments and results stays above the broker.

Ids: the caller's ``job_id`` (any non-empty string) is stored as ``<site>::<job_id>``. Site
names cannot contain ``:``, so the first ``::`` always splits a stored id back into its parts,
and two sites can use the same ``job_id``.

Adding a field is a compatible change: SQLite brokers add the missing column when they open an
older file, and a Redis hash without the field reads as the field's default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELED = "canceled"
    SCHEDULED = "scheduled"  # waiting for a retry at ``retry_at``
    DEFERRED = "deferred"  # waiting for its dependencies (``depends_on``) to finish, as RQ's

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
)
PENDING_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
)
SEPARATOR = "::"


def full_id(site: str, job_id: str) -> str:
    return f"{site}{SEPARATOR}{job_id}"


def split_id(stored: str) -> tuple[str, str]:
    site, _, job_id = stored.partition(SEPARATOR)
    return site, job_id


def encode_ids(ids: list[str]) -> str:
    """A list of stored ids as ``depends_on`` holds it (JSON: any string is a valid id)."""
    return json.dumps(ids, separators=(",", ":"))


def decode_ids(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        ids = json.loads(raw)
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


@dataclass
class JobRecord:
    """One job as brokers store it. ``id`` is the stored (site-namespaced) id."""

    id: str
    site: str
    queue: str
    method: str
    payload: bytes
    serializer: str = "json"
    user: str = "Administrator"
    timeout: int = 300
    job_name: str = ""
    status: str = JobStatus.QUEUED
    enqueued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    result: bytes | None = None
    exc_info: str | None = None
    attempts: int = 0
    retries_left: int = 0
    retry_count: int = 0
    retry_at: float | None = None
    progress: float | None = None
    stage: str | None = None
    task_id: str | None = None
    on_success: str | None = None
    on_failure: str | None = None
    stop_requested: int = 0
    event: str | None = None  # Frappe's enqueue(event=...): a label purge-jobs --event matches
    signature: str | None = None  # HMAC over what decides what runs (jobbench.jobs.trust)
    # Dependencies (docs/jobs.md): the stored ids this job waits for, as a JSON list; with
    # allow_dependency_failure it also runs after one of them failed, stopped or was canceled.
    depends_on: str | None = None
    allow_dependency_failure: int = 0
    # At most concurrency_limit jobs with the same concurrency_key are started at once.
    concurrency_key: str | None = None
    concurrency_limit: int = 0
    # OpenTelemetry: the W3C trace context of the enqueue's span, as JSON (jobs/otel.py). Not
    # signed: it decides nothing about what runs, it only parents the execution's span.
    trace_context: str | None = None
    # 1 while the job is claimed in a batch but not begun: it waits behind a sync job of its
    # worker's (Broker.begin). A dead worker's held job goes back to its queue, never failed.
    held: int = 0

    @property
    def dependencies(self) -> list[str]:
        """The stored ids in ``depends_on`` (empty when it has none, or it is unreadable)."""
        return decode_ids(self.depends_on)

    @property
    def job_id(self) -> str:
        return split_id(self.id)[1]

    def to_mapping(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> JobRecord:
        """Build from stored fields (str/bytes values as Redis gives them) with types restored."""
        # Per-field decoders with a fast path for values already of the field's type (what
        # SQLite returns): this runs once per claimed job.
        decoders = _DECODERS
        return cls(**{k: decoders[k](v) for k, v in data.items() if k in decoders})

    @classmethod
    def from_flat_bytes(cls, flat: Sequence[bytes]) -> JobRecord:
        """Build from a flat ``[name, value, ...]`` list of bytes (Redis' HGETALL), in one pass
        that converts each value straight from bytes. A value that pass cannot take (not
        UTF-8, not a number, empty where a number belongs) sends the whole record through
        ``from_mapping``, which reads such a field as unset instead of failing."""
        data: dict[str, Any] = {}
        try:
            for i in range(0, len(flat), 2):
                entry = _FROM_BYTES.get(flat[i])
                if entry is not None:  # (fields beyond the record's, e.g. expires_at)
                    data[entry[0]] = entry[1](flat[i + 1])
        except (ValueError, UnicodeDecodeError, OverflowError):
            return cls.from_mapping(_replacing(flat))
        return cls(**data)


_FLOATS = {"enqueued_at", "started_at", "ended_at", "retry_at", "progress"}
_INTS = {
    "timeout",
    "attempts",
    "retries_left",
    "retry_count",
    "stop_requested",
    "allow_dependency_failure",
    "concurrency_limit",
    "held",
}
_BYTES = {"payload", "result"}


def _decode(name: str, value: Any) -> Any:
    """One stored field with its type restored. Never raises: a record anyone could write
    (``progress='abc'``, bytes that are not UTF-8) reads with that field unset, so listings,
    the dashboard and the worker see the job instead of crashing on it."""
    if value is None or value == b"" and name not in _BYTES:
        return None if name not in _INTS else 0
    if name in _BYTES:
        return value if isinstance(value, bytes) else str(value).encode()
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if name in _FLOATS:
        return _number(float, value, None)
    if name in _INTS:
        return _number(int, value, 0)
    return value if isinstance(value, str) else str(value)


def _number(kind: type[float] | type[int], value: Any, default: Any) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return default
    if isinstance(number, float) and number != number:  # NaN compares unequal to everything
        return default
    return number


def _kind(name: str) -> type:
    return float if name in _FLOATS else int if name in _INTS else bytes if name in _BYTES else str


def _decoder(name: str) -> Any:
    """The decoder of field ``name``: the value itself when it already has the right type,
    else _decode."""
    kind = _kind(name)

    def decode(value: Any) -> Any:
        if type(value) is kind and value == value:  # (NaN, unequal to itself, goes to _decode)
            return value
        return _decode(name, value)

    return decode


_DECODERS = {f.name: _decoder(f.name) for f in fields(JobRecord)}


def _replacing(flat: Sequence[bytes]) -> dict[str, Any]:
    """Names and values as text (bad UTF-8 replaced), but payload and result kept as bytes.
    (Decoded here, not left to _decode: an empty value must stay "" as text, as it always
    read through this path, where _decode would read b"" as unset.)"""
    data: dict[str, Any] = {}
    for i in range(0, len(flat), 2):
        name = flat[i].decode(errors="replace")
        data[name] = flat[i + 1] if name in _BYTES else flat[i + 1].decode(errors="replace")
    return data


def _finite(value: bytes) -> float:
    number = float(value)
    if number != number:
        raise ValueError("NaN")  # from_mapping reads it as unset
    return number


def _text(value: bytes) -> str:
    return value.decode()  # strict: bad UTF-8 goes to from_mapping, which replaces it


_FROM_BYTES_AS: dict[type, Callable[[bytes], Any]] = {
    float: _finite,
    int: int,
    bytes: bytes,
    str: _text,
}
_FROM_BYTES = {f.name.encode(): (f.name, _FROM_BYTES_AS[_kind(f.name)]) for f in fields(JobRecord)}
