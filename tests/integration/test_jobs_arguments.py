"""What enqueue refuses, and how arguments travel: json round-trips, documents as references,
signed pickle payloads and a tampered one (SPEC section 3, job_serializer)."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import uuid
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.jobs.record import full_id

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)


def _no_jobs(engine: Engine) -> None:
    assert committed(engine, jobbench.list_jobs) == []


def module_level_helper() -> None:
    """Lives in a test module workers cannot import (not in the app)."""


def test_refuses_lambda_nested_and_main_functions(engine: Engine) -> None:
    def nested() -> None:
        pass

    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def in_main():\n    pass\n", namespace)  # noqa: S102 - a function from __main__
    cases = [
        (lambda: None, "lambda"),
        (nested, "inside another function"),
        (namespace["in_main"], "__main__"),
    ]
    for fn, why in cases:
        with pytest.raises(jobbench.UnimportableMethod, match=why) as err:
            enqueue(engine, fn)
        assert "module level" in str(err.value)
    _no_jobs(engine)


def test_refuses_unresolvable_dotted_path(engine: Engine) -> None:
    with pytest.raises(jobbench.MethodNotFound, match=r"japp\.jobs\.no_such_function"):
        enqueue(engine, "japp.jobs.no_such_function")
    # Outside the site's apps it is refused before any import is tried (jobbench.jobs.trust).
    with pytest.raises(jobbench.MethodNotAllowed, match=r"no_such_package\.mod\.fn"):
        enqueue(engine, "no_such_package.mod.fn")
    _no_jobs(engine)


def test_refuses_unknown_queue_listing_valid_names(engine: Engine) -> None:
    engine.set_common(workers={"reports": {"timeout": 50}})
    with pytest.raises(jobbench.InvalidQueue) as err:
        enqueue(engine, jobs_path("noop"), queue="nope")
    assert "'nope'" in str(err.value)
    assert "short, default, long, reports" in str(err.value)
    job = enqueue(engine, jobs_path("noop"), queue="reports")
    assert (job.queue, job.timeout) == ("reports", 50)
    assert [j.id for j in committed(engine, jobbench.list_jobs)] == [job.id]


def test_enqueue_doc_refuses_unknown_doctype(engine: Engine) -> None:
    with engine.ctx(), pytest.raises(jobbench.DocTypeNotFoundError, match="Invoice"):
        jobbench.enqueue_doc("Invoice", "INV-1", "submit")
    _no_jobs(engine)


def test_refuses_unserializable_argument_naming_it(engine: Engine) -> None:
    with pytest.raises(TypeError, match=r"argument .*handle.* of type object"):
        enqueue(engine, jobs_path("echo"), handle=object())
    with pytest.raises(TypeError, match=r"data.*'inner'.* of type set"):
        enqueue(engine, jobs_path("echo"), data={"inner": {1, 2}})
    with engine.ctx():
        unsaved = jobbench.new_doc("Task", subject="never saved")
        with pytest.raises(TypeError, match="unsaved Task"):
            jobbench.enqueue(jobs_path("doc_arg"), doc=unsaved)
    _no_jobs(engine)


def test_json_round_trip_of_rich_values_and_a_fresh_document(engine: Engine) -> None:
    values = {
        "when": dt.datetime(2024, 2, 29, 13, 45, 1, 123456, tzinfo=dt.UTC),
        "naive": dt.datetime(2023, 1, 2, 3, 4, 5),
        "day": dt.date(1999, 12, 31),
        "at": dt.time(23, 59, 58),
        "money": Decimal("12345.678900"),
        "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "blob": b"\x00\xffbinary\n",
        "pair": (1, "two", (3.5, None)),
        "nested": {"list": [dt.date(2020, 1, 1), {"deep": (Decimal("1.1"),)}], "n": None},
        "tag_like": {"__jb__": "date", "v": "not a date"},
        "text": "ünïcode ✓",
    }
    job = enqueue(engine, jobs_path("echo"), **values)
    with engine.ctx():
        doc = jobbench.new_doc("Task", subject="old subject")
        doc.insert()
        jobbench.db.commit()
        doc_job = jobbench.enqueue(jobs_path("doc_arg"), doc=doc)
        jobbench.db.set_value("Task", doc.name, "subject", "new subject")
        jobbench.db.commit()

    engine.run_worker("default")

    result = job.refresh().result
    assert job.status == "finished"
    assert result["values"] == values
    assert result["types"] == {k: type(v).__name__ for k, v in values.items()}
    assert type(result["values"]["pair"][2]) is tuple
    assert result["values"]["when"].tzinfo == dt.UTC
    assert doc_job.refresh().result == ["Task", "Task", doc.name, "new subject"]


def test_pickle_serializer_round_trip(engine: Engine) -> None:
    engine.set_common(job_serializer="pickle")
    job = enqueue(engine, jobs_path("describe"), value={Fraction(1, 3), frozenset({2})})
    assert job.record.serializer == "pickle"
    engine.run_worker("default")
    assert job.refresh().status == "finished"
    assert job.result.startswith("set:{")
    assert "Fraction(1, 3)" in job.result and "frozenset({2})" in job.result


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def _tamper(engine: Engine, job_id: str, payload: bytes) -> None:
    stored = full_id("site1", job_id)
    broker = engine.broker()
    if engine.kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(engine.bench.sites_path / "queue.sqlite3")
        with conn:
            cur = conn.execute("UPDATE jobs SET payload = ? WHERE id = ?", (payload, stored))
            assert cur.rowcount == 1
        conn.close()
    else:
        import redis

        client = redis.Redis.from_url(str(engine.bench.common_config().redis_queue))
        key = f"{broker.prefix}job:{stored}"  # type: ignore[attr-defined]
        assert client.exists(key)
        client.hset(key, "payload", payload)
        client.close()
    assert broker.get(stored).payload == payload


@pytest.mark.parametrize("how", ["forged", "flipped"])
def test_tampered_pickle_payload_fails_without_running(engine: Engine, how: str) -> None:
    engine.set_common(job_serializer="pickle")
    ran = engine.file("job-ran")
    unpickled = engine.file("payload-unpickled")
    job = enqueue(engine, jobs_path("touch"), path=ran, job_id="tampered")
    original = job.record.payload
    if how == "forged":  # a malicious pickle with a made-up signature
        evil = pickle.dumps({"path": _Evil(unpickled)})
        payload = original[:4] + b"\x00" * 32 + evil
    else:  # one byte of the signed pickle changed
        payload = original[:-3] + bytes([original[-3] ^ 0x01]) + original[-2:]
    _tamper(engine, "tampered", payload)
    after = enqueue(engine, jobs_path("add"), a=1, b=2)

    engine.run_worker("default")

    job.refresh()
    assert job.status == "failed"
    # The record's signature covers the payload: refused before it is unpickled.
    assert job.exc_info.startswith("refused:") and "signature does not match" in job.exc_info
    assert not Path(ran).exists()
    assert not Path(unpickled).exists()
    assert after.refresh().result == 3
