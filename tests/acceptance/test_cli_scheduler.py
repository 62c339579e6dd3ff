"""The scheduler commands (SPEC section 7), each run as a real ``jobbench`` process: enabling,
disabling, pausing and resuming, status, maintenance mode, trigger-scheduler-event,
scheduled-jobs list, and ``jobbench schedule`` firing a job and stopping on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conftest import redis_db  # tests/conftest.py

from .helpers import assert_error, assert_usage_error, cli_env, ok, run_cli

SITE = "s1"
REDIS_SERVER = os.environ.get("JOBBENCH_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{REDIS_SERVER}/{redis_db(11)}"

HOOKS = """
scheduler_events = {
    "all": ["capp.tasks.every"],
    "hourly": ["capp.tasks.hourly_job", "capp.tasks.hourly_too"],
    "daily": ["capp.tasks.boom"],
    "cron": {"0/5 * * * *": ["capp.tasks.cron_job"]},
}
"""

TASKS = """
from pathlib import Path

import jobbench


def _mark(tag):
    path = Path(jobbench.local.bench.path) / "marks.log"
    with open(path, "a") as f:
        f.write(f"{jobbench.local.site}\\t{tag}\\t{jobbench.session.user}\\n")


def every():
    _mark("every")


def hourly_job():
    _mark("hourly_job")


def hourly_too():
    _mark("hourly_too")


def cron_job():
    _mark("cron_job")


def boom():
    _mark("boom")
    raise RuntimeError("boom from capp")
"""


@pytest.fixture(scope="module")
def sched_template(template_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template bench plus app ``capp`` (scheduler_events above) installed on s1."""
    bench = tmp_path_factory.mktemp("sched") / "bench"
    shutil.copytree(template_bench, bench, symlinks=True)
    app = bench / "apps" / "capp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "hooks.py").write_text(textwrap.dedent(HOOKS))
    (app / "tasks.py").write_text(textwrap.dedent(TASKS))
    out = ok(run_cli("--site", SITE, "install-app", "capp", cwd=bench))
    assert "added scheduled job type tasks.every" in out
    return bench


