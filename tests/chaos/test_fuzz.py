"""Fuzzed bad input: config files, enqueue arguments, cron strings, CLI arguments and forged
broker records. Always a specific JobbenchError or a clean one-line CLI exit; never a
traceback, and never the execution of a forged payload."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobbench
from jobbench.errors import ArgumentNotSerializable, ConfigError, ValidationError
from jobbench.jobs import serializer
from jobbench.jobs.record import JobRecord, full_id

from .helpers import APP, QUEUES, SITE, Chaos

LONG = "--chaos-long" in sys.argv
FEW = settings(
    max_examples=400 if LONG else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLI_SETTINGS = settings(
    max_examples=200 if LONG else 25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``jobbench`` in this process; an escaping exception is a traceback (a failure)."""
    from jobbench.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def _assert_clean_exit(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines, "non-zero exit without a reason"
        if code == 1:  # a JobbenchError: exactly one line
            assert len(lines) == 1 and lines[0].startswith("Error: "), err


# -- config files ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
config_keys = st.sampled_from(
    ["redis_queue", "bench_id", "db_url", "default_site", "secret_key", "time_zone",
     "rq_results_ttl", "rq_job_failure_ttl", "scheduler_interval", "job_serializer", "x"]
)  # fmt: skip
config_text = st.one_of(
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.text(max_size=60),
    json_values.map(json.dumps),
    st.dictionaries(config_keys, json_values, max_size=4).map(
        lambda d: __import__("json").dumps(d)
    ),
)


@FEW
@given(text=config_text)
def test_fuzzed_common_config_gives_config_error_or_works(chaos_sqlite: Chaos, text: str) -> None:
    path = chaos_sqlite.bench.common_config_path
    original = path.read_bytes()
    stamp = os.stat(path).st_mtime_ns
    try:
        path.write_text(text, encoding="latin-1", errors="replace")
        os.utime(path, ns=(stamp + 10_000_000, stamp + 10_000_000))  # never a stale cache
        with contextlib.suppress(ConfigError):
            jobbench.init(SITE, chaos_sqlite.bench.path)
            jobbench.destroy()
        code, _, err = _cli(["--bench", chaos_sqlite.path, "--site", SITE, "list-sites"])
        _assert_clean_exit(code, err)
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stamp + 20_000_000, stamp + 20_000_000))
        with contextlib.suppress(Exception):
            jobbench.destroy()


# -- enqueue arguments -------------------------------------------------------------------------
plain = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.datetimes()
    | st.dates()
    | st.decimals(allow_nan=False)
    | st.uuids()
)
odd = st.sets(st.integers(), max_size=2) | st.builds(object) | st.just(len) | st.complex_numbers()
arguments = st.recursive(
    plain | odd,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=3)
    ),
    max_leaves=6,
)


@FEW
@given(value=arguments)
def test_fuzzed_enqueue_arguments_round_trip_or_are_refused(chaos: Chaos, value: Any) -> None:
    with chaos.ctx() as local:
        try:
            job = jobbench.enqueue(f"{APP}.jobs.effect", queue="long", value=value)
        except ArgumentNotSerializable:
            return
        record = chaos.broker().get(full_id(SITE, job.id))
        assert record is not None and record.status == "queued"
        secret = str(local.conf.secret_key or "")
        assert serializer.loads(record.payload, record.serializer, secret) == {"value": value}


# -- cron strings ------------------------------------------------------------------------------
cron_token = st.sampled_from(["*", "0", "5", "59", "60", "*/15", "1-5", "mon", "jan", "L", "?", ""])
cron_text = st.text(max_size=30) | st.lists(cron_token, min_size=0, max_size=7).map(" ".join)


@FEW
@given(text=cron_text)
def test_fuzzed_cron_strings_are_valid_or_a_validation_error(
    chaos_sqlite: Chaos, text: str
) -> None:
    from jobbench.scheduler import cron

    try:
        expression = cron.validate_cron(text)
    except ValidationError:
        return
    after = dt.datetime(2026, 3, 29, 1, 30)
    following = cron.next_execution("Cron", expression, after, "Europe/Berlin", 60)
    assert following > after


# -- CLI arguments -----------------------------------------------------------------------------
cli_words = st.sampled_from(
    ["list-sites", "list-apps", "jobs", "list", "show", "stop", "retry", "delete", "enqueue",
     "doctor", "metrics", "scheduled-jobs", "show-pending-jobs", "ready-for-migration",
     "--site", "site1", "nosuch", "all", "--queue", "short", "--limit", "-1", "0", "--format",
     "json", "table", "--kwargs", "{", "{}", "[1]", "--timeout", "x", "--job-id", "::", "--"]
)  # fmt: skip
cli_args = st.lists(cli_words | st.text(max_size=8), max_size=6)


