"""One scheduler tick with a simulated clock, on both brokers (SPEC section 5, "The scheduler
process"): due job types are enqueued as ``scheduled_job::<name>`` and run as Administrator,
schedules advance, database changes apply at the next tick, inactive sites are skipped with a
reason, a pending previous run blocks until it is settled, and one bad job type never stops the
others. Runs happen in real burst-worker processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

import jobbench
from jobbench.jobs.record import full_id
from jobbench.scheduler.run import RUN_METHOD
from jobbench.scheduler.scheduler import Scheduler, TickReport
from jobbench.scheduler.status import inactive_reason
from jobbench.worker.settle import reap_dead

from .scheduler_helpers import (  # noqa: F401
    JOB_TYPE,
    LOG,
    SITE,
    Sched,
    sched_fixture,
    wait_until,
)

J = "sapp.jobs."
SEC = dt.timedelta(seconds=1)
MIN = dt.timedelta(minutes=1)


def tick(sched: Sched, when: dt.datetime, scheduler: Scheduler | None = None) -> TickReport:
    """Tick at ``when`` (naive local time of the site)."""
    scheduler = scheduler or Scheduler(sched.bench, quiet=True)
    return scheduler.tick(now=sched.epoch(when))


def due_at(sched: Sched, name: str) -> dt.datetime:
    value = sched.job_type(name)["next_execution"]
    assert isinstance(value, dt.datetime)
    return value


def test_a_due_cron_job_is_enqueued_then_runs_as_administrator_with_a_log(sched: Sched) -> None:
    name = sched.new_job_type(
        method=J + "ping", frequency="Cron", cron_format="0/5 * * * *", create_log=1
    )
    first = due_at(sched, name)
    assert first.minute % 5 == 0 and first.second == 0

    early = tick(sched, first - SEC)
    assert (early.enqueued, early.blocked, early.errors) == ([], [], [])
    assert sched.record(name) is None

    report = tick(sched, first)

    assert report.enqueued == [f"{SITE}:{name}"]
    assert report.errors == [] and report.skipped_sites == {}
    record = sched.record(name)
    assert record is not None
    assert (record.status, record.queue, record.user) == ("queued", "default", "Administrator")
    assert (record.method, record.job_name) == (RUN_METHOD, J + "ping")
    row = sched.job_type(name)
    assert row["last_execution"] == first
    assert row["next_execution"] == first + 5 * MIN

    sched.run_worker()

    assert sched.marks() == [[SITE, "ping", "Administrator", f"scheduled_job::{name}"]]
    assert sched.record(name).status == "finished"
    (log,) = sched.logs(name)
    assert log["status"] == "Complete" and log["start"] and log["end"]
    assert log["job_id"] == f"scheduled_job::{name}"

    assert tick(sched, first + MIN).enqueued == []  # not due again before its next slot
    assert tick(sched, first + 5 * MIN).enqueued == [f"{SITE}:{name}"]


def test_a_run_enqueued_by_another_user_still_runs_as_administrator(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "ping", frequency="Daily")
    with sched.ctx(user="alice@example.com"):
        assert jobbench.get_doc(JOB_TYPE, name).enqueue(force=True)  # not due: forced
        assert jobbench.session.user == "alice@example.com"
    assert sched.record(name).user == "Administrator"

    sched.run_worker()

    assert sched.marks() == [[SITE, "ping", "Administrator", f"scheduled_job::{name}"]]


def test_queue_and_timeout_follow_the_frequency_or_the_override(sched: Sched) -> None:
    names = {
        "override": sched.new_job_type(
            method=J + "ping", frequency="Daily", queue="short", timeout=42
        ),
        "long": sched.new_job_type(method=J + "ping", frequency="Daily Long"),
        "cron_long": sched.new_job_type(
            method=J + "pong", frequency="Cron", cron_format="0 3 * * *", queue="long"
        ),
        "plain": sched.new_job_type(method=J + "pong", frequency="Daily"),
    }
    later = max(due_at(sched, n) for n in names.values()) + MIN

    report = tick(sched, later)

    assert sorted(report.enqueued) == sorted(f"{SITE}:{n}" for n in names.values())
    got = {k: (sched.record(n).queue, sched.record(n).timeout) for k, n in names.items()}
    assert got == {
        "override": ("short", 42),
        "long": ("long", 1500),
        "cron_long": ("long", 1500),
        "plain": ("default", 300),
    }


def test_database_changes_take_effect_at_the_next_tick(sched: Sched) -> None:
    scheduler = Scheduler(sched.bench, quiet=True)  # one long-lived scheduler, no restart
    name = sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0/5 * * * *")
    first = due_at(sched, name)
    assert tick(sched, first, scheduler).enqueued == [f"{SITE}:{name}"]
    assert sched.finish_pending() == 1

    sched.set_job_type(name, stopped=1)
    stopped = tick(sched, first + 5 * MIN, scheduler)
    assert (stopped.enqueued, stopped.blocked, stopped.errors) == ([], [], [])

    sched.set_job_type(name, stopped=0, cron_format="0 * * * *")
    # The last run was at ``first``: the next full hour after it (first + 5 min may itself be
    # a full hour, so derive it from ``first``, not from the later tick).
    hour = first.replace(minute=0, second=0, microsecond=0) + 60 * MIN
    assert due_at(sched, name) == hour
    assert tick(sched, hour - 5 * MIN, scheduler).enqueued == []
    assert tick(sched, hour, scheduler).enqueued == [f"{SITE}:{name}"]
    assert sched.finish_pending() == 1

    with sched.ctx():  # a raw write (no document hooks) counts too
        jobbench.db.set_value(JOB_TYPE, name, "stopped", 1)
        jobbench.db.commit()
    assert tick(sched, hour + 60 * MIN, scheduler).enqueued == []


def _pause_in_common(sched: Sched) -> None:
    sched.set_common(pause_scheduler=1)


def _settings_off(sched: Sched) -> None:
    with sched.ctx():
        settings = jobbench.get_doc("System Settings")
        settings.enable_scheduler = 0
        settings.save()
        jobbench.db.commit()


def _settings_on(sched: Sched) -> None:
    with sched.ctx():
        settings = jobbench.get_doc("System Settings")
        settings.enable_scheduler = 1
        settings.save()
        jobbench.db.commit()


INACTIVE = {
    "maintenance_mode": (
        lambda s: s.set_site(maintenance_mode=1),
        lambda s: s.set_site(maintenance_mode=0),
        "maintenance_mode",
    ),
    "pause_scheduler": (
        lambda s: s.set_site(pause_scheduler=1),
        lambda s: s.set_site(pause_scheduler=0),
        "paused",
    ),
    "pause_scheduler_common": (
        _pause_in_common,
        lambda s: s.set_common(pause_scheduler=0),
        "paused",
    ),
    "disable_scheduler": (
        lambda s: s.set_site(disable_scheduler=1),
        lambda s: s.set_site(disable_scheduler=0),
        "disable_scheduler",
    ),
    "enable_scheduler_off": (_settings_off, _settings_on, "enable_scheduler is off"),
}


@pytest.mark.parametrize("how", sorted(INACTIVE))
def test_an_inactive_site_is_skipped_and_says_why(sched: Sched, how: str) -> None:
    make_inactive, make_active, words = INACTIVE[how]
    name = sched.new_job_type(method=J + "ping", frequency="Cron", cron_format="0/5 * * * *")
    first = due_at(sched, name)
    make_inactive(sched)

    report = tick(sched, first)

    assert report.enqueued == [] and report.errors == []
    assert list(report.skipped_sites) == [SITE]
    assert words in report.skipped_sites[SITE]
    with sched.ctx() as local:
        assert inactive_reason(local) == report.skipped_sites[SITE]
    assert sched.record(name) is None
    assert sched.job_type(name)["last_execution"] is None

    make_active(sched)
    again = tick(sched, first + SEC)
    assert again.skipped_sites == {}
    assert again.enqueued == [f"{SITE}:{name}"]


def test_a_pending_previous_run_blocks_until_it_is_settled(sched: Sched) -> None:
    name = sched.new_job_type(
        method=J + "ping", frequency="Cron", cron_format="* * * * *", create_log=1
    )
    first = due_at(sched, name)
    assert tick(sched, first).enqueued == [f"{SITE}:{name}"]

    queued = tick(sched, first + MIN)
    assert queued.enqueued == [] and queued.blocked == [f"{SITE}:{name}"]
    assert due_at(sched, name) == first + MIN  # the slot waits; it is not lost

    # a worker takes the run and dies without a heartbeat (it never registered one)
    broker, keep = sched.broker(), sched.keep()
    claimed = broker.claim(["default"], "ghost-worker")
    assert claimed is not None and claimed.id == full_id(SITE, f"scheduled_job::{name}")
    with sched.ctx():  # what the run itself writes first
        log = jobbench.new_doc(LOG, scheduled_job_type=name, status="Start", start=first)
        log.insert()
        jobbench.db.commit()
    started = tick(sched, first + 2 * MIN)
    assert started.enqueued == [] and started.blocked == [f"{SITE}:{name}"]

    assert reap_dead(broker, sched.bench, keep) == [claimed.id]

    record = sched.record(name)
    assert record.status == "failed" and "worker died" in record.exc_info
    (dead,) = sched.logs(name)
    assert dead["status"] == "Failed" and "worker died" in dead["details"] and dead["end"]

    assert tick(sched, first + 2 * MIN).enqueued == [f"{SITE}:{name}"]
    sched.run_worker()
    assert sched.record(name).status == "finished"
    assert [log["status"] for log in sched.logs(name)] == ["Failed", "Complete"]


def test_a_run_whose_worker_process_died_ends_failed_never_at_start(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "exit_hard", frequency="Hourly")
    assert tick(sched, due_at(sched, name)).enqueued == [f"{SITE}:{name}"]

    sched.run_worker()

    assert [m[1] for m in sched.marks()] == ["exit_hard"]  # it did start
    record = sched.record(name)
    assert record.status == "failed" and "worker died" in record.exc_info
    (log,) = sched.logs(name)
    assert log["status"] == "Failed"
    assert "worker died" in log["details"]
    assert log["start"] and log["end"] and log["start"] <= log["end"]


def test_a_run_past_its_timeout_ends_failed(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "sleepy", frequency="Hourly", timeout=1)
    assert tick(sched, due_at(sched, name)).enqueued == [f"{SITE}:{name}"]
    assert sched.record(name).timeout == 1

    sched.run_worker()

    record = sched.record(name)
    assert record.status == "failed" and "timeout" in record.exc_info
    (log,) = sched.logs(name)
    assert log["status"] == "Failed" and log["end"]
    assert "JobTimeoutException" in log["details"]


def test_a_run_stopped_on_request_does_not_stay_at_start(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "sleepy", frequency="Hourly")
    assert tick(sched, due_at(sched, name)).enqueued == [f"{SITE}:{name}"]
    cmd = [sys.executable, "-m", "jobbench", "--bench", sched.path, "worker", "--burst"]
    worker = subprocess.Popen(
        cmd, env=sched.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: [m[1] for m in sched.marks()] == ["sleepy"], 30, "the run to start")
        assert sched.broker().request_stop(sched.record(name).id, sched.keep()) == "started"
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert worker.returncode == 0, out

    assert sched.record(name).status == "stopped"
    (log,) = sched.logs(name)
    assert log["status"] == "Failed", "a stopped run must not stay at Start"
    assert log["end"] is not None


def test_a_failing_scheduled_job_logs_failed_with_the_traceback(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "write_then_fail", frequency="Hourly")
    assert tick(sched, due_at(sched, name)).enqueued == [f"{SITE}:{name}"]

    sched.run_worker()

    assert sched.record(name).status == "failed"
    (log,) = sched.logs(name)
    assert log["status"] == "Failed" and log["start"] and log["end"]
    assert "RuntimeError: failed after writing" in log["details"]
    with sched.ctx():
        assert jobbench.get_all("Process Payment Reconciliation") == []


def test_a_scheduled_job_with_a_log_writes_and_commits(sched: Sched) -> None:
    name = sched.new_job_type(method=J + "write_doc", frequency="Daily")
    assert tick(sched, due_at(sched, name)).enqueued == [f"{SITE}:{name}"]

    sched.run_worker()

    assert sched.record(name).status == "finished", sched.record(name).exc_info
    assert [m[1] for m in sched.marks()] == ["log:Start"]  # its log was Start while it ran
    assert [log["status"] for log in sched.logs(name)] == ["Complete"]
    with sched.ctx():
        rows = jobbench.get_all("Process Payment Reconciliation", fields=["title", "owner"])
    assert [(r.title, r.owner) for r in rows] == [("from a scheduled run", "Administrator")]


def test_one_broken_job_type_does_not_stop_the_others(sched: Sched) -> None:
    gone = sched.app_dir / "gone.py"
    gone.write_text("def task():\n    return 'gone'\n")
    sched.set_common(workers={"reports": {"timeout": 900}})
    names = {
        "before": sched.new_job_type(method=J + "ping", frequency="Hourly"),
        "gone": sched.new_job_type(method="sapp.gone.task", frequency="Hourly"),
        "bad_queue": sched.new_job_type(method=J + "pong", frequency="Hourly", queue="reports"),
        "bad_cron": sched.new_job_type(
            method=J + "tick_tock", frequency="Cron", cron_format="0 * * * *"
        ),
        "after": sched.new_job_type(method=J + "tick_tock", frequency="Hourly"),
    }
    when = max(due_at(sched, n) for n in names.values())
    # then things change under them: a module deleted, a queue dropped, a corrupt cron
    gone.unlink()
    sched.set_common(workers={})
    with sched.ctx():
        jobbench.db.set_value(JOB_TYPE, names["bad_cron"], "cron_format", "not a cron")
        jobbench.db.commit()

    report = tick(sched, when)

    ok = sorted(f"{SITE}:{names[k]}" for k in ("before", "gone", "after"))
    assert sorted(report.enqueued) == ok
    assert len(report.errors) == 2, report.errors
    bad_queue = next(e for e in report.errors if names["bad_queue"] in e)
    assert "reports" in bad_queue
    bad_cron = next(e for e in report.errors if names["bad_cron"] in e)
    assert "'not a cron'" in bad_cron
    assert sched.record(names["bad_queue"]) is None
    assert sched.record(names["bad_cron"]) is None, "a job type that errors must not be enqueued"

    sched.run_worker()

    assert sorted(m[1] for m in sched.marks()) == ["ping", "tick_tock"]
    assert sched.record(names["gone"]).status == "failed"
    (log,) = sched.logs(names["gone"])
    assert log["status"] == "Failed" and "sapp.gone" in log["details"]
    for key in ("before", "after"):
        assert [lg["status"] for lg in sched.logs(names[key])] == ["Complete"]
