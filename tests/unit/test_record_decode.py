"""JobRecord.from_flat_bytes, the one-pass decoder of a Redis hash (HGETALL's flat list): it
must build exactly the record the general from_mapping builds from the same stored fields,
for well-formed values and for garbage anyone could write into the hash."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobbench.jobs.record import JobRecord

NAMES = [f.name for f in fields(JobRecord)]
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(x).encode()),
)
VALUES = st.one_of(st.binary(max_size=12), NUMBERS, st.text(max_size=8).map(str.encode))


def _slow(flat: list[bytes]) -> JobRecord:
    """What the Redis broker did before from_flat_bytes: decode every value, then from_mapping."""
    data: dict[str, Any] = {}
    for i in range(0, len(flat), 2):
        name = flat[i].decode(errors="replace")
        value = flat[i + 1]
        data[name] = value if name in ("payload", "result") else value.decode(errors="replace")
    return JobRecord.from_mapping(data)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*NAMES, "expires_at", "front"]), VALUES))
def test_the_one_pass_decoder_agrees_with_from_mapping(stored: dict[str, bytes]) -> None:
    stored = {"id": b"s::1", "site": b"s", "queue": b"q", "method": b"m.f", **stored}
    stored.setdefault("payload", b"{}")
    stored.setdefault("enqueued_at", b"1.5")  # else each side defaults it to its own now
    flat = [x for name, value in stored.items() for x in (name.encode(), value)]
    assert JobRecord.from_flat_bytes(flat) == _slow(flat)


def test_a_well_formed_hash_keeps_its_types() -> None:
    flat = [b"id", b"s::1", b"site", b"s", b"queue", b"q", b"method", b"m.f", b"payload",
            b"\xff\x00", b"timeout", b"300", b"enqueued_at", b"1764823123.123456",
            b"status", b"started", b"expires_at", b"99"]  # fmt: skip
    record = JobRecord.from_flat_bytes(flat)
    assert record.payload == b"\xff\x00" and record.timeout == 300
    assert record.enqueued_at == 1764823123.123456 and record.status == "started"
