"""Logs for people and for machines, from real burst workers on both brokers: one line per job
end (id, method, queue, site, duration, outcome; a failure's exception type and message; a
retry's ``retry n/m in s``), the same facts as JSON objects with ``--log-format json`` or the
``log_format`` config key, and an in-place retry's line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from .jobs_helpers import (
    Engine,
    engine_fixture,  # noqa: F401 - the engine fixture
    enqueue,
    jobs_path,
)

END_KEYS = {"job_id", "method", "queue", "site", "duration", "outcome"}


def _enqueue_three(engine: Engine) -> dict[str, str]:
    ok = enqueue(engine, jobs_path("add"), a=1, b=2, job_id="ok")
    bad = enqueue(engine, jobs_path("write_task_then_fail"), subject="x", job_id="bad")
    again = enqueue(
        engine, jobs_path("fail_first_time"), counter=engine.file("c"), retry=2, job_id="again"
    )
    assert [ok.id, bad.id, again.id] == ["ok", "bad", "again"]
    return {name: f"site1::{name}" for name in ("ok", "bad", "again")}  # stored ids


def test_one_text_line_per_job_end_with_outcome_duration_and_exception(engine: Engine) -> None:
    ids = _enqueue_three(engine)
    out = engine.run_worker().stdout
    lines = {i: [ln for ln in out.splitlines() if f"({i})" in ln] for i in ids.values()}
    ok_start, ok_end = lines[ids["ok"]]
    assert ok_start.endswith(f"default: {jobs_path('add')} ({ids['ok']}) started")
    assert re.search(
        rf"default: {jobs_path('add')} \(site1::ok\) finished in \d+\.\d{{3}} s$", ok_end
    )
    bad_end = lines[ids["bad"]][1]
    assert re.search(r" failed in \d+\.\d{3} s: ValueError: boom after writing x$", bad_end)
    again_end = lines[ids["again"]][1]
    assert again_end.endswith(": RuntimeError: first attempt fails; retry 1/2 in 1 s"), again_end


def _json_lines(out: str) -> list[dict[str, Any]]:
    objects = [json.loads(line) for line in out.splitlines()]  # every line is one object
    for obj in objects:
        assert {"ts", "level", "logger", "event", "message"} <= set(obj), obj
        assert obj["logger"].startswith("jobbench.")
    return objects


def test_json_format_carries_the_job_end_fields(engine: Engine) -> None:
    ids = _enqueue_three(engine)
    objects = _json_lines(
        engine.run_worker("short,default,long", 30, "--log-format", "json").stdout
    )
    ends = {o["job_id"]: o for o in objects if o["event"] == "job_end"}
    assert set(ends) >= set(ids.values())
    ok, bad, again = (ends[ids[k]] for k in ("ok", "bad", "again"))
    assert set(ok) >= END_KEYS and ok["outcome"] == "finished" and ok["site"] == "site1"
    assert ok["method"] == jobs_path("add") and ok["queue"] == "default"
    assert isinstance(ok["duration"], float) and 0 <= ok["duration"] < 10
    assert (bad["outcome"], bad["level"]) == ("failed", "warning")
    assert (bad["exc_type"], bad["exc_message"]) == ("ValueError", "boom after writing x")
    assert (again["retry"], again["retries"], again["retry_in"]) == (1, 2, 1.0)
    starts = [o for o in objects if o["event"] == "job_start"]
    assert {o["job_id"] for o in starts} >= set(ids.values())


def test_the_config_key_sets_json_and_a_bad_value_is_one_line(engine: Engine) -> None:
    enqueue(engine, jobs_path("add"), a=1, b=2)
    engine.set_common(log_format="json")
    objects = _json_lines(engine.run_worker().stdout)
    assert [o["outcome"] for o in objects if o["event"] == "job_end"] == ["finished"]
    assert objects[0]["message"].startswith("Worker ") and objects[0]["event"] == "log"

    path = engine.bench.common_config_path  # a hand edit: set_common would refuse it
    good = path.read_text()
    path.write_text(json.dumps({**json.loads(good), "log_format": "xml"}))
    cmd = [sys.executable, "-m", "jobbench", "--bench", engine.path, "worker", "--burst"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=engine.env(), timeout=60)
    finally:
        path.write_text(good)  # the fixture's teardown reads it
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: ") and '\'log_format\' must be "text" or "json"' in line


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_an_unknown_log_format_option_is_a_usage_error(engine: Engine) -> None:
    for command in (["worker"], ["worker-pool"], ["schedule"], ["start"]):
        cmd = [sys.executable, "-m", "jobbench", "--bench", engine.path, *command]
        done = subprocess.run(
            [*cmd, "--log-format", "xml"], capture_output=True, text=True, env=engine.env()
        )
        assert done.returncode == 2 and done.stdout == "", done
        (line,) = done.stderr.splitlines()
        assert "'xml' is not one of 'text', 'json'" in line


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_an_in_place_retry_says_retry_n_of_5(engine: Engine) -> None:
    job = enqueue(engine, jobs_path("retry_in_place_once"), counter=engine.file("n"), job_id="r")
    out = engine.run_worker().stdout
    (line,) = [ln for ln in out.splitlines() if "retry 1/5" in ln]
    assert line.endswith(
        f"default: {jobs_path('retry_in_place_once')} (site1::r) RetryBackgroundJobError: "
        "not yet, try again; retry 1/5 in 1 s"
    )
    assert job.refresh().status == "finished"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_job_whose_executor_died_says_why_and_its_retry(engine: Engine) -> None:
    enqueue(engine, jobs_path("exit_hard"), job_id="dies", retry=1)
    out = engine.run_worker().stdout
    line = next(ln for ln in out.splitlines() if "(site1::dies) failed" in ln)
    assert "worker died: the executor running this job ended (exit code 3)" in line, out
    assert line.endswith("; retry 1/1 in 1 s"), line
