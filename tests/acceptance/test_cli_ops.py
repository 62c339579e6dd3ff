"""The operations commands (SPEC section 7) as real ``jobbench`` processes: doctor,
show-pending-jobs, purge-jobs, ready-for-migration, metrics, setup supervisor|systemd, and
their refusals of bad input. Jobs are made through the CLI; a "running" job is claimed from the
real SQLite broker by this test, as a worker would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobbench.brokers.base import Retention
from jobbench.brokers.sqlite import SQLiteBroker

from .helpers import assert_error, assert_unchanged, ok, run_cli, snapshot

HOOKS = """
doctypes = ["tapp.doctypes.Task", "tapp.doctypes.Note", "tapp.doctypes.Tag"]
scheduler_events = {"hourly": ["tapp.opsjobs.hourly_job"], "daily": ["tapp.opsjobs.daily_job"]}
"""

JOBS = """
def mark(tag=""):
    return tag


def other():
    return None


def hourly_job():
    return "hourly"


def daily_job():
    return "daily"


def enqueue_scheduled_runs():
    import jobbench
    from jobbench.scheduler.run import enqueue_job_type

    for name in jobbench.get_all("Scheduled Job Type", pluck="name"):
        enqueue_job_type(jobbench.get_doc("Scheduled Job Type", name), slot=None)
