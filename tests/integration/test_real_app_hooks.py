"""The real ``scheduler_events`` of Frappe, ERPNext and HRMS sync and run in full.

The three apps' hooks (tests/data/real_scheduler_events, 89 entries) are installed as stub apps
(see real_apps.py). The expected job type of each entry is derived here from the JSON alone,
without jobbench's own tables: every entry must become exactly one Scheduled Job Type with its
frequency, cron, create_log and queue, a second migrate must change nothing, one scheduler tick
far enough ahead must enqueue all of them and a worker must run each exactly once on its queue,
and ``trigger-scheduler-event`` must run one hook key's methods.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import jobbench
from jobbench.jobs.record import JobStatus
from jobbench.scheduler.scheduler import Scheduler

from .real_apps import (  # noqa: F401 - fixtures
    APPS,
    Real,
    hooked_methods,
    load_events,
    real_fixture,
    real_sqlite_fixture,
)
from .scheduler_helpers import JOB_TYPE, SITE

TOTAL = 89  # entries in the three JSON files

# Hook key -> frequency, as Frappe names them (the "cron" key holds {expression: [methods]}).
FREQUENCY_OF_KEY = {
    "all": "All",
    "hourly": "Hourly",
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "hourly_long": "Hourly Long",
    "daily_long": "Daily Long",
    "weekly_long": "Weekly Long",
    "monthly_long": "Monthly Long",
    "hourly_maintenance": "Hourly Maintenance",
    "daily_maintenance": "Daily Maintenance",
}


@dataclass(frozen=True)
class Expected:
    app: str
    key: str
    frequency: str
    cron_format: str | None
    create_log: bool
    queue: str


def _expected() -> dict[str, Expected]:
    """method -> what its Scheduled Job Type must be, from the JSON files alone."""
    out: dict[str, Expected] = {}
    for app in APPS:
        for key, value in load_events(app).items():
            if key == "cron":
                entries = [
                    (m, "Cron", " ".join(expr.split())) for expr, ms in value.items() for m in ms
                ]
            else:
                entries = [(m, FREQUENCY_OF_KEY[key], None) for m in value]
            for method, frequency, cron_format in entries:
                assert method not in out, f"{method} is hooked twice in the real apps"
                long = frequency.endswith((" Long", " Maintenance"))
                out[method] = Expected(
                    app=app,
                    key=key,
                    frequency=frequency,
                    cron_format=cron_format,
                    create_log=frequency not in ("All", "Cron"),
                    queue="long" if long else "default",
                )
    assert len(out) == TOTAL
    return out


EXPECTED = _expected()


def _by_method(real: Real) -> dict[str, dict[str, Any]]:
    rows = real.job_types()
    by_method = {r["method"]: r for r in rows}
    assert len(by_method) == len(rows), "two Scheduled Job Types share a method"
    return by_method


def _target_queues(real: Real) -> dict[str, str]:
    with real.ctx():
        return {
            row.method: jobbench.get_doc(JOB_TYPE, row.name).target_queue
            for row in jobbench.get_all(JOB_TYPE, fields=["name", "method"])
        }


def test_every_real_entry_becomes_one_job_type_with_its_frequency_cron_log_and_queue(
    real_sqlite: Real,
) -> None:
    """Installing frappe, erpnext and hrms and migrating warns about nothing, and each of the
    89 entries is exactly one job type with the right method, frequency, cron_format,
    create_log and target_queue (89 job types in all)."""
    real = real_sqlite
    for app in APPS:
        install = real.installs[app].scheduler
        assert install.warnings == [], f"installing {app}"
        assert (install.updated, install.deleted) == ([], []), f"installing {app}"
        assert len(install.inserted) == len(hooked_methods(load_events(app))), app

    report = real.migrate()

    assert report.warnings == []
    rows = _by_method(real)
    assert len(real.job_types()) == TOTAL
    assert sorted(rows) == sorted(EXPECTED)
    inserted = [name for app in APPS for name in real.installs[app].scheduler.inserted]
    assert sorted(inserted) == sorted(r["name"] for r in rows.values())
    got = {m: (r["frequency"], r["cron_format"], bool(r["create_log"])) for m, r in rows.items()}
    assert got == {m: (e.frequency, e.cron_format, e.create_log) for m, e in EXPECTED.items()}
    assert _target_queues(real) == {m: e.queue for m, e in EXPECTED.items()}
    for method, row in rows.items():
        assert row["next_run_at"] is not None and not row["stopped"], method


def test_migrating_again_inserts_updates_and_deletes_nothing(real_sqlite: Real) -> None:
    """Two more migrates of the real hooks report no insert, update, delete or warning, and
    leave every Scheduled Job Type as it was."""
    real = real_sqlite
    before = real.job_types()

    reports = [real.migrate(), real.migrate()]

    for report in reports:
        assert (report.inserted, report.updated, report.deleted, report.warnings) == (
            [],
            [],
            [],
            [],
        )
    assert real.job_types() == before


def test_one_tick_enqueues_every_real_job_type_and_a_worker_runs_each_once_on_its_queue(
    real: Real,
) -> None:
    """A tick after every job type's next run enqueues all 89 on their queue; a burst worker
    then runs every stub exactly once, on that queue, and each job type with create_log gets
    exactly one Complete Scheduled Job Log (the others none)."""
    rows = _by_method(real)
    assert len(rows) == TOTAL
    now = max(float(r["next_run_at"]) for r in rows.values()) + 1

    tick = Scheduler(real.bench, quiet=True).tick(now=now)

    assert (tick.errors, tick.blocked, tick.skipped_sites) == ([], [], {})
    assert sorted(tick.enqueued) == sorted(f"{SITE}:{r['name']}" for r in rows.values())
    queued = {}
    for method, row in rows.items():
        record = real.record(row["name"])
        assert record is not None, f"no run of {row['name']} in the broker"
        assert record.status == JobStatus.QUEUED, row["name"]
        queued[method] = record.queue
    assert queued == {m: e.queue for m, e in EXPECTED.items()}

    real.run_worker(timeout=120)

    ran = real.marks_ran()
    assert Counter(m for m, _ in ran) == dict.fromkeys(EXPECTED, 1), "each stub runs once"
    assert dict(ran) == {m: e.queue for m, e in EXPECTED.items()}
    logs = real.logs()
    assert all(log["status"] == "Complete" for log in logs), [
        (log["scheduled_job_type"], log["status"]) for log in logs if log["status"] != "Complete"
    ]
    logged = Counter(log["scheduled_job_type"] for log in logs)
    assert logged == Counter(r["name"] for m, r in rows.items() if EXPECTED[m].create_log)


def test_trigger_hourly_maintenance_runs_its_14_real_methods(real_sqlite: Real) -> None:
    """``jobbench trigger-scheduler-event hourly_maintenance`` exits 0, runs exactly the 14
    hourly_maintenance methods (8 of frappe, 6 of erpnext) once each, in its own process (no
    job queue), and prints one "Ran <job type> on site1" line per job type."""
    real = real_sqlite
    wanted = sorted(m for m, e in EXPECTED.items() if e.key == "hourly_maintenance")
    assert Counter(EXPECTED[m].app for m in wanted) == {"frappe": 8, "erpnext": 6}
    names = {r["name"] for m, r in _by_method(real).items() if m in wanted}

    done = real.cli("trigger-scheduler-event", "hourly_maintenance")

    assert done.returncode == 0, done.stdout + done.stderr
    ran = real.marks_ran()
    assert sorted(m for m, _ in ran) == wanted
    assert {q for _, q in ran} == {"-"}
    printed = [line for line in done.stdout.splitlines() if line.startswith("Ran ")]
    assert sorted(printed) == sorted(f"Ran {name} on {SITE}" for name in names)
