"""Fuzzing what a broker writer controls: payload bytes, record fields and signatures. Reading
never raises anything but the documented errors, and no change to a signed field keeps a
record's signature valid."""

from __future__ import annotations

import contextlib
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobbench.errors import InsecureConfigError, PayloadError
from jobbench.jobs import serializer, trust
from jobbench.jobs.record import JobRecord

SECRET = "s" * 32
CONF = {"secret_key": SECRET, "installed_apps": ["app"], "job_serializer": "json"}


def _record(**fields: Any) -> JobRecord:
    record = JobRecord("site1::j", "site1", "default", "app.jobs.run", b"{}", **fields)
    trust.sign(record, SECRET)
    return record


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_payload_bytes_read_as_data_or_payload_error(data: bytes) -> None:
    for kind in ("json", "pickle"):
        with contextlib.suppress(PayloadError):  # anything else fails the test
            serializer.loads(data, kind, SECRET)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=50_000), st.sampled_from(["[", '{"a":']))
def test_deep_json_payloads_are_payload_errors(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * depth + "1" + closer * depth
    try:
        serializer.loads(text.encode(), "json", SECRET)
    except PayloadError as exc:
        assert "nested too deeply" in str(exc) or "corrupt" in str(exc)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["method", "site", "user", "serializer", "on_success", "on_failure"]),
    st.text(string.printable, min_size=1, max_size=40),
)
def test_changing_a_signed_field_breaks_the_signature(name: str, value: str) -> None:
    record = _record()
    if getattr(record, name) == value:
        return
    setattr(record, name, value)
    reason = trust.refusal(record, CONF)
    assert reason is not None and "signature does not match" in reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_changing_the_payload_breaks_the_signature(payload: bytes) -> None:
    record = _record()
    if payload == record.payload:
        return
    record.payload = payload
    assert "signature does not match" in str(trust.refusal(record, CONF))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["progress", "attempts", "enqueued_at", "timeout"]),
        st.one_of(st.text(max_size=20), st.binary(max_size=20)),
    )
)
def test_any_stored_field_value_reads_without_raising(fields: dict[str, Any]) -> None:
    data = {"id": "s::j", "site": "s", "queue": "q", "method": "m", "payload": b"", **fields}
    record = JobRecord.from_mapping(data)
    assert record.progress is None or isinstance(record.progress, float)
    assert isinstance(record.attempts, int) and isinstance(record.timeout, int)


@given(st.text(max_size=31))
def test_short_secrets_refuse(secret: str) -> None:
    if len(secret.encode()) >= trust.MIN_SECRET_BYTES:
        return
    try:
        trust.secret_of({"secret_key": secret})
    except InsecureConfigError as exc:
        assert "secret_key" in str(exc)
    else:
        raise AssertionError(f"{secret!r} was accepted")
    assert trust.refusal(_record(), {**CONF, "secret_key": secret}) is not None


def test_a_valid_record_is_accepted_and_an_unlisted_method_is_not() -> None:
    assert trust.refusal(_record(), CONF) is None
    record = _record()
    record.method = "os.system"
    trust.sign(record, SECRET)
    assert "not part of an app" in str(trust.refusal(record, CONF))
    assert trust.refusal(record, {**CONF, "allowed_job_modules": ["os"]}) is None
    assert "not part of an app" in str(
        trust.refusal(record, {**CONF, "allowed_job_modules": ["o"]})  # a prefix of a name
    )