"""


@pytest.fixture
def ops_bench(bench_dir: Path) -> Path:
    (bench_dir / "apps" / "tapp" / "hooks.py").write_text(HOOKS)
    (bench_dir / "apps" / "tapp" / "opsjobs.py").write_text(JOBS)
    ok(run_cli("--site", "s1", "migrate", cwd=bench_dir))
    return bench_dir


def cli_json(bench: Path, *args: str) -> Any:
    return json.loads(ok(run_cli("--site", "s1", *args, "--format", "json", cwd=bench)))


def enqueue(bench: Path, method: str, queue: str = "default") -> str:
    out = ok(
        run_cli("--site", "s1", "enqueue", f"tapp.opsjobs.{method}", "--queue", queue, cwd=bench)
    )
    return out.strip()


def broker(bench: Path) -> SQLiteBroker:
    return SQLiteBroker(str(bench / "sites" / "queue.sqlite3"))


def test_doctor_and_show_pending_jobs_group_by_method(ops_bench: Path) -> None:
    for method, queue in [("mark", "default"), ("mark", "default"), ("other", "short")]:
        enqueue(ops_bench, method, queue)
    groups = cli_json(ops_bench, "show-pending-jobs")
    by_method = {(g["queue"], g["method"]): g for g in groups}
    assert by_method[("default", "tapp.opsjobs.mark")]["counts"] == {"queued": 2}
    assert by_method[("short", "tapp.opsjobs.other")]["total"] == 1
    only_short = cli_json(ops_bench, "show-pending-jobs", "--queue", "short")
    assert [g["method"] for g in only_short] == ["tapp.opsjobs.other"]

    report = cli_json(ops_bench, "doctor")
    (site,) = report["sites"]
    assert site["site"] == "s1" and site["active"] is True and site["reason"] is None
    assert sum(g["total"] for g in site["pending"]) == 3
    assert report["workers"] == [] and report["stale_workers"] == []
    assert report["queues"]["default"]["queued"] == 2

    text = ok(run_cli("--site", "s1", "doctor", cwd=ops_bench))
    assert "s1: scheduler active" in text and "tapp.opsjobs.mark" in text

    ok(run_cli("--site", "s1", "disable-scheduler", cwd=ops_bench))
    site = cli_json(ops_bench, "doctor")["sites"][0]
    assert site["active"] is False and "enable_scheduler" in site["reason"]


def test_purge_and_ready_for_migration_leave_running_jobs_alone(ops_bench: Path) -> None:
    ids = [enqueue(ops_bench, "mark") for _ in range(3)]
    enqueue(ops_bench, "other", "short")
    b = broker(ops_bench)
    running = b.claim(["default"], "test-worker")
    assert running is not None and running.job_id == ids[0]

    result = run_cli("--site", "s1", "ready-for-migration", cwd=ops_bench)
    assert_error(result, "not ready for migration", "3 queued", "1 running")

    out = ok(run_cli("--site", "s1", "purge-jobs", "--queue", "default", cwd=ops_bench))
    assert out.strip() == "Purged 2 job(s) from queue default (s1)"
    assert b.get(running.id) is not None and b.get(running.id).status == "started"  # type: ignore[union-attr]
    assert b.queue_length("short") == 1

    out = ok(run_cli("purge-jobs", "--site", "s1", cwd=ops_bench))
    assert out.strip() == "Purged 1 job(s) (s1)"
    assert_error(run_cli("--site", "s1", "ready-for-migration", cwd=ops_bench), "1 running")

    assert b.finish(running.id, "test-worker", None, Retention())
    b.close()
    out = ok(run_cli("--site", "s1", "ready-for-migration", cwd=ops_bench))
    assert out.strip() == "Site s1 is ready for migration"


def test_purge_by_event_deletes_only_that_events_scheduled_runs(ops_bench: Path) -> None:
    ok(run_cli("--site", "s1", "execute", "tapp.opsjobs.enqueue_scheduled_runs", cwd=ops_bench))
    enqueue(ops_bench, "mark")
    before = {g["method"]: g["total"] for g in cli_json(ops_bench, "show-pending-jobs")}
    assert before["jobbench.scheduler.run.run_scheduled_job"] == 2

    out = ok(run_cli("--site", "s1", "purge-jobs", "--event", "hourly", cwd=ops_bench))
    assert out.strip() == "Purged 1 job(s) of event hourly (s1)"
    left = [r.job_id for r in broker(ops_bench).find(site="s1", status="queued")]
    assert any("daily_job" in x for x in left)
    assert not any("hourly_job" in x for x in left)
    assert len(left) == 2

    # Any event name is valid (enqueue(event=...) labels are free text); one that is no
    # scheduler event and that no waiting job carries purges nothing, with a note.
    result = run_cli("--site", "s1", "purge-jobs", "--event", "fortnightly", cwd=ops_bench)
    assert ok(result).strip() == "Purged 0 job(s) of event fortnightly (s1)"
    assert "not a scheduler event" in result.stderr
    assert len(broker(ops_bench).find(site="s1", status="queued")) == 2


def test_metrics_prints_prometheus_text(ops_bench: Path) -> None:
    enqueue(ops_bench, "mark")
    text = ok(run_cli("--site", "s1", "metrics", cwd=ops_bench))
    lines = text.splitlines()
    assert "# TYPE jobbench_queue_depth gauge" in lines
    assert 'jobbench_queue_depth{queue="default"} 1' in lines
    assert 'jobbench_jobs{site="s1",queue="default",status="queued"} 1' in lines
    assert "jobbench_workers_alive 0" in lines
    assert 'jobbench_scheduler_active{site="s1"} 1' in lines


def test_setup_writes_supervisor_and_systemd_config(bench_dir: Path) -> None:
    config = bench_dir / "sites" / "common_site_config.json"
    data = json.loads(config.read_text())
    data.update(background_workers=2, workers={"bulk": {"timeout": 900, "background_workers": 3}})
    config.write_text(json.dumps(data))

    # --user must name an existing, non-root user (test_cli_security.py tests the refusals)
    ok(run_cli("setup", "supervisor", "--user", "nobody", cwd=bench_dir))
    conf = (bench_dir / "config" / "supervisor.conf").read_text()
    sections = {s.split("]")[0]: s for s in conf.split("[program:")[1:]}
    slug = bench_dir.name
    assert f"{slug}-schedule" in sections
    short = sections[f"{slug}-worker-short-default"]
    assert "numprocs=2" in short and "stopwaitsecs=360" in short and "user=nobody" in short
    assert "worker --queue short,default" in short
    assert "stopwaitsecs=1560" in sections[f"{slug}-worker-long-default-short"]
    bulk = sections[f"{slug}-worker-bulk"]
    assert "numprocs=3" in bulk and "stopwaitsecs=960" in bulk

    ok(run_cli("setup", "systemd", "--user", "nobody", cwd=bench_dir))
    units = bench_dir / "config" / "systemd"
    bulk_unit = (units / f"{slug}-worker-bulk@.service").read_text()
    assert "TimeoutStopSec=960" in bulk_unit and "worker --queue bulk" in bulk_unit
    target = (units / f"{slug}.target").read_text()
    assert f"{slug}-worker-bulk@3.service" in target and f"{slug}-schedule.service" in target
    assert "TimeoutStopSec=" in (units / f"{slug}-schedule.service").read_text()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--site", "nope", "doctor"], ["nope"]),
        (["--site", "nope", "show-pending-jobs"], ["nope"]),
        (["--site", "s1", "show-pending-jobs", "--queue", "nope"], ["queue 'nope'"]),
        (["purge-jobs", "--site", "nope"], ["nope"]),
        (["--site", "s1", "purge-jobs", "--queue", "nope"], ["queue 'nope'"]),
        (["--site", "nope", "ready-for-migration"], ["nope"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    bench_dir: Path, args: list[str], needles: list[str]
) -> None:
    ok(run_cli("--site", "s1", "enqueue", "tapp.doctypes.Task", cwd=bench_dir))  # a queued job
    before = snapshot(bench_dir)
    assert_error(run_cli(*args, cwd=bench_dir), *needles)
    assert_unchanged(before, bench_dir)


def test_malformed_config_json_is_one_line(bench_dir: Path) -> None:
    (bench_dir / "sites" / "common_site_config.json").write_text("{not json")
    before = snapshot(bench_dir)
    for args in (["doctor"], ["metrics"], ["setup", "supervisor"], ["purge-jobs"]):
        assert_error(run_cli("--site", "s1", *args, cwd=bench_dir), "common_site_config.json")
    assert_unchanged(before, bench_dir)