@pytest.fixture
def bench(sched_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "bench"
    shutil.copytree(sched_template, target, symlinks=True)
    return target


def jb(bench: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--site", SITE, *args, cwd=bench)


def site_config(bench: Path) -> dict[str, Any]:
    data = json.loads((bench / "sites" / SITE / "site_config.json").read_text())
    assert isinstance(data, dict)
    return data


def common_config(bench: Path) -> dict[str, Any]:
    data = json.loads((bench / "sites" / "common_site_config.json").read_text())
    assert isinstance(data, dict)
    return data


def set_common(bench: Path, **values: Any) -> None:
    path = bench / "sites" / "common_site_config.json"
    path.write_text(json.dumps({**common_config(bench), **values}, indent=1))


def query(bench: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(bench / "sites" / SITE / "site.sqlite3")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def enable_flag(bench: Path) -> str | None:
    rows = query(
        bench,
        'SELECT value FROM "tabSingles" WHERE doctype = ? AND field = ?',
        "System Settings",
        "enable_scheduler",
    )
    return str(rows[0][0]) if rows else None


LIVENESS_KEYS = ["scheduler_alive", "leader", "last_tick", "next_tick_due", "due_job_types"]


def status(bench: Path) -> dict[str, Any]:
    """bench's JSON for one site, ``{"status": ..., "site": ...}`` first and in that order,
    then what jobbench adds: whether a scheduler process runs, its last tick, the next due."""
    text = ok(jb(bench, "scheduler", "status", "-f", "json"))
    state = json.loads(text)
    assert list(state) == ["status", "site", *LIVENESS_KEYS] and state["site"] == SITE
    assert text.startswith(f'{{"status": "{state["status"]}", "site": "{SITE}", ')
    return {k: state[k] for k in ("status", "site")}


def logs(bench: Path) -> list[tuple[str, str, str | None]]:
    return query(
        bench,
        'SELECT scheduled_job_type, status, details FROM "tabScheduled Job Log" ORDER BY creation',
    )


def marks(bench: Path) -> list[list[str]]:
    path = bench / "marks.log"
    return [ln.split("\t") for ln in path.read_text().splitlines()] if path.exists() else []


def test_status_of_a_new_site_is_enabled_in_benchs_words(bench: Path) -> None:
    first, process = ok(jb(bench, "scheduler", "status")).splitlines()
    assert first == f"Scheduler is enabled for site {SITE}"
    assert process == "Scheduler: none running; last tick never; tick every 60 s"
    assert status(bench) == {"status": "enabled", "site": SITE}


@pytest.mark.parametrize(
    ("off", "on", "said_off", "said_on"),
    [
        (("disable-scheduler",), ("enable-scheduler",), "Disabled for {}", "Enabled for {}"),
        (
            ("scheduler", "disable"),
            ("scheduler", "enable"),
            "Scheduler is disabled for site {}",
            "Scheduler is enabled for site {}",
        ),
    ],
)
def test_disable_and_enable_switch_system_settings_with_benchs_messages(
    bench: Path, off: tuple[str, ...], on: tuple[str, ...], said_off: str, said_on: str
) -> None:
    assert ok(jb(bench, *off)) == said_off.format(SITE) + "\n"
    assert enable_flag(bench) in ("0", "false", "False")
    assert status(bench)["status"] == "disabled"
    text = ok(jb(bench, "scheduler", "status"))
    first, why, _process = text.splitlines()
    assert first == f"Scheduler is disabled for site {SITE}"
    assert "enable_scheduler is off" in why

    assert ok(jb(bench, *on)) == said_on.format(SITE) + "\n"
    assert enable_flag(bench) in ("1", "true", "True")
    assert status(bench)["status"] == "enabled"


@pytest.mark.parametrize(
    ("action", "word"),
    [("disable", "disabled"), ("enable", "enabled"), ("pause", "paused"), ("resume", "resumed")],
)
def test_scheduler_actions_answer_benchs_json(bench: Path, action: str, word: str) -> None:
    out = ok(jb(bench, "scheduler", action, "--format", "json"))
    assert out == f'{{"status": "{word}", "site": "{SITE}"}}\n'


def test_status_of_several_sites_is_a_list(bench: Path) -> None:
    ok(run_cli("new-site", "site2", cwd=bench))
    ok(run_cli("--site", "site2", "scheduler", "pause", cwd=bench))
    rows = json.loads(ok(run_cli("--site", "all", "scheduler", "status", "-f", "json", cwd=bench)))
    assert sorted((r["site"], r["status"]) for r in rows) == [
        (SITE, "enabled"),
        ("site2", "disabled"),
    ]


def test_pause_and_resume_write_the_site_config(bench: Path) -> None:
    assert ok(jb(bench, "scheduler", "pause")) == f"Scheduler is paused for site {SITE}\n"
    assert site_config(bench)["pause_scheduler"] == 1
    assert status(bench)["status"] == "disabled"  # bench: paused counts as disabled
    assert "paused" in ok(jb(bench, "scheduler", "status")).splitlines()[1]

    assert ok(jb(bench, "scheduler", "resume")) == f"Scheduler is resumed for site {SITE}\n"
    assert "pause_scheduler" not in site_config(bench)
    assert site_config(bench)["installed_apps"] == ["tapp", "capp"]
    assert status(bench)["status"] == "enabled"


def test_maintenance_mode_on_and_off(bench: Path) -> None:
    assert ok(jb(bench, "set-maintenance-mode", "on")) == (
        f"Maintenance mode is on for site {SITE}\n"
    )
    assert site_config(bench)["maintenance_mode"] == 1
    assert status(bench)["status"] == "disabled"
    assert "maintenance_mode" in ok(jb(bench, "scheduler", "status")).splitlines()[1]

    assert ok(jb(bench, "set-maintenance-mode", "off")) == (
        f"Maintenance mode is off for site {SITE}\n"
    )
    assert not site_config(bench)["maintenance_mode"]
    assert status(bench)["status"] == "enabled"


def test_bad_arguments_are_usage_errors(bench: Path) -> None:
    assert_usage_error(jb(bench, "scheduler", "sleep"), "sleep")
    assert_usage_error(jb(bench, "set-maintenance-mode", "maybe"), "maybe")
    assert "maintenance_mode" not in site_config(bench)


def test_status_needs_a_site(bench: Path) -> None:
    assert_error(run_cli("scheduler", "status", cwd=bench), "no site given")


def test_trigger_a_job_type_by_name_runs_it_now_with_a_log(bench: Path) -> None:
    out = ok(jb(bench, "trigger-scheduler-event", "tasks.hourly_job"))

    assert out == f"Ran tasks.hourly_job on {SITE}\n"
    assert marks(bench) == [[SITE, "hourly_job", "Administrator"]]
    assert logs(bench) == [("tasks.hourly_job", "Complete", None)]


def test_trigger_a_method_runs_its_job_type(bench: Path) -> None:
    out = ok(jb(bench, "trigger-scheduler-event", "capp.tasks.hourly_too"))

    assert out == f"Ran tasks.hourly_too on {SITE}\n"
    assert marks(bench) == [[SITE, "hourly_too", "Administrator"]]
    assert logs(bench) == [("tasks.hourly_too", "Complete", None)]


def test_trigger_the_cron_key_runs_cron_job_types(bench: Path) -> None:
    out = ok(jb(bench, "trigger-scheduler-event", "cron"))

    assert out == f"Ran tasks.cron_job (0/5 * * * *) on {SITE}\n"
    assert marks(bench) == [[SITE, "cron_job", "Administrator"]]
    assert logs(bench) == []  # Cron types log only when create_log is set


def test_trigger_an_event_key_runs_every_job_type_of_it(bench: Path) -> None:
    out = ok(jb(bench, "trigger-scheduler-event", "hourly"))

    assert sorted(out.splitlines()) == [
        f"Ran tasks.hourly_job on {SITE}",
        f"Ran tasks.hourly_too on {SITE}",
    ]
    assert sorted(m[1] for m in marks(bench)) == ["hourly_job", "hourly_too"]
    assert sorted(logs(bench)) == [
        ("tasks.hourly_job", "Complete", None),
        ("tasks.hourly_too", "Complete", None),
    ]


def test_trigger_of_something_unknown_is_a_one_line_error(bench: Path) -> None:
    assert_error(jb(bench, "trigger-scheduler-event", "nope.nothing"), "'nope.nothing'", SITE)
    assert_error(jb(bench, "trigger-scheduler-event", "weekly"), "'weekly'")
    assert marks(bench) == [] and logs(bench) == []


def test_trigger_of_a_failing_job_exits_1_and_logs_the_traceback(bench: Path) -> None:
    line = assert_error(
        jb(bench, "trigger-scheduler-event", "daily"), "tasks.boom", "RuntimeError: boom from capp"
    )
    assert "Scheduled Job Log" in line
    ((job_type, state, details),) = logs(bench)
    assert (job_type, state) == ("tasks.boom", "Failed")
    assert details and "Traceback" in details and "RuntimeError: boom from capp" in details


def test_scheduled_jobs_list_shows_next_and_last_run(bench: Path) -> None:
    rows = json.loads(ok(jb(bench, "scheduled-jobs", "list", "--format", "json")))

    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {
        "tasks.every",
        "tasks.hourly_job",
        "tasks.hourly_too",
        "tasks.boom",
        "tasks.cron_job (0/5 * * * *)",
    }
    assert all(r["site"] == SITE and r["next_execution"] for r in rows)
    assert all(r["last_execution"] is None for r in rows)
    assert by_name["tasks.cron_job (0/5 * * * *)"]["cron_format"] == "0/5 * * * *"
    assert by_name["tasks.hourly_job"]["frequency"] == "Hourly"
    nexts = [r["next_execution"] for r in rows]
    assert nexts == sorted(nexts)

    text = ok(jb(bench, "scheduled-jobs", "list"))
    for name, row in by_name.items():
        line = next(ln for ln in text.splitlines() if name.split(" ")[0] in ln)
        assert row["frequency"] in line
        assert row["next_execution"][:16] in line, (name, line)


def _redis_bench(bench: Path) -> Iterator[None]:
    parts = urlsplit(REDIS_SERVER)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        reason = f"Redis is not answering on {host}:{port}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI must test against it (.ci/run starts it)")
        pytest.skip(reason)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    set_common(bench, redis_queue=REDIS_URL, bench_id=f"cli-{uuid.uuid4().hex[:10]}")
    try:
        yield
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def broker_bench(request: pytest.FixtureRequest, bench: Path) -> Iterator[Path]:
    if request.param == "redis":
        yield from (bench for _ in _redis_bench(bench))
    else:
        yield bench


def _wait(check: Any, timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _spawn(bench: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobbench", *args],
            cwd=bench,
            env=cli_env({"PYTHONUNBUFFERED": "1"}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"{proc.args} ignored SIGTERM:\n{log.read_text()}")


def test_schedule_fires_pauses_resumes_and_stops_on_sigterm(broker_bench: Path) -> None:
    """A real scheduler and worker: the 'all' job fires (as Administrator) every second;
    ``scheduler pause`` stops the enqueues, ``resume`` restarts them; SIGTERM stops cleanly."""
    bench = broker_bench
    set_common(bench, scheduler_tick_interval=1, scheduler_interval=1)
    ok(jb(bench, "migrate"))  # stored next runs follow the new scheduler_interval
    sched_log, worker_log = bench / "schedule.log", bench / "worker.log"
    worker = _spawn(bench, worker_log, "worker")
    proc = _spawn(bench, sched_log, "schedule")

    def enqueues() -> int:
        return sched_log.read_text().count("enqueued s1:tasks.every")

    def runs() -> int:
        return sum(m[1] == "every" for m in marks(bench))

    try:
        _wait(lambda: enqueues() >= 1 and runs() >= 1, 60, "a scheduled run")
        assert ok(jb(bench, "scheduler", "pause")) == f"Scheduler is paused for site {SITE}\n"
        time.sleep(1.5)  # a tick already under way may still enqueue
        paused = enqueues()
        time.sleep(2.5)  # two more ticks, skipped
        assert enqueues() == paused, "the scheduler kept enqueueing while paused"
        ok(jb(bench, "scheduler", "resume"))
        _wait(lambda: enqueues() > paused, 30, "an enqueue after resume")
        code = _stop(proc, sched_log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        worker_code = _stop(worker, worker_log)
    output = sched_log.read_text()
    assert code == 0, output
    assert "started (tick every 1 s)" in output and output.rstrip().endswith("stopped")
    assert "Traceback" not in output
    assert worker_code == 0, worker_log.read_text()

    rows = json.loads(ok(jb(bench, "scheduled-jobs", "list", "--format", "json")))
    every = next(r for r in rows if r["name"] == "tasks.every")
    assert every["last_execution"] is not None
    assert every["next_execution"] > every["last_execution"]
    every_runs = [m for m in marks(bench) if m[1] == "every"]
    assert every_runs and all(m == [SITE, "every", "Administrator"] for m in every_runs)
    assert len(every_runs) <= enqueues()
    # the lease was released: another scheduler would lead at once
    conf = common_config(bench)
    if "redis_queue" in conf:
        import redis

        client = redis.Redis.from_url(conf["redis_queue"])
        try:
            assert client.get(f"jb:{{{conf['bench_id']}}}:lease:scheduler") is None
        finally:
            client.close()
    else:
        with sqlite3.connect(bench / "sites" / "queue.sqlite3") as conn:
            assert conn.execute("SELECT COUNT(*) FROM leases").fetchone() == (0,)


def test_worker_pool_can_host_the_scheduler(broker_bench: Path) -> None:
    bench = broker_bench
    set_common(bench, scheduler_tick_interval=1, scheduler_interval=1)
    ok(jb(bench, "migrate"))
    log = bench / "pool.log"
    pool = _spawn(bench, log, "worker-pool", "--num-workers", "1", "--with-scheduler")
    try:
        _wait(lambda: [SITE, "every", "Administrator"] in marks(bench), 60, "a scheduled run")
        code = _stop(pool, log)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait(10)
    assert code == 0, log.read_text()
    assert "enqueued s1:tasks.every" in log.read_text()
