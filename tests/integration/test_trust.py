"""Only the bench's own code runs, and secrets fail closed (docs/security.md), on both brokers
with real burst workers: records written around jobbench's enqueue are refused before their
method's module is imported or their payload decoded, end ``failed`` with the reason and an
Error Log, and are not retried."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

import jobbench
from jobbench.jobs import serializer
from jobbench.jobs.record import JobRecord, full_id
from jobbench.jobs.trust import sign

from .jobs_helpers import (
    Engine,
    committed,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)

# A module that leaves a mark when imported: beside the apps, importable, but no installed app.
EVIL_MODULE = """
from pathlib import Path
Path({marker!r}).write_text("imported")

def run(**kwargs):
    Path({marker!r}).write_text("ran")
"""


def _secret(engine: Engine) -> str:
    return str(engine.bench.common_config().secret_key)


def _write(engine: Engine, record: JobRecord) -> None:
    """What a writer with broker access (a Redis client, the SQLite file) can do."""
    assert engine.broker().enqueue(record)


def _record(job_id: str, method: str, kwargs: dict[str, Any], **fields: Any) -> JobRecord:
    payload = json.dumps(kwargs).encode()
    return JobRecord(full_id("site1", job_id), "site1", "default", method, payload, **fields)


def _evil_module(engine: Engine) -> Path:
    marker = Path(engine.file("evil-marker"))
    (engine.bench.path / "apps" / "evilmod.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    return marker


def _error_log_titles(engine: Engine) -> list[str]:
    def read() -> list[str]:
        return [r.method for r in jobbench.get_all("Error Log", fields=["method"])]

    return committed(engine, read)


def test_forged_record_for_os_system_ends_failed_without_running(engine: Engine) -> None:
    marker = engine.file("pwned")
    _write(engine, _record("forged", "os.system", {"command": f"touch {marker}"}, retries_left=3))
    after = enqueue(engine, jobs_path("add"), a=1, b=2)  # the worker carries on after it

    engine.run_worker()

    record = engine.wait_status("forged", "failed")
    assert record.exc_info is not None and record.exc_info.startswith("refused:")
    assert "signature does not match" in record.exc_info
    assert record.retries_left == 3 and record.retry_count == 0  # refused for good, no retry
    assert not Path(marker).exists()
    assert after.refresh().result == 3
    assert "job refused: os.system" in _error_log_titles(engine)


def test_signed_record_outside_the_apps_is_refused_before_import(engine: Engine) -> None:
    """Even a correctly signed record (someone holding secret_key) runs only the apps' code:
    the module is never imported."""
    marker = _evil_module(engine)
    record = _record("outside", "evilmod.run", {})
    sign(record, _secret(engine))
    _write(engine, record)

    engine.run_worker()

    failed = engine.wait_status("outside", "failed")
    assert "'evilmod.run' is not part of an app installed on this site" in str(failed.exc_info)
    assert not marker.exists(), "the module was imported"


def test_enqueue_refuses_methods_and_callbacks_outside_the_apps(engine: Engine) -> None:
    marker = _evil_module(engine)
    with engine.ctx():
        with pytest.raises(jobbench.MethodNotAllowed, match="'evilmod.run' is not part of"):
            jobbench.enqueue("evilmod.run")
        with pytest.raises(jobbench.MethodNotAllowed, match="on_failure 'os.system'"):
            jobbench.enqueue(jobs_path("noop"), on_failure="os.system")
        with pytest.raises(jobbench.MethodNotAllowed, match="'(os|posix).system'"):
            jobbench.enqueue(__import__("os").system, command="true")
    assert not marker.exists()
    assert committed(engine, jobbench.list_jobs) == []


def test_allowed_job_modules_lets_a_listed_module_run(engine: Engine) -> None:
    marker = _evil_module(engine)
    engine.set_common(allowed_job_modules=["evilmod"])
    job = enqueue(engine, "evilmod.run")
    engine.run_worker()
    assert job.refresh().status == "finished"
    assert marker.read_text() == "ran"


def test_changed_user_breaks_the_signature(engine: Engine) -> None:
    """A valid method with a tampered field (run as someone else) is refused."""
    job = enqueue(engine, jobs_path("whoami"), job_id="as-admin")
    record = engine.record("as-admin")
    assert record is not None and record.signature
    record.user = "attacker@example.com"
    engine.broker().delete(record.id)
    _write(engine, record)

    engine.run_worker()

    assert job.refresh().status == "failed"
    assert "signature does not match" in str(job.exc_info)


def test_forged_callback_is_refused(engine: Engine) -> None:
    marker = engine.file("callback-ran")
    record = _record("cb", jobs_path("noop"), {}, on_success="os.system")
    sign(record, _secret(engine))  # signed, but the callback lies outside the apps
    _write(engine, record)
    engine.run_worker()
    failed = engine.wait_status("cb", "failed")
    assert "on_success 'os.system' is not part of an app" in str(failed.exc_info)
    assert not Path(marker).exists()


def test_record_serializer_must_match_the_bench(engine: Engine) -> None:
    """A pickle record on a JSON bench is refused undecoded, even when properly signed."""
    unpickled = engine.file("unpickled")
    payload = serializer.dumps({"path": unpickled}, "pickle", _secret(engine))
    record = JobRecord(
        full_id("site1", "pickled"), "site1", "default", jobs_path("touch"), payload, "pickle"
    )
    sign(record, _secret(engine))
    _write(engine, record)
    engine.run_worker()
    failed = engine.wait_status("pickled", "failed")
    assert "serializer 'pickle' but the bench uses 'json'" in str(failed.exc_info)
    assert not Path(unpickled).exists()


@pytest.mark.parametrize("secret", [None, "", "short-secret"])
def test_no_or_short_secret_key_refuses_enqueue_and_workers(
    engine: Engine, secret: str | None
) -> None:
    broker = engine.broker()  # opened while the config is still good
    original = engine.bench.common_config_path.read_text()
    conf = json.loads(original)
    if secret is None:
        del conf["secret_key"]
    else:
        conf["secret_key"] = secret
    engine.bench.common_config_path.write_text(json.dumps(conf))
    try:
        # An empty one is already refused by config validation (a ConfigError as well).
        error = jobbench.InsecureConfigError if secret != "" else jobbench.ConfigError
        with pytest.raises(error, match="secret_key"), engine.ctx():
            jobbench.enqueue(jobs_path("noop"))
        assert broker.find(limit=10) == []

        done = engine.cli("worker", "--burst", site=None)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "secret_key" in lines[0], done.stderr
        if secret != "":
            assert "token_hex" in lines[0]  # says how to make one
    finally:
        engine.bench.common_config_path.write_text(original)


def test_pickle_without_a_secret_refuses_to_sign_or_unpickle() -> None:
    with pytest.raises(jobbench.InsecureConfigError):
        serializer.dumps({"a": 1}, "pickle", "")
    forged = b"JBP1" + serializer._sign(pickle.dumps({"a": 1}), "") + pickle.dumps({"a": 1})
    with pytest.raises(jobbench.PayloadError, match="refusing to unpickle"):
        serializer.loads(forged, "pickle", "")


def test_payload_size_limit(engine: Engine) -> None:
    engine.set_common(max_payload_bytes=1000)
    with engine.ctx(), pytest.raises(jobbench.PayloadTooLarge, match="over max_payload_bytes"):
        jobbench.enqueue(jobs_path("echo"), blob="x" * 2000)
    assert committed(engine, jobbench.list_jobs) == []
    job = enqueue(engine, jobs_path("echo"), blob="x" * 900)
    engine.set_common(max_payload_bytes=100)  # lowered while it waited: the worker refuses it
    engine.run_worker()
    assert job.refresh().status == "failed"
    assert "over max_payload_bytes (100)" in str(job.exc_info)


def test_arguments_too_deep_or_too_long_are_refused_in_one_line(engine: Engine) -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    with engine.ctx():
        with pytest.raises(jobbench.ArgumentNotSerializable, match="nested too deeply"):
            jobbench.enqueue(jobs_path("echo"), value=deep)
        too_long = r"argument \['value'\].*more than 4000 digits"
        with pytest.raises(jobbench.ArgumentNotSerializable, match=too_long):
            jobbench.enqueue(jobs_path("echo"), value=10**100_000)
    assert committed(engine, jobbench.list_jobs) == []
    nested = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(jobbench.PayloadError, match="nested too deeply"):
        serializer.loads(nested, "json", "")


def test_unreadable_record_fields_do_not_break_listings(engine: Engine) -> None:
    job = enqueue(engine, jobs_path("noop"), job_id="odd")
    if engine.kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(engine.bench.sites_path / "queue.sqlite3")
        with conn:
            conn.execute(
                "UPDATE jobs SET progress = 'abc', attempts = 'x' WHERE id = ?", (job.record.id,)
            )
        conn.close()
    else:
        import redis

        client = redis.Redis.from_url(str(engine.bench.common_config().redis_queue))
        key = f"{engine.broker().prefix}job:{job.record.id}"  # type: ignore[attr-defined]
        client.hset(key, "progress", "abc")
        client.close()
    record = engine.record("odd")
    assert record is not None and record.progress is None
    listed = engine.cli("jobs", "list")
    assert listed.returncode == 0 and "odd" in listed.stdout, listed.stderr
    engine.run_worker()
    assert job.refresh().status == "finished"


def test_scheduled_job_type_row_outside_the_apps_is_refused(engine: Engine) -> None:
    """Anyone who can write a Scheduled Job Type row (the site database) still reaches only the
    apps' code: saving refuses it, and a row changed behind the document layer fails its run
    without importing the module."""
    marker = _evil_module(engine)
    with engine.ctx() as local:
        with pytest.raises(jobbench.MethodNotAllowed, match="'evilmod.run'"):
            jobbench.new_doc("Scheduled Job Type", method="evilmod.run", frequency="All").insert()
        local.db.rollback()
        doc = jobbench.new_doc("Scheduled Job Type", method=jobs_path("noop"), frequency="All")
        doc.insert()
        local.db.set_value("Scheduled Job Type", doc.name, {"method": "evilmod.run"})
        local.db.commit()
        doc = jobbench.get_doc("Scheduled Job Type", doc.name)
        assert doc.enqueue(force=True) is True
        local.db.commit()
        job_id = doc.rq_job_id
    engine.run_worker()
    record = engine.record(job_id)
    assert record is not None and record.status == "failed"
    assert "MethodNotAllowed" in str(record.exc_info)
    assert not marker.exists(), "the module was imported"


def test_timeout_beyond_what_a_broker_stores_is_refused(engine: Engine) -> None:
    with engine.ctx():
        for bad in (2**31, 10**30, float("nan"), float("inf")):
            with pytest.raises(jobbench.JobError, match="timeout must be"):
                jobbench.enqueue(jobs_path("noop"), timeout=bad)
    assert committed(engine, jobbench.list_jobs) == []
    assert enqueue(engine, jobs_path("noop"), timeout=2**31 - 1).timeout == 2**31 - 1