@CLI_SETTINGS
@given(args=cli_args)
def test_fuzzed_cli_arguments_exit_cleanly(chaos_sqlite: Chaos, args: list[str]) -> None:
    code, _, err = _cli(["--bench", chaos_sqlite.path, *args])
    _assert_clean_exit(code, err)


# -- forged and corrupt broker records ---------------------------------------------------------
class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.target), "forged pickle ran"))


def _forged_records(chaos: Chaos) -> dict[str, JobRecord]:
    target = str(chaos.tmp / "pickle-ran")
    evil = pickle.dumps({"x": _Evil(target)})
    signed_wrong = serializer.dumps({"x": 1}, "pickle", "not-the-secret-" + "x" * 32)
    payloads = {
        "garbage-json": (b"\x00\xff{not json", "json", f"{APP}.jobs.effect"),
        "unsigned-pickle": (evil, "pickle", f"{APP}.jobs.effect"),
        "magic-no-signature": (b"JBP1" + evil, "pickle", f"{APP}.jobs.effect"),
        "wrong-key-pickle": (signed_wrong[:4] + signed_wrong[4:36] + evil, "pickle", "x"),
        "other-secret": (signed_wrong, "pickle", f"{APP}.jobs.effect"),
        "bad-serializer": (b"{}", "marshal", f"{APP}.jobs.effect"),
        "bad-method": (b"{}", "json", "os.system"),
        "not-a-dict": (b"[1, 2, 3]", "json", f"{APP}.jobs.effect"),
        "unknown-tag": (b'{"v": {"__jb__": "pickle", "v": "x"}}', "json", f"{APP}.jobs.effect"),
    }
    return {
        name: JobRecord(
            id=full_id(SITE, f"forged-{name}"),
            site=SITE,
            queue="default",
            method=method,
            payload=payload,
            serializer=kind,
        )
        for name, (payload, kind, method) in payloads.items()
    }


def test_forged_broker_records_fail_with_a_reason_and_never_run(chaos: Chaos) -> None:
    broker = chaos.broker()
    records = _forged_records(chaos)
    for record in records.values():
        assert broker.enqueue(record)
    with chaos.ctx():
        jobbench.enqueue(
            f"{APP}.jobs.effect", queue="default", job_id="after", path=chaos.effects_file
        )
    cmd = [sys.executable, "-m", "jobbench", "--bench", chaos.path, "worker", "--burst"]
    done = subprocess.run(
        [*cmd, "--queue", QUEUES], capture_output=True, text=True, timeout=120, env=chaos.env()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback (most recent call last)" not in done.stderr, done.stderr
    assert not (chaos.tmp / "pickle-ran").exists(), "a forged pickle was executed"
    outcomes = {}
    for name, record in records.items():
        stored = broker.get(record.id)
        assert stored is not None, name
        outcomes[name] = (stored.status, bool((stored.exc_info or "").strip()))
    assert outcomes == {name: ("failed", True) for name in records}, outcomes
    after = broker.get(full_id(SITE, "after"))
    assert after is not None and after.status == "finished", "the worker did not keep going"
    assert chaos.effects() == {full_id(SITE, "after"): 1}


@pytest.mark.parametrize("column,value", [("attempts", "many"), ("payload", 12345)])
def test_corrupt_sqlite_rows_do_not_crash_the_worker(
    chaos_sqlite: Chaos, column: str, value: object
) -> None:
    import sqlite3

    with chaos_sqlite.ctx():
        jobbench.enqueue(f"{APP}.jobs.effect", job_id="bad", path=chaos_sqlite.effects_file)
        jobbench.enqueue(f"{APP}.jobs.effect", job_id="good", path=chaos_sqlite.effects_file)
    db = sqlite3.connect(chaos_sqlite.bench.sites_path / "queue.sqlite3")
    with db:
        db.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, full_id(SITE, "bad")))
    db.close()
    cmd = [sys.executable, "-m", "jobbench", "--bench", chaos_sqlite.path, "worker", "--burst"]
    done = subprocess.run(
        [*cmd, "--queue", QUEUES],
        capture_output=True,
        text=True,
        timeout=60,
        env=chaos_sqlite.env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    broker = chaos_sqlite.broker()
    good = broker.get(full_id(SITE, "good"))
    assert good is not None and good.status == "finished", (good, done.stdout[-2000:])
    bad = broker.get(full_id(SITE, "bad"))
    assert bad is not None and bad.status in ("finished", "failed"), bad
    if bad.status == "failed":
        assert (bad.exc_info or "").strip()
